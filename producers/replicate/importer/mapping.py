"""Step 4: infer the mapping of general attributes to the model's input fields.

Exact field names first (:mod:`~producers.replicate.importer.vocabulary`), then words in
the fields' descriptions; a field is never mapped twice. Every decision is a note.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from producers.replicate.declaration import FieldMapping
from producers.replicate.importer import vocabulary as words
from producers.replicate.importer.kind import Media
from producers.replicate.importer.report import Notes
from producers.replicate.importer.schema import Field, is_number

#: Largest side a width/height pair is given by default (the declaration's own default).
_DEFAULT_LONG_SIDE = 1024
_DEFAULT_MULTIPLE = 8

#: The general attributes worth reporting as missing, per media family.
RELEVANT: dict[Media, tuple[str, ...]] = {
    "image": ("prompt", "negative_prompt", "aspect_ratio", "count", "seed", "image"),
    "video": ("prompt", "negative_prompt", "aspect_ratio", "seed", "duration_seconds", "image"),
    "speech": ("prompt", "voice", "language"),
    "music": ("prompt", "negative_prompt", "seed", "duration_seconds"),
    "text": ("prompt", "seed"),
}


@dataclass
class _Found:
    fld: Field
    how: str  # "exact name" | "description" | ...


class _Picker:
    """Find fields for general attributes, never the same field twice."""

    def __init__(self, fields: Sequence[Field]) -> None:
        self.fields = list(fields)
        self.claimed: set[str] = set()

    def free(self) -> list[Field]:
        return [f for f in self.fields if f.name not in self.claimed]

    def by_name(self, names: Sequence[str], accept: Callable[[Field], bool]) -> _Found | None:
        index = {f.name.lower(): f for f in self.free()}
        for name in names:
            fld = index.get(name)
            if fld is not None and accept(fld):
                return _Found(fld, "exact name")
        return None

    def by_text(
        self,
        pattern: re.Pattern[str],
        accept: Callable[[Field], bool],
        reject: re.Pattern[str] | None = None,
    ) -> _Found | None:
        for fld in self.free():
            haystack = f"{fld.name.replace('_', ' ')} {fld.text}"
            if not accept(fld) or not pattern.search(haystack):
                continue
            if reject is not None and reject.search(haystack):
                continue
            return _Found(fld, "description")
        return None

    def find(
        self,
        names: Sequence[str],
        accept: Callable[[Field], bool],
        pattern: re.Pattern[str] | None = None,
        reject: re.Pattern[str] | None = None,
    ) -> _Found | None:
        found = self.by_name(names, accept)
        if found is None and pattern is not None:
            found = self.by_text(pattern, accept, reject)
        return found

    def claim(self, *names: str) -> None:
        self.claimed.update(names)


@dataclass
class MappingFound:
    """What step 4 found: the mapping, and notes on each decision and each gap."""

    mapping: dict[str, FieldMapping] = field(default_factory=dict)
    notes: Notes = field(default_factory=Notes)

    def add(self, attribute: str, mapping: FieldMapping, how: str, extra: str = "") -> None:
        """Map ``attribute`` and note how it was found."""
        self.mapping[attribute] = mapping
        target = ", ".join(mapping.targets)
        detail = f"{how}; {extra}" if extra else how
        self.notes.inferred.append(f"mapping: {attribute} -> {target} ({detail})")


def _gcd_step(values: Sequence[Any]) -> int | None:
    numbers = sorted({int(v) for v in values if is_number(v) and float(v).is_integer()})
    if len(numbers) < 2:
        return None
    step = 0
    for number in numbers:
        step = math.gcd(step, number)
    return step or None


def _size_mapping(width: Field, height: Field) -> tuple[FieldMapping, str, str | None]:
    multiple: int | None = None
    why = ""
    for fld in (width, height):
        match = re.search(r"multiple of (\d+)", fld.text)
        if match:
            multiple, why = int(match.group(1)), f"'multiple of {match.group(1)}' in description"
            break
    if multiple is None:
        step = _gcd_step((width.enum or []) + (height.enum or []))
        if step:
            multiple, why = step, f"enum step {step}"
    missing = None
    if multiple is None:
        multiple, why = _DEFAULT_MULTIPLE, f"multiple of {_DEFAULT_MULTIPLE} assumed"
        missing = f"{width.name}/{height.name}: no size step published; assumed multiples of 8"
    highs = [m for m in (width.maximum, height.maximum) if m is not None]
    long_side = _DEFAULT_LONG_SIDE
    if highs:
        long_side = int(min(min(highs), _DEFAULT_LONG_SIDE))
        long_side -= long_side % multiple
    return (
        FieldMapping(
            size_fields=(width.name, height.name), long_side=long_side, multiple_of=multiple
        ),
        f"long side {long_side}, {why}",
        missing,
    )


def _language_values(fld: Field) -> tuple[dict[str, Any], Any] | None:
    """A code -> enum value table if the field's enum holds language names."""
    enum = [v for v in fld.enum or [] if isinstance(v, str)]
    by_name = {name.lower(): code for code, name in words.LANGUAGES.items()}
    table: dict[str, Any] = {}
    for value in enum:
        code = by_name.get(value.lower())
        if code is not None:
            table[code] = value
    if len(table) < 3:
        return None
    auto = next((v for v in enum if v.lower().startswith("auto")), None)
    return dict(sorted(table.items())), auto


