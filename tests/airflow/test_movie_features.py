"""The movie DAGs' features under ``dag.test()``: review, refresh of one job, the video role,
the daily DAG's topics file, and the pool policy."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from tests.airflow.test_movie_dag import _load_dag, _probe
from tests.airflow.test_operator import _returns

pytestmark = pytest.mark.airflow


def _xcom(dag_run: Any, key: str) -> dict[tuple[str, int], Any]:
    return _returns(dag_run, key)


def _jobs(dag_run: Any) -> dict[str, dict[str, Any]]:
    """The run's job records (XCom ``tutopanda_job``) by job key."""
    return {record["key"]: record for record in _xcom(dag_run, "tutopanda_job").values()}


@pytest.fixture
def movie(airflow_db: Path, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store = tmp_path / "store"
    monkeypatch.setenv("TUTOPANDA_STORE", str(store))
    module = _load_dag(airflow_home, f"tp_features_{time.monotonic_ns()}")
    return SimpleNamespace(module=module, store=store)


# -- review --------------------------------------------------------------------------------------


def _answer_review(dag_id: str, chosen: str, edits: dict[str, str], deadline: float) -> str:
    """Wait for the review task to ask, then answer as Airflow's HITL API does."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    user = SimpleNamespace(get_id=lambda: "reviewer-1", get_name=lambda: "Rita Reviewer")
    while time.monotonic() < deadline:
        with create_session() as session:
            ti = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.task_id == "review",
                    TaskInstance.state == "awaiting_input",
                )
            ).first()
            if ti is not None:
                ask = session.scalars(select(HITLDetail).where(HITLDetail.ti_id == ti.id)).one()
                params = dict(ask.params or {})
                update_hitl_detail(
                    dag_id=dag_id,
                    dag_run_id=ti.run_id,
                    task_id="review",
                    update_hitl_detail_payload=UpdateHITLDetailPayload(
                        chosen_options=[chosen],
                        params_input={
                            k: edits.get(k, v["value"] if isinstance(v, dict) else v)
                            for k, v in params.items()
                        },
                    ),
                    user=user,
                    session=session,
                )
                return str(ask.body or "")
        time.sleep(0.5)
    raise AssertionError("the review task never asked")


def _fail_running_runs(dag_id: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(DagRun)
            .where(DagRun.dag_id == dag_id, DagRun.state == "running")
            .values(state="failed")
        )


@pytest.mark.parametrize("verdict", ["Approve", "Reject"])
def test_review_edits_reach_the_media_and_a_rejection_pays_nothing(
    movie: SimpleNamespace, verdict: str
) -> None:
    edits = {
        "narration_2": "Red pandas wrap their bushy tails around themselves like a scarf.",
        "image_prompt_1": "A red panda asleep on a snowy branch, tail wrapped around it",
    }
    asked: dict[str, str] = {}

    def answer() -> None:
        try:
            asked["body"] = _answer_review(
                "tutopanda_movie", verdict, edits, time.monotonic() + 120
            )
        except BaseException as error:  # seen by the test, not lost in the thread
            asked["error"] = repr(error)
            _fail_running_runs("tutopanda_movie")  # or dag.test() would wait for ever

    reviewer = threading.Thread(target=answer, daemon=True)
    reviewer.start()
    dag_run = movie.module.dag.test(
        run_conf={"topic": "Red pandas in winter", "segments": 2, "review": True}
    )
    reviewer.join(timeout=5)
    assert "error" not in asked, asked
    assert "## " in asked["body"], "the reviewer saw the script"
    jobs = _jobs(dag_run)
    if verdict == "Reject":
        assert dag_run.state == "failed"
        assert set(jobs) == {"script", "image_prompt[0]", "image_prompt[1]"}, "no media job ran"
        assert not (movie.store / "runs").exists(), "no movie, no manifest"
        return
    assert dag_run.state == "success"
    assert jobs["narration[1]"]["inputs"]["prompt"] == edits["narration_2"]
    assert jobs["image[0]"]["inputs"]["prompt"] == edits["image_prompt_1"]
    assert jobs["narration[0]"]["inputs"]["prompt"] != edits["narration_2"], "only that one"
    review = _xcom(dag_run, "review")[("review", -1)]
    assert review["by"] == "Rita Reviewer"
    assert sorted(review["changed"]) == ["image_prompt[0]", "narration[1]"]


def test_review_off_passes_through_without_asking(movie: SimpleNamespace) -> None:
    dag_run = movie.module.dag.test(run_conf={"topic": "Tides", "segments": 1})
    assert dag_run.state == "success"
    assert _xcom(dag_run, "review")[("review", -1)] == {
        "reviewed": False,
        "by": None,
        "changed": [],
    }


# -- refresh one job; the video role --------------------------------------------------------------


def test_refresh_jobs_remakes_that_job_and_reuses_the_rest(movie: SimpleNamespace) -> None:
    conf = {"topic": "How bees make honey", "segments": 2}
    first = movie.module.dag.test(run_conf=conf)
    assert first.state == "success"
    assert not any(j["reused"] for j in _jobs(first).values())

    again = movie.module.dag.test(run_conf={**conf, "refresh_jobs": ["image[1]"]})
    assert again.state == "success"
    remade = {key for key, job in _jobs(again).items() if not job["reused"]}
    assert remade == {"image[1]"}


def test_the_video_role_puts_clips_in_the_movie(movie: SimpleNamespace) -> None:
    dag_run = movie.module.dag.test(
        run_conf={"topic": "What makes a rainbow?", "segments": 1, "video": True}
    )
    assert dag_run.state == "success"
    jobs = _jobs(dag_run)
    assert jobs["video[0]"]["model_id"].startswith("replicate:")
    assert jobs["video[0]"]["inputs"]["image"] == jobs["image[0]"]["artefacts"][0]["uri"]
    returns = _xcom(dag_run, "return_value")
    assert returns[("video", 0)]["kind"] == "video"
    movie_info = _probe(movie.store, returns[("assemble", -1)]["movie"])
    assert movie_info.has_video and movie_info.has_audio


# -- the deployment's options ----------------------------------------------------------------------


def test_the_deployments_options_file_sets_templates_and_attachments(
    movie: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a run may not set, the deployment may: its options file (``TUTOPANDA_OPTIONS``)
    gives the script role a template and an attachment (a path relative to the file)."""
    folder = tmp_path / "deployment"
    folder.mkdir()
    (folder / "house-style.txt").write_text("Always mention the house style: BRISK-42.")
    (folder / "options.yaml").write_text(
        "script:\n"
        "  attachments: [house-style.txt]\n"
        "  config:\n"
        "    user_prompt: \"{{ attachments['house-style.txt'] }} Write about {{ topic }}\"\n"
        "narration:\n"
        "  inputs:\n"
        "    voice: Deep_Voice_Man\n"
    )
    monkeypatch.setenv("TUTOPANDA_OPTIONS", str(folder / "options.yaml"))
    dag_run = movie.module.dag.test(run_conf={"topic": "Why do cats purr?", "segments": 1})
    assert dag_run.state == "success"
    jobs = _jobs(dag_run)
    prompt = jobs["script"]["artefacts"][0]["diagnostics"]["prompt"]
    assert prompt == "Always mention the house style: BRISK-42. Write about Why do cats purr?"
    assert jobs["narration[0]"]["inputs"]["voice"] == "Deep_Voice_Man"


# -- the daily DAG --------------------------------------------------------------------------------


def test_daily_movie_takes_the_days_topic_and_a_rerun_reuses_everything(
    movie: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    topics = tmp_path / "topics.txt"
    topics.write_text("# ours\nHow do owls see at night?\n2026-03-02: Why do cats purr?\n")
    monkeypatch.setenv("TUTOPANDA_TOPICS", str(topics))
    dag = movie.module.daily_dag
    day = pendulum.datetime(2026, 3, 2, tz="UTC")

    first = dag.test(logical_date=day, run_conf={"segments": 1})
    assert first.state == "success"
    assert _xcom(first, "return_value")[("script", -1)]["topic"] == "Why do cats purr?"
    manifests = list((movie.store / "runs").glob("*/manifest.json"))
    assert [json.loads(m.read_text())["parameters"]["topic"] for m in manifests] == [
        "Why do cats purr?"
    ]

    other = dag.test(logical_date=day.add(days=1), run_conf={"segments": 1})
    assert _xcom(other, "return_value")[("script", -1)]["topic"] == "How do owls see at night?"


def test_topic_for_date_is_stable_and_prefers_a_dated_line(tmp_path: Path) -> None:
    from producers.pipeline.topics import topic_for_date

    topics = tmp_path / "t.txt"
    topics.write_text("A\nB\nC\n2026-01-05: Dated\n")
    days = [f"2026-01-{d:02d}" for d in range(1, 8)]
    picked = [topic_for_date(topics, d) for d in days]
    assert picked == [topic_for_date(topics, d) for d in days], "stable"
    assert picked[4] == "Dated"
    assert set(picked) - {"Dated"} == {"A", "B", "C"}
    empty = tmp_path / "e.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="no topic"):
        topic_for_date(empty, "2026-01-01")


# -- the pool follows the run's model --------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_id", "pool", "conf", "expected"),
    [
        ("image", "tutopanda_replicate", {"image_model": "openai:gpt-image-1"}, "tutopanda_openai"),
        ("image", "tutopanda_replicate", {"image_model": "replicate:x/y"}, "tutopanda_replicate"),
        ("image", "tutopanda_replicate", {"image_model": "acme:tiny"}, "tutopanda_replicate"),
        ("image", "tutopanda_replicate", {}, "tutopanda_replicate"),
        ("image", "default_pool", {"image_model": "openai:gpt-image-1"}, "default_pool"),
        ("script", "tutopanda_openai", {"script_model": "replicate:a/b"}, "tutopanda_replicate"),
    ],
)
def test_the_installed_policy_routes_a_task_to_its_runs_provider_pool(
    airflow_home: Path, task_id: str, pool: str, conf: dict[str, str], expected: str
) -> None:
    # Airflow loads the policy entry points when it starts; nothing is configured here.
    from airflow.settings import task_instance_mutation_hook

    ti = SimpleNamespace(task_id=task_id, pool=pool)
    task_instance_mutation_hook(ti, dag_run=SimpleNamespace(conf=conf))  # type: ignore[arg-type]
    assert ti.pool == expected


@pytest.mark.parametrize("setting", ["True", "False"])
def test_preload_sdk_warms_every_airflow_process_only_when_asked(
    airflow_home: Path, setting: str
) -> None:
    import json
    import os
    import subprocess
    import sys

    probe = (
        "import json, sys, airflow.settings\n"
        "from producers.registry import default_registry\n"
        "print(json.dumps({'sdk': 'producers.clients.replicate' in sys.modules,"
        " 'declarations_read': default_registry.cache_info().currsize}))\n"
    )
    env = {**os.environ, "AIRFLOW__TUTOPANDA__PRELOAD_SDK": setting}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    warm = setting == "True"
    assert report == {"sdk": warm, "declarations_read": int(warm)}


# -- fallback models -------------------------------------------------------------------------------


def test_an_image_model_that_keeps_failing_falls_back_and_the_manifest_says_so(
    movie: SimpleNamespace, live_fakes: Any
) -> None:
    import json

    from producers.testing.fakes import Fault

    flux = "replicate:black-forest-labs/flux-dev"
    live_fakes.replicate.inject(
        Fault.failed("CUDA out of memory"), route="create", path_contains="bytedance/seedream-4"
    )
    dag_run = movie.module.dag.test(
        run_conf={
            "topic": "Why do owls hoot?",
            "segments": 1,
            "mode": "live",
            "image_fallbacks": [flux],
        }
    )
    assert dag_run.state == "success"
    jobs = _jobs(dag_run)
    image = jobs["image[0]"]
    assert image["model_id"] == flux
    (passed,) = image["passed_over"]
    assert passed["model_id"] == "replicate:bytedance/seedream-4"
    assert passed["code"] == "model_failed" and "CUDA out of memory" in passed["reason"]
    assert jobs["narration[0]"]["passed_over"] == []
    (manifest_path,) = (movie.store / "runs").rglob("manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    recorded = {r["key"]: r for r in manifest["jobs"]}["image[0]"]
    assert recorded["model_id"] == flux and recorded["passed_over"][0]["code"] == "model_failed"
