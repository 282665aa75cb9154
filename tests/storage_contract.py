"""Contract tests every :class:`ArtefactStore` must pass.

Not a test module itself: subclass :class:`StoreContract` in a ``test_*.py`` module (with a
``Test`` prefix), override the ``store`` fixture and the two inspection hooks, and every
test here runs against that store.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import httpx
import pytest

from producers.storage import CHUNK_SIZE, ArtefactStore, BlobIntegrityError

KIB = 1024
MIB = 1024 * KIB

BAD_NAMES = ["../x", "a/b", "", ".", "..", "a\\b", "x y", "é"]
GOOD_NAMES = ["run-1", "a..b", "v1.0_final-2", "X"]


def sha256(data: bytes) -> str:
    """The SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


async def stream(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    """Yield ``chunks`` one by one, giving the event loop a turn between them."""
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


async def dropped_download(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    """Yield ``chunks`` then fail the way httpx does when the peer closes mid-body."""
    for chunk in chunks:
        yield chunk
    raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def file_bytes(path: str) -> bytes:
    """The contents of a local file (what :meth:`ArtefactStore.local_path` returned)."""
    return Path(path).read_bytes()


def split(data: bytes, size: int) -> list[bytes]:
    """``data`` in chunks of ``size`` bytes."""
    return [data[i : i + size] for i in range(0, len(data), size)]


async def read_via_open(store: ArtefactStore, uri: str) -> tuple[bytes, list[int]]:
    """The bytes :meth:`ArtefactStore.open` streams, and the sizes of its chunks."""
    parts = [chunk async for chunk in store.open(uri)]
    return b"".join(parts), [len(part) for part in parts]


class StoreContract:
    """The behaviour shared by every artefact store.

    Subclasses provide the ``store`` fixture (a fresh, empty store per test) and two hooks
    that look at the backend directly, bypassing the store's own API.
    """

    @pytest.fixture
    def store(self) -> ArtefactStore:
        """A fresh, empty store; subclasses override this fixture."""
        raise NotImplementedError

    def published_blobs(self, store: ArtefactStore) -> set[str]:
        """Checksums of the blobs present in the backend, found without the store's API."""
        raise NotImplementedError

    def final_location_exists(self, store: ArtefactStore, sha: str) -> bool:
        """Whether anything is at the blob's final location, found without the store's API."""
        raise NotImplementedError

    async def assert_invisible(self, store: ArtefactStore, sha: str) -> None:
        """The blob ``sha`` can be seen neither through the store nor in the backend."""
        assert not await store.exists(store.blob_uri(sha))
        assert not self.final_location_exists(store, sha)
        assert sha not in self.published_blobs(store)

    # -- round trips ---------------------------------------------------------------------

    async def test_put_bytes_round_trip(self, store: ArtefactStore) -> None:
        data = b"hello, artefact store\n"
        blob = await store.put_bytes(data, mime_type="text/plain")

        assert blob.sha256 == sha256(data)
        assert blob.size == len(data)
        assert blob.mime_type == "text/plain"
        assert blob.uri == store.blob_uri(blob.sha256)
        assert blob.uri.startswith(store.root_uri + "/")
        assert await store.exists(blob.uri)
        assert await store.read_bytes(blob.uri) == data
        assert (await read_via_open(store, blob.uri))[0] == data
        assert await store.describe(blob.uri) == blob
        assert file_bytes(await store.local_path(blob.uri)) == data
        assert self.published_blobs(store) == {blob.sha256}

    async def test_put_stream_round_trip_with_expectations(self, store: ArtefactStore) -> None:
        chunks = [b"\x89PNG\r\n", b"\x00" * 1000, b"tail"]
        data = b"".join(chunks)
        blob = await store.put_stream(
            stream(chunks),
            mime_type="image/png",
            expected_size=len(data),
            expected_sha256=sha256(data).upper(),  # checksums compare case-insensitively
        )

        assert (blob.sha256, blob.size, blob.mime_type) == (sha256(data), len(data), "image/png")
        assert await store.read_bytes(blob.uri) == data
        described = await store.describe(blob.uri)
        assert (described.mime_type, described.size, described.sha256) == (
            "image/png",
            len(data),
            sha256(data),
        )

    async def test_empty_blob(self, store: ArtefactStore) -> None:
        blob = await store.put_bytes(b"", mime_type="text/plain")

        assert (blob.size, blob.sha256) == (0, sha256(b""))
        assert await store.read_bytes(blob.uri) == b""
        assert await read_via_open(store, blob.uri) == (b"", [])
        assert (await store.describe(blob.uri)).size == 0

    async def test_multi_chunk_stream(self, store: ArtefactStore) -> None:
        data = os.urandom(5 * MIB)
        blob = await store.put_stream(
            stream(split(data, 64 * KIB)), mime_type="video/mp4", expected_size=len(data)
        )

        assert (blob.sha256, blob.size) == (sha256(data), len(data))
        streamed, sizes = await read_via_open(store, blob.uri)
        assert streamed == data
        assert len(sizes) > 1
        assert max(sizes) <= CHUNK_SIZE
        assert sha256(file_bytes(await store.local_path(blob.uri))) == blob.sha256

    async def test_blob_uri_normalises_and_validates_checksums(self, store: ArtefactStore) -> None:
        sha = sha256(b"x")
        assert store.blob_uri(sha.upper()) == store.blob_uri(sha)
        assert store.blob_uri(sha).endswith(f"/blobs/sha256/{sha[:2]}/{sha}")
        for bad in ["", "abc", "g" * 64, sha + "0", "../" + sha[3:]]:
            with pytest.raises(ValueError, match="sha256"):
                store.blob_uri(bad)

    # -- content addressing ----------------------------------------------------------------

    async def test_identical_content_is_stored_once(self, store: ArtefactStore) -> None:
        data = b"same bytes" * 1000
        first = await store.put_bytes(data, mime_type="application/octet-stream")
        second = await store.put_stream(
            stream(split(data, 777)), mime_type="application/octet-stream"
        )

        assert second == first
        assert self.published_blobs(store) == {first.sha256}
        assert await store.read_bytes(first.uri) == data

    async def test_dedupe_reports_what_is_stored(self, store: ArtefactStore) -> None:
        first = await store.put_bytes(b"{}", mime_type="application/json")
        second = await store.put_bytes(b"{}", mime_type="text/plain")

        assert second.uri == first.uri
        assert second == await store.describe(second.uri)

    async def test_concurrent_writes_of_the_same_content(self, store: ArtefactStore) -> None:
        data = os.urandom(300 * KIB)
        blobs = await asyncio.gather(
            *(
                store.put_stream(stream(split(data, 16 * KIB)), mime_type="audio/mpeg")
                for _ in "abc"
            )
        )

        assert {blob.uri for blob in blobs} == {store.blob_uri(sha256(data))}
        assert self.published_blobs(store) == {sha256(data)}
        assert await store.read_bytes(blobs[0].uri) == data

    async def test_concurrent_writes_of_different_content(self, store: ArtefactStore) -> None:
        datas = [os.urandom(100 * KIB) for _ in range(4)]
        blobs = await asyncio.gather(
            *(store.put_stream(stream(split(d, 8 * KIB)), mime_type="audio/wav") for d in datas)
        )

        assert [blob.sha256 for blob in blobs] == [sha256(d) for d in datas]
        for blob, data in zip(blobs, datas, strict=True):
            assert await store.read_bytes(blob.uri) == data

    # -- integrity and failures ------------------------------------------------------------

    async def test_size_mismatch_stores_nothing(self, store: ArtefactStore) -> None:
        data = b"0123456789"
        with pytest.raises(BlobIntegrityError) as caught:
            await store.put_stream(stream([data]), mime_type="text/plain", expected_size=11)

        message = str(caught.value)
        assert "expected 11" in message
        assert "10" in message
        await self.assert_invisible(store, sha256(data))
        assert self.published_blobs(store) == set()

    async def test_checksum_mismatch_stores_nothing(self, store: ArtefactStore) -> None:
        data = b"the bytes that arrived"
        wanted = sha256(b"the bytes that were promised")
        with pytest.raises(BlobIntegrityError) as caught:
            await store.put_stream(
                stream(split(data, 5)), mime_type="text/plain", expected_sha256=wanted
            )

        message = str(caught.value)
        assert wanted in message
        assert sha256(data) in message
        await self.assert_invisible(store, sha256(data))
        await self.assert_invisible(store, wanted)
        assert self.published_blobs(store) == set()

    async def test_dropped_download_stores_nothing_and_propagates(
        self, store: ArtefactStore
    ) -> None:
        chunks = split(os.urandom(256 * KIB), 64 * KIB)
        with pytest.raises(httpx.RemoteProtocolError, match="peer closed"):
            await store.put_stream(dropped_download(chunks[:3]), mime_type="video/mp4")

        await self.assert_invisible(store, sha256(b"".join(chunks[:3])))
        await self.assert_invisible(store, sha256(b"".join(chunks)))
        assert self.published_blobs(store) == set()

    @pytest.mark.parametrize("outcome", ["completes", "drops", "corrupt"])
    async def test_blob_is_visible_only_when_complete_and_checksummed(
        self, store: ArtefactStore, outcome: str
    ) -> None:
        """Interrupt a write from inside its source: the blob must not be visible yet."""
        chunks = split(os.urandom(4 * 64 * KIB), 64 * KIB)
        data = b"".join(chunks)
        sha = sha256(data)
        checks: list[int] = []

        async def source() -> AsyncIterator[bytes]:
            for index, chunk in enumerate(chunks):
                yield chunk
                # Resumed by the store asking for more: the write is in progress. After
                # the last chunk, every byte has been handed over but not yet verified.
                await self.assert_invisible(store, sha)
                checks.append(index)
            if outcome == "drops":
                raise httpx.RemoteProtocolError("peer closed connection")

        if outcome == "completes":
            blob = await store.put_stream(source(), mime_type="video/mp4", expected_sha256=sha)
            assert blob.sha256 == sha
            assert await store.exists(store.blob_uri(sha))
            assert self.final_location_exists(store, sha)
            assert await store.read_bytes(blob.uri) == data
        elif outcome == "drops":
            with pytest.raises(httpx.RemoteProtocolError):
                await store.put_stream(source(), mime_type="video/mp4", expected_sha256=sha)
            await self.assert_invisible(store, sha)
        else:
            with pytest.raises(BlobIntegrityError):
                await store.put_stream(
                    source(), mime_type="video/mp4", expected_sha256=sha256(b"other")
                )
            await self.assert_invisible(store, sha)
        assert checks == list(range(len(chunks)))

    async def test_cancelled_write_stores_nothing(self, store: ArtefactStore) -> None:
        chunks = split(os.urandom(192 * KIB), 64 * KIB)
        sha = sha256(b"".join(chunks))
        stalled = asyncio.Event()

        async def stalling_source() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk
            stalled.set()
            await asyncio.Event().wait()  # the rest never arrives
            yield b"never"

        task = asyncio.create_task(store.put_stream(stalling_source(), mime_type="video/mp4"))
        await asyncio.wait_for(stalled.wait(), timeout=10)
        await self.assert_invisible(store, sha)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        await self.assert_invisible(store, sha)
        assert self.published_blobs(store) == set()

    async def test_missing_blob(self, store: ArtefactStore) -> None:
        uri = store.blob_uri(sha256(b"never stored"))

        assert not await store.exists(uri)
        with pytest.raises(FileNotFoundError):
            await store.read_bytes(uri)
        with pytest.raises(FileNotFoundError):
            await read_via_open(store, uri)
        with pytest.raises(FileNotFoundError):
            await store.describe(uri)
        with pytest.raises(FileNotFoundError):
            await store.local_path(uri)

    # -- ranged reads (media served with HTTP Range) -----------------------------------------

    @pytest.mark.parametrize(
        ("start", "length"),
        [
            pytest.param(0, 10, id="head"),
            pytest.param(5, 100, id="middle"),
            pytest.param(CHUNK_SIZE - 3, 10, id="across-a-chunk-boundary"),
            pytest.param(CHUNK_SIZE + 7, 10**9, id="tail-cut-to-the-end"),
            pytest.param(CHUNK_SIZE * 3, 10, id="past-the-end"),
            pytest.param(3, 0, id="empty"),
        ],
    )
    async def test_open_range(self, store: ArtefactStore, start: int, length: int) -> None:
        data = bytes(range(256)) * (CHUNK_SIZE // 128)  # two chunks and then some
        data += b"tail"
        stored = await store.put_stream(stream(split(data, 100_000)), mime_type="video/mp4")

        parts = [chunk async for chunk in store.open_range(stored.uri, start, length)]

        assert b"".join(parts) == data[start : start + length]
        assert all(len(part) <= CHUNK_SIZE for part in parts)

    async def test_open_range_refuses_missing_blobs_and_negative_ranges(
        self, store: ArtefactStore
    ) -> None:
        stored = await store.put_bytes(b"0123456789", mime_type="text/plain")
        with pytest.raises(FileNotFoundError):
            [c async for c in store.open_range(store.blob_uri(sha256(b"absent")), 0, 5)]
        with pytest.raises(ValueError, match="range"):
            [c async for c in store.open_range(stored.uri, -1, 5)]

    async def test_presigned_url_is_none_or_a_url(self, store: ArtefactStore) -> None:
        stored = await store.put_bytes(b"signed", mime_type="text/plain")
        url = await store.presigned_url(stored.uri, expires_in=60)
        assert url is None or url.startswith(("http://", "https://"))

    # -- URIs from elsewhere -----------------------------------------------------------------

    @pytest.mark.parametrize(
        "make_uri",
        [
            pytest.param(lambda root, rel: f"http://example.com/{rel}", id="http"),
            pytest.param(lambda root, rel: "file:///etc/passwd", id="file-elsewhere"),
            pytest.param(lambda root, rel: f"s3://some-other-bucket/{rel}", id="other-bucket"),
            pytest.param(lambda root, rel: f"memory://someone-else/{rel}", id="other-memory"),
            pytest.param(lambda root, rel: f"{root}-evil/{rel}", id="sibling-of-root"),
            pytest.param(lambda root, rel: f"{root}/../outside/{rel}", id="dotdot-out"),
            pytest.param(lambda root, rel: f"{root}/blobs/../../{rel}", id="dotdot-deep"),
            pytest.param(lambda root, rel: rel, id="relative"),
        ],
    )
    async def test_uris_outside_the_store_are_refused(
        self, store: ArtefactStore, make_uri: Callable[[str, str], str]
    ) -> None:
        blob = await store.put_bytes(b"inside", mime_type="text/plain")
        relpath = blob.uri[len(store.root_uri) + 1 :]
        uri = make_uri(store.root_uri, relpath)

        with pytest.raises(ValueError, match="this store"):
            await read_via_open(store, uri)
        with pytest.raises(ValueError, match="this store"):
            await store.read_bytes(uri)
        with pytest.raises(ValueError, match="this store"):
            await store.describe(uri)
        with pytest.raises(ValueError, match="this store"):
            await store.exists(uri)
        with pytest.raises(ValueError, match="this store"):
            await store.local_path(uri)

    # -- records and manifests ---------------------------------------------------------------

    async def test_record_round_trip_and_replace(self, store: ArtefactStore) -> None:
        record = {"artefacts": [{"uri": "x", "size": 3}], "note": "naïve ✓", "n": 1.5}
        uri = await store.put_record("reuse", "fp-123", record)

        assert uri.startswith(store.root_uri + "/")
        assert uri.endswith("/records/reuse/fp-123.json")
        assert await store.get_record("reuse", "fp-123") == record
        assert await store.get_record("reuse", "fp-999") is None
        assert await store.get_record("other", "fp-123") is None

        assert await store.put_record("reuse", "fp-123", {"version": 2}) == uri
        assert await store.get_record("reuse", "fp-123") == {"version": 2}

    async def test_record_is_a_copy(self, store: ArtefactStore) -> None:
        record: dict[str, object] = {"items": [1]}
        await store.put_record("ns", "k", record)
        record["items"] = [2]

        assert await store.get_record("ns", "k") == {"items": [1]}

    @pytest.mark.parametrize(
        "bad", [{"x": object()}, {"x": math.nan}, {"x": {1, 2}}], ids=["object", "nan", "set"]
    )
    async def test_unserialisable_record_leaves_the_old_one(
        self, store: ArtefactStore, bad: dict[str, object]
    ) -> None:
        await store.put_record("ns", "k", {"version": 1})
        await store.write_manifest("run", {"version": 1})

        with pytest.raises((TypeError, ValueError)):
            await store.put_record("ns", "k", bad)
        with pytest.raises((TypeError, ValueError)):
            await store.write_manifest("run", bad)

        assert await store.get_record("ns", "k") == {"version": 1}
        assert await store.read_manifest("run") == {"version": 1}

    async def test_manifest_round_trip_and_replace(self, store: ArtefactStore) -> None:
        manifest = {"run_id": "run-1", "steps": [{"name": "script", "status": "done"}]}
        uri = await store.write_manifest("run-1", manifest)

        assert uri.startswith(store.root_uri + "/")
        assert uri.endswith("/runs/run-1/manifest.json")
        assert await store.read_manifest("run-1") == manifest
        assert json.loads(await store.read_bytes(uri)) == manifest
        assert await store.read_manifest("run-2") is None

        replaced = {"run_id": "run-1", "steps": []}
        assert await store.write_manifest("run-1", replaced) == uri
        assert await store.read_manifest("run-1") == replaced

    async def test_concurrent_manifest_writes_leave_one_whole_document(
        self, store: ArtefactStore
    ) -> None:
        versions = [{"version": i, "padding": "x" * 50_000} for i in range(8)]
        await asyncio.gather(*(store.write_manifest("run", v) for v in versions))

        assert await store.read_manifest("run") in versions

    @pytest.mark.parametrize("bad", BAD_NAMES)
    async def test_invalid_names_are_rejected(self, store: ArtefactStore, bad: str) -> None:
        named = re.escape(repr(bad))
        with pytest.raises(ValueError, match=named):
            await store.put_record(bad, "key", {})
        with pytest.raises(ValueError, match=named):
            await store.put_record("ns", bad, {})
        with pytest.raises(ValueError, match=named):
            await store.get_record(bad, "key")
        with pytest.raises(ValueError, match=named):
            await store.get_record("ns", bad)
        with pytest.raises(ValueError, match=named):
            await store.write_manifest(bad, {})
        with pytest.raises(ValueError, match=named):
            await store.read_manifest(bad)
        assert await store.list_runs() == []

    @pytest.mark.parametrize("name", GOOD_NAMES)
    async def test_valid_names_are_accepted(self, store: ArtefactStore, name: str) -> None:
        await store.put_record(name, name, {"name": name})
        await store.write_manifest(name, {"name": name})

        assert await store.get_record(name, name) == {"name": name}
        assert await store.read_manifest(name) == {"name": name}
        assert await store.list_runs() == [name]

    async def test_list_runs(self, store: ArtefactStore) -> None:
        assert await store.list_runs() == []

        await store.write_manifest("run-b", {"n": 1})
        await store.write_manifest("run-a", {"n": 2})
        await store.write_manifest("run-b", {"n": 3})
        await store.put_record("runs", "run-c", {"not": "a manifest"})
        await store.put_bytes(b"blob", mime_type="text/plain")

        assert await store.list_runs() == ["run-a", "run-b"]
