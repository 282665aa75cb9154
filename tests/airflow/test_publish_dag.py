"""The movie DAG publishes its movie to ``[tutopanda] publish_uri``: locally and to S3 (moto),
the template rendered with the run's context, a hostile run id kept below the prefix."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

from producers.pipeline.publish import safe_segment

pytestmark = pytest.mark.airflow

DAG_SOURCE = Path(__file__).resolve().parents[2] / "dags" / "tutopanda_movie.py"
#: A run id as anyone allowed to trigger a run could choose it, within what Airflow 3 runs
#: at all (its execution API cannot serve a run id holding ``/`` or equal to ``..``; those
#: are rendered through the operator's own templating in the last test): a leading ``..``,
#: ``~`` (a home directory at the start of a path), ``:`` and ``+``.
HOSTILE_RUN_ID = "..~escape:+1"
WHEN = pendulum.datetime(2026, 12, 3, 6, tz="UTC")
LAYOUT = {"movie.mp4", "timeline.svg", "script.md", "manifest.json", "script.json"}


def _load_dag(airflow_home: Path, module_name: str) -> Any:
    """Copy the DAG file into the dags folder (``dag.test()`` syncs it from there); import it."""
    dags = airflow_home / "dags"
    dags.mkdir(exist_ok=True)
    shutil.copy(DAG_SOURCE, dags / DAG_SOURCE.name)
    spec = importlib.util.spec_from_file_location(module_name, dags / DAG_SOURCE.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assemble_record(dag_run: Any) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == "assemble",
                XComModel.key == "return_value",
            )
        ).one()
        value: dict[str, Any] = XComModel.deserialize_value(row)
        return value


def _run_movie(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, module_name: str, topic: str
) -> Any:
    from airflow.models.dagrun import DagRun

    # Airflow refuses '..' in an id by default; a deployment may allow it, and this one does.
    # The run gets the id as a trigger's chosen run id.
    monkeypatch.setenv("AIRFLOW__CORE__ALLOW_DOUBLE_DOT_IN_IDS", "True")
    monkeypatch.setattr(DagRun, "generate_run_id", staticmethod(lambda **_: HOSTILE_RUN_ID))
    module = _load_dag(airflow_home, module_name)
    dag_run = module.dag.test(logical_date=WHEN, run_conf={"topic": topic, "segments": 1})
    assert dag_run.state == "success"
    assert dag_run.run_id == HOSTILE_RUN_ID
    return dag_run


def test_the_dag_publishes_to_a_templated_directory_below_its_prefix(
    airflow_db: Path, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from producers.sdk.media import probe

    store, published_root = tmp_path / "store", tmp_path / "site" / "movies"
    monkeypatch.setenv("TUTOPANDA_STORE", str(store))
    monkeypatch.setenv(
        "AIRFLOW__TUTOPANDA__PUBLISH_URI", f"{published_root}/{{{{ dag_id }}}}/{{{{ ds }}}}/{{{{ run_id }}}}/"
    )  # fmt: skip
    dag_run = _run_movie(airflow_home, monkeypatch, "tp_publish_dag_local", "Why do cats purr?")

    expected = published_root / "tutopanda_movie" / "2026-12-03" / safe_segment(HOSTILE_RUN_ID)
    record = _assemble_record(dag_run)
    assert record["published"] == {"dir": str(expected), "movie": str(expected / "movie.mp4")}
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["movies"]
    assert sorted(p.name for p in published_root.iterdir()) == ["tutopanda_movie"]
    assert not any(part.startswith(("..", "~")) for part in expected.parts)
    names = {p.relative_to(expected).as_posix() for p in expected.rglob("*") if p.is_file()}
    assert names >= LAYOUT | {"images/01-image.png", "image_prompts/01-image_prompt.txt"}
    assert {n.split(".")[0] for n in names if n.startswith(("narration/", "music"))} == {
        "narration/01-narration",
        "music",
    }
    info = probe(expected / "movie.mp4")
    assert info.has_video and info.has_audio
    assert info.duration_seconds == pytest.approx(record["duration"], abs=0.2)

    manifest = json.loads((expected / "manifest.json").read_text())
    assert manifest["client"] == "airflow"
    stored = json.loads((store / "runs" / manifest["run_id"] / "manifest.json").read_text())
    assert stored["outputs"]["published"] == manifest["outputs"]["published"]
    assert manifest["outputs"]["published"]["movie"] == str(expected / "movie.mp4")
    movie_sha = hashlib.sha256((expected / "movie.mp4").read_bytes()).hexdigest()
    assert manifest["outputs"]["published"]["files"]["movie.mp4"] == movie_sha
    # the image prompt in script.md is the one the image was made from (as approved)
    prompt = (expected / "image_prompts" / "01-image_prompt.txt").read_text().strip()
    assert prompt.split()[0] in (expected / "script.md").read_text()


@pytest.fixture
def moto_s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.mark.integration
def test_the_dag_publishes_to_s3_through_the_amazon_connection(
    airflow_db: Path,
    airflow_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_s3: str,
) -> None:
    import boto3

    from producers.sdk.media import probe

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AIRFLOW__TUTOPANDA__AWS_CONN_ID", "movie_bucket")
    monkeypatch.setenv(
        "AIRFLOW_CONN_MOVIE_BUCKET",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "conn-key",
                "password": "conn-secret",
                "extra": {"endpoint_url": moto_s3, "region_name": "us-east-1"},
            }
        ),
    )
    client = boto3.client(
        "s3",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    client.create_bucket(Bucket="movies")
    monkeypatch.setenv("TUTOPANDA_STORE", str(tmp_path / "store"))
    monkeypatch.setenv(
        "AIRFLOW__TUTOPANDA__PUBLISH_URI", "s3://movies/daily/{{ ds }}/{{ run_id }}/"
    )
    dag_run = _run_movie(airflow_home, monkeypatch, "tp_publish_dag_s3", "How do tides work?")

    prefix = f"daily/2026-12-03/{safe_segment(HOSTILE_RUN_ID)}/"
    record = _assemble_record(dag_run)
    assert record["published"] == {
        "dir": f"s3://movies/{prefix.rstrip('/')}",
        "movie": f"s3://movies/{prefix}movie.mp4",
    }
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="movies").get("Contents", [])]
    assert keys and all(key.startswith(prefix) for key in keys), keys
    assert {key.removeprefix(prefix) for key in keys} >= LAYOUT | {"images/01-image.png"}
    head = client.head_object(Bucket="movies", Key=f"{prefix}movie.mp4")
    assert head["ContentType"] == "video/mp4"
    local = tmp_path / "movie.mp4"
    client.download_file("movies", f"{prefix}movie.mp4", str(local))
    assert head["Metadata"]["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    info = probe(local)
    assert info.has_video and info.has_audio
    manifest = json.loads(
        client.get_object(Bucket="movies", Key=f"{prefix}manifest.json")["Body"].read()
    )
    assert manifest["outputs"]["published"]["movie"] == f"s3://movies/{prefix}movie.mp4"


def test_without_a_template_a_run_publishes_beside_the_store(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_tutopanda.movie_tasks import manifest_run_id, publish_location

    monkeypatch.delenv("AIRFLOW__TUTOPANDA__PUBLISH_URI", raising=False)
    context = {"run_id": HOSTILE_RUN_ID}
    location = publish_location(context, "s3://bucket/store/")
    assert location == f"s3://bucket/store/published/{manifest_run_id(HOSTILE_RUN_ID)}"
    assert "/../" not in location and "/" not in manifest_run_id(HOSTILE_RUN_ID)


def test_the_operator_renders_the_template_and_no_run_id_leaves_the_prefix(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import DAG
    from airflow.sdk.bases.operator import BaseOperator
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_tutopanda.movie_tasks import publish_location

    with DAG("tp_publish_template") as dag:
        task = BaseOperator(task_id="assemble")
    monkeypatch.setenv("AIRFLOW__TUTOPANDA__PUBLISH_URI", "/srv/movies/{{ no_such_name.x }}/")
    with pytest.raises(AirflowFailException, match=r"publish_uri .* does not render"):
        publish_location({"run_id": "r1", "task": task, "dag": dag}, "file:///store")
    monkeypatch.setenv("AIRFLOW__TUTOPANDA__PUBLISH_URI", "s3://b/movies/{{ ds }}/{{ run_id }}/")
    for run_id in ("../../x", "..", ".", "a/../../b", "~"):
        context = {"run_id": run_id, "ds": "2026-12-03", "task": task, "dag": dag}
        location = publish_location(context, "file:///store")
        assert location == f"s3://b/movies/2026-12-03/{safe_segment(run_id)}", run_id
        assert "/" not in safe_segment(run_id) and not safe_segment(run_id).startswith(".")


def test_make_movie_publishes_under_its_output_unless_the_deployment_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jinja2 import Environment, StrictUndefined

    from airflow_provider_tutopanda.run_local import environment
    from producers.pipeline.publish import render_location

    monkeypatch.delenv("AIRFLOW__TUTOPANDA__PUBLISH_URI", raising=False)
    env = environment(tmp_path / "home", tmp_path / "store", tmp_path / "movies")
    template = env["AIRFLOW__TUTOPANDA__PUBLISH_URI"]
    jinja = Environment(undefined=StrictUndefined)
    context = {"dag_id": "tutopanda_movie", "ts_nodash": "20261203T145011"}
    location = render_location(template, lambda part: jinja.from_string(part).render(context))
    assert location == str(tmp_path / "movies" / "tutopanda_movie" / "20261203T145011")
    assert "AIRFLOW__TUTOPANDA__PUBLISH_URI" not in environment(tmp_path, tmp_path)
    monkeypatch.setenv("AIRFLOW__TUTOPANDA__PUBLISH_URI", "s3://bucket/{{ run_id }}")
    env = environment(tmp_path / "home", tmp_path / "store", tmp_path / "movies")
    assert env["AIRFLOW__TUTOPANDA__PUBLISH_URI"] == "s3://bucket/{{ run_id }}"
