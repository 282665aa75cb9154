"""The movie DAG on Airflow 3 with the CeleryExecutor, its components on separate hosts, and
two of them killed mid-run.

The deployment of ``docker/compose.yaml`` (same commands, same ``docker/airflow.env``), run as
processes (``tests/system/distributed.py``): an api-server, a scheduler, a dag-processor, two
triggerers and two Celery workers, each with its own folder and hostname and no shared disk;
the broker is the machine's Redis (a database of the test's own), the metadata DB and the
Celery result backend a fresh PostgreSQL database, and the artefact store a bucket on moto's
S3 server (through the Amazon connection), the only storage the hosts share. The movie DAG
runs in live mode against the fake providers (served from this process, so the test reads
what every host asked them).

While the movie is made, the test SIGKILLs (whole process group: the machine died)

- the triggerer running an image job's trigger while the prediction is being waited for
  (the other triggerer takes the trigger over and resumes the same prediction), and
- the worker collecting an image (its download from the provider held for a few seconds)
  (the scheduler fails that try when its heartbeat stops; the retry, on the worker started
  again, resumes the prediction instead of paying for another).

The deployment's ``airflow_local_settings.py`` routes ``assemble`` to a queue that only the
other worker serves, so the movie is rendered on a host that made none of the images and can
read them only from S3.

Done: the run succeeds; every job of the run manifest has its artefacts in the bucket, bytes
hashing to the recorded sha256; the fakes saw exactly one create per provider job; no object
is partial (every blob's bytes hash to its key, no temporary key, no unfinished multipart
upload).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from producers.testing.fakes import (
    FAKE_OPENAI_KEY,
    FAKE_TOKEN,
    FakeOpenAI,
    FakeReplicate,
    Fault,
    ca_path,
)
from tests.system.distributed import DEFAULT_QUEUE, DistributedAirflow, celery_problem, redis_db
from tests.system.harness import fresh_database, postgres_problem

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = [pytest.mark.system, pytest.mark.distributed]

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "tutopanda_movie"
SEGMENTS = 2
IMAGE_MODEL = "bytedance/seedream-4"
#: Seconds a prediction takes at the fake: long enough to kill a triggerer mid-wait.
PREDICTION_SECONDS = 6.0
#: Seconds the fake holds each output download: long enough to kill a worker mid-collect.
DOWNLOAD_SECONDS = 4.0
ASSEMBLE_QUEUE = "tutopanda_render"
REDIS_URL = os.environ.get("TUTOPANDA_TEST_REDIS", "redis://127.0.0.1:6379/13")
BUCKET = "tutopanda-distributed"

#: The deployment's cluster policy: the movie is rendered on the render hosts; retries wait
#: 1 s instead of the DAG's 30 s (the test's only change to the DAG's behaviour).
LOCAL_SETTINGS = f'''\
from datetime import timedelta


def task_policy(task):
    if task.task_id == "assemble":
        task.queue = "{ASSEMBLE_QUEUE}"
    task.retry_delay = timedelta(seconds=1)
'''
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
BLOB_KEY = re.compile(r"^store/blobs/sha256/([0-9a-f]{2})/([0-9a-f]{64})$")
#: The content-addressed store's keys: blobs, run manifests, records.
STORE_KEY = re.compile(
    r"^store/(blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}|runs/[^/]+/manifest\.json"
    r"|records/[^/]+/[^/]+\.json)$"
)


class Deployment(NamedTuple):
    """The started hosts and the fakes they call."""

    system: DistributedAirflow
    replicate: FakeReplicate
    openai: FakeOpenAI

    def diagnostics(self) -> str:
        """What the system tests' conftest prints when the test fails."""
        return self.system.diagnostics()


def _require_services() -> None:
    problem = postgres_problem()
    if problem is None:
        try:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        except Exception as error:
            problem = f"Redis at {REDIS_URL} is unreachable: {error}"
    if problem is None and not shutil.which("airflow", path=str(Path(sys.executable).parent)):
        problem = "the airflow command is not installed (make setup installs it)"
    if problem is None:
        problem = celery_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the distributed test cannot run under CI: {problem}")
    pytest.skip(problem)