def _mentions(fld: Field, others: Iterable[Field]) -> list[str]:
    """Other input fields that ``fld``'s description names as identifiers.

    A name counts when it looks like an identifier (has an underscore) or is written as
    one (quoted, in backticks, or followed by ``=``); plain words such as "image" in
    "the generated image" do not.
    """
    text = fld.description
    found = []
    for other in others:
        if other.name == fld.name:
            continue
        name = re.escape(other.name)
        bare = rf"(?<![\w]){name}(?![\w])"
        written = rf"[`'\"]{name}[`'\"]|(?<![\w]){name}\s*="
        if re.search(written, text) or ("_" in other.name and re.search(bare, text)):
            found.append(other.name)
    return found


def _map_prompts(picker: _Picker, result: MappingFound, media: Media) -> None:
    """prompt, negative_prompt and image."""
    names = words.SPEECH_PROMPT_NAMES if media == "speech" else words.PROMPT_NAMES
    found = picker.find(
        names,
        lambda f: f.is_free_text and "negative" not in f.name.lower(),
        words.PROMPT_TEXT,
        words.NEGATIVE_WORDS,
    )
    if found:
        picker.claim(found.fld.name)
        result.add("prompt", FieldMapping(field=found.fld.name), found.how)

    found = picker.find(words.NEGATIVE_NAMES, lambda f: f.is_free_text, words.NEGATIVE_TEXT)
    if found:
        picker.claim(found.fld.name)
        result.add("negative_prompt", FieldMapping(field=found.fld.name), found.how)

    def image_like(f: Field) -> bool:
        return f.is_uri or f.is_uri_list or (f.is_free_text and "image" in f.name.lower())

    found = picker.find(words.IMAGE_NAMES, image_like, words.IMAGE_TEXT, words.IMAGE_REJECT)
    if found:
        picker.claim(found.fld.name)
        as_list = found.fld.is_uri_list
        extra = "wrapped in a list (array field)" if as_list else ""
        result.add("image", FieldMapping(field=found.fld.name, as_list=as_list), found.how, extra)


def _map_shape(picker: _Picker, result: MappingFound) -> None:
    """aspect_ratio (a ratio field, else a width/height pair) and count."""

    def ratio_like(f: Field) -> bool:
        enum = f.enum
        return f.is_string and (
            enum is None or any(isinstance(v, str) and words.RATIO.match(v) for v in enum)
        )

    found = picker.find(words.ASPECT_NAMES, ratio_like, re.compile(r"aspect ratio"))
    if found:
        picker.claim(found.fld.name)
        enum = found.fld.enum
        fallback: Any = None
        extra = "free text"
        if enum is not None:
            default = found.fld.prop.get("default")
            fallback = "16:9" if "16:9" in enum else "1:1" if "1:1" in enum else default
            extra = f"fallback {fallback!r}" if fallback is not None else "no fallback"
        mapping = FieldMapping(field=found.fld.name, fallback=fallback)
        result.add("aspect_ratio", mapping, found.how, extra)
    else:
        free = {f.name.lower(): f for f in picker.free()}
        for width_name, height_name in words.SIZE_PAIRS:
            width, height = free.get(width_name), free.get(height_name)
            if width and height and width.is_numeric and height.is_numeric:
                size, detail, missing = _size_mapping(width, height)
                picker.claim(width.name, height.name)
                result.add("aspect_ratio", size, "width and height fields", detail)
                if missing:
                    result.notes.unconfirmed.append(missing)
                break

    found = picker.find(
        words.COUNT_NAMES,
        lambda f: f.is_integer and not words.COUNT_REJECT.search(f.name.lower()),
        words.COUNT_TEXT,
        words.COUNT_REJECT,
    )
    if found:
        picker.claim(found.fld.name)
        result.add("count", FieldMapping(field=found.fld.name, snap=True), found.how, "snap")


