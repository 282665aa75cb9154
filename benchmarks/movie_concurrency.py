"""Wall time of a 20-segment movie at concurrency 8, as a ratio of the ideal.

The fakes run in child processes with a fixed latency per prediction (and per OpenAI answer).
The ideal is the critical path (script -> image prompt -> image, or script -> narration ->
music, then the assembly) plus ``jobs / concurrency x latency``; the assembly's time is
measured in the same run (the same timeline assembled once more) and counted in both.

Run: ``.venv/bin/python -m benchmarks.movie_concurrency [--segments 20] [--concurrency 8]
[--latency 2.0]``; goal: ratio at most 1.2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._support import FakeProcess, format_table, write_json
from producers.cli.runner import CliJobRunner
from producers.clients import default_client_registry
from producers.pipeline.assembly import assemble
from producers.pipeline.flow import make_movie
from producers.pipeline.options import load_options
from producers.registry import default_registry
from producers.sdk.handler import HandlerDeps
from producers.sdk.runtime import close_clients
from producers.storage.local import LocalStore

#: Jobs in a row on the critical path before the assembly (script, prompt, image).
CRITICAL_JOBS = 3


async def measure(
    segments: int, concurrency: int, latency: float, size: tuple[int, int]
) -> dict[str, float]:
    """Run one movie live against the fakes; return the figures."""
    with tempfile.TemporaryDirectory() as folder:
        store = LocalStore(Path(folder))
        deps = HandlerDeps(store=store, clients=default_client_registry(), shared_clients={})
        runner = CliJobRunner(
            registry=default_registry(),
            deps=deps,
            mode="live",
            run_id="bench",
            concurrency={"replicate": concurrency, "openai": concurrency},
        )
        started = time.perf_counter()
        try:
            outcome = await make_movie(
                "How volcanoes work", segments, load_options(), runner, store, size=size
            )
        finally:
            await close_clients(deps.shared_clients or {})
        wall = time.perf_counter() - started
        if not outcome.ok or outcome.timeline is None:
            raise RuntimeError(f"the movie failed: {outcome.failures} {outcome.skipped}")
        started = time.perf_counter()
        await assemble(outcome.timeline, store)
        assembly = time.perf_counter() - started
    jobs = len(outcome.results)
    ideal = CRITICAL_JOBS * latency + assembly + jobs / concurrency * latency
    return {
        "segments": segments,
        "concurrency": concurrency,
        "latency_s": latency,
        "jobs": jobs,
        "assembly_s": round(assembly, 3),
        "wall_s": round(wall, 3),
        "ideal_s": round(ideal, 3),
        "ratio": round(wall / ideal, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Start the fakes, run the movie, print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    with (
        FakeProcess("replicate", latency=args.latency) as replicate,
        FakeProcess("openai", latency=args.latency) as openai,
    ):
        os.environ.update(replicate.env)
        os.environ.update(openai.env)
        figures = asyncio.run(measure(args.segments, args.concurrency, args.latency, (1280, 720)))
    rows = [[key, str(value)] for key, value in figures.items()]
    print(format_table(["movie at concurrency", "value"], rows))
    print(f"wall / ideal = {figures['ratio']:.3f} (goal <= 1.2)")
    write_json(args.json_path, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
