"""Attack through an Airflow connection: whoever may edit a connection sets its host to a
server of theirs and leaves the password empty, hoping the hook sends the deployment's token
(``REPLICATE_API_TOKEN`` / ``OPENAI_API_KEY`` from the worker's environment) there.

The job fails with ``auth_failed`` naming the connection before any request; the other host
sees no connection, and the token is in no log, XCom or stored file.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import OtherHost, blobs_in, tree_contains

pytestmark = pytest.mark.airflow

#: The deployment's token, in the worker's environment.
DEPLOYMENT_TOKEN = "r8_deployment-token-never-leaves-4b1d"
DEPLOYMENT_KEY = "sk-deployment-key-never-leaves-77c0"

DAG_FILE = """\
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_tutopanda.operators import ProducerOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False) as dag:
    ProducerOperator(
        task_id="image", model="replicate:bytedance/seedream-4", inputs={{"prompt": "x"}},
        mode="live", store={store!r}, retries=2, retry_delay=timedelta(0), poll_interval=0.01,
        conn_id="harvest",
    )
"""


def _run_dag(airflow_home: Path, store: Path) -> Any:
    dag_id = f"tp_security_token_{time.monotonic_ns()}"
    dags = airflow_home / "dags"
    dags.mkdir(exist_ok=True)
    path = dags / f"{dag_id}.py"
    path.write_text(DAG_FILE.format(dag_id=dag_id, store=str(store)))
    spec = importlib.util.spec_from_file_location(dag_id, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.test()


def _task(dag_run: Any) -> tuple[str, int, list[Any]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        ).one()
        xcoms = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id
            )
        ).all()
        return str(ti.state), ti.try_number, [XComModel.deserialize_value(x) for x in xcoms]


@pytest.fixture
def harvest(
    other_host: OtherHost, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> OtherHost:
    """The deployment's token in the environment; connection ``harvest`` names the other host
    and has no password."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("REPLICATE_API_TOKEN", DEPLOYMENT_TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", DEPLOYMENT_KEY)
    monkeypatch.delenv("REPLICATE_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_HARVEST", json.dumps({"conn_type": "replicate", "host": other_host.https_url})
    )
    return other_host


def test_a_job_on_a_connection_naming_another_host_never_sends_the_environments_token(
    harvest: OtherHost,
    airflow_db: Path,
    airflow_home: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    dag_run = _run_dag(airflow_home, store)
    state, tries, xcoms = _task(dag_run)
    out, err = capfd.readouterr()
    logs = caplog.text + out + err
    assert state == "failed" and tries == 1  # auth_failed: never retried
    assert "auth_failed" in logs and "'harvest'" in logs and "REPLICATE_API_TOKEN" in logs
    assert harvest.connections == []
    assert DEPLOYMENT_TOKEN not in logs
    assert DEPLOYMENT_TOKEN not in json.dumps(xcoms, default=str)
    assert blobs_in(store) == [] and tree_contains(store, DEPLOYMENT_TOKEN.encode()) == []


@pytest.mark.parametrize(
    ("provider", "connection"),
    [
        ("replicate", {"conn_type": "replicate", "host": "{url}"}),
        ("openai", {"conn_type": "openai", "host": "{url}/v1"}),
        (
            "openai",
            {"conn_type": "openai", "extra": {"openai_client_kwargs": {"base_url": "{url}/v1"}}},
        ),
    ],
    ids=["replicate-host", "openai-host", "openai-client-kwargs"],
)
def test_test_connection_never_sends_the_environments_token(
    harvest: OtherHost,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    connection: dict[str, Any],
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for

    text = json.dumps(connection).replace("{url}", harvest.https_url)
    monkeypatch.setenv("AIRFLOW_CONN_HARVEST", text)
    hook = hook_for(provider, "harvest")
    ok, message = hook.test_connection()
    assert not ok and "auth_failed" in message and "'harvest'" in message
    assert "127.0.0.2" in message  # the host it named, so an admin sees which connection
    with pytest.raises(Exception, match="auth_failed"):
        hook.client  # noqa: B018
    assert harvest.connections == []
    for secret in (DEPLOYMENT_TOKEN, DEPLOYMENT_KEY):
        assert secret not in message and secret not in caplog.text
