"""The artefact store contract shared by the local directory and S3 stores."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from producers.storage.layout import encode_json, manifest_relpath, record_relpath

#: Size of the chunks stores read and write; blobs are never held whole in memory.
CHUNK_SIZE = 1024 * 1024


class StoredBlob(BaseModel):
    """Where a blob landed and what it is."""

    model_config = ConfigDict(frozen=True)

    uri: str
    sha256: str
    size: int
    mime_type: str


class BlobIntegrityError(IOError):
    """A blob's size or checksum did not match what was expected; nothing was stored."""


class ArtefactStore(abc.ABC):
    """A content-addressed blob store with one JSON manifest per run.

    Layout under the store's root (a directory or an ``s3://bucket/prefix``)::

        blobs/sha256/<first two hex digits>/<sha256>   the blob bytes
        runs/<run_id>/manifest.json                     the run's manifest

    A blob is visible at its final name only once it is complete and its checksum is
    verified: writers stream to a temporary place and publish atomically.
    """

    #: The store's root as a URI (``file:///abs/dir`` or ``s3://bucket/prefix``).
    root_uri: str

    @abc.abstractmethod
    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        mime_type: str,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> StoredBlob:
        """Stream ``chunks`` into the store and publish the blob once complete.

        Raises :class:`BlobIntegrityError` when ``expected_size`` or ``expected_sha256`` is
        given and does not match; then nothing is visible. If ``chunks`` raises (a dropped
        download), the exception propagates and nothing is visible.
        """

    async def put_bytes(self, data: bytes, *, mime_type: str) -> StoredBlob:
        """Store a small blob held in memory (inline text or JSON artefacts)."""

        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(one(), mime_type=mime_type)

    @abc.abstractmethod
    def open(self, uri: str) -> AsyncIterator[bytes]:
        """Stream a stored blob's bytes in chunks; :class:`FileNotFoundError` if absent."""

    async def open_range(self, uri: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes of a stored blob from offset ``start`` (an HTTP Range).

        The range is cut to the blob's end. This default reads from the start and skips;
        stores that can seek override it.

        Raises:
            ValueError: ``uri`` is not inside this store, or ``start``/``length`` is negative.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        check_byte_range(start, length)
        position = 0
        remaining = length
        async for chunk in self.open(uri):
            if remaining <= 0:
                break
            end = position + len(chunk)
            if end > start:
                piece = chunk[max(0, start - position) :][:remaining]
                remaining -= len(piece)
                yield piece
            position = end

    async def presigned_url(self, uri: str, *, expires_in: int = 300) -> str | None:
        """A short-lived URL a browser can fetch the blob from directly, or None if this
        store has no such thing (a local directory).

        Raises:
            ValueError: ``uri`` is not inside this store.
        """
        return None

    @abc.abstractmethod
    async def read_bytes(self, uri: str) -> bytes:
        """Read a whole (small) blob; for text and JSON artefacts and tests."""

    @abc.abstractmethod
    async def describe(self, uri: str) -> StoredBlob:
        """The MIME type, size and checksum of a stored blob; :class:`FileNotFoundError` if absent."""

    @abc.abstractmethod
    async def exists(self, uri: str) -> bool:
        """True if a published blob exists at ``uri``."""

    @abc.abstractmethod
    def blob_uri(self, sha256: str) -> str:
        """The URI a blob with this checksum has (whether or not it is stored yet)."""

    def owns_blob(self, uri: object) -> bool:
        """True if ``uri`` is exactly the URI of a blob of this store (stored or not).

        Only a content-addressed blob URI qualifies: never another path under the root, a
        record, a manifest, or anything of another store. No I/O.
        """
        if not isinstance(uri, str):
            return False
        try:
            return self.blob_uri(uri.rsplit("/", 1)[-1]) == uri
        except ValueError:
            return False

    async def write_manifest(self, run_id: str, manifest: dict[str, Any]) -> str:
        """Write (replace, atomically) ``runs/<run_id>/manifest.json``.

        Args:
            run_id: The run's id: ``[A-Za-z0-9._-]`` only, not ``.`` or ``..``.
            manifest: The manifest, a JSON object.

        Returns:
            The manifest's URI.

        Raises:
            ValueError: ``run_id`` is invalid, or the manifest holds NaN or an infinity.
            TypeError: The manifest is not a dict or holds a value JSON cannot represent.
        """
        return await self._write_document(manifest_relpath(run_id), encode_json(manifest))

    async def read_manifest(self, run_id: str) -> dict[str, Any] | None:
        """The run's manifest, or None if the run has none.

        Raises:
            ValueError: ``run_id`` is invalid, or the stored manifest is not a JSON object.
        """
        return await self._read_document(manifest_relpath(run_id))

    async def put_record(self, namespace: str, key: str, record: dict[str, Any]) -> str:
        """Write (replace, atomically) a small JSON record at ``records/<namespace>/<key>.json``.

        Used for the reuse index (fingerprint of a mapped payload -> artefact records).

        Args:
            namespace: The record's namespace: ``[A-Za-z0-9._-]`` only, not ``.`` or ``..``.
            key: The record's key, with the same rule.
            record: The record, a JSON object.

        Returns:
            The record's URI.

        Raises:
            ValueError: A name is invalid, or the record holds NaN or an infinity.
            TypeError: The record is not a dict or holds a value JSON cannot represent.
        """
        return await self._write_document(record_relpath(namespace, key), encode_json(record))

    async def get_record(self, namespace: str, key: str) -> dict[str, Any] | None:
        """Read a record written by :meth:`put_record`, or None.

        Raises:
            ValueError: A name is invalid, or the stored record is not a JSON object.
        """
        return await self._read_document(record_relpath(namespace, key))

    @abc.abstractmethod
    async def _write_document(self, relpath: str, data: bytes) -> str:
        """Write (replace, atomically) encoded JSON at ``relpath``; returns its URI."""

    @abc.abstractmethod
    async def _read_document(self, relpath: str) -> dict[str, Any] | None:
        """The JSON object stored at ``relpath`` (see :func:`decode_json`), or None."""

    @abc.abstractmethod
    async def list_runs(self) -> list[str]:
        """Run ids that have a manifest, sorted."""

    @abc.abstractmethod
    async def local_path(self, uri: str) -> str:
        """A local filesystem path holding the blob (downloaded to a cache for S3)."""


def check_byte_range(start: int, length: int) -> None:
    """Refuse a negative byte range (ValueError)."""
    if start < 0 or length < 0:
        raise ValueError(f"invalid byte range: start {start}, length {length}")
