"""UI tests: Airflow's real simple auth manager in-process, runs from a fake source, a real
local store holding a run's blobs and manifest.

AIRFLOW_HOME must be set before ``airflow`` is imported; the Airflow tests' conftest sets a
temporary one too, and whichever is first is kept.
"""

from __future__ import annotations

import os
import tempfile

if "tutopanda-airflow-home-" not in os.environ.get("AIRFLOW_HOME", ""):
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="tutopanda-airflow-home-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
