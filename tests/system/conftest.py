"""System tests: a failed test shows the Airflow services' and tasks' logs.

A test that uses the ``airflow_system`` fixture gets, when it fails, a report section with
the end of every service's output and every task log (``AirflowSystem.diagnostics``).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed or report.when == "teardown":
        return
    system = getattr(item, "funcargs", {}).get("airflow_system")
    if system is not None:
        report.sections.append(("Airflow logs", system.diagnostics()))
