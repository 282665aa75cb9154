"""A pool per provider, for any provider; the pools command; the fallback when one is missing."""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow


@pytest.mark.parametrize(
    ("provider", "pool"),
    [
        ("replicate", "tutopanda_replicate"),
        ("openai", "tutopanda_openai"),
        ("acme", "tutopanda_acme"),
        (" Acme ", "tutopanda_acme"),
        ("eleven-labs_2", "tutopanda_eleven-labs_2"),
    ],
    ids=["replicate", "openai", "plugin", "spaces-and-case", "dash-underscore-digit"],
)
def test_every_provider_has_a_pool_name(provider: str, pool: str) -> None:
    from airflow_provider_tutopanda.pools import pool_for

    assert pool_for(provider) == pool


@pytest.mark.parametrize("provider", ["", "a b", "acme:pixel", "../x", "-acme", "x" * 64], ids=str)
def test_a_pool_name_is_refused_for_what_is_not_a_provider(provider: str) -> None:
    from airflow_provider_tutopanda.pools import pool_for

    with pytest.raises(ValueError, match="not a provider name"):
        pool_for(provider)


def test_pool_names_follow_the_sdks_provider_names() -> None:
    from airflow_provider_tutopanda import pools
    from producers.sdk.definition import PROVIDER_PATTERN

    assert pools._PROVIDER.pattern == PROVIDER_PATTERN.pattern


def test_the_plan_sizes_built_ins_from_the_file_and_plugins_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_tutopanda import pools

    monkeypatch.setattr(pools, "installed_providers", lambda: ["acme", "openai", "replicate"])
    plan = pools.planned_pools()
    assert {name: spec["slots"] for name, spec in plan.items()} == {
        "tutopanda_replicate": 8,
        "tutopanda_openai": 4,
        "tutopanda_acme": pools.DEFAULT_SLOTS,
    }
    assert plan["tutopanda_acme"]["include_deferred"] is True
    assert "plugin" not in plan["tutopanda_replicate"]


def test_installed_providers_are_the_registrys_and_the_clients() -> None:
    from airflow_provider_tutopanda.pools import installed_providers

    assert {"openai", "replicate"} <= set(installed_providers())


def test_the_command_creates_a_plugin_pool_once_and_keeps_its_size(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow.models.pool import Pool

    from airflow_provider_tutopanda import pools

    provider = f"plug{time.monotonic_ns() % 10**9}"
    monkeypatch.setattr(pools, "installed_providers", lambda: [provider, "replicate"])
    assert pools.main([]) == 0
    name = f"tutopanda_{provider}"
    assert Pool.get_pool(name).slots == pools.DEFAULT_SLOTS
    assert f"pool {name}: {pools.DEFAULT_SLOTS} slots (created)" in capsys.readouterr().out
    Pool.create_or_update_pool(name=name, slots=11, description="resized", include_deferred=True)
    assert pools.main([]) == 0
    out = capsys.readouterr().out
    assert Pool.get_pool(name).slots == 11  # the deployment's size wins
    assert f"pool {name}: 11 slots (kept)" in out
    assert "pool tutopanda_replicate: 8 slots (updated)" in out


@pytest.mark.parametrize(
    ("pool", "known", "expected"),
    [
        ("tutopanda_acme", {"default_pool", "tutopanda_acme"}, "tutopanda_acme"),
        ("tutopanda_acme", {"default_pool"}, "default_pool"),
        ("my_pool", {"default_pool"}, "my_pool"),
        ("tutopanda_acme", None, "tutopanda_acme"),
    ],
    ids=["exists", "missing", "not-ours", "unknown-db"],
)
def test_a_missing_provider_pool_falls_back_to_the_default_pool(
    pool: str, known: set[str] | None, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_provider_tutopanda import policy

    policy.forget_pools()
    with caplog.at_level(logging.WARNING, logger=policy.__name__):
        assert policy.fallback_pool(pool, known, "task d.t") == expected
    warned = "python -m airflow_provider_tutopanda.pools" in caplog.text
    assert warned == (expected != pool)


DAG_FILE = """\
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False) as dag:
    EmptyOperator(task_id="job", pool={pool!r})
"""


def _run(airflow_home: Path, pool: str) -> tuple[str, str]:
    from airflow.utils.session import create_session

    dag_id = f"tp_pool_{time.monotonic_ns()}"
    dags = airflow_home / "dags"
    dags.mkdir(exist_ok=True)
    path = dags / f"{dag_id}.py"
    path.write_text(DAG_FILE.format(dag_id=dag_id, pool=pool))
    spec = importlib.util.spec_from_file_location(dag_id, path)
    assert spec is not None and spec.loader is not None
    module: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag_run = module.dag.test()
    with create_session() as session:
        (ti,) = dag_run.get_task_instances(session=session)
        return str(ti.state), str(ti.pool)


def test_a_task_in_a_missing_provider_pool_still_runs_in_the_default_pool(
    airflow_db: Path, airflow_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through Airflow's own path (the installed cluster policy, a real session): the task
    instance is moved out of the pool Airflow would never schedule, with a warning."""
    from airflow.models.pool import Pool

    from airflow_provider_tutopanda import policy

    policy.forget_pools()
    with caplog.at_level(logging.WARNING, logger=policy.__name__):
        assert _run(airflow_home, "tutopanda_ghost") == ("success", "default_pool")
    assert "'tutopanda_ghost' does not exist" in caplog.text
    assert "python -m airflow_provider_tutopanda.pools" in caplog.text

    Pool.create_or_update_pool(
        name="tutopanda_real", slots=2, description="test", include_deferred=True
    )
    policy.forget_pools()
    assert _run(airflow_home, "tutopanda_real") == ("success", "tutopanda_real")


MAPPED_DAG = """\
import pendulum
from airflow.sdk import DAG, task

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2025, 1, 1)) as dag:

    @task
    def items():
        return [1, 2, 3]

    @task(pool="tutopanda_ghost_mapped")
    def job(x):
        return x

    job.expand(x=items())
"""


def test_mapped_task_instances_of_a_missing_provider_pool_run_in_the_default_pool(
    airflow_db: Path, airflow_home: Path
) -> None:
    """Task instances made when a mapped task expands go through the policy too."""
    from airflow.utils.session import create_session

    from airflow_provider_tutopanda import policy

    policy.forget_pools()
    dag_id = f"tp_pool_mapped_{time.monotonic_ns()}"
    path = airflow_home / "dags" / f"{dag_id}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(MAPPED_DAG.format(dag_id=dag_id))
    spec = importlib.util.spec_from_file_location(dag_id, path)
    assert spec is not None and spec.loader is not None
    module: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag_run = module.dag.test()
    with create_session() as session:
        jobs = [
            (ti.map_index, ti.pool, str(ti.state))
            for ti in dag_run.get_task_instances(session=session)
            if ti.task_id == "job"
        ]
    assert sorted(jobs) == [(i, "default_pool", "success") for i in range(3)]
