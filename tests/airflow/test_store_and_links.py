"""Airflow's store (the setting, S3 through the Amazon provider's connection) and the links."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow


def test_the_store_comes_from_the_env_then_the_airflow_setting_then_airflow_home(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_tutopanda.store import default_store

    monkeypatch.delenv("TUTOPANDA_STORE", raising=False)
    monkeypatch.delenv("AIRFLOW__TUTOPANDA__STORE", raising=False)
    assert default_store() == str(airflow_home / "tutopanda-store")
    monkeypatch.setenv("AIRFLOW__TUTOPANDA__STORE", "s3://from-setting/p")
    assert default_store() == "s3://from-setting/p"
    monkeypatch.setenv("TUTOPANDA_STORE", "/from/env")
    assert default_store() == "/from/env"


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
def test_an_s3_store_uses_the_amazon_connection_not_the_environment(
    airflow_home: Path, moto_s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from airflow_provider_tutopanda.store import open_airflow_store

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
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
    boto3.client(
        "s3",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    ).create_bucket(Bucket="movies")

    store = open_airflow_store("s3://movies/tp")

    async def roundtrip() -> tuple[str, bytes]:
        blob = await store.put_bytes(b"\x89PNG tiny", mime_type="image/png")
        return blob.uri, await store.read_bytes(blob.uri)

    uri, data = asyncio.run(roundtrip())
    assert uri.startswith("s3://movies/tp/blobs/sha256/")
    assert data == b"\x89PNG tiny"
    credentials = store.client._request_signer._credentials  # type: ignore[attr-defined]
    assert credentials.access_key == "conn-key", "the connection's keys signed the requests"


def test_links_point_at_the_ui_for_the_job_record() -> None:
    from airflow_provider_tutopanda.links.artefact import artefact_href, artefacts_href

    job = {"key": "image[2]", "artefacts": [{"id": "image[2]", "uri": "file:///x"}]}
    run = "manual__2026-11-25T10:00:00+00:00"
    assert artefact_href("tutopanda_movie", run, job) == (
        "/tutopanda/dags/tutopanda_movie/runs/manual__2026-11-25T10%3A00%3A00%2B00%3A00"
        "/media/image%5B2%5D/image%5B2%5D"
    )
    assert artefact_href("d", run, {"key": "image[2]", "artefacts": []}) == ""
    assert artefact_href("d", run, None) == ""
    assert (
        artefacts_href("d", "r/../x", "image", 2)
        == "/tutopanda/dags/d/runs/r%2F..%2Fx/tasks/image/2"
    )
