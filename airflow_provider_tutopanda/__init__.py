"""The tutopanda Airflow provider: hooks, operators and triggers running tutopanda producers."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """Provider metadata for Airflow's ProvidersManager (``apache_airflow_provider`` entry point)."""
    from airflow_provider_tutopanda.provider_info import PROVIDER_INFO

    return dict(PROVIDER_INFO)
