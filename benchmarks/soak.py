"""Soak: many movies at once on the distributed deployment, with random faults at the fakes.

The deployment of the distributed system test (``tests/system/distributed.py``: api-server,
scheduler, dag-processor, two triggerers, two Celery workers as separate hosts; Redis, a fresh
PostgreSQL database, moto's S3 server as the only shared storage) makes two batches of
``--movies`` live movies at once against the fake providers:

1. a baseline batch with no fault;
2. a faulty batch (other topics, so nothing is reused) while a thread arms random faults at
   about ``--fault-rate`` of the requests at the fakes (:class:`FaultInjector`): 5xx,
   429 with Retry-After, dropped connections (before the create: nothing made), lost creates
   (the prediction is made and paid, the answer never arrives), slow answers and slow
   predictions.

For each batch it reports runs succeeded, jobs done, Airflow task retries and SDK attempts
beyond the first, faults applied, lost artefacts (a job's recorded artefact missing from the
bucket or not hashing to its sha256; goal 0), predictions paid per job (predictions the fake
Replicate made plus responses the fake OpenAI answered, over the jobs made, not reused; goal
1) and wall time
(first trigger to last run end), the faulty batch's against the baseline's.

A benchmark, not a test: nothing is asserted; it prints a table (and ``--json`` writes it)::

    .venv/bin/python -m benchmarks.soak                 # 10 movies x 6 segments = 200 jobs
    .venv/bin/python -m benchmarks.soak --movies 3 --segments 2   # a quick look

Needs what the distributed test needs: PostgreSQL and Redis on localhost, the airflow extra.
Retries wait 2 s instead of the DAG's 30 s (a cluster policy, as in the test), so the faults
cost what the SDK and Airflow do about them, not the DAG's back-off.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "tutopanda_movie"
BUCKET = "tutopanda-soak"
LOCAL_SETTINGS = """\
from datetime import timedelta


def task_policy(task):
    task.retry_delay = timedelta(seconds=2)
