"""A cluster policy (Airflow's ``airflow.policy`` entry point): a run's model choice picks its pool.

A task's pool is fixed when the DAG is parsed, from the provider of its default model. When a
run is triggered with ``<task_id>_model`` in its conf (the movie DAG's model params, e.g.
``image_model``) naming a model of another provider, that run's task instances go to that
provider's pool instead, so the provider's concurrency cap holds whatever the form said.

Only tasks already in a ``tutopanda_*`` pool are touched; an unknown provider (one with no pool
in ``pools.json``) keeps the task's pool. Installed with the package; nothing to configure.

Because every Airflow process loads this module at start, it is also where the opt-in
``[tutopanda] preload_sdk`` warms the parents of forked task processes (:mod:`.preload`).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from airflow.policies import hookimpl

from airflow_provider_tutopanda import preload
from airflow_provider_tutopanda.pools import POOL_PREFIX, load_pools

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance


@cache
def _pool_names() -> frozenset[str]:
    return frozenset(load_pools())


def pool_for_run(task_id: str, pool: str, conf: dict[str, Any] | None) -> str:
    """The pool of ``task_id`` in a run with ``conf``: the provider pool of its model param."""
    if not pool.startswith(POOL_PREFIX) or not conf:
        return pool
    model = conf.get(f"{task_id}_model")
    if not isinstance(model, str):
        return pool
    from airflow_provider_tutopanda.operators.producer import parse_model_id

    try:
        provider, _ = parse_model_id(model)
    except ValueError:
        return pool
    candidate = f"{POOL_PREFIX}{provider}"
    return candidate if candidate in _pool_names() else pool


if preload.enabled():  # [tutopanda] preload_sdk: warm the parent of forked task processes
    preload.preload()


@hookimpl
def task_instance_mutation_hook(task_instance: TaskInstance, dag_run: DagRun | None) -> None:
    """Route the task instance to the pool of the provider its run chose."""
    conf = getattr(dag_run, "conf", None)
    pool = task_instance.pool or ""
    chosen = pool_for_run(task_instance.task_id, pool, conf if isinstance(conf, dict) else None)
    if chosen != pool:
        task_instance.pool = chosen
