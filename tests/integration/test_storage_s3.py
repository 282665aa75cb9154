"""The artefact store contract on :class:`S3Store`, against moto's S3 server on localhost."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from producers.storage import ArtefactStore, BlobIntegrityError, S3Store, open_store
from tests.storage_contract import (
    KIB,
    MIB,
    StoreContract,
    dropped_download,
    file_bytes,
    sha256,
    split,
    stream,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

PREFIX = "team/a"

#: Environment that keeps boto3 away from real AWS: dummy credentials, no profiles or
#: config files, no instance metadata lookups.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
UNSET_AWS_ENV = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"]


def _dummy_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port), for this module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_client(moto_endpoint: str) -> S3Client:
    """A boto3 client pointed at the moto server with dummy credentials."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _dummy_env(monkeypatch, moto_endpoint)
        return boto3.client(
            "s3",
            endpoint_url=moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    """Every test runs with the dummy AWS environment and the moto endpoint."""
    _dummy_env(monkeypatch, moto_endpoint)


@pytest.fixture
def bucket(s3_client: S3Client) -> str:
    """A fresh, empty bucket."""
    name = f"tutopanda-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


def keys(client: S3Client, bucket: str, prefix: str = "") -> list[str]:
    """Every key in ``bucket`` under ``prefix``."""
    found: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(entry["Key"] for entry in page.get("Contents", []))
    return found


def head(client: S3Client, bucket: str, key: str) -> Any:
    """``head_object``, or None on 404."""
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


class TestS3StoreContract(StoreContract):
    """The contract on :class:`S3Store` with a prefix."""

    @pytest.fixture
    def store(self, s3_client: S3Client, bucket: str, tmp_path: Path) -> S3Store:
        return S3Store(bucket, PREFIX, client=s3_client, cache_dir=str(tmp_path / "cache"))

    def published_blobs(self, store: ArtefactStore) -> set[str]:
        assert isinstance(store, S3Store)
        found = keys(store.client, store.bucket)
        assert all(key.startswith(f"{PREFIX}/") for key in found)
        return {key.rsplit("/", 1)[-1] for key in found if key.startswith(f"{PREFIX}/blobs/")}

    def final_location_exists(self, store: ArtefactStore, sha: str) -> bool:
        assert isinstance(store, S3Store)
        key = f"{PREFIX}/blobs/sha256/{sha[:2]}/{sha}"
        return head(store.client, store.bucket, key) is not None


# -- S3 only --------------------------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def s3(s3_client: S3Client, bucket: str, cache_dir: Path) -> S3Store:
    return S3Store(bucket, PREFIX, client=s3_client, cache_dir=str(cache_dir))


async def test_layout_content_type_and_metadata(s3: S3Store, s3_client: S3Client) -> None:
    blob = await s3.put_bytes(b"<svg/>", mime_type="image/svg+xml")
    key = f"{PREFIX}/blobs/sha256/{blob.sha256[:2]}/{blob.sha256}"

    assert s3.root_uri == f"s3://{s3.bucket}/{PREFIX}"
    assert blob.uri == f"s3://{s3.bucket}/{key}"
    response = s3_client.head_object(Bucket=s3.bucket, Key=key)
    assert response["ContentType"] == "image/svg+xml"
    assert response["Metadata"] == {"sha256": blob.sha256}

    await s3.put_record("reuse", "fp", {"a": 1})
    await s3.write_manifest("run-1", {"b": 2})
    body = s3_client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/runs/run-1/manifest.json")
    assert body["ContentType"] == "application/json"
    assert json.loads(body["Body"].read()) == {"b": 2}
    assert sorted(keys(s3_client, s3.bucket)) == sorted(
        [key, f"{PREFIX}/records/reuse/fp.json", f"{PREFIX}/runs/run-1/manifest.json"]
    )


async def test_large_blob_uses_multipart_upload(
    s3_client: S3Client, bucket: str, cache_dir: Path
) -> None:
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    store = S3Store(
        bucket, PREFIX, client=s3_client, cache_dir=str(cache_dir), transfer_config=config
    )
    data = os.urandom(12 * MIB)

    blob = await store.put_stream(
        stream(split(data, MIB)), mime_type="video/mp4", expected_sha256=sha256(data)
    )

    key = blob.uri.removeprefix(f"s3://{bucket}/")
    response = s3_client.head_object(Bucket=bucket, Key=key)
    assert response["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert response["ContentLength"] == len(data)
    assert (await store.describe(blob.uri)).sha256 == sha256(data)
    streamed = b"".join([chunk async for chunk in store.open(blob.uri)])
    assert streamed == data
    assert sha256(file_bytes(await store.local_path(blob.uri))) == sha256(data)


async def test_identical_content_is_uploaded_once(
    s3: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads: list[str] = []
    upload_file = s3.client.upload_file

    def counting_upload(*args: Any, **kwargs: Any) -> None:
        uploads.append(args[2])
        upload_file(*args, **kwargs)

    monkeypatch.setattr(s3.client, "upload_file", counting_upload)
    first = await s3.put_bytes(b"same", mime_type="text/plain")
    second = await s3.put_bytes(b"same", mime_type="text/plain")

    assert first == second
    assert len(uploads) == 1


@pytest.mark.parametrize("failure", ["ok", "size", "sha", "dropped"])
async def test_spool_files_are_always_deleted(s3: S3Store, cache_dir: Path, failure: str) -> None:
    chunks = split(os.urandom(200 * KIB), 64 * KIB)
    if failure == "ok":
        await s3.put_stream(stream(chunks), mime_type="text/plain")
    elif failure == "size":
        with pytest.raises(BlobIntegrityError):
            await s3.put_stream(stream(chunks), mime_type="text/plain", expected_size=1)
    elif failure == "sha":
        with pytest.raises(BlobIntegrityError):
            await s3.put_stream(stream(chunks), mime_type="text/plain", expected_sha256="0" * 64)
    else:
        with pytest.raises(httpx.RemoteProtocolError):
            await s3.put_stream(dropped_download(chunks), mime_type="text/plain")

    assert list((cache_dir / "spool").iterdir()) == []


async def test_local_path_downloads_once_and_verifies(
    s3: S3Store, s3_client: S3Client, cache_dir: Path
) -> None:
    blob = await s3.put_bytes(b"frame bytes", mime_type="image/png")

    path = await s3.local_path(blob.uri)
    assert file_bytes(path) == b"frame bytes"
    assert path == str(cache_dir / "blobs" / blob.sha256[:2] / blob.sha256)
    key = blob.uri.removeprefix(f"s3://{s3.bucket}/")
    s3_client.delete_object(Bucket=s3.bucket, Key=key)
    assert await s3.local_path(blob.uri) == path  # served from the cache

    s3_client.put_object(Bucket=s3.bucket, Key=key, Body=b"tampered")
    os.unlink(path)
    with pytest.raises(BlobIntegrityError, match="expected sha256"):
        await s3.local_path(blob.uri)
    assert os.listdir(os.path.dirname(path)) == []  # neither the blob nor a partial file


async def test_list_runs_only_sees_this_prefix(s3: S3Store, s3_client: S3Client) -> None:
    await s3.write_manifest("mine", {})
    for key in [
        "team/ab/runs/sibling-prefix/manifest.json",
        "runs/bucket-root/manifest.json",
        f"{PREFIX}/runs/no-manifest/notes.txt",
        f"{PREFIX}/runs/nested/deeper/manifest.json",
    ]:
        s3_client.put_object(Bucket=s3.bucket, Key=key, Body=b"{}")

    assert await s3.list_runs() == ["mine"]


async def test_open_store_uses_the_standard_aws_configuration(
    bucket: str, s3_client: S3Client, tmp_path: Path
) -> None:
    # The default client picks up AWS_ENDPOINT_URL and the dummy credentials.
    store = open_store(f"s3://{bucket}/{PREFIX}")
    assert isinstance(store, S3Store)

    blob = await store.put_bytes(b"configured from the environment", mime_type="text/plain")
    await store.write_manifest("run", {"ok": True})

    assert await store.read_bytes(blob.uri) == b"configured from the environment"
    assert await store.list_runs() == ["run"]
    assert f"{PREFIX}/runs/run/manifest.json" in keys(s3_client, bucket)


async def test_store_without_prefix(s3_client: S3Client, bucket: str) -> None:
    store = S3Store(bucket, client=s3_client)
    blob = await store.put_bytes(b"at the bucket root", mime_type="text/plain")

    assert store.root_uri == f"s3://{bucket}"
    assert blob.uri.startswith(f"s3://{bucket}/blobs/sha256/")
    assert await store.read_bytes(blob.uri) == b"at the bucket root"
    await store.write_manifest("r", {})
    assert await store.list_runs() == ["r"]


async def test_presigned_url_serves_the_blob_with_its_type_and_ranges(s3: S3Store) -> None:
    blob = await s3.put_bytes(b"0123456789" * 10, mime_type="video/mp4")

    url = await s3.presigned_url(blob.uri, expires_in=60)

    assert url is not None
    assert "Expires=" in url or "X-Amz-Expires=60" in url
    async with httpx.AsyncClient() as client:
        whole = await client.get(url)
        part = await client.get(url, headers={"Range": "bytes=10-19"})
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "video/mp4"
    assert part.status_code == 206
    assert part.content == b"0123456789"
