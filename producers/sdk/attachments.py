"""Attachments: JSON, TOML or text files handed to a producer, parsed and size-checked."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from producers.sdk.documents import parse_document, read_text
from producers.sdk.errors import InvalidInputError
from producers.sdk.jobs import Attachment
from producers.sdk.limits import ATTACHMENT_MAX_BYTES, size_text

#: Default per-attachment limit; a producer definition may set its own.
DEFAULT_MAX_BYTES = ATTACHMENT_MAX_BYTES
_SECRET_KEY_WORDS = ("key", "token", "secret", "password", "credential", "authorization")
_FORMATS: dict[str, Literal["json", "toml"]] = {".json": "json", ".toml": "toml"}


def _of(owner: str | None) -> str:
    return f" of {owner}" if owner else ""


def attachment_from_path(
    path: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sensitive: bool = False,
    owner: str | None = None,
) -> Attachment:
    """Read a file as an attachment, refusing it before reading if it cannot be one.

    Args:
        path: The file (JSON, TOML or UTF-8 text).
        max_bytes: The size limit, checked before reading.
        sensitive: Keep its content out of diagnostics.
        owner: Who the attachment is for (``"replicate:owner/name"``, ``"producer X model
            Y"``), named in the messages.

    Raises:
        InvalidInputError: one line naming the attachment (and ``owner``): a folder, a
            missing or unreadable file, one over ``max_bytes`` or not UTF-8 text.
    """
    path = Path(path)
    content = read_text(
        path,
        what=f"attachment{_of(owner)}",
        max_bytes=max_bytes,
        expected="a JSON, TOML or text file",
    )
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
                    f"attachment {item.name!r} is {size_text(size)}; "
                    f"the limit is {size_text(max_bytes)}",
                    field=item.name,
                )
            fmt = item.format or _FORMATS.get(Path(item.name).suffix.lower()) or "text"
            self._items[item.name] = item
            self._parsed[item.name] = self._parse(item.name, item.content, fmt)

    @staticmethod
    def _parse(name: str, content: str, fmt: str) -> Any:
        label = f"attachment {name!r}"
        if fmt == "json":
            return parse_document(content, "json", label=label)
        if fmt == "toml":
            return parse_document(content, "toml", label=label)
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
