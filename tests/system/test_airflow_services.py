"""The provider on a real Airflow 3: scheduler, dag-processor, triggerer and api-server, the
LocalExecutor, a fresh PostgreSQL database, live mode against the fake providers.

One Airflow serves the module (``airflow_system``); the fakes run in this process, so each
test reads exactly what the tasks asked them. It shows what ``dag.test()`` cannot:

- the provider's pool bounds how many predictions run at once, deferred tasks included;
- a task process killed while it waits on a prediction is retried by Airflow, and the retry
  resumes that prediction (kept in the task state store) instead of paying for a second one;
- a backfill of three days, made again with unchanged inputs, asks the providers nothing.

PostgreSQL is the local server (``TUTOPANDA_TEST_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/postgres``); without it (or without psycopg) these
tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from producers.testing.fakes import (
    FAKE_OPENAI_KEY,
    FAKE_TOKEN,
    FakeOpenAI,
    FakeReplicate,
    ca_path,
)
from tests.system.harness import AirflowSystem, fresh_database, postgres_problem

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
MODEL = "replicate:bytedance/seedream-4"
POOL_SLOTS = 2
POOLS = {
    "tutopanda_replicate": {"slots": POOL_SLOTS, "description": "test", "include_deferred": True},
    "tutopanda_openai": {"slots": 4, "description": "test", "include_deferred": True},
}
TOPICS = ["How do red pandas keep warm?", "How do tides work?", "Why is the sky blue?"]

HEADER = """\
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_tutopanda.operators import ProducerOperator

"""

POOL_DAG = (
    HEADER
    + """\
with DAG("tp_sys_pool", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False,
         max_active_tasks=16) as dag:
    for i in range(6):
        ProducerOperator(
            task_id=f"image_{i}", model="replicate:bytedance/seedream-4", mode="live",
            inputs={"prompt": f"pool test {i} {{{{ run_id }}}}"},
            deferrable=i % 2 == 0, poll_interval=0.5,
        )
"""
)

KILL_DAG = (
    HEADER
    + """\
with DAG("tp_sys_kill", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False):
    ProducerOperator(
        task_id="image", model="replicate:bytedance/seedream-4", mode="live",
        inputs={"prompt": "a worker killed mid-wait {{ run_id }}"},
        deferrable=False, retries=1, retry_delay=timedelta(seconds=1), poll_interval=0.5,
    )
"""
)


class Fakes(NamedTuple):
    """The fake providers the tasks call (served from this process)."""

    replicate: FakeReplicate
    openai: FakeOpenAI


def _require_postgres() -> None:
    problem = postgres_problem()
    if problem is None and shutil.which("airflow", path=str(Path(sys.executable).parent)):
        return
    problem = problem or "the airflow command is not installed (make setup installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"system tests cannot run under CI: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with FakeReplicate() as replicate_fake, FakeOpenAI() as openai_fake:
        yield Fakes(replicate_fake, openai_fake)


@pytest.fixture(scope="module")
def airflow_system(
    tmp_path_factory: pytest.TempPathFactory, fakes: Fakes
) -> Iterator[AirflowSystem]:
    """Airflow's four services on a fresh database; the test DAGs already in the dags folder."""
    _require_postgres()
    home = tmp_path_factory.mktemp("airflow-home")
    topics = home / "topics.txt"
    topics.write_text("".join(f"{t}\n" for t in TOPICS))
    env = {
        "AIRFLOW_CONN_REPLICATE_DEFAULT": json.dumps(
            {"conn_type": "replicate", "password": FAKE_TOKEN, "host": fakes.replicate.base_url}
        ),
        "AIRFLOW_CONN_OPENAI_DEFAULT": json.dumps(
            {"conn_type": "openai", "password": FAKE_OPENAI_KEY, "host": fakes.openai.api_url}
        ),
        "SSL_CERT_FILE": str(ca_path()),
        "TUTOPANDA_STORE": str(tmp_path_factory.mktemp("store")),
        "TUTOPANDA_TOPICS": str(topics),
    }
    for name in ("REPLICATE_API_TOKEN", "OPENAI_API_KEY", "REPLICATE_BASE_URL", "OPENAI_BASE_URL"):
        env[name] = ""
    with fresh_database() as url:
        system = AirflowSystem(home, url, env=env, parallelism=8, pools=POOLS)
        system.dags.mkdir(parents=True, exist_ok=True)
        system.write_dag("tp_sys_pool", POOL_DAG)
        system.write_dag("tp_sys_kill", KILL_DAG)
        shutil.copy(REPO / "dags" / "tutopanda_movie.py", system.dags / "tutopanda_movie.py")
        with system:
            yield system


