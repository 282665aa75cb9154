"""The short table ``make bench`` ends with, from the benchmarks' JSON files.

Usage: ``python -m benchmarks.summary SDK_OVERHEAD.json DOWNLOAD_MEMORY.json`` (either may
be missing: its part is skipped).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._support import NOISY_CPUS, format_table

_JOBS = {"replicate": "replicate seedream-4 image", "openai": "openai gpt-5-mini text"}


def _load(path: str) -> dict[str, Any] | None:
    file = Path(path)
    if not file.is_file():
        return None
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


def overhead_rows(data: Mapping[str, Any]) -> list[list[str]]:
    """One row per (provider, variant) compared: medians, ratio to bare, CPU ratio, verdict."""
    rows: list[list[str]] = []
    results = data["results"]
    order: list[str] = [p for p in _JOBS if p in results]
    order += sorted(set(results) - set(_JOBS))
    for provider in order:
        variants = results[provider]["variants"]
        bare = variants["bare"]
        for key in ("sdk-shared", "sdk-per-job", "adapter"):
            figures = variants.get(key)
            if figures is None:
                continue
            verdict = "-"
            if figures["meets_goal"] is not None:
                verdict = "yes" if figures["meets_goal"] else "MISSED"
            rows.append(
                [
                    _JOBS.get(provider, provider),
                    figures["label"],
                    f"{figures['median_ms']:.1f}",
                    f"{bare['median_ms']:.1f}",
                    f"{figures['ratio']:.2f}",
                    f"{figures['cpu_ratio']:.2f}",
                    verdict,
                ]
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary of whichever results exist."""
    paths = list(sys.argv[1:] if argv is None else argv)
    overhead = _load(paths[0]) if paths else None
    memory = _load(paths[1]) if len(paths) > 1 else None
    print("\n== make bench: summary (ratios to baselines measured in the same run) ==")
    if overhead is not None:
        goal = overhead["settings"]["goal"]
        jobs = overhead["settings"]["jobs"]
        print(
            f"\nSDK per-job overhead: median of {jobs} jobs per variant; baseline: bare "
            "httpx, one client, same HTTP calls and storage work"
        )
        print(
            format_table(
                ["job", "variant", "ms/job", "bare ms/job", "ratio", "CPU ratio", f"<= {goal:.2f}"],
                overhead_rows(overhead),
                left=2,
            )
        )
        busy = [r.get("other_cpus_busy") or 0.0 for r in overhead["results"].values()]
        if max(busy, default=0.0) > NOISY_CPUS:
            print(
                f"WARNING: other processes kept up to {max(busy):.2f} CPUs busy during the "
                "measurement: these figures are distorted; run again on a quiet machine"
            )
        problems = [p for r in overhead["results"].values() for p in r.get("problems", [])]
        if problems:
            print("WARNING: the variants did not make the same calls:", *problems, sep="\n  ")
    if memory is not None:
        goal_mib = memory["settings"]["goal_mib"]
        size_mib = memory["settings"]["size_bytes"] / 2**20
        rss = memory["peak_rss_increase_mib"]
        traced = memory["tracemalloc_peak_mib"]
        print(f"\nDownload of a {size_mib:g} MiB output into a LocalStore (goal {goal_mib:g} MiB)")
        print(
            format_table(
                ["measure", "MiB", f"/ {goal_mib:g} MiB"],
                [
                    ["peak RSS increase", f"{rss:.1f}", f"{rss / goal_mib:.2f}"],
                    ["tracemalloc peak", f"{traced:.1f}", f"{traced / goal_mib:.2f}"],
                ],
            )
        )
        verdict = "yes" if memory["verified"] else "NO"
        print(f"stored blob size and sha256 match what the fake served: {verdict}")
    elapsed = sum(d["elapsed_s"] for d in (overhead, memory) if d is not None)
    print(f"\nbenchmarks took {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
