"""What a payload asks a model to make: media, count, aspect ratio, duration, format; for a
text model, the answer's JSON Schema (given to the model in its system prompt)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from producers.clients.base import MediaHints, estimate_speech_seconds
from producers.replicate.declaration import ModelDeclaration
from producers.replicate.mapping import effective_input, prompt_of
from producers.sdk.jobs import Kind

_DEFAULT_SECONDS = {"audio": 10.0, "video": 5.0}
_SCHEMA_OPEN = "<json-schema>"
_SCHEMA_CLOSE = "</json-schema>"
_SCHEMA_BLOCK = re.compile(
    re.escape(_SCHEMA_OPEN) + r"\s*(\{.*?\})\s*" + re.escape(_SCHEMA_CLOSE), re.DOTALL
)


def json_instruction(schema: Mapping[str, Any], name: str = "output") -> str:
    """What a text model is told when its answer must be JSON: the schema, between
    ``<json-schema>`` tags (:func:`schema_in_prompt` reads it back)."""
    text = json.dumps(schema, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return (
        f"Answer with one JSON value (the {name}) and nothing else: no prose before or after "
        "it. It must be valid against this JSON Schema:\n"
        f"{_SCHEMA_OPEN}\n{text}\n{_SCHEMA_CLOSE}"
    )


def schema_in_prompt(text: str) -> dict[str, Any] | None:
    """The JSON Schema a prompt made by :func:`json_instruction` carries (the last one),
    or None if it carries none."""
    for match in reversed(list(_SCHEMA_BLOCK.finditer(text))):
        try:
            found = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    return None


def system_prompt_of(declaration: ModelDeclaration, payload: Mapping[str, Any]) -> str | None:
    """A text model's system prompt in ``payload`` (None if it has no such field or none
    is set)."""
    name = declaration.output.system_field
    value = payload.get(name) if name else None
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def output_count(declaration: ModelDeclaration, effective: Mapping[str, Any]) -> int:
    """How many outputs the model returns for this input."""
    if not declaration.output.multiple:
        return 1
    mapping = declaration.mapping.get("count")
    if mapping is not None and mapping.field is not None:
        value = _number(effective.get(mapping.field))
        if value is not None and value >= 1:
            return int(value)
    return 1


def duration_seconds(declaration: ModelDeclaration, effective: Mapping[str, Any]) -> float | None:
    """The requested duration in seconds, read back through the declaration's mapping."""
    mapping = declaration.mapping.get("duration_seconds")
    if mapping is not None and mapping.field is not None:
        value = _number(effective.get(mapping.field))
        if value is not None and value > 0:
            return value / (mapping.scale or 1.0)
    frames = _number(effective.get("num_frames") or effective.get("video_length"))
    fps = _number(effective.get("fps"))
    if frames and fps:
        return frames / fps
    if declaration.kind is Kind.TEXT_TO_SPEECH:
        return estimate_speech_seconds(prompt_of(declaration, effective) or "")
    return _DEFAULT_SECONDS.get(declaration.output.media)


def media_hints(declaration: ModelDeclaration, payload: Mapping[str, Any]) -> MediaHints:
    """The shape of the output the model would produce for ``payload``."""
    effective = effective_input(declaration, payload)
    if declaration.output.media == "text":
        prompt = prompt_of(declaration, effective) or ""
        system = system_prompt_of(declaration, effective)
        schema = schema_in_prompt(system) if system else None
        return MediaHints(
            media="text",
            prompt=prompt,
            json_schema=schema if schema is not None else schema_in_prompt(prompt),
        )
    aspect_ratio: str | None = None
    width: int | None = None
    height: int | None = None
    mapping = declaration.mapping.get("aspect_ratio")
    if mapping is not None and mapping.field is not None:
        value = effective.get(mapping.field)
        if isinstance(value, str) and ":" in value:
            aspect_ratio = value
    size_fields = mapping.size_fields if mapping is not None and mapping.size_fields else None
    size_fields = size_fields or ("width", "height")
    if aspect_ratio is None:
        w, h = (_number(effective.get(name)) for name in size_fields)
        if w and h:
            width, height = int(w), int(h)
    fmt: str | None = None
    if declaration.output.format_field:
        value = effective.get(declaration.output.format_field)
        fmt = None if value is None else str(value)
    media = declaration.output.media
    return MediaHints(
        media=media,
        count=output_count(declaration, effective),
        aspect_ratio=aspect_ratio,
        width=width,
        height=height,
        duration_seconds=None if media == "image" else duration_seconds(declaration, effective),
        format=fmt or declaration.output.default_format,
        prompt=prompt_of(declaration, effective) or "",
        with_audio=bool(effective.get("generate_audio")) if media == "video" else False,
    )
