"""Attachments: JSON, TOML or text files handed to a producer, parsed and size-checked."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from producers.sdk.errors import InvalidInputError
from producers.sdk.jobs import Attachment

#: Default per-attachment limit; a producer definition may set its own.
DEFAULT_MAX_BYTES = 256 * 1024
_SECRET_KEY_WORDS = ("key", "token", "secret", "password", "credential", "authorization")
_FORMATS = {".json": "json", ".toml": "toml"}


def _size_text(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size >= 1024 else f"{size} bytes"


def attachment_from_path(
    path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, sensitive: bool = False
) -> Attachment:
    """Read a file as an attachment, refusing it before reading if it is too large."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInputError(
            f"attachment {str(path)!r} cannot be read: {exc.strerror}"
        ) from None
    if size > max_bytes:
        raise InvalidInputError(
            f"attachment {path.name!r} is {_size_text(size)}; the limit is {_size_text(max_bytes)}",
            field=path.name,
        )
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"attachment {path.name!r} is not UTF-8 text; attachments are JSON, TOML or text",
            field=path.name,
        ) from None
    return Attachment(
        name=path.name,
        content=content,
        format=_FORMATS.get(path.suffix.lower()),
        sensitive=sensitive,
    )


def _mask_secret_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: "***"
            if any(w in str(k).lower() for w in _SECRET_KEY_WORDS)
            else _mask_secret_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_secret_keys(v) for v in value]
    return value


class Attachments:
    """The parsed attachments of one job, validated when the runtime is built."""

    def __init__(self, items: Iterable[Attachment], *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._items: dict[str, Attachment] = {}
        self._parsed: dict[str, Any] = {}
        for item in items:
            size = len(item.content.encode("utf-8"))
            if size > max_bytes:
                raise InvalidInputError(
                    f"attachment {item.name!r} is {_size_text(size)}; "
                    f"the limit is {_size_text(max_bytes)}",
                    field=item.name,
                )
            fmt = item.format or _FORMATS.get(Path(item.name).suffix.lower(), "text")
            self._items[item.name] = item
            self._parsed[item.name] = self._parse(item.name, item.content, fmt)

    @staticmethod
    def _parse(name: str, content: str, fmt: str) -> Any:
        if fmt == "json":
            try:
                return json.loads(content)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"attachment {name!r} is not valid JSON (line {exc.lineno}, "
                    f"column {exc.colno}: {exc.msg})",
                    field=name,
                ) from None
        if fmt == "toml":
            try:
                return tomllib.loads(content)
            except tomllib.TOMLDecodeError as exc:
                raise InvalidInputError(
                    f"attachment {name!r} is not valid TOML ({exc})", field=name
                ) from None
        return content

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        """Attachment names, in the order given."""
        return list(self._items)

    def get(self, name: str) -> Any:
        """The parsed value (dict for JSON/TOML, str for text); error if absent."""
        if name not in self._parsed:
            raise InvalidInputError(
                f"attachment {name!r} is required; given: {', '.join(self._items) or '(none)'}",
                field=name,
            )
        return self._parsed[name]

    def text(self, name: str) -> str:
        """The raw text of an attachment."""
        self.get(name)
        return self._items[name].content

    def redacted(self) -> list[dict[str, Any]]:
        """A summary for diagnostics: name, size, sha256, and content with secrets masked."""
        out = []
        for name, item in self._items.items():
            raw = item.content.encode("utf-8")
            entry: dict[str, Any] = {
                "name": name,
                "size": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
            if item.sensitive:
                entry["content"] = f"<redacted {len(raw)} bytes>"
            else:
                parsed = self._parsed[name]
                entry["content"] = (
                    _mask_secret_keys(parsed) if not isinstance(parsed, str) else parsed[:2000]
                )
            out.append(entry)
        return out
