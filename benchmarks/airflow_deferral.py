"""Deferral on a real Airflow: 40 image tasks on 2 worker slots, deferrable against inline.

A real Airflow 3 (scheduler, dag-processor, triggerer, api-server; LocalExecutor with
``parallelism`` = 2 slots; a fresh PostgreSQL database; ``tests/system/harness.py``)
runs one DAG of ``--tasks`` ``ProducerOperator`` image tasks (``replicate:bytedance/seedream-4``,
live) against the fake Replicate (in its own process) whose predictions take ``--seconds``.
The pool is big (64 slots): only the executor's 2 slots limit the run.

Measured in the same run, each the DAG run's own wall time (``dag_run`` start to end):

- ``inline``: the tasks wait for their prediction in the worker: the baseline, about
  ``tasks x seconds / slots``;
- ``deferrable``: the tasks submit, defer to the triggerer (no slot while the prediction
  runs); the trigger collects the image and ends the task (no second worker pass);
- ``sensor``: the reference: as many bare deferrable ``TimeDeltaSensor`` of the same seconds
  (Airflow's own cheapest deferral; their delta counts from the run's start).

Reported: each wall time and its ratio ``inline / variant``; the goal is a deferrable ratio of
at least 13 (the best possible is ``tasks / slots`` = 20 for 40 tasks on 2 slots). Also the
worker time each variant used (the task processes' lifetimes, from their supervisors'
``Workload finished`` lines), which the 2 slots must fit, and the median seconds of a pass
that deferred and of one that ended the task: what a deferrable task costs its worker.

Run: ``.venv/bin/python -m benchmarks.airflow_deferral [--tasks 40] [--seconds 30]`` (about
13 minutes: the inline run alone is ~11), or ``--quick`` (8 tasks of 10 s, ~2 minutes).
Needs the local PostgreSQL and psycopg, like the system tests; prints why and exits 0 if not.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._support import FakeProcess, format_table, replicate_airflow_env, write_json
from tests.system.harness import AirflowSystem, fresh_database, postgres_problem

SLOTS = 2
GOAL = 13.0
VARIANTS = ("sensor", "deferrable", "inline")

_PRODUCER_DAG = """\
import pendulum
from airflow.sdk import DAG

from airflow_provider_tutopanda.operators import ProducerOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False,
         max_active_tasks={tasks}):
    for i in range({tasks}):
        ProducerOperator(
            task_id=f"image_{{i:03d}}", model="replicate:bytedance/seedream-4", mode="live",
            inputs={{"prompt": f"deferral benchmark {{i}} {{{{{{{{ run_id }}}}}}}}"}},
            deferrable={deferrable},
        )
"""

_SENSOR_DAG = """\
from datetime import timedelta

import pendulum
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False,
         max_active_tasks={tasks}):
    for i in range({tasks}):
        TimeDeltaSensor(
            task_id=f"wait_{{i:03d}}", delta=timedelta(seconds={seconds}), deferrable=True
        )
"""


def dag_source(variant: str, tasks: int, seconds: float) -> str:
    """The DAG file of one variant."""
    dag_id = f"bench_deferral_{variant}"
    if variant == "sensor":
        return _SENSOR_DAG.format(dag_id=dag_id, tasks=tasks, seconds=seconds)
    deferrable = variant == "deferrable"
    return _PRODUCER_DAG.format(dag_id=dag_id, tasks=tasks, deferrable=deferrable)


_WORKLOAD = re.compile(r"Workload finished .*duration=([\d.]+) .*final_state=(\w+)")


def workloads(system: AirflowSystem, skip: int = 0) -> list[tuple[float, str]]:
    """``(seconds, final state)`` of each task process the LocalExecutor ran (its supervisor's
    ``Workload finished`` line), after the first ``skip``: the worker time a variant used."""
    found = []
    path = system.logs / "scheduler.log"
    for line in path.read_text(errors="replace").splitlines():
        match = _WORKLOAD.search(line)
        if match:
            found.append((float(match.group(1)), match.group(2)))
    return found[skip:]


def worker_time(passes: Sequence[tuple[float, str]]) -> dict[str, Any]:
    """Worker seconds in all, and the median per pass by how the pass ended."""
    figures: dict[str, Any] = {"worker_s": round(sum(s for s, _ in passes), 1)}
    for state in sorted({state for _, state in passes}):
        seconds = [s for s, end in passes if end == state]
        figures[f"passes_{state}"] = len(seconds)
        figures[f"median_{state}_s"] = round(statistics.median(seconds), 2)
    return figures


def run_variant(
    system: AirflowSystem, fake: FakeProcess, variant: str, tasks: int, seconds: float
) -> dict[str, Any]:
    """Trigger the variant's DAG once and wait; its figures."""
    dag_id = f"bench_deferral_{variant}"
    fake.reset()
    before = len(workloads(system))
    run_id = system.trigger(dag_id)
    timeout = tasks * (seconds + 30) / SLOTS + 300
    state = system.wait_for_run(dag_id, run_id, timeout=timeout)
    (row,) = system.query(
        "SELECT EXTRACT(EPOCH FROM end_date - start_date) FROM dag_run "
        "WHERE dag_id = %s AND run_id = %s",
        (dag_id, run_id),
    )
    tis = system.task_instances(dag_id, run_id)
    failed = [ti["task_id"] for ti in tis if ti["state"] != "success"]
    if state != "success" or failed:
        raise RuntimeError(f"{dag_id} ended {state}; tasks not successful: {failed}")
    creates = sum(1 for r in fake.requests() if r.get("route") == "create")
    expected = 0 if variant == "sensor" else tasks
    if creates != expected:
        raise RuntimeError(f"{dag_id}: the fake saw {creates} creates, not {expected}")
    tries = max(int(ti["try_number"]) for ti in tis)
    time.sleep(2)  # the last supervisors log their end just after the run ends
    return {
        "wall_s": round(float(row[0]), 2),
        "creates": creates,
        "max_try": tries,
        **worker_time(workloads(system, before)),
    }


