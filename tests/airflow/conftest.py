"""Airflow tests: a private AIRFLOW_HOME per session, and a metadata DB only on demand.

AIRFLOW_HOME must be set before anything imports ``airflow`` (its config is read at import),
so it is set when this conftest is collected. The SQLite DB is made once, by the
``airflow_db`` fixture, and only for tests that ask for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="tutopanda-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    """The session's AIRFLOW_HOME (removed at the end)."""
    yield _HOME
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata DB in the session's AIRFLOW_HOME (made once)."""
    from airflow.utils.db import initdb

    initdb()
    return airflow_home / "airflow.db"
