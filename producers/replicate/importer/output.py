"""Step 5: infer the output: one file or a list, the format field and the default format;
for an LLM, its system prompt and max-tokens fields."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from producers.replicate.declaration import OutputSpec
from producers.replicate.importer.metadata import Metadata, example_urls, extension
from producers.replicate.importer.report import Notes
from producers.replicate.importer.schema import Field, Schema

_KNOWN_FORMATS: dict[str, frozenset[str]] = {
    "image": frozenset({"png", "jpg", "webp", "gif"}),
    "audio": frozenset({"wav", "mp3", "flac", "ogg", "opus", "aac", "m4a"}),
    "video": frozenset({"mp4", "webm", "mov", "gif"}),
}
_DEFAULT_FORMAT = {"image": "png", "audio": "wav", "video": "mp4"}


@dataclass(frozen=True)
class OutputFound:
    """What step 5 found: the output shape and the notes that explain it."""

    output: OutputSpec
    notes: Notes


def _normal_format(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    match = re.match(r"[a-z0-9]+", value.strip().lower())
    if not match:
        return None
    token = match.group(0)
    return "jpg" if token == "jpeg" else token


def _format_field(fields: Sequence[Field], media: str) -> Field | None:
    known = _KNOWN_FORMATS[media]
    candidates = []
    for fld in fields:
        if "format" not in fld.name.lower() or not fld.enum:
            continue
        formats = {_normal_format(v) for v in fld.enum}
        if formats & known:
            candidates.append(fld)
    candidates.sort(key=lambda f: (f.name.lower() != "output_format", f.order))
    return candidates[0] if candidates else None


#: Input fields of an LLM, best first: the system prompt, and the most tokens to generate.
_SYSTEM_NAMES = ("system_prompt", "system", "system_message", "instructions")
_MAX_TOKENS_NAMES = (
    "max_tokens",
    "max_new_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "max_length",
)


def _first(fields: Sequence[Field], names: Sequence[str], integer: bool) -> Field | None:
    by_name = {f.name.lower(): f for f in fields}
    for name in names:
        fld = by_name.get(name)
        if fld is not None and (fld.is_integer if integer else fld.is_string):
            return fld
    return None


def _text_output(schema: Schema) -> OutputFound:
    """A text-to-text model's output: its text (tokens joined), and its system prompt and
    max-tokens fields."""
    notes = Notes()
    out = schema.output_schema
    if out is None:
        notes.unconfirmed.append(
            "output shape: the metadata has no Output schema; a string or a list of tokens "
            "(joined) is assumed"
        )
    elif out.get("type") == "array":
        notes.inferred.append("output: text, a list of tokens joined (Output schema)")
    else:
        notes.inferred.append("output: text, one string (Output schema)")
    system = _first(schema.fields, _SYSTEM_NAMES, integer=False)
    max_tokens = _first(schema.fields, _MAX_TOKENS_NAMES, integer=True)
    if system is not None:
        notes.inferred.append(f"output: the system prompt goes in {system.name!r}")
    else:
        notes.not_inferred.append(
            "output: no system prompt field; the system prompt is put before the prompt"
        )
    if max_tokens is not None:
        notes.inferred.append(f"output: max_output_tokens goes in {max_tokens.name!r}")
    else:
        notes.not_inferred.append("output: no field for the most tokens to generate")
    output = OutputSpec(
        media="text",
        system_field=system.name if system is not None else None,
        max_tokens_field=max_tokens.name if max_tokens is not None else None,
    )
    return OutputFound(output, notes)


def infer_output(meta: Metadata, schema: Schema, media: str, has_count: bool) -> OutputFound:
    """The output shape of a model making ``media`` (``image``, ``audio``, ``video`` or
    ``text``: an LLM, see :func:`_text_output`).

    Args:
        meta: The metadata (for the example prediction's output).
        schema: The schemas (the Output schema says one file or a list).
        media: The media of the model's kind.
        has_count: True if a count attribute was mapped (a list is then assumed when no
            Output schema says otherwise).
    """
    if media == "text":
        return _text_output(schema)
    notes = Notes()
    multiple = False
    out = schema.output_schema
    if out is not None:
        kind = out.get("type")
        if kind == "array":
            multiple = True
            notes.inferred.append("output: a list of files (Output schema is an array)")
        elif kind == "object":
            names = ", ".join(sorted(out.get("properties", {})))
            notes.inferred.append(f"output: one file (Output schema is an object: {names})")
            notes.not_inferred.append(
                f"output: the Output schema is an object ({names}); the file field must be "
                "picked by the producer"
            )
        else:
            notes.inferred.append("output: one file (Output schema is a single URI)")
    else:
        multiple = has_count
        notes.inferred.append(
            "output: " + ("a list of files (it has a count field)" if multiple else "one file")
        )
        notes.unconfirmed.append(
            "output shape: the metadata has no Output schema; "
            + ("a list" if multiple else "a single file")
            + " is assumed"
        )

    fmt_field = _format_field(schema.fields, media)
    default_format: str | None = None
    if fmt_field is not None:
        default_format = _normal_format(fmt_field.prop.get("default"))
        notes.inferred.append(
            f"output: format chosen by {fmt_field.name!r}"
            + (f", default {default_format!r}" if default_format else "")
        )
    if default_format is None:
        for url in example_urls(meta.example_output):
            ext = extension(url)
            if ext and ext not in ("txt", "json"):
                default_format = ext
                notes.inferred.append(f"output: default format {ext!r} (example output URL)")
                if ext not in _KNOWN_FORMATS[media] or (media == "video" and ext == "gif"):
                    notes.unconfirmed.append(
                        f"output format: the example prediction returned .{ext} files for a "
                        f"{media} model"
                    )
                break
    if default_format is None:
        default_format = _DEFAULT_FORMAT[media]
        notes.unconfirmed.append(
            f"output format: no format field and no example output; {default_format!r} assumed"
        )
    output = OutputSpec(
        media=media,
        multiple=multiple,
        format_field=fmt_field.name if fmt_field is not None else None,
        default_format=default_format,
    )
    return OutputFound(output, notes)
