"""A directory artefact store, plus the layout helpers every store shares."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit
from urllib.request import url2pathname

from producers.storage.base import CHUNK_SIZE, ArtefactStore, BlobIntegrityError, StoredBlob

__all__ = ["LocalStore"]

#: The MIME type assumed for objects stored without one.
DEFAULT_MIME_TYPE = "application/octet-stream"

_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_BLOB_RELPATH_RE = re.compile(r"blobs/sha256/([0-9a-f]{2})/([0-9a-f]{64})")


# -- Layout helpers shared by the local, S3 and in-memory stores. ------------------------


def validate_name(kind: str, value: str) -> str:
    """Check a namespace, key or run id is safe as one path segment.

    Args:
        kind: What the value is (``"namespace"``, ``"key"``, ``"run_id"``), for the message.
        value: The value to check.

    Returns:
        The value, unchanged.

    Raises:
        ValueError: The value is empty, ``.`` or ``..``, or has characters other than
            ``[A-Za-z0-9._-]``.
    """
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or value in {".", ".."}:
        raise ValueError(
            f"invalid {kind} {value!r}: use only letters, digits, '.', '_' and '-' "
            "(not empty, not '.' or '..')"
        )
    return value


def normalize_sha256(sha256: str) -> str:
    """Return a SHA-256 hex digest in lower case, or raise ValueError if it is not one."""
    lowered = sha256.lower() if isinstance(sha256, str) else ""
    if not _SHA256_RE.fullmatch(lowered):
        raise ValueError(f"invalid sha256 {sha256!r}: expected 64 hexadecimal digits")
    return lowered


def blob_relpath(sha256: str) -> str:
    """The path of a blob relative to a store's root: ``blobs/sha256/<aa>/<sha256>``."""
    sha = normalize_sha256(sha256)
    return f"blobs/sha256/{sha[:2]}/{sha}"


def sha256_of_blob_relpath(relpath: str) -> str | None:
    """The checksum named by a ``blobs/sha256/<aa>/<sha256>`` path, or None for other paths."""
    match = _BLOB_RELPATH_RE.fullmatch(relpath)
    if match is None or match.group(2)[:2] != match.group(1):
        return None
    return match.group(2)


def record_relpath(namespace: str, key: str) -> str:
    """The path of a record relative to a store's root, after validating both names."""
    return f"records/{validate_name('namespace', namespace)}/{validate_name('key', key)}.json"


def manifest_relpath(run_id: str) -> str:
    """The path of a run's manifest relative to a store's root, after validating the id."""
    return f"runs/{validate_name('run_id', run_id)}/manifest.json"


def encode_json(document: dict[str, Any]) -> bytes:
    """Serialise a record or manifest as strict UTF-8 JSON (no NaN or infinity).

    Raises:
        TypeError: The document is not a dict or holds a value JSON cannot represent.
        ValueError: The document holds NaN or an infinity.
    """
    if not isinstance(document, dict):
        raise TypeError(f"expected a dict, got {type(document).__name__}")
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def decode_json(data: bytes, where: str) -> dict[str, Any]:
    """Parse a record or manifest; ValueError (naming ``where``) if it is not a JSON object."""
    document = json.loads(data)
    if not isinstance(document, dict):
        raise ValueError(f"{where} does not hold a JSON object")
    return document


def check_integrity(
    *,
    size: int,
    sha256: str,
    expected_size: int | None,
    expected_sha256: str | None,
) -> None:
    """Compare what was received with what was expected.

    Raises:
        BlobIntegrityError: The size or the checksum differs; the message names both.
    """
    if expected_size is not None and size != expected_size:
        raise BlobIntegrityError(
            f"blob size mismatch: expected {expected_size} bytes, received {size} bytes "
            f"(sha256 {sha256}); nothing was stored"
        )
    if expected_sha256 is not None and sha256 != expected_sha256.lower():
        raise BlobIntegrityError(
            f"blob checksum mismatch: expected sha256 {expected_sha256}, received {sha256} "
            f"({size} bytes); nothing was stored"
        )


def guess_mime_type(name: str) -> str:
    """A MIME type guessed from a file name, or ``application/octet-stream``."""
    return mimetypes.guess_type(name)[0] or DEFAULT_MIME_TYPE


def _fsync_dir(path: Path) -> None:
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
            hasher = hashlib.sha256()
            size = 0
            with handle:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    handle.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            sha = hasher.hexdigest()
            check_integrity(
                size=size,
                sha256=sha,
                expected_size=expected_size,
                expected_sha256=expected_sha256,
            )
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
            _fsync_dir(final.parent)
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

    async def write_manifest(self, run_id: str, manifest: dict[str, Any]) -> str:
        """Write (replace, atomically) ``runs/<run_id>/manifest.json``; returns its URI."""
        return self._write_document(manifest_relpath(run_id), manifest)

    async def read_manifest(self, run_id: str) -> dict[str, Any] | None:
        """The run's manifest, or None if the run has none."""
        return self._read_document(manifest_relpath(run_id))

    async def put_record(self, namespace: str, key: str, record: dict[str, Any]) -> str:
        """Write (replace, atomically) ``records/<namespace>/<key>.json``; returns its URI."""
        return self._write_document(record_relpath(namespace, key), record)

    async def get_record(self, namespace: str, key: str) -> dict[str, Any] | None:
        """Read a record written by :meth:`put_record`, or None."""
        return self._read_document(record_relpath(namespace, key))

    async def list_runs(self) -> list[str]:
        """Run ids that have a manifest, sorted."""
        runs_dir = self.root / "runs"
        if not runs_dir.is_dir():
            return []
        return sorted(
            entry.name
            for entry in runs_dir.iterdir()
            if _NAME_RE.fullmatch(entry.name)
            and entry.name not in {".", ".."}
            and (entry / "manifest.json").is_file()
        )

    def _write_document(self, relpath: str, document: dict[str, Any]) -> str:
        data = encode_json(document)  # before touching the disk: a bad document changes nothing
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, data)
        return path.as_uri()

    def _read_document(self, relpath: str) -> dict[str, Any] | None:
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
        _fsync_dir(path.parent)

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