def measure(
    tasks: int, seconds: float, variants: Sequence[str], preload_sdk: bool = False
) -> dict[str, Any]:
    """Start the fake and Airflow, run every variant, return the figures."""
    with (
        FakeProcess("replicate", latency=seconds) as fake,
        tempfile.TemporaryDirectory(prefix="tutopanda-bench-airflow-") as folder,
        fresh_database(prefix="tutopanda_bench") as url,
    ):
        env = {
            **replicate_airflow_env(fake, Path(folder) / "store"),
            # [tutopanda] preload_sdk: forked task processes start with the SDK imported
            "AIRFLOW__TUTOPANDA__PRELOAD_SDK": str(preload_sdk),
        }
        pools = {
            "tutopanda_replicate": {"slots": 64, "description": "bench", "include_deferred": True}
        }
        system = AirflowSystem(
            Path(folder) / "airflow", url, env=env, parallelism=SLOTS, pools=pools
        )
        system.dags.mkdir(parents=True, exist_ok=True)
        for variant in variants:
            system.write_dag(f"bench_deferral_{variant}", dag_source(variant, tasks, seconds))
        results: dict[str, Any] = {}
        with system:
            for variant in variants:
                system.wait_for_dag(f"bench_deferral_{variant}")
            for variant in variants:
                started = time.perf_counter()
                results[variant] = run_variant(system, fake, variant, tasks, seconds)
                print(
                    f"{variant}: {results[variant]['wall_s']:.1f} s "
                    f"(measured in {time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    return results


def report(results: Mapping[str, Any], tasks: int, seconds: float) -> dict[str, Any]:
    """The table and the ratios (printed), as a JSON-able record."""
    ideal_inline = tasks * seconds / SLOTS
    inline = results.get("inline", {}).get("wall_s")
    rows = []
    figures: dict[str, Any] = {
        "tasks": tasks,
        "seconds": seconds,
        "slots": SLOTS,
        "ideal_inline_s": ideal_inline,
        "best_ratio": tasks / SLOTS,
        "goal": GOAL,
        "variants": dict(results),
    }
    for variant in VARIANTS:
        if variant not in results:
            continue
        wall = results[variant]["wall_s"]
        ratio = inline / wall if inline else None
        results[variant]["ratio"] = None if ratio is None else round(ratio, 2)
        passes = results[variant]
        per_pass = " / ".join(
            f"{passes[key]:.2f}" if key in passes else "-"
            for key in ("median_deferred_s", "median_success_s")
        )
        rows.append(
            [
                variant,
                f"{wall:.1f}",
                "-" if ratio is None else f"{ratio:.2f}",
                f"{ideal_inline / wall:.2f}",
                f"{passes['worker_s']:.1f}",
                per_pass,
            ]
        )
    headers = ["variant", "wall s", "inline / variant", f"{ideal_inline:.0f} s / variant"]
    headers += ["worker s", "s per pass: defer / end"]
    print(format_table(headers, rows))
    deferrable = results.get("deferrable", {}).get("ratio")
    if deferrable is not None:
        print(
            f"deferrable: {deferrable:.2f}x faster than inline (goal >= {GOAL:g} for 40 tasks of "
            f"30 s; best possible here tasks / slots = {tasks / SLOTS:g})"
        )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="8 tasks of 10 s (~2 minutes)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument(
        "--preload-sdk",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="[tutopanda] preload_sdk in every Airflow process (default: off, as Airflow ships)",
    )
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.seconds = 8, 10.0
    variants = [v for v in VARIANTS if v in args.variants.split(",")]
    problem = postgres_problem()
    if problem is not None:
        print(f"airflow_deferral: skipped: {problem}")
        return 0
    print(
        f"{args.tasks} tasks of {args.seconds:g} s on {SLOTS} slots "
        f"(ideal inline {args.tasks * args.seconds / SLOTS:.0f} s; "
        f"preload_sdk {'on' if args.preload_sdk else 'off'})",
        flush=True,
    )
    results = measure(args.tasks, args.seconds, variants, args.preload_sdk)
    write_json(args.json_path, report(results, args.tasks, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
