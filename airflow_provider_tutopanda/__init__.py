"""The tutopanda Airflow provider: hooks, operators and triggers running tutopanda producers."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
#: The XCom key of a producer task's job record (:class:`producers.storage.manifest.JobRecord`):
#: what was asked, what it made or how it failed, whether it was reused.
JOB_XCOM_KEY = "tutopanda_job"


def get_provider_info() -> dict[str, Any]:
    """Provider metadata for Airflow's ProvidersManager (``apache_airflow_provider`` entry point)."""
    from airflow_provider_tutopanda.provider_info import PROVIDER_INFO

    return dict(PROVIDER_INFO)
