"""The artefact store contract shared by the local directory and S3 stores."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict

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

    @abc.abstractmethod
    async def write_manifest(self, run_id: str, manifest: dict[str, Any]) -> str:
        """Write (replace, atomically) the run's manifest; returns its URI."""

    @abc.abstractmethod
    async def read_manifest(self, run_id: str) -> dict[str, Any] | None:
        """The run's manifest, or None if the run has none."""

    @abc.abstractmethod
    async def put_record(self, namespace: str, key: str, record: dict[str, Any]) -> str:
        """Write a small JSON record at ``records/<namespace>/<key>.json`` atomically.

        Used for the reuse index (fingerprint of a mapped payload -> artefact records).
        ``namespace`` and ``key`` are validated: ``[A-Za-z0-9._-]`` only, no ``..``.
        """

    @abc.abstractmethod
    async def get_record(self, namespace: str, key: str) -> dict[str, Any] | None:
        """Read a record written by :meth:`put_record`, or None."""

    @abc.abstractmethod
    async def list_runs(self) -> list[str]:
        """Run ids that have a manifest, sorted."""

    @abc.abstractmethod
    async def local_path(self, uri: str) -> str:
        """A local filesystem path holding the blob (downloaded to a cache for S3)."""
