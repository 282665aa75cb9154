"""A cluster policy (Airflow's ``airflow.policy`` entry point): a run's model choice picks its pool.

A task's pool is fixed when the DAG is parsed, from the provider of its default model. When a
run is triggered with ``<task_id>_model`` in its conf (the movie DAG's model params, e.g.
``image_model``) naming a model of another provider, that run's task instances go to that
provider's pool instead, so the provider's concurrency cap holds whatever the form said.

Only tasks already in a ``tutopanda_*`` pool are touched; a provider whose pool does not exist
keeps the task's pool.

A task in a ``tutopanda_*`` pool that does not exist in the deployment would never be scheduled
(Airflow's scheduler skips tasks of a missing pool: "Tasks using non-existent pool ... will not
be scheduled"), e.g. a provider from a package installed after the pools were made. Such a task
instance runs in ``default_pool`` instead, and the scheduler logs one warning per pool naming
the command that creates it (``python -m airflow_provider_tutopanda.pools``). Which pools exist
is read through the scheduler's own session (never a new one, never a commit), at most every
:data:`POOLS_TTL` seconds. Installed with the package; nothing to configure.

Because every Airflow process loads this module at start, it is also where the opt-in
``[tutopanda] preload_sdk`` warms the parents of forked task processes (:mod:`.preload`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from functools import cache
from typing import TYPE_CHECKING, Any

from airflow.policies import hookimpl

from airflow_provider_tutopanda import preload
from airflow_provider_tutopanda.pools import POOL_PREFIX, POOLS_COMMAND, load_pools, pool_for

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance

log = logging.getLogger(__name__)

#: Where a task of a missing provider pool runs.
DEFAULT_POOL = "default_pool"
#: Seconds the names of the existing pools are remembered.
POOLS_TTL = 30.0
_existing: tuple[float, frozenset[str]] | None = None
_warned: set[str] = set()


@cache
def _pool_names() -> frozenset[str]:
    return frozenset(load_pools())


def forget_pools() -> None:
    """Read the existing pools again next time (after the pools command made some)."""
    global _existing
    _existing = None
    _warned.clear()


def existing_pools(dag_run: Any) -> frozenset[str] | None:
    """The names of the pools in the metadata DB, read through ``dag_run``'s session; None
    when ``dag_run`` has no session (then nothing is known, and nothing is rerouted)."""
    global _existing
    try:
        from sqlalchemy.orm import object_session

        session = object_session(dag_run)
    except Exception:  # not a mapped object (a test's stand-in): nothing to ask
        return None
    if session is None:
        return None
    now = time.monotonic()
    if _existing is not None and now - _existing[0] < POOLS_TTL:
        return _existing[1]
    from airflow.models.pool import Pool
    from sqlalchemy import select

    with session.no_autoflush:  # the TIs being created must not be flushed from here
        names = frozenset(str(name) for name in session.scalars(select(Pool.pool)) if name)
    _existing = (now, names)
    return names


def pool_for_run(
    task_id: str, pool: str, conf: dict[str, Any] | None, known: Collection[str] | None = None
) -> str:
    """The pool of ``task_id`` in a run with ``conf``: the provider pool of its model param,
    when that pool is ``known`` to exist (default: the pools of ``pools.json``)."""
    if not pool.startswith(POOL_PREFIX) or not conf:
        return pool
    model = conf.get(f"{task_id}_model")
    if not isinstance(model, str):
        return pool
    from airflow_provider_tutopanda.operators.producer import parse_model_id

    try:
        provider, _ = parse_model_id(model)
        candidate = pool_for(provider)
    except ValueError:
        return pool
    return candidate if candidate in (_pool_names() if known is None else known) else pool


def fallback_pool(pool: str, known: Collection[str] | None, task: str = "a task") -> str:
    """``pool``, or :data:`DEFAULT_POOL` when it is a ``tutopanda_*`` pool that is not among
    the ``known`` existing ones (a task in a missing pool is never scheduled)."""
    if known is None or not pool.startswith(POOL_PREFIX) or pool in known:
        return pool
    if pool not in _warned:
        _warned.add(pool)
        log.warning(
            "tutopanda: pool %r does not exist, so %s and every task of that provider run in "
            "%s, without the provider's concurrency cap; create the provider pools with `%s`",
            pool,
            task,
            DEFAULT_POOL,
            POOLS_COMMAND,
        )
    return DEFAULT_POOL


def _call_the_mutation_hook_on_creation() -> None:
    """Have Airflow call :func:`task_instance_mutation_hook` when it creates task instances.

    Airflow 3.3 skips the hook at creation while ``airflow.settings.task_instance_mutation_hook``
    is marked ``is_noop``, and only an ``airflow_local_settings`` module unmarks it: a hook
    from the ``airflow.policy`` entry point alone would only ever see task instances that
    already exist.
    """
    import airflow.settings

    hook = getattr(airflow.settings, "task_instance_mutation_hook", None)
    if getattr(hook, "is_noop", False):
        hook.is_noop = False  # type: ignore[union-attr]


_call_the_mutation_hook_on_creation()

if preload.enabled():  # [tutopanda] preload_sdk: warm the parent of forked task processes
    preload.preload()


@hookimpl
def task_instance_mutation_hook(task_instance: TaskInstance, dag_run: DagRun | None) -> None:
    """Route the task instance to the pool of the provider its run chose, and out of a
    provider pool the deployment does not have."""
    pool = task_instance.pool or ""
    if not pool.startswith(POOL_PREFIX):
        return
    conf = getattr(dag_run, "conf", None)
    known = existing_pools(dag_run) if dag_run is not None else None
    chosen = pool_for_run(
        task_instance.task_id, pool, conf if isinstance(conf, dict) else None, known
    )
    where = f"task {getattr(dag_run, 'dag_id', '?')}.{task_instance.task_id}"
    chosen = fallback_pool(chosen, known, where)
    if chosen != pool:
        task_instance.pool = chosen
