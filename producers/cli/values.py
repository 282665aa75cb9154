"""Parsing ``KEY=VALUE`` options of the CLI into typed values, and errors into one line."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from producers.sdk.documents import json_or_text
from producers.sdk.errors import InvalidInputError
from producers.sdk.jobs import GENERAL_ATTRIBUTES
from producers.sdk.limits import FILE_INPUT_MAX_BYTES, size_text
from producers.sdk.media import SNIFF_BYTES, sniff_mime
from producers.sdk.uploads import file_fields
from producers.storage.base import CHUNK_SIZE, ArtefactStore

_STRING_GENERAL = {"prompt", "negative_prompt", "aspect_ratio", "voice", "language", "image"}


def _coerce(raw: str, expected: Any, label: str) -> Any:
    types = expected if isinstance(expected, list) else [expected]
    if "string" in types and "array" not in types:
        return raw
    return json_or_text(raw, label=label)


def parse_pairs(
    pairs: Iterable[str],
    *,
    option: str,
    types: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``.

    Values are JSON when they parse as JSON, except where the field is known to be a
    string.

    Raises:
        InvalidInputError: one line naming the option and the key, for a pair without ``=``,
            a number that is not finite (``1e999``, ``NaN``, ``Infinity``), an integer too
            long to convert, or JSON nested too deeply.
    """
    out: dict[str, Any] = {}
    types = types or {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError(f"{option} {pair!r} is not KEY=VALUE", field=key or None)
        expected = "string" if key in _STRING_GENERAL and not types else types.get(key)
        if key in _STRING_GENERAL and option in ("--set", "--file"):
            expected = "string"
        out[key] = _coerce(raw, expected, f"{option} {key}")
    return out


def error_line(error: Exception) -> str:
    """An error as one line: its lines (the reason, the prompt, the hint) joined by ``; ``."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


#: General attributes that take a file (the others are text or numbers).
FILE_GENERAL_ATTRIBUTES = frozenset({"image"})


def file_targets(
    pairs: Iterable[str],
    *,
    model_id: str,
    general: Iterable[str],
    custom: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, Path, bool]]:
    """Check ``--file FIELD=PATH`` pairs against the model's file fields, before any I/O.

    Args:
        pairs: The ``FIELD=PATH`` texts.
        model_id: The model, for messages.
        general: The general attributes the model maps.
        custom: The model's fields (custom attributes) and their schemas.

    Returns:
        ``(field, path, is_general)`` per pair, in order.

    Raises:
        InvalidInputError: a pair without ``=``, or a field that is not a file field of
            the model (the message lists the ones it has).
    """
    takes_files = sorted(
        {a for a in general if a in FILE_GENERAL_ATTRIBUTES} | set(file_fields(custom))
    )
    out: list[tuple[str, Path, bool]] = []
    for pair in pairs:
        field, sep, raw = pair.partition("=")
        field = field.strip()
        if not sep or not field or not raw:
            raise InvalidInputError(f"--file {pair!r} is not FIELD=PATH", field=field or None)
        if field not in takes_files:
            raise InvalidInputError(
                f"--file {field}: {field!r} is not a file field of {model_id}; "
                f"its file fields: {', '.join(takes_files) or '(none)'}",
                field=field,
            )
        out.append((field, Path(raw), field in GENERAL_ATTRIBUTES))
    return out


def open_file(field: str, path: Path, *, max_bytes: int = FILE_INPUT_MAX_BYTES) -> BinaryIO:
    """Open a ``--file`` for reading, refusing it before reading when it cannot be sent.

    Raises:
        InvalidInputError: the path is missing, a folder, unreadable or over ``max_bytes``.
    """
    label = f"--file {field}: {path}"
    try:
        info = path.stat()
    except OSError as exc:
        reason = "does not exist" if isinstance(exc, FileNotFoundError) else exc.strerror
        raise InvalidInputError(f"{label} {reason}; give a file", field=field) from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInputError(f"{label} is a folder; give a file", field=field)
    if info.st_size > max_bytes:
        raise InvalidInputError(
            f"{label} is {size_text(info.st_size)}; the limit is {size_text(max_bytes)}",
            field=field,
        )
    try:
        return path.open("rb")
    except OSError as exc:
        raise InvalidInputError(f"{label} cannot be read: {exc.strerror}", field=field) from None


async def store_file(
    store: ArtefactStore,
    field: str,
    handle: BinaryIO,
    *,
    media: str | None = None,
    max_bytes: int = FILE_INPUT_MAX_BYTES,
) -> str:
    """Stream an opened ``--file`` into the store and return its blob URI; closes ``handle``.

    Args:
        store: Where the file goes.
        field: The field it is for, for messages.
        handle: The file, from :func:`open_file`.
        media: ``"image"`` to refuse a file whose bytes are not an image (``--file image=``).
        max_bytes: The size limit, checked again while streaming.

    Raises:
        InvalidInputError: the file is not of ``media``, or grew over ``max_bytes`` while it
            was read; nothing is stored then.
    """
    with handle:
        head = handle.read(SNIFF_BYTES)
        mime = sniff_mime(head) or "application/octet-stream"
        if media is not None and not mime.startswith(f"{media}/"):
            raise InvalidInputError(
                f"--file {field}: {handle.name} is not an {media} file (its bytes look like "
                f"{mime}); give a PNG, JPEG, GIF or WebP file",
                field=field,
            )

        async def chunks() -> AsyncIterator[bytes]:
            sent = len(head)
            yield head
            while chunk := handle.read(CHUNK_SIZE):
                sent += len(chunk)
                if sent > max_bytes:
                    raise InvalidInputError(
                        f"--file {field} grew over the limit of {size_text(max_bytes)}",
                        field=field,
                    )
                yield chunk

        stored = await store.put_stream(chunks(), mime_type=mime)
    return stored.uri
