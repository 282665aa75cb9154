"""Layout, naming, JSON and integrity helpers shared by the local, S3 and in-memory stores."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections.abc import AsyncIterable
from typing import Any, BinaryIO

#: The MIME type assumed for objects stored without one.
DEFAULT_MIME_TYPE = "application/octet-stream"

_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_BLOB_RELPATH_RE = re.compile(r"blobs/sha256/([0-9a-f]{2})/([0-9a-f]{64})")
_BAD_SEGMENTS = frozenset({"", ".", ".."})


# -- names and paths ---------------------------------------------------------------------


def is_valid_name(value: object) -> bool:
    """True if ``value`` is safe as one path segment (see :func:`validate_name`)."""
    return isinstance(value, str) and bool(_NAME_RE.fullmatch(value)) and value not in {".", ".."}


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
    if not is_valid_name(value):
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


#: Longest store run id :func:`run_id_for` writes in full; longer ones end in a digest.
MAX_RUN_ID_NAME = 200
_PLAIN_RUN_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")


def run_id_for(client_run_id: str, *, prefix: str) -> str:
    """A store run id for a client's own run id, one-to-one (two client ids never share one).

    Letters, digits, ``.`` and ``-`` stay; every other byte of the UTF-8 text (``_``
    included) becomes ``_`` and two hex digits, so the encoding can be read back. A name
    longer than :data:`MAX_RUN_ID_NAME` keeps its first part and ends in ``_h`` and the
    SHA-256 of the whole id: ``_h`` never occurs in an encoded name (``h`` is not a hex
    digit), so a shortened name cannot equal a full one.
    """
    encoded = "".join(
        chr(byte) if chr(byte) in _PLAIN_RUN_ID_CHARS else f"_{byte:02x}"
        for byte in client_run_id.encode("utf-8")
    )
    name = f"{validate_name('prefix', prefix)}-{encoded}"
    if len(name) > MAX_RUN_ID_NAME:
        digest = hashlib.sha256(client_run_id.encode("utf-8")).hexdigest()
        name = f"{name[: MAX_RUN_ID_NAME - len(digest) - 2]}_h{digest}"
    return name


def manifest_relpath(run_id: str) -> str:
    """The path of a run's manifest relative to a store's root, after validating the id."""
    return f"runs/{validate_name('run_id', run_id)}/manifest.json"


def manifest_run_id(relpath: str) -> str | None:
    """The run id named by a ``runs/<run_id>/manifest.json`` path, or None for other paths."""
    parts = relpath.split("/")
    if len(parts) == 3 and parts[0] == "runs" and parts[2] == "manifest.json":
        return parts[1] if is_valid_name(parts[1]) else None
    return None


def has_bad_segments(path: str) -> bool:
    """True if a ``/``-separated path has an empty, ``.`` or ``..`` segment."""
    return any(part in _BAD_SEGMENTS for part in path.split("/"))


def relpath_of_uri(uri: str, base: str, root_uri: str) -> str:
    """The path a URI names below ``base``, refusing URIs elsewhere or with odd segments.

    Args:
        uri: The URI to check.
        base: What ``uri`` must start with (a store's root or bucket URI, ending in ``/``).
        root_uri: The store's root URI, named in error messages.

    Returns:
        The part of ``uri`` after ``base``.

    Raises:
        ValueError: ``uri`` does not start with ``base``, or the rest has an empty, ``.``
            or ``..`` segment.
    """
    if not isinstance(uri, str) or not uri.startswith(base):
        raise ValueError(f"{uri!r} is not a URI inside this store ({root_uri})")
    relpath = uri[len(base) :]
    if has_bad_segments(relpath):
        raise ValueError(
            f"{uri!r} is not a URI inside this store ({root_uri}): "
            "it has empty, '.' or '..' path segments"
        )
    return relpath


def guess_mime_type(name: str) -> str:
    """A MIME type guessed from a file name, or ``application/octet-stream``."""
    return mimetypes.guess_type(name)[0] or DEFAULT_MIME_TYPE


# -- JSON documents ----------------------------------------------------------------------


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


# -- integrity ---------------------------------------------------------------------------


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
    # Imported here: base.py imports this module for its record and manifest methods.
    from producers.storage.base import BlobIntegrityError

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


async def spool_verified(
    chunks: AsyncIterable[bytes],
    handle: BinaryIO,
    *,
    expected_size: int | None,
    expected_sha256: str | None,
) -> tuple[str, int]:
    """Write ``chunks`` to ``handle`` while hashing and counting them, then verify them.

    Empty chunks are skipped. ``handle`` is neither flushed nor closed; if ``chunks``
    raises, the exception propagates.

    Args:
        chunks: The blob's bytes, in chunks of any size.
        handle: Where to write them (a temp file, or a buffer).
        expected_size: If given, the size the blob must have.
        expected_sha256: If given, the SHA-256 hex digest the blob must have.

    Returns:
        The blob's SHA-256 hex digest and its size in bytes.

    Raises:
        BlobIntegrityError: The size or checksum differs from what was expected.
    """
    hasher = hashlib.sha256()
    size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        handle.write(chunk)
        hasher.update(chunk)
        size += len(chunk)
    sha = hasher.hexdigest()
    check_integrity(
        size=size, sha256=sha, expected_size=expected_size, expected_sha256=expected_sha256
    )
    return sha, size
