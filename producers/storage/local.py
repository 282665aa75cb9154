"""A directory artefact store."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit
from urllib.request import url2pathname

from producers.storage.base import CHUNK_SIZE, ArtefactStore, StoredBlob, check_byte_range
from producers.storage.layout import (
    blob_relpath,
    decode_json,
    encode_json,
    guess_mime_type,
    is_valid_name,
    sha256_of_blob_relpath,
    spool_verified,
)

__all__ = ["LocalStore"]


def fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (best effort: not every platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalStore(ArtefactStore):
    """An artefact store in a local directory.

    Layout under ``root``::

        blobs/sha256/<aa>/<sha256>        the blob bytes
        blobs/sha256/<aa>/<sha256>.json   its sidecar: mime_type, size, sha256
        records/<namespace>/<key>.json    small JSON records (the reuse index)
        runs/<run_id>/manifest.json       run manifests
        tmp/                              writes in progress (never read)

    Every write goes to ``tmp/`` first and is published with :func:`os.replace`, so
    readers only ever see complete, checksummed blobs and whole JSON documents.

    Args:
        root: The store's directory; created if missing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root_uri = self.root.as_uri()
        self._tmp_dir = self.root / "tmp"

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- blobs -------------------------------------------------------------------------

    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        mime_type: str,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> StoredBlob:
        """Stream ``chunks`` to ``tmp/``, verify them, then publish the blob atomically.

        Args:
            chunks: The blob's bytes, in chunks of any size.
            mime_type: The blob's MIME type, kept in its sidecar.
            expected_size: If given, the size the blob must have.
            expected_sha256: If given, the SHA-256 hex digest the blob must have.

        Returns:
            Where the blob is and what it is. When identical content was already stored,
            the existing blob is reused and its recorded MIME type is returned.

        Raises:
            BlobIntegrityError: The size or checksum differs from what was expected.
        """
        tmp_path, handle = self._new_temp(".part")
        try:
            with handle:
                sha, size = await spool_verified(
                    chunks, handle, expected_size=expected_size, expected_sha256=expected_sha256
                )
                handle.flush()
                os.fsync(handle.fileno())
            return self._publish_blob(tmp_path, sha=sha, size=size, mime_type=mime_type)
        finally:
            tmp_path.unlink(missing_ok=True)

    def _publish_blob(self, tmp_path: Path, *, sha: str, size: int, mime_type: str) -> StoredBlob:
        """Move a verified temp file to its content address (or drop it if already there)."""
        final = self.root / blob_relpath(sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_file() and final.stat().st_size == size:
            sidecar = self._read_sidecar(sha)
            if sidecar is None:
                self._write_sidecar(sha, size=size, mime_type=mime_type)
            else:
                mime_type = sidecar.mime_type
        else:
            # The sidecar goes first, so a visible blob always has one.
            self._write_sidecar(sha, size=size, mime_type=mime_type)
            os.replace(tmp_path, final)
            fsync_dir(final.parent)
        return StoredBlob(uri=final.as_uri(), sha256=sha, size=size, mime_type=mime_type)

    def _sidecar_path(self, sha: str) -> Path:
        return self.root / f"{blob_relpath(sha)}.json"

    def _write_sidecar(self, sha: str, *, size: int, mime_type: str) -> None:
        document = {"mime_type": mime_type, "size": size, "sha256": sha}
        self._write_atomic(self._sidecar_path(sha), encode_json(document))

    def _read_sidecar(self, sha: str) -> StoredBlob | None:
        """The sidecar's description of a blob, or None if it is missing or unreadable."""
        path = self._sidecar_path(sha)
        try:
            document = decode_json(path.read_bytes(), str(path))
            return StoredBlob(
                uri=(self.root / blob_relpath(sha)).as_uri(),
                sha256=str(document["sha256"]),
                size=int(document["size"]),
                mime_type=str(document["mime_type"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def open(self, uri: str) -> AsyncIterator[bytes]:
        """Stream a stored object's bytes in chunks of at most :data:`CHUNK_SIZE`.

        Raises:
            ValueError: ``uri`` is not inside this store.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        with self._open_for_reading(uri) as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk

    async def open_range(self, uri: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes from offset ``start`` (seeking; cut to the file's end).

        Raises:
            ValueError: ``uri`` is not inside this store, or the range is negative.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        check_byte_range(start, length)
        with self._open_for_reading(uri) as handle:
            handle.seek(start)
            remaining = length
            while remaining > 0 and (chunk := handle.read(min(CHUNK_SIZE, remaining))):
                remaining -= len(chunk)
                yield chunk

    async def read_bytes(self, uri: str) -> bytes:
        """Read a whole (small) stored object.

        Raises:
            ValueError: ``uri`` is not inside this store.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        with self._open_for_reading(uri) as handle:
            return handle.read()

    async def describe(self, uri: str) -> StoredBlob:
        """The MIME type, size and checksum of a stored object.

        Blobs are described by their sidecar; other files under the root are hashed and
        their MIME type is guessed from the name.

        Raises:
            ValueError: ``uri`` is not inside this store.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        path = self._existing_path(uri)
        sha = sha256_of_blob_relpath(path.relative_to(self.root).as_posix())
        if sha is not None:
            described = self._read_sidecar(sha)
            if described is not None and described.size == path.stat().st_size:
                return described
        hasher = hashlib.sha256()
        size = 0
        with self._open_for_reading(uri) as handle:
            while chunk := handle.read(CHUNK_SIZE):
                hasher.update(chunk)
                size += len(chunk)
        return StoredBlob(
            uri=path.as_uri(),
            sha256=hasher.hexdigest(),
            size=size,
            mime_type=guess_mime_type(path.name),
        )

    async def exists(self, uri: str) -> bool:
        """True if a complete object is stored at ``uri``.

        Raises:
            ValueError: ``uri`` is not inside this store.
        """
        return self._path_for_uri(uri).is_file()

    def blob_uri(self, sha256: str) -> str:
        """The ``file://`` URI a blob with this checksum has (stored or not)."""
        return (self.root / blob_relpath(sha256)).as_uri()

    async def local_path(self, uri: str) -> str:
        """The path of the stored file itself (no copy is made).

        Raises:
            ValueError: ``uri`` is not inside this store.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        return str(self._existing_path(uri))

    # -- records and manifests ---------------------------------------------------------

    async def list_runs(self) -> list[str]:
        """Run ids that have a manifest, sorted."""
        runs_dir = self.root / "runs"
        if not runs_dir.is_dir():
            return []
        return sorted(
            entry.name
            for entry in runs_dir.iterdir()
            if is_valid_name(entry.name) and (entry / "manifest.json").is_file()
        )

    async def _write_document(self, relpath: str, data: bytes) -> str:
        """Write ``data`` at ``relpath`` via ``tmp/`` and :func:`os.replace`; returns its URI."""
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, data)
        return path.as_uri()

    async def _read_document(self, relpath: str) -> dict[str, Any] | None:
        """The JSON object in the file at ``relpath``, or None if there is no such file."""
        path = self.root / relpath
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return decode_json(data, str(path))

    # -- files -------------------------------------------------------------------------

    def _new_temp(self, suffix: str) -> tuple[Path, BinaryIO]:
        """Create a uniquely named file in ``tmp/``, opened for writing."""
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        path = self._tmp_dir / f"{uuid.uuid4().hex}{suffix}"
        return path, path.open("xb")

    def _write_atomic(self, path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` via a temp file, fsync and :func:`os.replace`."""
        tmp_path, handle = self._new_temp(".json.part")
        try:
            with handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_path, path)
        finally:
            tmp_path.unlink(missing_ok=True)
        fsync_dir(path.parent)

    def _path_for_uri(self, uri: str) -> Path:
        """The resolved path a URI names, refusing anything outside the root or in ``tmp/``."""
        parts = urlsplit(uri) if isinstance(uri, str) else None
        if (
            parts is None
            or parts.scheme != "file"
            or parts.netloc not in {"", "localhost"}
            or parts.query
            or parts.fragment
        ):
            raise ValueError(f"{uri!r} is not a file:// URI inside this store ({self.root_uri})")
        path = Path(url2pathname(parts.path))
        if not path.is_absolute():
            raise ValueError(f"{uri!r} is not a file:// URI inside this store ({self.root_uri})")
        resolved = path.resolve()
        if (
            resolved == self.root
            or not resolved.is_relative_to(self.root)
            or resolved.is_relative_to(self._tmp_dir)
        ):
            raise ValueError(
                f"{uri!r} is outside this store ({self.root_uri}) once links and '..' are resolved"
            )
        return resolved

    def _existing_path(self, uri: str) -> Path:
        path = self._path_for_uri(uri)
        if not path.is_file():
            raise FileNotFoundError(f"nothing is stored at {uri}")
        return path

    def _open_for_reading(self, uri: str) -> BinaryIO:
        path = self._path_for_uri(uri)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(f"nothing is stored at {uri}") from None