def _wait_watching(
    system: AirflowSystem, dag_id: str, run_id: str, timeout: float = 120.0
) -> tuple[str, set[str]]:
    """Wait for a run to end; its state and every task state seen meanwhile."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen |= {str(ti["state"]) for ti in system.task_instances(dag_id, run_id)}
        state = system.run_state(dag_id, run_id)
        if state in ("success", "failed"):
            return state, seen
        time.sleep(0.3)
    raise TimeoutError(f"run {dag_id}/{run_id} did not end within {timeout:.0f}s")


def _wait_until(what: str, check: Any, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout:.0f}s for {what}")


def test_the_provider_pool_caps_predictions_in_flight(
    airflow_system: AirflowSystem, fakes: Fakes
) -> None:
    fake = fakes.replicate
    fake.reset()
    fake.latency = 6.0
    airflow_system.wait_for_dag("tp_sys_pool")
    run_id = airflow_system.trigger("tp_sys_pool")
    state, seen = _wait_watching(airflow_system, "tp_sys_pool", run_id)

    assert state == "success", airflow_system.task_instances("tp_sys_pool", run_id)
    assert fake.count("create") == 6
    assert "deferred" in seen, "the deferrable tasks waited in the triggerer"
    assert fake.max_in_flight() == POOL_SLOTS, (
        f"the pool has {POOL_SLOTS} slots, deferred tasks included; six tasks should have "
        f"filled them and never exceeded them (executor parallelism is 8)"
    )


def test_a_task_killed_while_waiting_is_retried_without_a_second_prediction(
    airflow_system: AirflowSystem, fakes: Fakes
) -> None:
    fake = fakes.replicate
    fake.reset()
    fake.latency = 12.0
    airflow_system.wait_for_dag("tp_sys_kill")
    run_id = airflow_system.trigger("tp_sys_kill")
    # Polled at least once: the prediction was created and its handle kept; now it waits.
    _wait_until("the task to poll its prediction", lambda: fake.count("get") >= 1)
    (task_process,) = airflow_system.task_processes()
    task_process.kill()  # SIGKILL: no on_kill, no cancel; as if the worker died

    state = airflow_system.wait_for_run("tp_sys_kill", run_id, timeout=90)
    (ti,) = airflow_system.task_instances("tp_sys_kill", run_id)
    assert state == "success", ti
    assert ti["try_number"] == 2, "Airflow saw the first try fail and retried it"
    first = airflow_system.query(
        "SELECT state FROM task_instance_history WHERE dag_id = %s AND run_id = %s "
        "AND try_number = 1",
        ("tp_sys_kill", run_id),
    )
    assert first == [("up_for_retry",)] or first == [("failed",)], first
    assert fake.count("create") == 1, "the retry resumed the kept prediction; one paid"
    assert fake.count("cancel") == 0


def test_a_backfill_again_with_unchanged_inputs_asks_the_providers_nothing(
    airflow_system: AirflowSystem, fakes: Fakes
) -> None:
    dag_id = "tutopanda_daily_movie"
    for fake in fakes:
        fake.reset()
    fakes.replicate.latency = 0.5
    airflow_system.wait_for_dag(dag_id)
    # Three past days (well past: a backfill refuses dates to come); the topics file gives
    # each its own topic. The scheduler makes no run of its own (use_job_schedule is off).
    last = datetime.now(UTC).date() - timedelta(days=2)
    first = last - timedelta(days=2)
    dates = (first.isoformat(), last.isoformat())
    conf = {"mode": "live", "segments": 1}

    backfill = airflow_system.backfill(dag_id, *dates, conf=conf)
    runs = airflow_system.wait_for_backfill(backfill, timeout=150)
    assert [r["state"] for r in runs] == ["success"] * 3, runs
    made = {name: fake.count() for name, fake in zip(Fakes._fields, fakes, strict=True)}
    assert made["openai"] > 0 and fakes.replicate.count("create") >= 3, made

    again = airflow_system.backfill(dag_id, *dates, conf=conf, reprocess="completed")
    rerun = airflow_system.wait_for_backfill(again, timeout=150)
    assert [r["state"] for r in rerun] == ["success"] * 3, rerun
    assert {r["run_id"] for r in rerun} == {r["run_id"] for r in runs}, "the same days again"
    after = {name: fake.count() for name, fake in zip(Fakes._fields, fakes, strict=True)}
    assert after == made, "unchanged inputs: every job reused its stored artefacts"
