"""The artefact store contract on the local and in-memory stores, plus local-only tests."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from producers.sdk.errors import ConfigurationError
from producers.storage import (
    ArtefactStore,
    BlobIntegrityError,
    LocalStore,
    MemoryStore,
    S3Store,
    open_store,
)
from tests.storage_contract import KIB, StoreContract, dropped_download, sha256, split, stream


def blob_path(store: LocalStore, sha: str) -> Path:
    """Where the local store keeps the blob ``sha``, built independently of the store."""
    return store.root / "blobs" / "sha256" / sha[:2] / sha


class TestLocalStoreContract(StoreContract):
    """The contract on :class:`LocalStore`."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(tmp_path / "store")

    def published_blobs(self, store: ArtefactStore) -> set[str]:
        assert isinstance(store, LocalStore)
        blobs = store.root / "blobs"
        return {p.name for p in blobs.rglob("*") if p.is_file() and p.suffix != ".json"}

    def final_location_exists(self, store: ArtefactStore, sha: str) -> bool:
        assert isinstance(store, LocalStore)
        return os.path.lexists(blob_path(store, sha))


class TestMemoryStoreContract(StoreContract):
    """The contract on :class:`MemoryStore`."""

    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()

    def published_blobs(self, store: ArtefactStore) -> set[str]:
        assert isinstance(store, MemoryStore)
        return {rel.rsplit("/", 1)[-1] for rel in store._objects if rel.startswith("blobs/")}

    def final_location_exists(self, store: ArtefactStore, sha: str) -> bool:
        assert isinstance(store, MemoryStore)
        return f"blobs/sha256/{sha[:2]}/{sha}" in store._objects


# -- local store only -----------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_root_uri_is_an_absolute_file_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalStore("relative/store")

    assert store.root == tmp_path.resolve() / "relative" / "store"
    assert store.root.is_dir()
    assert store.root_uri == store.root.as_uri()
    assert store.root_uri.startswith("file:///")


async def test_layout_and_sidecar(local: LocalStore) -> None:
    data = b"<svg/>"
    blob = await local.put_bytes(data, mime_type="image/svg+xml")

    path = blob_path(local, blob.sha256)
    assert path.read_bytes() == data
    assert blob.uri == path.as_uri()
    assert await local.local_path(blob.uri) == str(path)
    sidecar = json.loads(path.with_name(path.name + ".json").read_bytes())
    assert sidecar == {"mime_type": "image/svg+xml", "size": len(data), "sha256": blob.sha256}

    await local.put_record("reuse", "fp", {"a": 1})
    await local.write_manifest("run-1", {"b": 2})
    assert json.loads((local.root / "records" / "reuse" / "fp.json").read_bytes()) == {"a": 1}
    assert json.loads((local.root / "runs" / "run-1" / "manifest.json").read_bytes()) == {"b": 2}
    assert files_under(local.root / "tmp") == []


async def test_describe_without_sidecar_hashes_the_file(local: LocalStore) -> None:
    blob = await local.put_bytes(b"bytes", mime_type="text/plain")
    path = blob_path(local, blob.sha256)
    path.with_name(path.name + ".json").unlink()

    described = await local.describe(blob.uri)
    assert (described.sha256, described.size) == (blob.sha256, blob.size)
    assert described.mime_type == "application/octet-stream"

    again = await local.put_bytes(b"bytes", mime_type="text/plain")  # repairs the sidecar
    assert again.mime_type == "text/plain"
    assert (await local.describe(blob.uri)).mime_type == "text/plain"


async def test_root_with_spaces_and_unicode(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "my store ü#1")
    blob = await store.put_bytes(b"data", mime_type="text/plain")

    assert "%20" in store.root_uri
    assert await store.read_bytes(blob.uri) == b"data"
    assert Path(await store.local_path(blob.uri)) == blob_path(store, blob.sha256)


async def test_localhost_file_uris_are_accepted(local: LocalStore) -> None:
    blob = await local.put_bytes(b"data", mime_type="text/plain")
    uri = blob.uri.replace("file:///", "file://localhost/", 1)

    assert await local.read_bytes(uri) == b"data"


