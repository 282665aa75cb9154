"""Step 3: infer the kind: the media family from words and examples, then the kind.

The media family (image, video, speech, music, text) comes first, from an LLM's Output
schema (a list of strings streamed or concatenated: text-to-text), the category, the
description, the example output's file type or, as a guess, telling field names; the
mapping step needs it. The kind proper (``text-to-image`` or ``image-to-image``...) then
follows from whether the mapped image field is required.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from producers.replicate.declaration import FieldMapping
from producers.replicate.importer.metadata import Metadata, example_urls, extension
from producers.replicate.importer.report import Notes, import_error
from producers.replicate.importer.schema import Field, Schema
from producers.sdk.jobs import Kind

Media = Literal["image", "video", "speech", "music", "text"]

_MEDIA_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("video", re.compile(r"\bvideos?\b|text-to-video|image-to-video|\bt2v\b|\bi2v\b")),
    ("speech", re.compile(r"\bspeech\b|\btts\b|text[- ]to[- ]speech|\bnarrat\w*|\bvoices?\b")),
    ("music", re.compile(r"\bmusic\w*|\bsongs?\b")),
    ("image", re.compile(r"\bimages?\b|text[- ]to[- ]image|\bpictures?\b|\bphoto\w*")),
    ("audio", re.compile(r"\baudio\b|\bsounds?\b")),
    ("text", re.compile(r"\blanguage models?\b|\bllms?\b|text[- ]generation|text[- ]to[- ]text")),
)
_EXTENSION_MEDIA = {
    "png": "image",
    "jpg": "image",
    "jpeg": "image",
    "webp": "image",
    "wav": "audio",
    "mp3": "audio",
    "flac": "audio",
    "ogg": "audio",
    "mp4": "video",
    "webm": "video",
    "mov": "video",
}


@dataclass(frozen=True)
class MediaFound:
    """The media family, its evidence, whether it is only a guess, and the notes."""

    media: Media
    why: str
    guessed: bool
    notes: Notes = field(default_factory=Notes)


@dataclass(frozen=True)
class KindFound:
    """The kind and the notes that explain it."""

    kind: Kind
    notes: Notes


def text_output(output_schema: Mapping[str, Any] | None) -> str | None:
    """Why an Output schema is an LLM's (None if it is not): a list of strings streamed
    (``x-cog-array-type: iterator``) or shown concatenated (``x-cog-array-display:
    concatenate``), or one string that is not a URI."""
    if not isinstance(output_schema, Mapping):
        return None
    kind = output_schema.get("type")
    items = output_schema.get("items")
    if kind == "array" and isinstance(items, Mapping) and items.get("type") == "string":
        if items.get("format") == "uri":
            return None
        marks = [
            f"{key} {output_schema[key]}"
            for key in ("x-cog-array-type", "x-cog-array-display")
            if output_schema.get(key) in ("iterator", "concatenate")
        ]
        if marks:
            return f"the Output schema is a list of strings ({', '.join(marks)})"
        return None
    if kind == "string" and output_schema.get("format") != "uri":
        return "the Output schema is one string, not a URI"
    return None


def _media_from_words(text: str) -> str | None:
    lowered = text.lower()
    for media, pattern in _MEDIA_PATTERNS:
        if pattern.search(lowered):
            return media
    return None


def _audio_flavour(fields: Sequence[Field], description: str | None) -> tuple[Media, str]:
    names = {f.name.lower() for f in fields}
    if names & {"voice", "voice_id", "speaker", "speaker_id"}:
        return "speech", "it has a voice field"
    if "text" in names and "prompt" not in names:
        return "speech", "its input is a 'text' field"
    if description and re.search(r"speech|tts|voice|narrat", description.lower()):
        return "speech", "the description mentions speech"
    return "music", "no speech or voice field"


def infer_media(meta: Metadata, fields: Sequence[Field], source: str) -> MediaFound:
    """The media family the model makes.

    Raises:
        DeclarationError: nothing in the metadata says what the model makes.
    """
    evidence: list[tuple[str, str]] = []
    streamed = text_output(meta.output_schema)
    if streamed:
        evidence.append(("text", streamed))
    if not evidence and meta.category:
        found = _media_from_words(meta.category)
        if found:
            evidence.append((found, f"category {meta.category!r}"))
    if not evidence and meta.description:
        found = _media_from_words(meta.description)
        if found:
            evidence.append((found, f"description {meta.description[:60]!r}"))
    if not evidence:
        for url in example_urls(meta.example_output):
            ext = extension(url)
            if ext in _EXTENSION_MEDIA:
                evidence.append((_EXTENSION_MEDIA[ext], f"example output is a .{ext} file"))
                break
    guessed = False
    if not evidence:
        names = {f.name.lower() for f in fields}
        if names & {"fps", "num_frames", "frames", "video_length"}:
            evidence.append(("video", "it has frame fields"))
        elif names & {"voice", "voice_id", "speaker", "text"}:
            evidence.append(("speech", "it has text/voice fields"))
        elif names & {"width", "height", "num_outputs", "num_images", "aspect_ratio"}:
            evidence.append(("image", "it has image size fields"))
        elif names & {"duration", "bpm"}:
            evidence.append(("music", "it has a duration and no image or voice field"))
        guessed = bool(evidence)
    if not evidence:
        raise import_error(
            source,
            f"{meta.model}: cannot tell what the model makes (no category, description, "
            "example output or telling field names); add 'category' (e.g. 'Image Models', "
            "'Video Models', 'Speech Models', 'Music Models')",
        )
    media, why = evidence[0]
    if media == "audio":
        flavour, reason = _audio_flavour(fields, meta.description)
        notes = Notes(not_inferred=[f"kind: {why} says audio; guessed {flavour} because {reason}"])
        return MediaFound(flavour, f"{why}, {reason}", True, notes)
    return MediaFound(cast(Media, media), why, guessed)


def _kind(
    media: Media, mapping: Mapping[str, FieldMapping], fields: Sequence[Field]
) -> tuple[Kind, str]:
    image = mapping.get("image")
    image_field = next((f for f in fields if image and f.name == image.field), None)
    has_prompt = "prompt" in mapping
    if media == "video":
        if image_field is not None and (image_field.required or not has_prompt):
            return Kind.IMAGE_TO_VIDEO, f"image field {image_field.name!r} is required"
        if image_field is not None:
            return Kind.TEXT_TO_VIDEO, f"image field {image_field.name!r} is optional"
        return Kind.TEXT_TO_VIDEO, "no image field"
    if media == "image":
        if image_field is not None and (image_field.required or not has_prompt):
            return Kind.IMAGE_TO_IMAGE, f"image field {image_field.name!r} is required"
        if image_field is not None:
            return Kind.TEXT_TO_IMAGE, f"image field {image_field.name!r} is optional"
        return Kind.TEXT_TO_IMAGE, "no image field"
    if media == "text":
        return Kind.TEXT, ""
    if media == "speech":
        return Kind.TEXT_TO_SPEECH, ""
    return Kind.TEXT_TO_MUSIC, ""


def infer_kind(media: MediaFound, mapping: Mapping[str, FieldMapping], schema: Schema) -> KindFound:
    """The kind, from the media family and the mapped image field (required or not)."""
    kind, kind_why = _kind(media.media, mapping, schema.fields)
    if schema.output_schema is None:
        output_kind = "no Output schema"
    elif kind is Kind.TEXT:
        output_kind = "output is text"
    elif schema.output_schema.get("type") == "array":
        output_kind = "output is a list of URIs"
    else:
        output_kind = "output is one URI"
    notes = Notes(not_inferred=list(media.notes.not_inferred))
    if media.guessed:
        notes.not_inferred.append(f"kind: guessed {kind.value} ({media.why})")
    else:
        evidence = "; ".join(part for part in (media.why, kind_why, output_kind) if part)
        notes.inferred.append(f"kind: {kind.value} ({evidence})")
    return KindFound(kind, notes)
