"""Parse time of ``dags/tutopanda_movie.py`` against the same DAGs written with stock Airflow
operators (and an empty DAG file's, for scale), as ratios.

Each parse runs the dag-processor's own parse path (``airflow.dag_processing.processor.
_parse_file``: the file imported into a ``BundleDagBag``, its DAGs checked and serialized)
in a **fresh interpreter** that first does what the dag-processor has done before it forks
a parser: Airflow imported, the parse machinery imported, and the ``airflow.*`` modules the
file names pre-imported (``[dag_processor] parsing_pre_import_modules``). Only the parse
itself is timed, so what is compared is the cost the DAG file adds on every parse: its own
imports (``airflow_provider_tutopanda``...), building its DAGs and serializing them.

The **stock** DAG file is generated from the movie DAG file: the same two DAGs with the same
Params (each Param's default and schema, read from the parsed movie DAGs), the same task ids,
mapping and dependencies, and the same retries, written with Airflow's own TaskFlow ``@task``
and the standard provider's ``HITLOperator``: what the movie DAG would cost with no tutopanda
operator in it. The empty DAG file declares one DAG with no task. The files are parsed
``--runs`` times, interleaved, each in a new interpreter; reported: the median wall and CPU
times and the ratios of medians (goal: movie / stock at most 1.10).

Run: ``.venv/bin/python -m benchmarks.dag_parse [--runs 15] [--dag-file dags/tutopanda_movie.py]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._support import REPO_ROOT, format_table, write_json

GOAL = 1.10
DAG_FILE = REPO_ROOT / "dags" / "tutopanda_movie.py"

#: The movie DAGs written with stock operators; ``{params}`` is filled in from the movie DAG.
STOCK_DAG = """\
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import DAG, Param, task

PARAMS = {params}
RETRIES = dict(retries=2, retry_delay=timedelta(seconds=30), retry_exponential_backoff=2.0)


@task(**RETRIES)
def script():
    return {{}}


@task
def segment_indexes():
    return [0]


@task(**RETRIES)
def image_prompt(script, index):
    return {{}}


@task(**RETRIES)
def image(prompts, index):
    return {{}}


@task(**RETRIES)
def narration(script, index):
    return {{}}


@task(task_id="video", **RETRIES)
def video(prompts, narrations, image):
    return {{}}


@task(**RETRIES)
def music(script, narrations):
    return {{}}


@task
def assemble(script, visuals, narrations, music):
    return {{}}


def pipeline():
    made = script()
    indexes = segment_indexes()
    made >> indexes
    prompts = image_prompt.partial(script=made).expand(index=indexes)
    review = HITLOperator(
        task_id="review", subject="Review", options=["Approve", "Reject"], multiple_outputs=True
    )
    prompts >> review
    images = image.partial(prompts=review.output["prompts"]).expand(index=indexes)
    narrations = narration.partial(script=review.output["script"]).expand(index=indexes)
    visuals = video.partial(prompts=review.output["prompts"], narrations=narrations).expand(
        image=images
    )
    bed = music(script=review.output["script"], narrations=narrations)
    assemble(script=review.output["script"], visuals=visuals, narrations=narrations, music=bed)


for dag_id in ("tutopanda_movie", "tutopanda_daily_movie"):
    with DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        catchup=False,
        tags=["tutopanda"],
        params={{name: Param(default, **schema) for name, (default, schema) in PARAMS.items()}},
    ):
        pipeline()
"""

EMPTY_DAG = """\
import pendulum
from airflow.sdk import DAG

with DAG("empty", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False):
    pass
"""

#: Run in a fresh interpreter: prepare like the dag-processor, then time one parse, in the
#: two steps of ``_parse_file``: the DagBag (the file imported, its DAGs built and checked)
#: and the serialization of its DAGs (what the processor sends to be stored).
_CHILD = """\
import json, os, sys, time
from pathlib import Path

os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
import structlog
import airflow
import airflow.sdk
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.dag_processing.processor import _pre_import_airflow_modules, _serialize_dags

path = Path(sys.argv[1])
log = structlog.get_logger()
_pre_import_airflow_modules(str(path), log)
before = set(sys.modules)
cpu, start = time.process_time(), time.perf_counter()
bag = BundleDagBag(
    dag_folder=str(path), bundle_path=path.parent, bundle_name="dags-folder", load_op_links=False
)
built = time.perf_counter()
serialized, errors = _serialize_dags(bag, log)
end, cpu = time.perf_counter(), time.process_time() - cpu
errors.update(bag.import_errors)
print(json.dumps({
    "wall": end - start, "cpu": cpu, "bag": built - start, "serialize": end - built,
    "dags": len(serialized), "tasks": sum(len(d.task_ids) for d in bag.dags.values()),
    "new_modules": len(set(sys.modules) - before),
    "errors": {str(k): str(v)[-2000:] for k, v in errors.items()},
}))
"""


def parse_once(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Parse ``path`` once in a fresh interpreter; its timing record."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"parsing {path} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    record: dict[str, Any] = json.loads(lines[-1])
    if record["errors"] or not record["dags"]:
        raise RuntimeError(f"{path} did not parse cleanly: {record}")
    return record


def environment(home: Path, dags: Path) -> dict[str, str]:
    """A private AIRFLOW_HOME, the DAG file's folder as the dags folder, quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        }
    )
    return env