@pytest.fixture
def moto_s3() -> Iterator[tuple[str, S3Client]]:
    """moto's S3 server on a free port, with the test's bucket; its endpoint and a client."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture
def airflow_system(tmp_path: Path, moto_s3: tuple[str, S3Client]) -> Iterator[Deployment]:
    """The hosts, started; the fakes they call. (Named as the conftest's log hook expects.)"""
    _require_services()
    endpoint, _ = moto_s3
    with (
        FakeReplicate(latency=PREDICTION_SECONDS) as replicate_fake,
        FakeOpenAI() as openai_fake,
        fresh_database(prefix="tp_distributed") as database,
        redis_db(REDIS_URL) as broker,
    ):
        env = {
            **DUMMY_AWS,
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
                {"conn_type": "replicate", "password": FAKE_TOKEN, "host": replicate_fake.base_url}
            ),
            "AIRFLOW_CONN_OPENAI_DEFAULT": json.dumps(
                {"conn_type": "openai", "password": FAKE_OPENAI_KEY, "host": openai_fake.api_url}
            ),
            "SSL_CERT_FILE": str(ca_path()),
        }
        for name in (
            "REPLICATE_API_TOKEN",
            "OPENAI_API_KEY",
            "REPLICATE_BASE_URL",
            "OPENAI_BASE_URL",
        ):
            env[name] = ""
        system = DistributedAirflow(
            tmp_path / "hosts",
            database,
            broker,
            dag_files=[REPO / "dags" / "tutopanda_movie.py"],
            local_settings=LOCAL_SETTINGS,
            env=env,
        )
        with system:
            system.add_host("api", "airflow-apiserver")
            system.add_host("scheduler", "airflow-scheduler")
            system.add_host("dag-processor", "airflow-dag-processor")
            system.add_host("triggerer-1", "airflow-triggerer")
            system.add_host("triggerer-2", "airflow-triggerer")
            system.add_host(
                "worker-1",
                "airflow-worker",
                "--queues",
                DEFAULT_QUEUE,
                "--celery-hostname",
                "worker-1@%h",
            )
            system.add_host(
                "worker-2",
                "airflow-worker",
                "--queues",
                ASSEMBLE_QUEUE,
                "--celery-hostname",
                "worker-2@%h",
            )
            began = time.monotonic()
            system.init("api")
            print(f"\ninit: {time.monotonic() - began:.0f}s")
            for name in system.hosts:
                system.start_host(name)
            system.wait_healthy(timeout=150)
            print(f"healthy: {time.monotonic() - began:.0f}s")
            for worker in ("worker-1", "worker-2"):
                system.wait_for_output(worker, " ready.", timeout=90)
            print(f"workers ready: {time.monotonic() - began:.0f}s")
            yield Deployment(system, replicate_fake, openai_fake)


def _image_creates(fake: FakeReplicate) -> list[Any]:
    return [r for r in fake.requests if r.route == "create" and IMAGE_MODEL in r.path]


def _deferred_on(system: DistributedAirflow, run_id: str, task_id: str) -> list[tuple[Any, ...]]:
    """``(map_index, triggerer hostname)`` of a task's deferred instances whose trigger a
    triggerer has taken."""
    return system.query(
        "SELECT ti.map_index, j.hostname FROM task_instance ti "
        "JOIN trigger t ON t.id = ti.trigger_id JOIN job j ON j.id = t.triggerer_id "
        "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s AND ti.state = 'deferred'",
        (DAG_ID, run_id, task_id),
    )


