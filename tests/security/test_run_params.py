"""Attacks through a run's params (Airflow's run conf): a triggering user may choose among what
the deployment allows and fill schema-checked fields, never name a file, a template, a
setting or a model outside the catalogue. Each refused run fails before any job, with a message
naming the param, and the file it tried to read reaches nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.security.conftest import blobs_in, tree_contains

pytestmark = pytest.mark.airflow

#: The text of a file on the worker that no run may read (a key file, /etc/shadow...).
WORKER_SECRET = "worker-private-file-9d2e41"


def _xcoms(dag_run: Any) -> list[Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id
            )
        ).all()
        return [XComModel.deserialize_value(x) for x in rows]


def _states(dag_run: Any) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        ).all()
        return {f"{t.task_id}[{t.map_index}]": str(t.state) for t in rows}


@pytest.fixture
def movie(airflow_db: Path, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.airflow.test_movie_dag import _load_dag

    store = tmp_path / "store"
    monkeypatch.setenv("TUTOPANDA_STORE", str(store))
    secret = tmp_path / "worker-secret.txt"
    secret.write_text(WORKER_SECRET)
    module = _load_dag(airflow_home, f"tp_security_{time.monotonic_ns()}")
    return SimpleNamespace(module=module, store=store, secret=secret)


def _run_refused(movie: SimpleNamespace, conf: dict[str, Any], capfd: Any) -> str:
    """Trigger with ``conf``; the run must fail at the script task with nothing made; returns
    the logs. Airflow's own param check may refuse first (at trigger time): also a refusal."""
    from airflow.sdk.definitions.param import ParamValidationError

    try:
        dag_run = movie.module.dag.test(run_conf={"segments": 1, **conf})
    except ParamValidationError as refused:
        logs = str(refused)
    else:
        assert dag_run.state == "failed"
        states = _states(dag_run)
        assert states["script[-1]"] == "failed", states
        assert not any(state == "success" for state in states.values()), states
        for value in _xcoms(dag_run):
            assert WORKER_SECRET not in str(value)
        out, err = capfd.readouterr()
        logs = out + err
    assert blobs_in(movie.store) == []  # no job ran: nothing made, nothing paid
    assert tree_contains(movie.store, WORKER_SECRET.encode()) == []
    return logs


def test_options_cannot_attach_a_worker_file_and_template_it_into_the_prompt(
    movie: SimpleNamespace, capfd: pytest.CaptureFixture[str]
) -> None:
    attack = [
        f'script.attachments=["{movie.secret}"]',
        "script.config.user_prompt={{ attachments }}",
    ]
    logs = _run_refused(movie, {"options": attack}, capfd)
    assert "options" in logs
    assert WORKER_SECRET not in logs