def _map_numbers(picker: _Picker, result: MappingFound, media: Media) -> None:
    """seed and duration_seconds."""
    found = picker.find(words.SEED_NAMES, lambda f: f.is_integer, re.compile(r"\b(random )?seed\b"))
    if found:
        picker.claim(found.fld.name)
        result.add("seed", FieldMapping(field=found.fld.name), found.how)
    else:
        stringly = picker.by_name(words.SEED_NAMES, lambda f: f.is_string)
        if stringly:
            result.notes.not_inferred.append(
                f"general attribute 'seed': field {stringly.fld.name!r} is a string, not an "
                "integer; not mapped (an integer seed would fail validation)"
            )

    def duration_like(f: Field) -> bool:
        return f.is_numeric and not words.DURATION_REJECT.search(f.text)

    found = picker.by_name(words.DURATION_NAMES, duration_like)
    if found is None:
        for fld in picker.free():
            if (
                duration_like(fld)
                and words.DURATION_NAME.search(fld.name.lower())
                and re.search(r"second|millisecond|\bms\b|duration", fld.text)
            ):
                found = _Found(fld, "name and description")
                break
    if found is None:
        found = picker.by_text(words.DURATION_TEXT, duration_like)
    if found:
        fld = found.fld
        picker.claim(fld.name)
        scale: float | None = None
        extra = "snap"
        if fld.name.lower().endswith("_ms") or "millisecond" in fld.text:
            scale, extra = 1000.0, "scale 1000 (milliseconds), snap"
        elif "minute" in fld.text and "second" not in fld.text:
            scale, extra = 1 / 60, "scale 1/60 (minutes), snap"
        mapping = FieldMapping(field=fld.name, scale=scale, snap=True)
        result.add("duration_seconds", mapping, found.how, extra)
    elif media in ("video", "music"):
        frames = [
            f.name
            for f in picker.free()
            if f.is_numeric
            and (
                re.search(r"frame|fps", f.name.lower())
                or re.match(r"(the )?(number of frames|frames per second|frame rate)", f.text)
            )
        ]
        if frames:
            result.notes.not_inferred.append(
                "general attribute 'duration_seconds': no duration field; the length is set "
                f"by {', '.join(frames)} (needs a mapper function)"
            )


def _map_voice(picker: _Picker, result: MappingFound) -> None:
    """voice and language."""
    found = picker.find(words.VOICE_NAMES, lambda f: f.is_string and not f.is_uri, words.VOICE_TEXT)
    if found:
        picker.claim(found.fld.name)
        extra = f"{len(found.fld.enum)} voices in the enum" if found.fld.enum else "free text"
        result.add("voice", FieldMapping(field=found.fld.name), found.how, extra)

    found = picker.by_name(words.LANGUAGE_NAMES, lambda f: f.is_string)
    how = found.how if found else ""
    if found is None:
        for fld in picker.free():
            if "lang" in fld.name.lower() and fld.is_string and _language_values(fld):
                found, how = _Found(fld, "name"), "field name and enum of language names"
                result.notes.unconfirmed.append(
                    f"language -> {fld.name}: the field's description is "
                    f"{fld.description!r}; it may only hint the language"
                )
                break
    if found is None:
        return
    picker.claim(found.fld.name)
    table = _language_values(found.fld)
    if table is None:
        result.add("language", FieldMapping(field=found.fld.name), how)
        return
    values, auto = table
    extra = "language codes looked up in the enum of language names" + (
        f"; fallback {auto!r}" if auto else ""
    )
    mapping = FieldMapping(field=found.fld.name, values=values, fallback=auto)
    result.add("language", mapping, how, extra)


def infer_mapping(fields: Sequence[Field], media: Media) -> MappingFound:
    """Map general attributes to fields: exact names first, then descriptions.

    The notes also name each attribute relevant to ``media`` that found no field, and
    each mapped field whose description refers to other fields.
    """
    picker = _Picker(fields)
    result = MappingFound()
    _map_prompts(picker, result, media)
    if media != "text":  # an LLM has no size, count or voice (its max tokens is no count)
        _map_shape(picker, result)
    _map_numbers(picker, result, media)
    if media != "text":
        _map_voice(picker, result)
    # Facts about the mapped fields that the description ties to other fields.
    for attribute, mapping in result.mapping.items():
        for target in mapping.targets:
            fld = next(f for f in fields if f.name == target)
            depends = _mentions(fld, fields)
            if depends:
                result.notes.unconfirmed.append(
                    f"{attribute} -> {target}: its description refers to "
                    f"{', '.join(depends)}: {fld.description!r}"
                )
    for attribute in RELEVANT[media]:
        if attribute not in result.mapping and not any(
            line.startswith(f"general attribute '{attribute}'")
            for line in result.notes.not_inferred
        ):
            result.notes.not_inferred.append(f"general attribute '{attribute}': no matching field")
    return result
