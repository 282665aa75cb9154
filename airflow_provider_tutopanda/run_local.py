"""Run the ``tutopanda_movie`` DAG once on an embedded Airflow (SQLite, no services).

``python -m airflow_provider_tutopanda.run_local --topic "How volcanoes work" --segments 3``:
migrates a local metadata database under ``AIRFLOW_HOME`` (default ``./.airflow``), runs the
DAG with ``airflow dags test`` (every task in this process, deferrable ones included), and
prints where the movie is, ending with the path of the published ``movie.mp4``. The store is
``TUTOPANDA_STORE`` (default ``./tutopanda-store``); the movie is published under
``--output`` (default ``./movies``) as ``<dag id>/<run's timestamp>/``, unless
``AIRFLOW__TUTOPANDA__PUBLISH_URI`` names a publish location template itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO_DAGS = Path(__file__).resolve().parent.parent / "dags"


#: Where ``--output`` publishes each run: the DAG, then the run's timestamp (20261203T144850).
RUN_FOLDERS = "{{ dag_id }}/{{ ts_nodash }}"


def environment(airflow_home: Path, store: Path, output: Path | None = None) -> dict[str, str]:
    """The environment of the embedded Airflow (``output``: publish runs under it, unless
    the environment sets ``AIRFLOW__TUTOPANDA__PUBLISH_URI`` already)."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "TUTOPANDA_STORE": str(store),
    }
    if output is not None and not os.environ.get("AIRFLOW__TUTOPANDA__PUBLISH_URI"):
        env["AIRFLOW__TUTOPANDA__PUBLISH_URI"] = f"{output.resolve()}/{RUN_FOLDERS}"
    return env


def main(argv: list[str] | None = None) -> int:
    """Migrate, run the DAG, print the movie's locations (the published movie.mp4 last)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", default="How volcanoes work")
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--mode", choices=("mock", "live"), default="mock")
    parser.add_argument(
        "--airflow-home", type=Path, default=Path(os.environ.get("AIRFLOW_HOME", ".airflow"))
    )
    parser.add_argument(
        "--store", type=Path, default=Path(os.environ.get("TUTOPANDA_STORE", "tutopanda-store"))
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("movies"),
        help="Publish the movie under this directory, as <dag id>/<timestamp>/ (default ./movies).",
    )
    args = parser.parse_args(argv)
    home, store = args.airflow_home.resolve(), args.store.resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = environment(home, store, args.output)
    airflow = str(Path(sys.executable).with_name("airflow"))
    print(f"Airflow home {home} (SQLite); store {store}", flush=True)
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    conf = json.dumps({"topic": args.topic, "segments": args.segments, "mode": args.mode})
    run = subprocess.run(
        [airflow, "dags", "test", "tutopanda_movie", "-c", conf],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log = home / "last-dags-test.log"
    log.write_text(run.stdout)
    if run.returncode != 0 or "state=success" not in run.stdout:
        print(run.stdout[-4000:])
        print(f"the DAG run failed; the whole log is in {log}", file=sys.stderr)
        return 1
    runs = sorted((store / "runs").glob("airflow-*/manifest.json"), key=lambda p: p.stat().st_mtime)
    manifest = json.loads(runs[-1].read_text())
    outputs = manifest["outputs"]
    print(f"movie: {outputs['movie']}")
    print(f"timeline: {outputs['timeline']}")
    print(f"manifest: {runs[-1].as_uri()} (DAG log: {log})")
    published = outputs.get("published") or {}
    if not published.get("movie"):
        print("the run published no movie (see the DAG log)", file=sys.stderr)
        return 1
    print(f"published: {published['dir']}")
    # The last line: the movie alone, for a player or a script (`| tail -1`).
    print(published["movie"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