def test_the_task_refuses_the_attack_even_where_the_form_does_not_check(
    movie: SimpleNamespace,
) -> None:
    """A DAG author's copy of the DAG without the options pattern is still safe: the task
    checks the params itself."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_tutopanda import movie_tasks

    for attack in (
        [f'script.attachments=["{movie.secret}"]'],
        ["script.config.user_prompt={{ attachments }}"],
        ["image.model=replicate:bytedance/seedream-4"],
    ):
        with pytest.raises(AirflowFailException) as refused:
            movie_tasks.options_from({"topic": "t", "segments": 1, "options": attack})
        assert "run param 'options' refused" in str(refused.value)


@pytest.mark.parametrize(
    ("conf", "param"),
    [
        ({"topics_file": "/etc/passwd"}, "topics_file"),
        ({"store": "/tmp/elsewhere"}, "store"),
        ({"image_model": "replicate:minimax/speech-02-hd"}, "image_model"),
        ({"image_model": "replicate:nobody/unlisted-model"}, "image_model"),
        ({"options": ["image.custom.size=9K"]}, "size"),
        ({"options": ["narration.custom.no_such_field=1"]}, "no_such_field"),
        ({"options": ["image.inputs.count=1e999"]}, "count"),
        ({"image_fallbacks": ["replicate:minimax/speech-02-hd"]}, "image_fallbacks"),
        ({"image_fallbacks": ["replicate:nobody/unlisted-model"]}, "image_fallbacks"),
    ],
    ids=[
        "undeclared-topics-file",
        "undeclared-store",
        "model-of-another-kind",
        "model-not-in-catalogue",
        "value-outside-enum",
        "unknown-model-field",
        "infinite-count",
        "fallback-of-another-kind",
        "fallback-not-in-catalogue",
    ],
)
def test_a_refused_param_fails_the_run_before_any_job_naming_it(
    movie: SimpleNamespace, capfd: pytest.CaptureFixture[str], conf: dict[str, Any], param: str
) -> None:
    logs = _run_refused(movie, {"topic": "How do owls see?", **conf}, capfd)
    assert param in logs


def test_a_role_input_is_data_never_a_template(movie: SimpleNamespace) -> None:
    """The music prompt given by a run is sent as it is: the template that would render
    500 MB is never rendered, and the movie is made."""
    from tests.airflow.test_operator import _returns

    literal = "{{ 'x' * 500000000 }} calm strings"
    dag_run = movie.module.dag.test(
        run_conf={
            "topic": "Why do cats purr?",
            "segments": 1,
            "options": [f"music.inputs.prompt={literal}"],
        }
    )
    assert dag_run.state == "success"
    jobs = {r["key"]: r for r in _returns(dag_run, "tutopanda_job").values()}
    assert jobs["music"]["inputs"]["prompt"] == literal


def test_regenerate_replays_only_what_a_run_may_set() -> None:
    from airflow_provider_tutopanda.ui.app import replayable

    old = {
        "topic": "Red pandas",
        "segments": 2,
        "topics_file": "/etc/passwd",
        "options": [
            "narration.inputs.voice=Deep_Voice_Man",
            'script.attachments=["/etc/passwd"]',
            "script.config.user_prompt={{ attachments }}",
        ],
    }
    assert replayable(old) == {
        "topic": "Red pandas",
        "segments": 2,
        "options": ["narration.inputs.voice=Deep_Voice_Man"],
    }


def test_two_run_ids_never_share_a_manifest() -> None:
    from airflow_provider_tutopanda.movie_tasks import manifest_run_id

    run_ids = [
        "manual__2026-01-02T03:04:05+00:00",
        "manual__2026-01-02T03-04-05-00-00",
        "manual__2026-01-02T03_3a04_3a05+00:00",
        "a:b",
        "a-b",
        "a_b",
        "a/b",
        "../x",
        "é",
        "x" * 250,
        "x" * 249 + "y",
    ]
    names = [manifest_run_id(r) for r in run_ids]
    assert len(set(names)) == len(names)
    from producers.storage.layout import is_valid_name

    assert all(is_valid_name(n) and len(n) <= 200 for n in names)


def test_the_review_shows_model_written_text_as_text() -> None:
    from airflow_provider_tutopanda.operators.review import ScriptReviewOperator

    script = {
        "script": {
            "title": "Owls](https://evil.example/x)",
            "segments": [
                {"narration": "Click [here](https://evil.example) <img src=x onerror=alert(1)>"}
            ],
        }
    }
    review = ScriptReviewOperator(
        task_id="review", script=script, prompts=[{"index": 0, "prompt": "p"}]
    )
    body = review._body()
    # Every bracket and angle the model wrote is escaped: no link, image or HTML survives.
    written = body.split("\n\nEdit any")[0]  # the title and narrations, before our own text
    assert re.findall(r"(?<!\\)[\[\]()<>]", written) == []
    assert "\\<img src\\=x" in body
    assert "## Owls\\]\\(https\\:\\/\\/evil\\.example\\/x\\)" in body