async def _cancelled(local: LocalStore) -> None:
    async def stalling() -> AsyncIterator[bytes]:
        yield b"x" * KIB
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(local.put_stream(stalling(), mime_type="text/plain"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("failure", ["size", "sha", "dropped", "cancelled"])
async def test_temp_dir_is_empty_after_failures(local: LocalStore, failure: str) -> None:
    chunks = split(os.urandom(200 * KIB), 64 * KIB)
    if failure == "size":
        with pytest.raises(BlobIntegrityError):
            await local.put_stream(stream(chunks), mime_type="text/plain", expected_size=1)
    elif failure == "sha":
        with pytest.raises(BlobIntegrityError):
            await local.put_stream(
                stream(chunks), mime_type="text/plain", expected_sha256=sha256(b"")
            )
    elif failure == "dropped":
        with pytest.raises(httpx.RemoteProtocolError):
            await local.put_stream(dropped_download(chunks), mime_type="text/plain")
    else:
        await _cancelled(local)

    assert files_under(local.root / "tmp") == []
    assert files_under(local.root / "blobs") == []


async def test_uri_with_dotdot_escaping_root_is_refused(local: LocalStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    uri = f"{local.root_uri}/blobs/../../secret.txt"

    with pytest.raises(ValueError, match="outside this store"):
        await local.read_bytes(uri)
    with pytest.raises(ValueError, match="outside this store"):
        async for _ in local.open(uri):
            pass


async def test_dotdot_that_stays_inside_is_allowed(local: LocalStore) -> None:
    blob = await local.put_bytes(b"data", mime_type="text/plain")
    relpath = blob.uri[len(local.root_uri) + 1 :]

    assert await local.read_bytes(f"{local.root_uri}/runs/../{relpath}") == b"data"


async def test_symlinked_blob_escaping_root_is_refused(local: LocalStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"secret")
    sha = sha256(b"secret")
    link = blob_path(local, sha)
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    uri = local.blob_uri(sha)

    for call in (local.read_bytes, local.exists, local.describe, local.local_path):
        with pytest.raises(ValueError, match="outside this store"):
            await call(uri)
    with pytest.raises(ValueError, match="outside this store"):
        async for _ in local.open(uri):
            pass


async def test_symlinked_directory_escaping_root_is_refused(
    local: LocalStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file.txt").write_text("outside")
    (local.root / "evil").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValueError, match="outside this store"):
        await local.read_bytes(f"{local.root_uri}/evil/file.txt")


async def test_temp_files_and_the_root_itself_are_not_objects(local: LocalStore) -> None:
    (local.root / "tmp").mkdir(exist_ok=True)
    (local.root / "tmp" / "partial.part").write_bytes(b"half")

    with pytest.raises(ValueError, match="outside this store"):
        await local.exists(f"{local.root_uri}/tmp/partial.part")
    with pytest.raises(ValueError, match="outside this store"):
        await local.read_bytes(local.root_uri)


async def test_list_runs_ignores_runs_without_manifest(local: LocalStore) -> None:
    await local.write_manifest("done", {})
    (local.root / "runs" / "half-started").mkdir()
    (local.root / "runs" / "stray-file").write_text("x")

    assert await local.list_runs() == ["done"]


# -- open_store -----------------------------------------------------------------------------


def test_open_store_defaults_to_a_directory_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUTOPANDA_STORE", raising=False)
    monkeypatch.chdir(tmp_path)

    store = open_store()

    assert isinstance(store, LocalStore)
    assert store.root == tmp_path.resolve() / "tutopanda-store"
    assert store.root.is_dir()


def test_open_store_uses_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUTOPANDA_STORE", str(tmp_path / "from-env"))

    store = open_store()

    assert isinstance(store, LocalStore)
    assert store.root == (tmp_path / "from-env").resolve()
    assert store.root.is_dir()


def test_open_store_argument_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUTOPANDA_STORE", str(tmp_path / "from-env"))

    store = open_store(str(tmp_path / "explicit"))

    assert isinstance(store, LocalStore)
    assert store.root == (tmp_path / "explicit").resolve()
    assert not (tmp_path / "from-env").exists()


def test_open_store_environment_may_name_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUTOPANDA_STORE", "s3://env-bucket/some/prefix")

    store = open_store()

    assert isinstance(store, S3Store)
    assert store.root_uri == "s3://env-bucket/some/prefix"


def test_open_store_file_uri(tmp_path: Path) -> None:
    target = tmp_path / "via uri"
    store = open_store(target.as_uri())

    assert isinstance(store, LocalStore)
    assert store.root == target.resolve()
    assert store.root.is_dir()


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix", "root_uri"),
    [
        ("s3://bucket", "bucket", "", "s3://bucket"),
        ("s3://bucket/", "bucket", "", "s3://bucket"),
        ("s3://bucket/team/a", "bucket", "team/a", "s3://bucket/team/a"),
        ("s3://bucket/team/a/", "bucket", "team/a", "s3://bucket/team/a"),
    ],
)
def test_open_store_s3(uri: str, bucket: str, prefix: str, root_uri: str) -> None:
    store = open_store(uri)  # the boto3 client is created on first use: no AWS access here

    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.root_uri) == (bucket, prefix, root_uri)


@pytest.mark.parametrize(
    "bad",
    [
        "http://x",
        "https://bucket.s3.amazonaws.com/x",
        "ftp://host/dir",
        "s3://",
        "s3:///prefix",
        "s3://bucket/a/../b",
        "file://otherhost/dir",
        "file://",
        "",
    ],
)
def test_open_store_rejects_other_forms(bad: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store(bad)

    message = str(caught.value)
    assert "s3://bucket" in message
    assert "file://" in message
    assert "directory path" in message
    if bad:
        assert repr(bad) in message


def test_open_store_names_the_environment_variable_in_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUTOPANDA_STORE", "gs://bucket/x")

    with pytest.raises(ConfigurationError, match=r"'gs://bucket/x' \(from \$TUTOPANDA_STORE\)"):
        open_store()
