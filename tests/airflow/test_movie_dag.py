"""The ``tutopanda_movie`` DAG: it parses fast and light, and makes a real MP4 in mock mode."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow

DAG_SOURCE = Path(__file__).resolve().parents[2] / "dags" / "tutopanda_movie.py"
PAUSE = 0.5


JOB_TASKS = ("script", "image_prompt", "image", "narration", "video", "music")
PARAMS = (
    "topic", "segments", "mode", "video", "review", "refresh", "refresh_jobs", "budget",
    "options",
    *(f"{role}_model" for role in JOB_TASKS),
)  # fmt: skip


@pytest.mark.parametrize("dag_id", ["tutopanda_movie", "tutopanda_daily_movie"])
def test_dag_parses_without_import_errors(airflow_home: Path, dag_id: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_SOURCE))
    assert bag.import_errors == {}
    dag = bag.dags.get(dag_id)
    assert dag is not None
    assert set(dag.task_ids) == {*JOB_TASKS, "segment_indexes", "review", "assemble"}
    for name in PARAMS:
        param = dag.params.get_param(name)
        assert {"type", "title"} <= set(param.schema) and param.description, name
    assert dag.params["segments"] == 3
    assert dag.params["mode"] == "mock"
    pools = {"script": "openai", "image_prompt": "openai"}
    for task_id in JOB_TASKS:
        task = dag.get_task(task_id)
        assert task.pool == f"tutopanda_{pools.get(task_id, 'replicate')}", task_id
        assert task.retries == 2, task_id
        assert type(task.retry_policy).__name__ == "ProviderErrorRetryPolicy", task_id
        assert task.operator_class.__name__ == "MovieJobOperator"
        assert (
            task.partial_kwargs["deferrable"]
            if hasattr(task, "partial_kwargs")
            else (task.deferrable)
        ), task_id
    assert [o.name for o in dag.get_task("assemble").outlets] == ["tutopanda_movie"]
    timetable = type(dag.timetable).__name__
    if dag_id == "tutopanda_movie":
        assert timetable == "NullTimetable"
    else:
        assert timetable != "NullTimetable" and dag.catchup is False
        assert dag.params["topic"] == "", "the daily DAG's topic comes from the topics file"


def test_parsing_imports_no_sdk_nor_client(airflow_home: Path) -> None:
    script = textwrap.dedent(
        f"""
        import json, runpy, sys, time
        import airflow.sdk
        start = time.perf_counter()
        runpy.run_path({str(DAG_SOURCE)!r})
        seconds = time.perf_counter() - start
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in ("producers", "openai", "replicate", "boto3"))
        print(json.dumps({{"heavy": heavy, "seconds": seconds}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["seconds"] < 2.0, "the DAG file parses fast (airflow already imported)"


def _probe(store: Path, uri: str) -> Any:
    from producers.sdk.media import probe
    from producers.storage import open_store

    return probe(asyncio.run(open_store(str(store)).local_path(uri)))


def _returns(dag_run: Any) -> dict[tuple[str, int], Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.key == "return_value",
            )
        ).all()
        return {(x.task_id, x.map_index): XComModel.deserialize_value(x) for x in rows}


def _load_dag(airflow_home: Path, module_name: str) -> Any:
    """Copy the DAG file into the dags folder (``dag.test()`` syncs it from there); import it."""
    dags = airflow_home / "dags"
    dags.mkdir(exist_ok=True)
    path = dags / DAG_SOURCE.name
    shutil.copy(DAG_SOURCE, path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mock_movie_has_video_audio_and_the_narration_length(
    airflow_db: Path, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    monkeypatch.setenv("TUTOPANDA_STORE", str(store))
    module = _load_dag(airflow_home, "tp_test_tutopanda_movie")

    dag_run = module.dag.test(run_conf={"topic": "Why is the sky blue?", "segments": 2})
    assert dag_run.state == "success"

    xcom = _returns(dag_run)
    assert {k for k in xcom if k[0] in ("image", "narration", "image_prompt")} == {
        (task, i) for task in ("image", "narration", "image_prompt") for i in (0, 1)
    }
    for value in xcom.values():
        assert len(json.dumps(value)) < 20_000, "XCom carries records, never blobs"
    result = xcom[("assemble", -1)]
    movie = _probe(store, result["movie"])
    assert movie.has_video and movie.has_audio
    narrations = [_probe(store, xcom[("narration", i)]["uri"]).duration_seconds for i in (0, 1)]
    expected = sum(narrations) + PAUSE * len(narrations)
    assert movie.duration_seconds == pytest.approx(expected, abs=0.2)
    assert result["duration"] == pytest.approx(expected, abs=0.01)


def test_a_budget_below_the_estimate_fails_before_anything_is_paid(
    airflow_db: Path, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.session import create_session

    store = tmp_path / "store"
    monkeypatch.setenv("TUTOPANDA_STORE", str(store))
    module = _load_dag(airflow_home, "tp_test_tutopanda_movie_budget")

    dag_run = module.dag.test(run_conf={"topic": "Tides", "segments": 2, "budget": 0.01})
    assert dag_run.state == "failed"
    with create_session() as session:
        states = {
            ti.task_id: (ti.state, ti.try_number)
            for ti in dag_run.get_task_instances(session=session)
        }
    assert states["script"] == ("failed", 1)  # failed at once, not retried
    assert not (store / "blobs").exists() or not any(
        p.is_file() for p in (store / "blobs").rglob("*")
    )


def test_a_budget_run_with_an_unpriced_job_is_refused_unless_the_run_allows_it(
    airflow_db: Path,
    airflow_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import json

    import producers.replicate.models as shipped
    from producers.registry import default_registry

    model = "bytedance/seedream-4"  # the default image model, its price taken away
    data = json.loads((Path(next(iter(shipped.__path__))) / f"{model}.json").read_text())
    data["cost"] = {"text": "unknown: no price was published"}
    folder = tmp_path / "models"
    (folder / "bytedance").mkdir(parents=True)
    (folder / f"{model}.json").write_text(json.dumps(data))
    monkeypatch.setenv("TUTOPANDA_MODELS_PATH", str(folder))
    default_registry.cache_clear()
    store = tmp_path / "store"
    monkeypatch.setenv("TUTOPANDA_STORE", str(store))
    module = _load_dag(airflow_home, "tp_test_tutopanda_movie_unpriced")
    try:
        conf = {"topic": "Tides", "segments": 1, "budget": 100.0}
        refused = module.dag.test(run_conf=conf)
        assert refused.state == "failed"
        logs = "".join(capfd.readouterr())
        assert "no price" in logs and f"replicate:{model}" in logs
        assert "allow_unpriced param" in logs
        assert not (store / "blobs").exists() or not any(
            p.is_file() for p in (store / "blobs").rglob("*")
        )
        allowed = module.dag.test(run_conf={**conf, "allow_unpriced": True})
        assert allowed.state == "success"
    finally:
        monkeypatch.delenv("TUTOPANDA_MODELS_PATH")
        default_registry.cache_clear()