"""
JOB_TASKS = ("script", "image_prompt", "image", "narration", "music", "video")


def _faults(rng: random.Random) -> dict[str, list[Any]]:
    """The faults to draw from, per (fake, route)."""
    from producers.testing.fakes import Fault

    return {
        "replicate:create": [
            Fault.status(500),
            Fault.status(503),
            Fault.status(429, retry_after=1),
            Fault.drop(),
            Fault.lost(),
            Fault.slow(2.0),
        ],
        "replicate:get": [Fault.status(503), Fault.status(429, retry_after=1), Fault.slow(2.0)],
        "replicate:download": [Fault.status(500), Fault.drop(), Fault.slow(2.0)],
        "openai:responses": [
            Fault.status(500),
            Fault.status(429, retry_after=1),
            Fault.drop(),
            Fault.slow(2.0),
        ],
    }


class FaultInjector(threading.Thread):
    """Random faults at about ``rate`` of the requests on each route: every ``tick`` seconds,
    for each request a route received since the last tick, a fault is armed there with
    probability ``rate`` (at most one per route and tick; one not used by the next tick is
    dropped, so a quiet route's lone request, a retry say, is not hit again and again).
    Now and then the next predictions are made 4x slower."""

    def __init__(self, fakes: dict[str, Any], rng: random.Random, rate: float, tick: float) -> None:
        super().__init__(daemon=True)
        self.fakes, self.rng, self.rate, self.tick = fakes, rng, rate, tick
        self.table = _faults(rng)
        self.stopped = threading.Event()
        self.base_latency = float(fakes["replicate"].latency)
        self.seen = {k: len(f.requests) for k, f in fakes.items()}

    def run(self) -> None:
        while not self.stopped.wait(self.tick):
            new: dict[tuple[str, str], int] = {}
            for name, fake in self.fakes.items():
                requests = fake.requests
                for request in requests[self.seen[name] :]:
                    new[name, str(request.route)] = new.get((name, str(request.route)), 0) + 1
                self.seen[name] = len(requests)
            for fake in self.fakes.values():
                fake.clear_faults()  # unused for a tick: the route went quiet, drop it
            for where, choices in self.table.items():
                fake_name, route = where.split(":")
                fake = self.fakes[fake_name]
                hits = sum(
                    self.rng.random() < self.rate for _ in range(new.get((fake_name, route), 0))
                )
                if hits:
                    fake.inject(self.rng.choice(choices), route=route)
            if new.get(("replicate", "create")) and self.rng.random() < self.rate:
                self.fakes["replicate"].latency = self.base_latency * 4  # slow predictions
            else:
                self.fakes["replicate"].latency = self.base_latency

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)
        self.fakes["replicate"].latency = self.base_latency
        for fake in self.fakes.values():
            fake.clear_faults()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _batch(
    system: Any,
    s3: Any,
    fakes: dict[str, Any],
    *,
    name: str,
    movies: int,
    segments: int,
    timeout: float,
    injector: FaultInjector | None,
) -> dict[str, Any]:
    from airflow_provider_tutopanda.movie_tasks import manifest_run_id

    replicate, openai = fakes["replicate"], fakes["openai"]
    made_before = len(replicate.prediction_ids)
    answered_before = len(
        [r for r in openai.requests if r.route == "responses" and r.status == 200]
    )
    requests_before = {k: len(f.requests) for k, f in fakes.items()}
    tag = secrets.token_hex(3)
    runs = []
    started = time.monotonic()
    if injector is not None:
        injector.start()
    for i in range(movies):
        run_id = f"soak_{name}_{tag}_{i}"
        conf = {
            "mode": "live",
            "segments": segments,
            "topic": f"Soak {name} {tag} movie {i}: how do things work?",
        }
        system.airflow(
            "api", "dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf)
        )
        runs.append(run_id)
    states: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(states) < len(runs):
        for run_id in runs:
            state = system.run_state(DAG_ID, run_id)
            if state in ("success", "failed"):
                states[run_id] = state
        time.sleep(1.0)
    wall = time.monotonic() - started
    if injector is not None:
        injector.stop()

    jobs_done = reused = attempts_beyond = lost = 0
    for run_id in runs:
        key = f"store/runs/{manifest_run_id(run_id)}/manifest.json"
        try:
            manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        except Exception:
            continue
        for job in manifest["jobs"]:
            if job["status"] != "succeeded":
                continue
            jobs_done += 1
            reused += bool(job.get("reused"))
            attempts_beyond += max(0, int(job.get("attempts", 1)) - 1)
            for artefact in job["artefacts"]:
                object_key = str(artefact["uri"]).removeprefix(f"s3://{BUCKET}/")
                try:
                    body = s3.get_object(Bucket=BUCKET, Key=object_key)["Body"].read()
                except Exception:
                    lost += 1
                    continue
                lost += _sha256(body) != artefact["sha256"]
    retries = system.query(
        "SELECT coalesce(sum(greatest(try_number - 1, 0)), 0) FROM task_instance WHERE dag_id = %s "
        "AND run_id = ANY(%s) AND task_id = ANY(%s)",
        (DAG_ID, runs, list(JOB_TASKS)),
    )[0][0]
    failed_tasks = system.query(
        "SELECT task_id, count(*) FROM task_instance WHERE dag_id = %s AND run_id = ANY(%s) "
        "AND state IN ('failed', 'upstream_failed') GROUP BY task_id ORDER BY task_id",
        (DAG_ID, runs),
    )
    if failed_tasks:
        print(f"{name}: failed tasks {failed_tasks}", file=sys.stderr)
        _print_failed_logs(s3, runs)
    paid = (len(replicate.prediction_ids) - made_before) + (
        len([r for r in openai.requests if r.route == "responses" and r.status == 200])
        - answered_before
    )
    faults = sum(1 for k, f in fakes.items() for r in f.requests[requests_before[k] :] if r.fault)
    return {
        "batch": name,
        "runs": len(runs),
        "succeeded": sum(1 for s in states.values() if s == "success"),
        "jobs_done": jobs_done,
        "task_retries": int(retries),
        "sdk_attempts_beyond_first": attempts_beyond,
        "faults_applied": faults,
        "lost_artefacts": lost,
        "reused": reused,
        # Jobs whose artefacts were reused from an identical job (same prompt) pay nothing.
        "paid_per_job_made": round(paid / (jobs_done - reused), 3) if jobs_done > reused else None,
        "wall_s": round(wall, 1),
    }


def _print_failed_logs(s3: Any, runs: list[str], limit: int = 3) -> None:
    """The end of a few task logs (remote, in the bucket) that name an error."""
    shown = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="airflow-logs/"):
        for obj in page.get("Contents", []):
            if shown >= limit or not any(f"run_id={r}/" in obj["Key"] for r in runs):
                continue
            text = (
                s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode(errors="replace")
            )
            if '"level":"error"' in text.replace(" ", ""):
                shown += 1
                print(f"--- {obj['Key']}\n{text[-2500:]}", file=sys.stderr)


def _table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    lines = [" | ".join(k.ljust(widths[k]) for k in keys)]
    lines.append("-+-".join("-" * widths[k] for k in keys))
    lines += [" | ".join(str(r[k]).ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movies", type=int, default=10)
    parser.add_argument("--segments", type=int, default=6, help="jobs per movie: 2 + 3 x this")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="of the requests")
    parser.add_argument("--tick", type=float, default=1.0)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per prediction")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per batch")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", type=Path, help="write the table's rows here")
    parser.add_argument("--keep", action="store_true", help="keep the hosts' folders (logs)")
    args = parser.parse_args(argv)

    import boto3
    from moto.server import ThreadedMotoServer

    from producers.testing.fakes import (
        FAKE_OPENAI_KEY,
        FAKE_TOKEN,
        FakeOpenAI,
        FakeReplicate,
        ca_path,
    )
    from tests.system.distributed import DistributedAirflow, celery_problem, redis_db
    from tests.system.harness import fresh_database, postgres_problem

    problem = postgres_problem() or celery_problem()
    if problem:
        print(f"soak: {problem}", file=sys.stderr)
        return 2
    # A SIGTERM stops the hosts too (the finally blocks run), not only this process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    rng = random.Random(args.seed)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    rows: list[dict[str, Any]] = []
    root = tempfile.mkdtemp(prefix="tp-soak-")
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        with (
            FakeReplicate(latency=args.latency) as replicate_fake,
            FakeOpenAI() as openai_fake,
            fresh_database(prefix="tp_soak") as database,
            redis_db("redis://127.0.0.1:6379/12") as broker,
        ):
            fakes = {"replicate": replicate_fake, "openai": openai_fake}
            env = {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                    {
                        "conn_type": "aws",
                        "login": "testing",
                        "password": "testing",
                        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
                    }
                ),
                "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{BUCKET}/airflow-logs",
                "TUTOPANDA_STORE": f"s3://{BUCKET}/store",
                "AIRFLOW_CONN_REPLICATE_DEFAULT": json.dumps(
                    {
                        "conn_type": "replicate",
                        "password": FAKE_TOKEN,
                        "host": replicate_fake.base_url,
                    }
                ),
                "AIRFLOW_CONN_OPENAI_DEFAULT": json.dumps(
                    {
                        "conn_type": "openai",
                        "password": FAKE_OPENAI_KEY,
                        "host": openai_fake.api_url,
                    }
                ),
                "SSL_CERT_FILE": str(ca_path()),
                "REPLICATE_API_TOKEN": "",
                "OPENAI_API_KEY": "",
                "REPLICATE_BASE_URL": "",
                "OPENAI_BASE_URL": "",
            }
            system = DistributedAirflow(
                Path(root),
                database,
                broker,
                dag_files=[REPO / "dags" / "tutopanda_movie.py"],
                local_settings=LOCAL_SETTINGS,
                env=env,
            )
            with system:
                for name, service in (
                    ("api", "airflow-apiserver"),
                    ("scheduler", "airflow-scheduler"),
                    ("dag-processor", "airflow-dag-processor"),
                    ("triggerer-1", "airflow-triggerer"),
                    ("triggerer-2", "airflow-triggerer"),
                ):
                    system.add_host(name, service)
                for name in ("worker-1", "worker-2"):
                    system.add_host(name, "airflow-worker", "--celery-hostname", f"{name}@%h")
                system.init("api")
                for name in system.hosts:
                    system.start_host(name)
                system.wait_healthy(timeout=300)
                system.wait_until(
                    "the DAG to be parsed",
                    lambda: system.query(
                        "SELECT 1 FROM serialized_dag WHERE dag_id = %s", (DAG_ID,)
                    ),
                    timeout=120,
                )
                system.airflow("api", "dags", "unpause", DAG_ID)
                common = {
                    "movies": args.movies,
                    "segments": args.segments,
                    "timeout": args.timeout,
                }
                if not args.skip_baseline:
                    rows.append(
                        _batch(system, s3, fakes, name="no-faults", injector=None, **common)
                    )
                    print(_table(rows), flush=True)
                injector = FaultInjector(fakes, rng, args.fault_rate, args.tick)
                rows.append(_batch(system, s3, fakes, name="faults", injector=injector, **common))
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if len(rows) == 2 and rows[0]["wall_s"]:
        for row in rows:
            row["wall_vs_baseline"] = round(row["wall_s"] / rows[0]["wall_s"], 2)
    print()
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