def measure(dag_file: Path, runs: int) -> dict[str, Any]:
    """Parse both files ``runs`` times, interleaved (plus one warm-up each)."""
    with tempfile.TemporaryDirectory(prefix="tutopanda-bench-parse-") as folder:
        root = Path(folder)
        empty = root / "dags" / "empty_dag.py"
        empty.parent.mkdir()
        empty.write_text(EMPTY_DAG, encoding="utf-8")
        stock = root / "stock" / "stock_movie_dag.py"
        stock.parent.mkdir()
        stock.write_text(STOCK_DAG.format(params=stock_params(dag_file)), encoding="utf-8")
        files = {"empty": (empty, environment(root / "home", empty.parent))}
        files["stock"] = (stock, environment(root / "home", stock.parent))
        files["movie"] = (dag_file, environment(root / "home", dag_file.parent))
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in files}
        # A warm-up parse each (bytecode caches, the OS page cache); it gives the counts.
        shape = {name: parse_once(path, env) for name, (path, env) in files.items()}
        for index in range(runs):
            order = list(files) if index % 2 == 0 else list(reversed(files))
            for name in order:
                path, env = files[name]
                samples[name].append(parse_once(path, env))
    figures: dict[str, Any] = {"runs": runs, "dag_file": str(dag_file), "goal": GOAL}
    for name in files:
        runs_of = samples[name]

        def median_ms(key: str, of: list[dict[str, Any]] = runs_of) -> float:
            return round(statistics.median(s[key] for s in of) * 1000, 2)

        walls = [s["wall"] * 1000 for s in runs_of]
        figures[name] = {
            "median_ms": median_ms("wall"),
            "min_ms": round(min(walls), 2),
            "max_ms": round(max(walls), 2),
            "median_cpu_ms": median_ms("cpu"),
            "median_dagbag_ms": median_ms("bag"),
            "median_serialize_ms": median_ms("serialize"),
            "dags": shape[name]["dags"],
            "tasks": shape[name]["tasks"],
            "modules_imported": shape[name]["new_modules"],
        }
    for base in ("stock", "empty"):
        suffix = "" if base == "stock" else "_to_empty"
        figures[f"ratio{suffix}"] = round(
            figures["movie"]["median_ms"] / figures[base]["median_ms"], 3
        )
        figures[f"cpu_ratio{suffix}"] = round(
            figures["movie"]["median_cpu_ms"] / figures[base]["median_cpu_ms"], 3
        )
    return figures


def stock_params(dag_file: Path) -> str:
    """The movie DAGs' Params as a Python literal ``{name: (default, schema)}`` (read from
    the DAG file parsed in a fresh interpreter; the daily DAG's equal the movie's but for the
    topic's default, which does not change what a parse costs)."""
    code = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('movie_dag', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "params = {k: [p.value, p.schema] for k, p in module.dag.params.items()}\n"
        "print(json.dumps(params))\n"
    )
    with tempfile.TemporaryDirectory(prefix="tutopanda-bench-parse-params-") as home:
        done = subprocess.run(
            [sys.executable, "-c", code, str(dag_file)],
            env=environment(Path(home), dag_file.parent),
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
        )
    params = json.loads(done.stdout.strip().splitlines()[-1])
    return repr({name: (value[0], value[1]) for name, value in params.items()})


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--dag-file", type=Path, default=DAG_FILE)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    figures = measure(args.dag_file.resolve(), args.runs)
    rows = [
        [
            name,
            f"{figures[name]['dags']}/{figures[name]['tasks']}",
            str(figures[name]["modules_imported"]),
            f"{figures[name]['median_ms']:.1f}",
            f"{figures[name]['min_ms']:.1f}-{figures[name]['max_ms']:.1f}",
            f"{figures[name]['median_dagbag_ms']:.1f}",
            f"{figures[name]['median_serialize_ms']:.1f}",
            f"{figures[name]['median_cpu_ms']:.1f}",
        ]
        for name in ("empty", "stock", "movie")
    ]
    headers = ["DAG file", "DAGs/tasks", "modules", "median ms", "range ms"]
    headers += ["DagBag ms", "serialize ms", "CPU ms"]
    print(format_table(headers, rows))
    verdict = "meets" if figures["ratio"] <= GOAL else "misses"
    print(
        f"{args.dag_file.name} / the same DAGs with stock operators: {figures['ratio']:.2f} "
        f"(CPU {figures['cpu_ratio']:.2f}); {verdict} the goal <= {GOAL:g}; "
        f"/ an empty DAG file: {figures['ratio_to_empty']:.1f}"
    )
    write_json(args.json_path, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
