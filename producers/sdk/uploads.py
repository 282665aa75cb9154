"""Files a job may send to a provider: only what the SDK means to send.

A payload value is untrusted text (a person, a model or a reviewer may have written it), so a
string never names a local file by itself. A file goes to a provider only for a **file field**
(a schema property with ``format: uri``, or an array of them) and only when the value is a
blob URI of the job's own artefact store (an artefact an earlier job made, or a file the CLI's
user put there with ``--file``). Such a field may also carry an ``https://``/``http://`` URL
(the provider fetches it, not us) or a ``data:`` URI (the bytes themselves). Anything else in
a file field (``file://``, a path, a URI of another store) is ``invalid_input`` naming the
field, before any request; in any other field a ``file://`` string is plain text.

:func:`check_file_fields` runs when a job is prepared (no I/O); :func:`open_file_fields`
turns the checked store URIs into :class:`LocalFile` values (a local path, downloaded from S3
to the store's cache, and the stored MIME type) when the job is submitted; the provider's
adapter uploads them its own way (Replicate: inline as a data URI).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.sdk.errors import InvalidInputError
from producers.storage.base import ArtefactStore

__all__ = ["LocalFile", "check_file_fields", "file_fields", "open_file_fields"]


@dataclass(frozen=True)
class LocalFile:
    """A stored artefact on its way to a provider: where it is on disk and what it is."""

    path: Path
    mime_type: str
    size: int


_REMOTE_SCHEMES = ("https://", "http://")


def _is_file_schema(prop: Mapping[str, Any]) -> bool:
    if prop.get("format") == "uri":
        return True
    variants = [v for v in prop.get("anyOf", []) or [] if isinstance(v, Mapping)]
    return any(v.get("format") == "uri" for v in variants)


def file_fields(properties: Mapping[str, Any]) -> frozenset[str]:
    """The fields of an input schema that take a file (``format: uri``, or a list of them)."""
    names = set()
    for name, prop in properties.items():
        if not isinstance(prop, Mapping):
            continue
        items = prop.get("items")
        if _is_file_schema(prop) or (isinstance(items, Mapping) and _is_file_schema(items)):
            names.add(name)
    return frozenset(names)


def _values(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else [value]


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def check_file_fields(
    payload: Mapping[str, Any], fields: Iterable[str], store: ArtefactStore, *, model_id: str
) -> None:
    """Refuse any value of a file field that is not a store blob, a URL or a ``data:`` URI.

    Raises:
        InvalidInputError: naming the field, the value (shortened) and what is allowed.
    """
    for name in sorted(fields):
        if name not in payload or payload[name] is None:
            continue
        for value in _values(payload[name]):
            if isinstance(value, str) and (
                value.startswith(_REMOTE_SCHEMES)
                or value.startswith("data:")
                or store.owns_blob(value)
            ):
                continue
            shown = _shown(value) if isinstance(value, str) else type(value).__name__
            raise InvalidInputError(
                f"input.{name} of {model_id} is a file field, and {shown} is not a file this "
                "job may send: give an artefact of the store (its URI), an https URL or a "
                "data: URI; local paths and file:// URIs are never read",
                field=name,
            )


async def open_file_fields(
    payload: Mapping[str, Any], fields: Iterable[str], store: ArtefactStore
) -> dict[str, Any]:
    """``payload`` with every store blob URI of a file field replaced by a
    :class:`LocalFile` (the adapter uploads it). Call after :func:`check_file_fields`;
    nothing else is touched."""
    out = dict(payload)
    for name in fields:
        value = out.get(name)
        if value is None:
            continue
        resolved = []
        for item in _values(value):
            if isinstance(item, str) and store.owns_blob(item):
                try:
                    stored = await store.describe(item)
                    path = Path(await store.local_path(item))
                    resolved.append(LocalFile(path, stored.mime_type, stored.size))
                except FileNotFoundError:
                    raise InvalidInputError(
                        f"input.{name}: nothing is stored at {_shown(item)}", field=name
                    ) from None
            else:
                resolved.append(item)
        out[name] = resolved if isinstance(value, list) else resolved[0]
    return out
