"""Warm task processes: ``[tutopanda] preload_sdk = True`` (``AIRFLOW__TUTOPANDA__PRELOAD_SDK``).

Airflow's LocalExecutor and Celery workers start each task in a process forked from a
long-lived parent. A producer task then pays, in every new process, for importing the SDK and
the provider clients and for reading the model declarations: about a second of a worker slot
per task pass, which is most of what a deferrable task costs a worker. With this setting on,
the provider's cluster policy module (which every Airflow process loads at start, see
:mod:`airflow_provider_tutopanda.policy`) imports them once in the parent, so each forked task
starts with them. It costs every Airflow process that memory and about a second at start;
off by default.
"""

from __future__ import annotations

import os

SETTING = "AIRFLOW__TUTOPANDA__PRELOAD_SDK"


def enabled() -> bool:
    """Whether ``[tutopanda] preload_sdk`` is on (read from the environment or airflow.cfg)."""
    value = os.environ.get(SETTING)
    if value is None:
        try:
            from airflow.configuration import conf

            value = conf.get("tutopanda", "preload_sdk", fallback="False")
        except Exception:  # the configuration is not ready: leave it off
            return False
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def preload() -> None:
    """Import what a producer task needs and read the model declarations once."""
    import airflow_provider_tutopanda.operators.producer
    import airflow_provider_tutopanda.triggers.jobs  # noqa: F401
    import producers.clients.openai
    import producers.clients.replicate
    import producers.sdk.lifecycle
    import producers.storage.local  # noqa: F401
    from producers.registry import default_registry

    default_registry()
