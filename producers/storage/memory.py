"""An in-memory artefact store for unit tests."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.storage.base import CHUNK_SIZE, ArtefactStore, StoredBlob
from producers.storage.local import (
    blob_relpath,
    check_integrity,
    decode_json,
    encode_json,
    manifest_relpath,
    record_relpath,
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
        buffer = bytearray()
        hasher = hashlib.sha256()
        async for chunk in chunks:
            buffer += chunk
            hasher.update(chunk)
        sha = hasher.hexdigest()
        check_integrity(
            size=len(buffer),
            sha256=sha,
            expected_size=expected_size,
            expected_sha256=expected_sha256,
        )
        relpath = blob_relpath(sha)
        stored = self._objects.setdefault(
            relpath, _Object(data=bytes(buffer), sha256=sha, mime_type=mime_type)
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

    async def write_manifest(self, run_id: str, manifest: dict[str, Any]) -> str:
        """Write (replace) the run's manifest; returns its URI."""
        return self._put_document(manifest_relpath(run_id), manifest)

    async def read_manifest(self, run_id: str) -> dict[str, Any] | None:
        """The run's manifest, or None if the run has none."""
        return self._get_document(manifest_relpath(run_id))

    async def put_record(self, namespace: str, key: str, record: dict[str, Any]) -> str:
        """Write (replace) the record ``records/<namespace>/<key>.json``; returns its URI."""
        return self._put_document(record_relpath(namespace, key), record)

    async def get_record(self, namespace: str, key: str) -> dict[str, Any] | None:
        """Read a record written by :meth:`put_record`, or None."""
        return self._get_document(record_relpath(namespace, key))

    async def list_runs(self) -> list[str]:
        """Run ids that have a manifest, sorted."""
        run_ids = []
        for relpath in self._objects:
            parts = relpath.split("/")
            if len(parts) == 3 and parts[0] == "runs" and parts[2] == "manifest.json":
                run_ids.append(parts[1])
        return sorted(run_ids)

    # -- internals ---------------------------------------------------------------------

    def _uri(self, relpath: str) -> str:
        return f"{self.root_uri}/{relpath}"

    def _relpath(self, uri: str) -> str:
        """The path a URI names under this store's root; ValueError if it is elsewhere."""
        root = f"{self.root_uri}/"
        if not isinstance(uri, str) or not uri.startswith(root):
            raise ValueError(f"{uri!r} is not a URI inside this store ({self.root_uri})")
        relpath = uri[len(root) :]
        if any(part in {"", ".", ".."} for part in relpath.split("/")):
            raise ValueError(
                f"{uri!r} is not a URI inside this store ({self.root_uri}): "
                "it has empty, '.' or '..' path segments"
            )
        return relpath

    def _get(self, uri: str) -> _Object:
        try:
            return self._objects[self._relpath(uri)]
        except KeyError:
            raise FileNotFoundError(f"nothing is stored at {uri}") from None

    def _put_document(self, relpath: str, document: dict[str, Any]) -> str:
        data = encode_json(document)
        sha = hashlib.sha256(data).hexdigest()
        self._objects[relpath] = _Object(data=data, sha256=sha, mime_type="application/json")
        return self._uri(relpath)

    def _get_document(self, relpath: str) -> dict[str, Any] | None:
        stored = self._objects.get(relpath)
        if stored is None:
            return None
        return decode_json(stored.data, self._uri(relpath))
