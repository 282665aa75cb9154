"""One triggerer, many waiting jobs: 500 ``ProducerTrigger`` against 500 bare sensor triggers.

An Airflow triggerer runs every deferred task's trigger as a coroutine on one event loop. This
benchmark does the same in a fresh interpreter per variant (Airflow's trigger classes, the
triggerer's way of rebuilding a trigger from its serialized kwargs, one loop), without the
scheduler and database around it:

- ``sensors``: ``--jobs`` ``DateTimeTrigger`` (what a deferrable ``TimeDeltaSensor`` waits
  on) ending ``--seconds`` from now: Airflow's cheapest deferral, the baseline;
- ``producers``: ``--jobs`` live Replicate predictions, submitted first (not measured), each
  then waited for by a ``ProducerTrigger`` against the fake Replicate (in its own process)
  whose predictions take ``--seconds``; the trigger polls, then collects the image into the
  store and ends the task (``finish``), as in a deployment.

Measured per variant, while the triggers run: the process's peak RSS (``VmHWM`` after a
reset), its RSS before, the CPU seconds it used, and for ``producers`` the polls the fake
saw (CPU per poll), creates (one per job: goal) and every trigger's end. Reported: the
producers' peak RSS and RSS growth against the sensors' (goal: peak <= 2x), CPU per poll.

Run: ``.venv/bin/python -m benchmarks.triggerer_scale [--jobs 500] [--seconds 20]``
(about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._support import (
    REPO_ROOT,
    FakeProcess,
    format_table,
    replicate_airflow_env,
    write_json,
)

GOAL = 2.0

_CHILD = r"""
import asyncio, json, os, resource, sys, time

variant, jobs, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rebuild(trigger, plain=True):
    # What the triggerer does with a trigger row: its class from the path, its kwargs
    # (ours are plain JSON: shown by the round trip; Airflow's own carry datetimes).
    import importlib

    path, kwargs = trigger.serialize()
    if plain:
        kwargs = json.loads(json.dumps(kwargs))
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


async def prepare():
    if variant == "sensors":
        import datetime as dt
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
        from airflow.sdk import timezone

        moment = timezone.utcnow() + dt.timedelta(seconds=seconds)
        return [rebuild(DateTimeTrigger(moment=moment), plain=False) for _ in range(jobs)]
    from airflow_provider_tutopanda.triggers.jobs import close_handler, job_handler
    from airflow_provider_tutopanda.triggers.producer import ProducerTrigger
    from producers.sdk.jobs import Descriptor, JobRequest
    from producers.sdk.lifecycle import Job

    store = os.environ["TUTOPANDA_STORE"]
    requests = [
        JobRequest(
            job_id=f"scale.{i}",
            descriptor=Descriptor.parse("replicate:bytedance/seedream-4", environment="airflow"),
            mode="live",
            inputs={"prompt": f"triggerer scale {i}"},
        )
        for i in range(jobs)
    ]
    handler = job_handler(requests[0], store, None)
    handles = []
    for start in range(0, jobs, 50):
        async def submit(request):
            job = Job(handler, request)
            return await job.start()

        handles += await asyncio.gather(*(submit(r) for r in requests[start : start + 50]))
    await close_handler(handler)
    return [
        rebuild(
            ProducerTrigger(
                job=request.for_waiting().model_dump(mode="json"),
                handle=handle.model_dump(mode="json"),
                store=store,
                finish={"where": {"key": request.job_id}},
            )
        )
        for request, handle in zip(requests, handles)
    ]


async def wait(triggers):
    async def one(trigger):
        events = [event async for event in trigger.run()]
        return type(events[-1]).__name__ if events else "none"

    return await asyncio.gather(*(one(t) for t in triggers))


triggers = asyncio.run(prepare())
import gc
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before_rss = status("VmRSS")
cpu0, wall0 = time.process_time(), time.perf_counter()
ends = asyncio.run(wait(triggers))
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
print(json.dumps({
    "rss_before": before_rss,
    "peak_rss": status("VmHWM"),
    "cpu_s": round(cpu, 3),
    "wall_s": round(wall, 3),
    "ends": {end: ends.count(end) for end in set(ends)},
}))
"""


def run_child(variant: str, jobs: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    """Run one variant in a fresh interpreter; its figures."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, variant, str(jobs), str(seconds)],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds * 20 + 600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(jobs: int, seconds: float) -> dict[str, Any]:
    """Start the fake, run both variants, return their figures."""
    with (
        FakeProcess("replicate", latency=seconds) as fake,
        tempfile.TemporaryDirectory(prefix="tutopanda-bench-triggerer-") as folder,
    ):
        env = {
            "AIRFLOW_HOME": str(Path(folder) / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            **replicate_airflow_env(fake, Path(folder) / "store"),
        }
        results = {"sensors": run_child("sensors", jobs, seconds, env)}
        fake.reset()
        results["producers"] = run_child("producers", jobs, seconds, env)
        routes = [r.get("route") for r in fake.requests()]
        results["producers"]["creates"] = routes.count("create")
        results["producers"]["polls"] = routes.count("get")
        results["producers"]["downloads"] = routes.count("download")
    return results


def report(results: dict[str, Any], jobs: int, seconds: float) -> dict[str, Any]:
    """The table and the ratios (printed), as a JSON-able record."""
    mib = 1024 * 1024
    sensors, producers = results["sensors"], results["producers"]
    rows = []
    for name, figures in (("sensors", sensors), ("producers", producers)):
        growth = figures["peak_rss"] - figures["rss_before"]
        rows.append(
            [
                name,
                f"{figures['rss_before'] / mib:.1f}",
                f"{figures['peak_rss'] / mib:.1f}",
                f"{growth / mib:.1f}",
                f"{figures['cpu_s']:.2f}",
                f"{figures['wall_s']:.1f}",
                ", ".join(f"{k} {v}" for k, v in sorted(figures["ends"].items())),
            ]
        )
    print(f"{jobs} waiting jobs of {seconds:g} s on one event loop")
    headers = ["variant", "RSS before MiB", "peak RSS MiB", "growth MiB", "CPU s", "wall s"]
    print(format_table([*headers, "ends"], rows))
    ratio = producers["peak_rss"] / sensors["peak_rss"]
    growth_ratio = (producers["peak_rss"] - producers["rss_before"]) / max(
        sensors["peak_rss"] - sensors["rss_before"], 1
    )
    polls = producers.get("polls") or 0
    per_poll = producers["cpu_s"] / polls * 1000 if polls else float("nan")
    print(
        f"producers / sensors peak RSS: {ratio:.2f} (goal <= {GOAL:g}); RSS growth "
        f"{growth_ratio:.1f}x; CPU per poll {per_poll:.2f} ms ({polls} polls, "
        f"{producers.get('creates')} creates for {jobs} jobs, "
        f"{producers.get('downloads')} downloads)"
    )
    return {
        "jobs": jobs,
        "seconds": seconds,
        "goal": GOAL,
        "peak_rss_ratio": round(ratio, 3),
        "rss_growth_ratio": round(growth_ratio, 3),
        "cpu_ms_per_poll": round(per_poll, 3),
        "variants": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    results = measure(args.jobs, args.seconds)
    write_json(args.json_path, report(results, args.jobs, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