def _collecting(system: DistributedAirflow, run_id: str) -> list[tuple[Any, ...]]:
    """``(map_index, try_number, hostname)`` of image tasks running after their trigger fired."""
    return system.query(
        "SELECT map_index, try_number, hostname FROM task_instance WHERE dag_id = %s "
        "AND run_id = %s AND task_id = 'image' AND state = 'running' "
        "AND next_method IS NOT NULL AND hostname IS NOT NULL AND hostname <> ''",
        (DAG_ID, run_id),
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _published_keys(s3: S3Client, manifest: dict[str, Any]) -> set[str]:
    """The keys of the run's published layout (``outputs.published`` of the manifest), each
    checked complete: its bytes hash to the sha256 the manifest records. Empty when the run
    published nothing."""
    published = manifest["outputs"].get("published")
    if not published:
        return set()
    root = str(published["dir"]).removeprefix(f"s3://{BUCKET}/").rstrip("/")
    keys = {f"{root}/manifest.json"}
    for relpath, sha in published["files"].items():
        key = f"{root}/{relpath}"
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert _sha256(body) == sha, key
        keys.add(key)
    s3.head_object(Bucket=BUCKET, Key=f"{root}/manifest.json")
    return keys


def test_the_movie_survives_a_killed_worker_and_a_killed_triggerer(
    airflow_system: Deployment,
    moto_s3: tuple[str, S3Client],
) -> None:
    system, replicate_fake, openai_fake = airflow_system
    _, s3 = moto_s3
    started = time.monotonic()
    system.wait_until(
        "the DAG to be parsed",
        lambda: system.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (DAG_ID,)),
        timeout=90,
    )
    system.airflow("api", "dags", "unpause", DAG_ID)
    run_id = f"distributed__{secrets.token_hex(3)}"
    conf = {"mode": "live", "segments": SEGMENTS, "topic": "How do glaciers move?"}
    # Every output download is held, so collecting an artefact keeps a worker busy a while.
    replicate_fake.inject(Fault.slow(DOWNLOAD_SECONDS), route="download", times=100)
    system.airflow("api", "dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf))

    # 1. A triggerer dies while an image prediction it submitted is being waited for.
    def image_trigger_waiting() -> tuple[Any, ...] | None:
        if not _image_creates(replicate_fake):
            return None
        rows = _deferred_on(system, run_id, "image")
        return rows[0] if rows else None

    _, victim_triggerer = system.wait_until(
        "an image prediction waited for by a triggerer", image_trigger_waiting, timeout=150
    )
    in_progress = [
        replicate_fake.prediction(pid)["status"] for pid in replicate_fake.prediction_ids
    ]
    assert {"starting", "processing"} & set(in_progress), "killed mid-wait, not after it"
    orphaned = {
        int(i) for i, host in _deferred_on(system, run_id, "image") if host == victim_triggerer
    }
    system.kill_host(str(victim_triggerer))
    survivor = ({"triggerer-1", "triggerer-2"} - {str(victim_triggerer)}).pop()

    # The survivor takes the dead triggerer's image triggers over (once its heartbeat is
    # stale) and fires them: only a live triggerer can.
    def taken_over() -> bool:
        rows = system.query(
            "SELECT map_index, state FROM task_instance WHERE dag_id = %s AND run_id = %s "
            "AND task_id = 'image'",
            (DAG_ID, run_id),
        )
        on_survivor = {
            int(i) for i, host in _deferred_on(system, run_id, "image") if host == survivor
        }
        return all(i in on_survivor or state != "deferred" for i, state in rows if i in orphaned)

    system.wait_until(
        "the surviving triggerer to take the image triggers over",
        taken_over,
        timeout=60,
        expected_dead=[str(victim_triggerer)],
    )

    # 2. The worker dies while collecting an image (its download held by the fake).
    collecting = system.wait_until(
        "an image task collecting its output on worker-1",
        lambda: [r for r in _collecting(system, run_id) if r[2] == "worker-1"],
        timeout=150,
        expected_dead=[str(victim_triggerer)],
    )
    time.sleep(1.0)  # well into the held download
    system.kill_host("worker-1")
    killed = {(int(index), int(try_number)) for index, try_number, _ in collecting}
    system.start_host("worker-1")  # its supervisor starts it again, as compose's restart does

    state = system.wait_until(
        "the run to end",
        lambda: (s := system.run_state(DAG_ID, run_id)) in ("success", "failed") and s,
        timeout=240,
        expected_dead=[str(victim_triggerer)],
    )
    wall = time.monotonic() - started
    tries = system.tries(DAG_ID, run_id)
    assert state == "success", tries

    # The killed worker's tries failed (it died mid-task) and were retried to success.
    for index, try_number in killed:
        ended = [t for t in tries if t["task_id"] == "image" and t["map_index"] == index]
        killed_try = next(t for t in ended if t["try_number"] == try_number)
        assert killed_try["state"] in ("failed", "up_for_retry"), ended
        assert killed_try["hostname"] == "worker-1"
        assert max(t["try_number"] for t in ended) > try_number, ended
        assert ended[-1]["state"] == "success", ended
    assert orphaned, "the killed triggerer was running an image trigger"
    assert not system.hosts[str(victim_triggerer)].alive()

    # The movie was rendered on a host that made none of the images.
    (assemble,) = [t for t in tries if t["task_id"] == "assemble"]
    assert assemble["queue"] == ASSEMBLE_QUEUE, "the deployment's policy routed it"
    assert assemble["hostname"] == "worker-2"
    image_hosts = {t["hostname"] for t in tries if t["task_id"] == "image"}
    assert image_hosts == {"worker-1"}, tries
    assert assemble["hostname"] not in image_hosts

    # Every job of the manifest: its artefacts in the bucket with the recorded sha256.
    from airflow_provider_tutopanda.movie_tasks import manifest_run_id

    manifest_key = f"store/runs/{manifest_run_id(run_id)}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    jobs = manifest["jobs"]
    roles = sorted(j["role"] for j in jobs)
    assert roles.count("image") == SEGMENTS and roles.count("narration") == SEGMENTS, roles
    assert {"script", "music"} <= set(roles), roles
    paid: dict[str, int] = {"replicate": 0, "openai": 0}
    for job in jobs:
        assert job["status"] == "succeeded", job
        assert not job["reused"], job
        paid[job["model_id"].split(":", 1)[0]] += 1
        assert job["artefacts"], job
        for artefact in job["artefacts"]:
            uri, sha = artefact["uri"], artefact["sha256"]
            key = uri.removeprefix(f"s3://{BUCKET}/")
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert _sha256(body) == sha, (job["job_id"], uri)
    for name in ("movie", "timeline"):
        key = manifest["outputs"][name].removeprefix(f"s3://{BUCKET}/")
        assert BLOB_KEY.match(key), key

    # No prediction paid twice: one create per provider job, kills notwithstanding.
    assert replicate_fake.count("create") == paid["replicate"], replicate_fake.count("create")
    assert openai_fake.count("responses") == paid["openai"]
    assert len(_image_creates(replicate_fake)) == SEGMENTS

    # No partial object: every key is the store's layout (or a task log), every blob's bytes
    # hash to its key and its recorded metadata, no multipart upload left unfinished.
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for obj in page.get("Contents", [])
    ]
    store_keys = [k for k in keys if k.startswith("store/")]
    published = _published_keys(s3, manifest)
    assert [k for k in store_keys if not STORE_KEY.match(k) and k not in published] == []
    assert [k for k in keys if not k.startswith(("store/", "airflow-logs/"))] == []
    blobs = [k for k in store_keys if BLOB_KEY.match(k)]
    assert len(blobs) >= len(jobs)
    for key in blobs:
        got = s3.get_object(Bucket=BUCKET, Key=key)
        body = got["Body"].read()
        assert len(body) == got["ContentLength"]
        assert _sha256(body) == key.rsplit("/", 1)[1] == got["Metadata"].get("sha256"), key
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    print(f"\ndistributed run: {wall:.0f}s from trigger to success")
