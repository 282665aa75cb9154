"""An in-memory artefact store for unit tests."""

from __future__ import annotations

import hashlib
import io
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.storage.base import CHUNK_SIZE, ArtefactStore, StoredBlob, check_byte_range
from producers.storage.layout import (
    blob_relpath,
    decode_json,
    manifest_run_id,
    relpath_of_uri,
    spool_verified,
)

__all__ = ["MemoryStore"]


@dataclass(frozen=True)
class _Object:
    data: bytes
    sha256: str
    mime_type: str


class MemoryStore(ArtefactStore):
    """An artefact store held in a dict, with the same semantics as the real stores.

    Blobs are content-addressed and verified, and become visible only once complete;
    records and manifests are stored as JSON bytes, so what is read back is a copy.
    URIs look like ``memory://<store id>/blobs/sha256/<aa>/<sha256>``. :meth:`local_path`
    writes the blob to a temporary directory removed when the store is garbage collected.
    """

    def __init__(self) -> None:
        self.store_id = uuid.uuid4().hex
        self.root_uri = f"memory://{self.store_id}"
        self._objects: dict[str, _Object] = {}
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None

    def __repr__(self) -> str:
        return f"MemoryStore(<{self.store_id}>, {len(self._objects)} objects)"

    # -- blobs -------------------------------------------------------------------------

    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        mime_type: str,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> StoredBlob:
        """Collect ``chunks``, verify them, then publish the blob.

        Returns:
            Where the blob is and what it is. When identical content was already stored,
            the existing blob is reused and its recorded MIME type is returned.

        Raises:
            BlobIntegrityError: The size or checksum differs from what was expected.
        """
        buffer = io.BytesIO()
        sha, _ = await spool_verified(
            chunks, buffer, expected_size=expected_size, expected_sha256=expected_sha256
        )
        relpath = blob_relpath(sha)
        stored = self._objects.setdefault(
            relpath, _Object(data=buffer.getvalue(), sha256=sha, mime_type=mime_type)
        )
        return StoredBlob(
            uri=self._uri(relpath), sha256=sha, size=len(stored.data), mime_type=stored.mime_type
        )

    async def open(self, uri: str) -> AsyncIterator[bytes]:
        """Stream a stored object's bytes in chunks of at most :data:`CHUNK_SIZE`.

        Raises:
            ValueError: ``uri`` is not inside this store.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        data = self._get(uri).data
        for start in range(0, len(data), CHUNK_SIZE):
            yield data[start : start + CHUNK_SIZE]

    async def open_range(self, uri: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes from offset ``start`` (cut to the blob's end).

        Raises:
            ValueError: ``uri`` is not inside this store, or the range is negative.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        check_byte_range(start, length)
        data = self._get(uri).data[start : start + length]
        for offset in range(0, len(data), CHUNK_SIZE):
            yield data[offset : offset + CHUNK_SIZE]

    async def read_bytes(self, uri: str) -> bytes:
        """Read a whole stored object.

        Raises:
            ValueError: ``uri`` is not inside this store.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        return self._get(uri).data

    async def describe(self, uri: str) -> StoredBlob:
        """The MIME type, size and checksum of a stored object.

        Raises:
            ValueError: ``uri`` is not inside this store.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        stored = self._get(uri)
        return StoredBlob(
            uri=self._uri(self._relpath(uri)),
            sha256=stored.sha256,
            size=len(stored.data),
            mime_type=stored.mime_type,
        )

    async def exists(self, uri: str) -> bool:
        """True if an object is stored at ``uri``.

        Raises:
            ValueError: ``uri`` is not inside this store.
        """
        return self._relpath(uri) in self._objects

    def blob_uri(self, sha256: str) -> str:
        """The ``memory://`` URI a blob with this checksum has (stored or not)."""
        return self._uri(blob_relpath(sha256))

    async def local_path(self, uri: str) -> str:
        """Write the object to this store's temporary directory (once) and return the path.

        Raises:
            ValueError: ``uri`` is not inside this store.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        stored = self._get(uri)
        if self._tempdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="tutopanda-memory-store-")
        path = Path(self._tempdir.name) / stored.sha256
        if not path.is_file():
            path.write_bytes(stored.data)
        return str(path)

    # -- records and manifests ---------------------------------------------------------

    async def list_runs(self) -> list[str]:
        """Run ids that have a manifest, sorted."""
        return sorted(
            run_id for relpath in self._objects if (run_id := manifest_run_id(relpath)) is not None
        )

    async def _write_document(self, relpath: str, data: bytes) -> str:
        """Store encoded JSON at ``relpath`` (replacing what was there); returns its URI."""
        sha = hashlib.sha256(data).hexdigest()
        self._objects[relpath] = _Object(data=data, sha256=sha, mime_type="application/json")
        return self._uri(relpath)

    async def _read_document(self, relpath: str) -> dict[str, Any] | None:
        """The JSON object stored at ``relpath``, or None if nothing is stored there."""
        stored = self._objects.get(relpath)
        if stored is None:
            return None
        return decode_json(stored.data, self._uri(relpath))

    # -- internals ---------------------------------------------------------------------

    def _uri(self, relpath: str) -> str:
        return f"{self.root_uri}/{relpath}"

    def _relpath(self, uri: str) -> str:
        """The path a URI names under this store's root; ValueError if it is elsewhere."""
        return relpath_of_uri(uri, f"{self.root_uri}/", self.root_uri)

    def _get(self, uri: str) -> _Object:
        try:
            return self._objects[self._relpath(uri)]
        except KeyError:
            raise FileNotFoundError(f"nothing is stored at {uri}") from None
