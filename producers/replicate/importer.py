"""Write a model declaration from a provider's published model metadata.

``tutopanda models import FILE`` (ARCHITECTURE.md, "Model declarations") reads what a
provider publishes about one model and infers a :class:`ModelDeclaration`: its kind, the
mapping of general attributes to input fields, the output shape, secrets, a cost formula
and the median latency. Two input forms are accepted:

* form 1: ``model``, ``category``, ``cost`` (price text), ``median_seconds`` and
  ``input_schema`` (the model's JSON Schema for its input);
* form 2: Replicate's model metadata: ``model`` (or ``owner`` + ``name``), ``category``,
  ``description``, ``version``, ``openapi_schema`` (or ``latest_version.openapi_schema``)
  with ``components.schemas.Input``/``Output``, and ``default_example`` (a real prediction).

Inference uses only the metadata: category words, field names, field descriptions, enums,
the output schema and the example prediction. There is no table of known models; every
guess, and everything that could not be inferred, is reported in :class:`ImportResult`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlparse

from producers.replicate.declaration import (
    CostRateBy,
    CostSpec,
    CostUnit,
    FieldMapping,
    ModelDeclaration,
    OutputSpec,
    dump_declaration,
    parse_declaration,
)
from producers.sdk.documents import read_document
from producers.sdk.errors import DeclarationError
from producers.sdk.jobs import Kind
from producers.sdk.limits import DECLARATION_MAX_BYTES
from producers.sdk.schema import normalise_openapi_schema

__all__ = [
    "ImportResult",
    "import_file",
    "import_metadata",
    "parse_cost",
    "write_declaration",
]

Media = Literal["image", "video", "speech", "music"]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_RATIO = re.compile(r"^\d+(?:\.\d+)?:\d+(?:\.\d+)?$")
#: Largest side a width/height pair is given by default (the declaration's own default).
_DEFAULT_LONG_SIDE = 1024
_DEFAULT_MULTIPLE = 8

# --------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """A declaration inferred from metadata, with what was inferred and what was not.

    Attributes:
        declaration: The declaration (valid: it passed :func:`parse_declaration`).
        inferred: Human-readable lines, one per decision and its evidence, e.g.
            ``"mapping: aspect_ratio -> aspect_ratio (exact name; fallback '16:9')"``.
        not_inferred: Lines for what could not be inferred or was only guessed, e.g.
            ``"general attribute 'voice': no matching field"``.
    """

    declaration: ModelDeclaration
    inferred: list[str] = field(default_factory=list)
    not_inferred: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# Reading the two forms
# --------------------------------------------------------------------------------------


@dataclass
class _Metadata:
    model: str
    version: str | None
    category: str | None
    description: str | None
    cost_text: str | None
    median_seconds: float | None
    median_from_example: bool
    input_schema: dict[str, Any]
    components: dict[str, Any]
    output_schema: dict[str, Any] | None
    example_output: Any
    origin: str | None
    form: int


def _fail(source: str, message: str) -> DeclarationError:
    return DeclarationError(f"cannot import model metadata {source}: {message}")


def _model_name(data: Mapping[str, Any], source: str) -> str:
    model = data.get("model")
    if not isinstance(model, str):
        owner, name = data.get("owner"), data.get("name")
        if isinstance(owner, str) and isinstance(name, str) and owner and name:
            model = f"{owner}/{name}"
    if not isinstance(model, str) or not model.strip():
        keys = ", ".join(sorted(map(str, data))) or "none"
        raise _fail(
            source,
            "no model name: expected 'model': 'owner/name' (or 'owner' and 'name'); "
            f"top-level keys: {keys}",
        )
    model = model.strip()
    if ":" in model and _MODEL_NAME.match(model.split(":", 1)[0]):
        model = model.split(":", 1)[0]  # "owner/name:version" -> "owner/name"
    if not _MODEL_NAME.match(model):
        raise _fail(source, f"model name {model!r} is not of the form owner/name")
    return model


def _read(data: Any, source: str) -> _Metadata:
    if not isinstance(data, Mapping):
        raise _fail(source, f"expected a JSON object at the top level, got {type(data).__name__}")
    model = _model_name(data, source)
    latest = data.get("latest_version")
    latest = latest if isinstance(latest, Mapping) else {}
    openapi = data.get("openapi_schema", latest.get("openapi_schema"))
    version = data.get("version", latest.get("id"))
    output_schema: dict[str, Any] | None = None
    components: dict[str, Any] = {}
    if isinstance(openapi, Mapping):
        schemas = openapi.get("components", {})
        schemas = schemas.get("schemas") if isinstance(schemas, Mapping) else None
        if not isinstance(schemas, Mapping) or not isinstance(schemas.get("Input"), Mapping):
            raise _fail(source, f"{model}: openapi_schema has no components.schemas.Input")
        components = {str(k): v for k, v in schemas.items()}
        input_schema = dict(schemas["Input"])
        if isinstance(schemas.get("Output"), Mapping):
            output_schema = dict(schemas["Output"])
        form = 2
    elif isinstance(data.get("input_schema"), Mapping):
        input_schema = dict(data["input_schema"])
        form = 1
    else:
        raise _fail(
            source,
            f"{model}: no input schema: expected 'input_schema' (a JSON Schema of the input) "
            "or 'openapi_schema' with components.schemas.Input (Replicate's OpenAPI document)",
        )
    props = input_schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        raise _fail(source, f"{model}: the input schema has no properties (no input fields)")

    example = data.get("default_example")
    example = example if isinstance(example, Mapping) else {}
    median: float | None = None
    from_example = False
    raw_median = data.get("median_seconds")
    if isinstance(raw_median, int | float) and not isinstance(raw_median, bool):
        median = float(raw_median)
    else:
        metrics = example.get("metrics")
        predict = metrics.get("predict_time") if isinstance(metrics, Mapping) else None
        if isinstance(predict, int | float) and not isinstance(predict, bool):
            median, from_example = round(float(predict), 1), True

    cost = data.get("cost", data.get("price"))
    category = data.get("category")
    description = data.get("description")
    origin = data.get("source")
    return _Metadata(
        model=model,
        version=version if isinstance(version, str) and version else None,
        category=category if isinstance(category, str) and category.strip() else None,
        description=description.strip()
        if isinstance(description, str) and description.strip()
        else None,
        cost_text=cost.strip() if isinstance(cost, str) else None,
        median_seconds=median,
        median_from_example=from_example,
        input_schema=input_schema,
        components=components,
        output_schema=output_schema,
        example_output=example.get("output"),
        origin=origin if isinstance(origin, str) else None,
        form=form,
    )


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _referenced_components(
    schema: Mapping[str, Any], components: Mapping[str, Any]
) -> dict[str, Any]:
    """The components ``schema`` references, directly or through other components."""
    wanted: dict[str, Any] = {}
    pending = list(_refs(schema))
    while pending:
        ref = pending.pop()
        name = ref.rsplit("/", 1)[-1]
        if name in wanted or name not in components:
            continue
        wanted[name] = components[name]
        pending.extend(_refs(components[name]))
    return dict(sorted(wanted.items()))


# --------------------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    prop: Mapping[str, Any]
    required: bool
    order: int

    @property
    def types(self) -> frozenset[str]:
        kind = self.prop.get("type")
        if isinstance(kind, str):
            found = {kind}
        elif isinstance(kind, list):
            found = {str(k) for k in kind}
        else:
            found = set()
            for value in self.enum or []:
                if isinstance(value, bool):
                    found.add("boolean")
                elif isinstance(value, int):
                    found.add("integer")
                elif isinstance(value, float):
                    found.add("number")
                elif isinstance(value, str):
                    found.add("string")
        return frozenset(found - {"null"})

    @property
    def enum(self) -> list[Any] | None:
        values = self.prop.get("enum")
        return [v for v in values if v is not None] if isinstance(values, list) else None

    @property
    def text(self) -> str:
        """Title and description, lower case, for matching words."""
        parts = [self.prop.get("description"), self.prop.get("title")]
        return " ".join(p for p in parts if isinstance(p, str)).lower()

    @property
    def description(self) -> str:
        value = self.prop.get("description")
        return value if isinstance(value, str) else ""

    @property
    def is_string(self) -> bool:
        return "string" in self.types

    @property
    def is_integer(self) -> bool:
        return "integer" in self.types

    @property
    def is_numeric(self) -> bool:
        return bool(self.types & {"integer", "number"})

    @property
    def is_boolean(self) -> bool:
        return self.types == frozenset({"boolean"})

    @property
    def is_uri(self) -> bool:
        return self.is_string and self.prop.get("format") == "uri"

    @property
    def is_uri_list(self) -> bool:
        items = self.prop.get("items")
        return (
            "array" in self.types
            and isinstance(items, Mapping)
            and (items.get("format") == "uri" or items.get("type") == "string")
        )

    @property
    def is_free_text(self) -> bool:
        return self.is_string and not self.enum and self.prop.get("format") not in ("uri",)

    @property
    def maximum(self) -> float | None:
        values = [v for v in self.enum or [] if _is_number(v)]
        if values:
            return float(max(values))
        high = self.prop.get("maximum")
        return float(high) if isinstance(high, int | float) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fields(schema: Mapping[str, Any], original: Mapping[str, Any]) -> list[_Field]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []) or [])
    raw_props = original.get("properties", {})
    out = []
    for index, (name, prop) in enumerate(props.items()):
        raw = raw_props.get(name, {}) if isinstance(raw_props, Mapping) else {}
        order = raw.get("x-order") if isinstance(raw, Mapping) else None
        out.append(
            _Field(
                name=str(name),
                prop=prop if isinstance(prop, Mapping) else {},
                required=name in required,
                order=order if isinstance(order, int) else 1000 + index,
            )
        )
    return sorted(out, key=lambda f: f.order)


# --------------------------------------------------------------------------------------
# Kind
# --------------------------------------------------------------------------------------

_MEDIA_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("video", re.compile(r"\bvideos?\b|text-to-video|image-to-video|\bt2v\b|\bi2v\b")),
    ("speech", re.compile(r"\bspeech\b|\btts\b|text[- ]to[- ]speech|\bnarrat\w*|\bvoices?\b")),
    ("music", re.compile(r"\bmusic\w*|\bsongs?\b")),
    ("image", re.compile(r"\bimages?\b|text[- ]to[- ]image|\bpictures?\b|\bphoto\w*")),
    ("audio", re.compile(r"\baudio\b|\bsounds?\b")),
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
_KNOWN_FORMATS: dict[str, frozenset[str]] = {
    "image": frozenset({"png", "jpg", "webp", "gif"}),
    "audio": frozenset({"wav", "mp3", "flac", "ogg", "opus", "aac", "m4a"}),
    "video": frozenset({"mp4", "webm", "mov", "gif"}),
}
_DEFAULT_FORMAT = {"image": "png", "audio": "wav", "video": "mp4"}


def _media_from_words(text: str) -> str | None:
    lowered = text.lower()
    for media, pattern in _MEDIA_PATTERNS:
        if pattern.search(lowered):
            return media
    return None


def _example_urls(output: Any) -> list[str]:
    if isinstance(output, str):
        return [output]
    if isinstance(output, list):
        return [item for item in output if isinstance(item, str)]
    if isinstance(output, Mapping):
        return [item for item in output.values() if isinstance(item, str)]
    return []


def _extension(url: str) -> str | None:
    path = urlparse(url).path if "://" in url else url
    match = re.search(r"\.([A-Za-z0-9]{2,5})$", path)
    if not match:
        return None
    ext = match.group(1).lower()
    return "jpg" if ext == "jpeg" else ext


def _audio_flavour(fields: Sequence[_Field], description: str | None) -> tuple[Media, str]:
    names = {f.name.lower() for f in fields}
    if names & {"voice", "voice_id", "speaker", "speaker_id"}:
        return "speech", "it has a voice field"
    if "text" in names and "prompt" not in names:
        return "speech", "its input is a 'text' field"
    if description and re.search(r"speech|tts|voice|narrat", description.lower()):
        return "speech", "the description mentions speech"
    return "music", "no speech or voice field"


def _infer_media(
    meta: _Metadata, fields: Sequence[_Field], notes: list[str], source: str
) -> tuple[Media, str, bool]:
    """Return the media family, the evidence, and whether it is only a guess."""
    evidence: list[tuple[str, str]] = []
    if meta.category:
        found = _media_from_words(meta.category)
        if found:
            evidence.append((found, f"category {meta.category!r}"))
    if not evidence and meta.description:
        found = _media_from_words(meta.description)
        if found:
            evidence.append((found, f"description {meta.description[:60]!r}"))
    if not evidence:
        for url in _example_urls(meta.example_output):
            ext = _extension(url)
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
        raise _fail(
            source,
            f"{meta.model}: cannot tell what the model makes (no category, description, "
            "example output or telling field names); add 'category' (e.g. 'Image Models', "
            "'Video Models', 'Speech Models', 'Music Models')",
        )
    media, why = evidence[0]
    if media == "audio":
        flavour, reason = _audio_flavour(fields, meta.description)
        notes.append(f"kind: {why} says audio; guessed {flavour} because {reason}")
        return flavour, f"{why}, {reason}", True
    return cast(Media, media), why, guessed


# --------------------------------------------------------------------------------------
# Mapping inference
# --------------------------------------------------------------------------------------


@dataclass
class _Found:
    fld: _Field
    how: str  # "exact name" | "description" | ...


class _Picker:
    """Find fields for general attributes, never the same field twice."""

    def __init__(self, fields: Sequence[_Field]) -> None:
        self.fields = list(fields)
        self.claimed: set[str] = set()

    def free(self) -> list[_Field]:
        return [f for f in self.fields if f.name not in self.claimed]

    def by_name(self, names: Sequence[str], accept: Callable[[_Field], bool]) -> _Found | None:
        index = {f.name.lower(): f for f in self.free()}
        for name in names:
            fld = index.get(name)
            if fld is not None and accept(fld):
                return _Found(fld, "exact name")
        return None

    def by_text(
        self,
        pattern: re.Pattern[str],
        accept: Callable[[_Field], bool],
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
        accept: Callable[[_Field], bool],
        pattern: re.Pattern[str] | None = None,
        reject: re.Pattern[str] | None = None,
    ) -> _Found | None:
        found = self.by_name(names, accept)
        if found is None and pattern is not None:
            found = self.by_text(pattern, accept, reject)
        return found

    def claim(self, *names: str) -> None:
        self.claimed.update(names)


_NEGATIVE_WORDS = re.compile(
    r"negative|\bavoid|exclude|discourage|not (to )?(see|include|appear)|what not"
)
_PROMPT_TEXT = re.compile(
    r"\bprompt\b|text to (speak|synthesi[sz]e|convert|read|say)|\binput text\b|\btext input\b"
    r"|text description|\bdescri\w* (of )?(the )?(image|video|music|audio|song|scene|sound)"
)
_IMAGE_TEXT = re.compile(
    r"\b(input|init\w*|start\w*|first|source|conditioning|reference) (image|frame|picture)"
    r"|img2img|image[- ]to[- ](image|video)|\bimage (to|for) (start|animate|edit|transform)"
)
_NEGATIVE_TEXT = re.compile(
    r"negative prompt|what to (avoid|exclude|discourage)|things to not see|to exclude from"
    r"|what not to"
)
_IMAGE_REJECT = re.compile(r"\bmask|\blast\b|\bend(ing)? (image|frame)|\baudio|\bvideo file")
_COUNT_TEXT = re.compile(
    r"number of (images|outputs|videos|samples|pictures|results|generations)\b"
)
_COUNT_REJECT = re.compile(r"frame|step|inference|token")
_DURATION_REJECT = re.compile(r"\bframes?\b|\bsteps?\b|\btokens?\b|\bcharacters?\b")
_DURATION_NAME = re.compile(r"duration|length|seconds")
_DURATION_TEXT = re.compile(
    r"\b(duration|length)\b.*\b(seconds?|milliseconds?|ms)\b|\bin (milli)?seconds\b"
)
_VOICE_TEXT = re.compile(r"\bvoice (id|name|preset|to use)\b|\bspeaker (id|name)\b")

_PROMPT_NAMES = ("prompt", "text", "input_text", "text_prompt", "text_input", "caption", "input")
_SPEECH_PROMPT_NAMES = ("text", "prompt", "input_text", "text_input", "tts_text", "script")
_NEGATIVE_NAMES = ("negative_prompt", "negative", "neg_prompt", "negative_text")
_IMAGE_NAMES = (
    "image",
    "image_input",
    "input_image",
    "input_images",
    "images",
    "first_frame",
    "first_frame_image",
    "start_image",
    "start_frame",
    "image_url",
)
_ASPECT_NAMES = ("aspect_ratio", "aspect", "ratio", "image_aspect_ratio", "video_aspect_ratio")
_SIZE_PAIRS = (
    ("width", "height"),
    ("image_width", "image_height"),
    ("output_width", "output_height"),
    ("video_width", "video_height"),
    ("w", "h"),
)
_COUNT_NAMES = (
    "num_outputs",
    "num_images",
    "number_of_images",
    "max_images",
    "batch_size",
    "num_samples",
    "n",
    "count",
    "image_count",
    "num_videos",
    "number_of_outputs",
    "n_images",
)
_SEED_NAMES = ("seed", "random_seed", "noise_seed", "manual_seed")
_DURATION_NAMES = (
    "duration_seconds",
    "duration",
    "seconds",
    "length_seconds",
    "duration_sec",
    "audio_length_in_s",
    "duration_ms",
    "length_ms",
    "music_length_ms",
    "music_length",
    "audio_length",
    "audio_duration",
    "video_duration",
    "total_duration",
    "length",
)
_VOICE_NAMES = ("voice", "voice_id", "speaker", "speaker_id", "voice_name", "voice_preset")
_LANGUAGE_NAMES = ("language", "language_code", "lang", "language_id", "lang_code", "locale")

#: ISO 639 codes and English names, to map a language code to an enum of language names.
_LANGUAGES: dict[str, str] = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "ca": "Catalan",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fi": "Finnish",
    "fil": "Filipino",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "ms": "Malay",
    "nl": "Dutch",
    "nn": "Nynorsk",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sv": "Swedish",
    "ta": "Tamil",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "yue": "Cantonese",
    "zh": "Chinese",
}


@dataclass
class _Mapping:
    mapping: dict[str, FieldMapping] = field(default_factory=dict)
    inferred: list[str] = field(default_factory=list)
    not_inferred: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)

    def add(self, attribute: str, mapping: FieldMapping, how: str, extra: str = "") -> None:
        self.mapping[attribute] = mapping
        target = ", ".join(mapping.targets)
        detail = f"{how}; {extra}" if extra else how
        self.inferred.append(f"mapping: {attribute} -> {target} ({detail})")


def _gcd_step(values: Sequence[Any]) -> int | None:
    numbers = sorted({int(v) for v in values if _is_number(v) and float(v).is_integer()})
    if len(numbers) < 2:
        return None
    step = 0
    for number in numbers:
        step = math.gcd(step, number)
    return step or None


def _size_mapping(width: _Field, height: _Field) -> tuple[FieldMapping, str, str | None]:
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


def _language_values(fld: _Field) -> tuple[dict[str, Any], Any] | None:
    """A code -> enum value table if the field's enum holds language names."""
    enum = [v for v in fld.enum or [] if isinstance(v, str)]
    by_name = {name.lower(): code for code, name in _LANGUAGES.items()}
    table: dict[str, Any] = {}
    for value in enum:
        code = by_name.get(value.lower())
        if code is not None:
            table[code] = value
    if len(table) < 3:
        return None
    auto = next((v for v in enum if v.lower().startswith("auto")), None)
    return dict(sorted(table.items())), auto


def _mentions(fld: _Field, others: Iterable[_Field]) -> list[str]:
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


def _map_prompts(picker: _Picker, result: _Mapping, media: Media) -> None:
    """prompt, negative_prompt and image."""
    names = _SPEECH_PROMPT_NAMES if media == "speech" else _PROMPT_NAMES
    found = picker.find(
        names,
        lambda f: f.is_free_text and "negative" not in f.name.lower(),
        _PROMPT_TEXT,
        _NEGATIVE_WORDS,
    )
    if found:
        picker.claim(found.fld.name)
        result.add("prompt", FieldMapping(field=found.fld.name), found.how)

    found = picker.find(_NEGATIVE_NAMES, lambda f: f.is_free_text, _NEGATIVE_TEXT)
    if found:
        picker.claim(found.fld.name)
        result.add("negative_prompt", FieldMapping(field=found.fld.name), found.how)

    def image_like(f: _Field) -> bool:
        return f.is_uri or f.is_uri_list or (f.is_free_text and "image" in f.name.lower())

    found = picker.find(_IMAGE_NAMES, image_like, _IMAGE_TEXT, _IMAGE_REJECT)
    if found:
        picker.claim(found.fld.name)
        as_list = found.fld.is_uri_list
        extra = "wrapped in a list (array field)" if as_list else ""
        result.add("image", FieldMapping(field=found.fld.name, as_list=as_list), found.how, extra)


def _map_shape(picker: _Picker, result: _Mapping) -> None:
    """aspect_ratio (a ratio field, else a width/height pair) and count."""

    def ratio_like(f: _Field) -> bool:
        enum = f.enum
        return f.is_string and (
            enum is None or any(isinstance(v, str) and _RATIO.match(v) for v in enum)
        )

    found = picker.find(_ASPECT_NAMES, ratio_like, re.compile(r"aspect ratio"))
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
        for width_name, height_name in _SIZE_PAIRS:
            width, height = free.get(width_name), free.get(height_name)
            if width and height and width.is_numeric and height.is_numeric:
                size, detail, missing = _size_mapping(width, height)
                picker.claim(width.name, height.name)
                result.add("aspect_ratio", size, "width and height fields", detail)
                if missing:
                    result.unconfirmed.append(missing)
                break

    found = picker.find(
        _COUNT_NAMES,
        lambda f: f.is_integer and not _COUNT_REJECT.search(f.name.lower()),
        _COUNT_TEXT,
        _COUNT_REJECT,
    )
    if found:
        picker.claim(found.fld.name)
        result.add("count", FieldMapping(field=found.fld.name, snap=True), found.how, "snap")


def _map_numbers(picker: _Picker, result: _Mapping, media: Media) -> None:
    """seed and duration_seconds."""
    found = picker.find(_SEED_NAMES, lambda f: f.is_integer, re.compile(r"\b(random )?seed\b"))
    if found:
        picker.claim(found.fld.name)
        result.add("seed", FieldMapping(field=found.fld.name), found.how)
    else:
        stringly = picker.by_name(_SEED_NAMES, lambda f: f.is_string)
        if stringly:
            result.not_inferred.append(
                f"general attribute 'seed': field {stringly.fld.name!r} is a string, not an "
                "integer; not mapped (an integer seed would fail validation)"
            )

    def duration_like(f: _Field) -> bool:
        return f.is_numeric and not _DURATION_REJECT.search(f.text)

    found = picker.by_name(_DURATION_NAMES, duration_like)
    if found is None:
        for fld in picker.free():
            if (
                duration_like(fld)
                and _DURATION_NAME.search(fld.name.lower())
                and re.search(r"second|millisecond|\bms\b|duration", fld.text)
            ):
                found = _Found(fld, "name and description")
                break
    if found is None:
        found = picker.by_text(_DURATION_TEXT, duration_like)
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
            result.not_inferred.append(
                "general attribute 'duration_seconds': no duration field; the length is set "
                f"by {', '.join(frames)} (needs a mapper function)"
            )


def _map_voice(picker: _Picker, result: _Mapping) -> None:
    """voice and language."""
    found = picker.find(_VOICE_NAMES, lambda f: f.is_string and not f.is_uri, _VOICE_TEXT)
    if found:
        picker.claim(found.fld.name)
        extra = f"{len(found.fld.enum)} voices in the enum" if found.fld.enum else "free text"
        result.add("voice", FieldMapping(field=found.fld.name), found.how, extra)

    found = picker.by_name(_LANGUAGE_NAMES, lambda f: f.is_string)
    how = found.how if found else ""
    if found is None:
        for fld in picker.free():
            if "lang" in fld.name.lower() and fld.is_string and _language_values(fld):
                found, how = _Found(fld, "name"), "field name and enum of language names"
                result.unconfirmed.append(
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


def _infer_mapping(fields: Sequence[_Field], media: Media) -> _Mapping:
    """Map general attributes to fields: exact names first, then descriptions."""
    picker = _Picker(fields)
    result = _Mapping()
    _map_prompts(picker, result, media)
    _map_shape(picker, result)
    _map_numbers(picker, result, media)
    _map_voice(picker, result)
    # Facts about the mapped fields that the description ties to other fields.
    for attribute, mapping in result.mapping.items():
        for target in mapping.targets:
            fld = next(f for f in fields if f.name == target)
            depends = _mentions(fld, fields)
            if depends:
                result.unconfirmed.append(
                    f"{attribute} -> {target}: its description refers to "
                    f"{', '.join(depends)}: {fld.description!r}"
                )
    return result


_RELEVANT: dict[Media, tuple[str, ...]] = {
    "image": ("prompt", "negative_prompt", "aspect_ratio", "count", "seed", "image"),
    "video": ("prompt", "negative_prompt", "aspect_ratio", "seed", "duration_seconds", "image"),
    "speech": ("prompt", "voice", "language"),
    "music": ("prompt", "negative_prompt", "seed", "duration_seconds"),
}


# --------------------------------------------------------------------------------------
# Output, secrets, defaults
# --------------------------------------------------------------------------------------


def _normal_format(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    match = re.match(r"[a-z0-9]+", value.strip().lower())
    if not match:
        return None
    token = match.group(0)
    return "jpg" if token == "jpeg" else token


def _format_field(fields: Sequence[_Field], media: str) -> _Field | None:
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


def _output_spec(
    meta: _Metadata,
    fields: Sequence[_Field],
    media: str,
    has_count: bool,
    inferred: list[str],
    unconfirmed: list[str],
    not_inferred: list[str],
) -> OutputSpec:
    multiple = False
    if meta.output_schema is not None:
        out = normalise_openapi_schema(meta.output_schema, meta.components)
        kind = out.get("type")
        if kind == "array":
            multiple = True
            inferred.append("output: a list of files (Output schema is an array)")
        elif kind == "object":
            names = ", ".join(sorted(out.get("properties", {})))
            inferred.append(f"output: one file (Output schema is an object: {names})")
            not_inferred.append(
                f"output: the Output schema is an object ({names}); the file field must be "
                "picked by the producer"
            )
        else:
            inferred.append("output: one file (Output schema is a single URI)")
    else:
        multiple = has_count
        inferred.append(
            "output: " + ("a list of files (it has a count field)" if multiple else "one file")
        )
        unconfirmed.append(
            "output shape: the metadata has no Output schema; "
            + ("a list" if multiple else "a single file")
            + " is assumed"
        )

    fmt_field = _format_field(fields, media)
    default_format: str | None = None
    if fmt_field is not None:
        default_format = _normal_format(fmt_field.prop.get("default"))
        inferred.append(
            f"output: format chosen by {fmt_field.name!r}"
            + (f", default {default_format!r}" if default_format else "")
        )
    if default_format is None:
        for url in _example_urls(meta.example_output):
            ext = _extension(url)
            if ext and ext not in ("txt", "json"):
                default_format = ext
                inferred.append(f"output: default format {ext!r} (example output URL)")
                if ext not in _KNOWN_FORMATS[media] or (media == "video" and ext == "gif"):
                    unconfirmed.append(
                        f"output format: the example prediction returned .{ext} files for a "
                        f"{media} model"
                    )
                break
    if default_format is None:
        default_format = _DEFAULT_FORMAT[media]
        unconfirmed.append(
            f"output format: no format field and no example output; {default_format!r} assumed"
        )
    return OutputSpec(
        media=media,
        multiple=multiple,
        format_field=fmt_field.name if fmt_field is not None else None,
        default_format=default_format,
    )


_SECRET_NAME = re.compile(
    r"(^|_)(api_?key|api_?token|access_?token|auth_?token|secret(_key)?|password|hf_token|token)$"
)
_SECRET_TEXT = re.compile(r"\b(api|access|auth\w*|secret) (key|token)\b|\bpassword\b")


def _secret_fields(fields: Sequence[_Field], raw: Mapping[str, Any]) -> dict[str, str]:
    props = raw.get("properties", {})
    secrets: dict[str, str] = {}
    for fld in fields:
        if not fld.is_string:
            continue
        original = props.get(fld.name, {}) if isinstance(props, Mapping) else {}
        flagged = isinstance(original, Mapping) and (
            original.get("x-cog-secret") is True or original.get("format") == "password"
        )
        if (
            flagged
            or _SECRET_NAME.search(fld.name.lower())
            or _SECRET_TEXT.search(fld.description.lower())
        ):
            secrets[fld.name] = re.sub(r"[^A-Z0-9]+", "_", fld.name.upper()).strip("_")
    return secrets


_TRANSPORT_VALUES = frozenset({"hex", "base64", "b64_json", "bytes", "data_uri", "binary"})


def _transport_defaults(fields: Sequence[_Field]) -> dict[str, Any]:
    """Fields that choose between a URL and inline bytes: ask for the URL."""
    defaults: dict[str, Any] = {}
    for fld in fields:
        enum = [v for v in fld.enum or [] if isinstance(v, str)]
        lowered = {v.lower() for v in enum}
        if "url" in lowered and lowered & _TRANSPORT_VALUES:
            value = next(v for v in enum if v.lower() == "url")
            if fld.prop.get("default") != value:
                defaults[fld.name] = value
    return defaults


# --------------------------------------------------------------------------------------
# Cost
# --------------------------------------------------------------------------------------

_LABEL = re.compile(
    r"\*(?P<star>[^*]+)\*\s*:?"
    r"|\((?P<paren>[^()]+)\)\s*:?"
    r"|(?P<kv>\b[A-Za-z_][\w.-]*\s*=\s*[\w.:-]+)\s*:"
)
_PRICE = re.compile(
    r"\$?\s*(?P<num>\d[\d,]*(?:\.\d+)?)\s*(?:usd|us\$|dollars?)?\s*(?:per|/)\s*(?P<unit>[^;$*()]*)",
    re.IGNORECASE,
)
_MULTIPLIERS = (
    (re.compile(r"^(a |one )?(million|1,000,000|1000000|1m)\b"), Decimal(1_000_000)),
    (re.compile(r"^(a |one )?(thousand|1,000|1000|1k|k)\b"), Decimal(1000)),
    (re.compile(r"^(a |one )?(hundred|100)\b"), Decimal(100)),
)


@dataclass
class _Rate:
    unit: CostUnit | Literal["compute_second"] | None
    usd: Decimal
    phrase: str


def _rate(segment: str) -> _Rate | None:
    match = _PRICE.search(segment)
    if not match:
        return None
    try:
        amount = Decimal(match.group("num").replace(",", ""))
    except InvalidOperation:
        return None
    phrase = match.group("unit").strip().lower()
    rest = phrase
    for pattern, factor in _MULTIPLIERS:
        found = pattern.match(rest)
        if found:
            amount /= factor
            rest = rest[found.end() :].strip()
            break
    produced = re.search(r"\b(output|generated|video|audio|music|speech|sound|song)\b", rest)
    unit: CostUnit | Literal["compute_second"] | None
    if re.search(r"\bsec(ond)?s?\b", rest):
        unit = "output_second" if produced else "compute_second"
    elif re.search(r"\bmin(ute)?s?\b", rest):
        unit, amount = ("output_second" if produced else "compute_second"), amount / 60
    elif re.search(r"\bchar(acter)?s?\b", rest):
        unit = "input_character"
    elif re.search(r"\btokens?\b", rest):
        unit = "input_token" if "output" not in rest else None
    elif re.search(r"\b(megapixels?|mp)\b", rest):
        unit = None
    elif re.search(r"\boutput\b|\b(images?|pictures?|photos?)\b", rest):
        unit = "output"
    elif re.search(
        r"\b(runs?|predictions?|requests?|generations?|calls?|files?|videos?|songs?|tracks?"
        r"|clips?|audio)\b",
        rest,
    ):
        unit = "run"
    else:
        unit = None
    return _Rate(unit=unit, usd=amount, phrase=phrase)


def _segments(text: str) -> list[tuple[str | None, str]]:
    """Split price text into (label, text) pieces at ``*label*``, ``(label)``, ``k=v:``."""
    pieces: list[tuple[str | None, str]] = []
    label: str | None = None
    position = 0
    for match in _LABEL.finditer(text):
        pieces.append((label, text[position : match.start()]))
        raw = match.group("star") or match.group("paren") or match.group("kv") or ""
        label = re.sub(r"\s+", "", raw.strip().rstrip(":"))
        position = match.end()
    pieces.append((label, text[position:]))
    return [(lab, body.strip(" ;,.")) for lab, body in pieces if body.strip(" ;,.")]


def _rate_field(
    labels: Sequence[str], properties: Mapping[str, Mapping[str, Any]]
) -> tuple[str, list[str]] | None:
    """Which input field the price labels are values of, and the keys to use."""
    pairs = [label.split("=", 1) for label in labels]
    if all(len(p) == 2 for p in pairs) and len({p[0] for p in pairs}) == 1:
        name = pairs[0][0]
        if name in properties:
            return name, [p[1] for p in pairs]
    for name, prop in properties.items():
        enum = prop.get("enum")
        if not isinstance(enum, list):
            continue
        by_text = {str(v).lower(): str(v) for v in enum if v is not None}
        if all(label.lower() in by_text for label in labels):
            return name, [by_text[label.lower()] for label in labels]
    flags = [re.match(r"^(without|with|no)[_ -]?(\w+)$", label.lower()) for label in labels]
    if all(flags):
        nouns = {m.group(2) for m in flags if m}
        if len(nouns) == 1:
            noun = nouns.pop()
            for name, prop in properties.items():
                if prop.get("type") == "boolean" and noun in name.lower():
                    keys = ["true" if m and m.group(1) == "with" else "false" for m in flags]
                    return name, keys
    return None


def _parse_cost(
    text: str | None,
    properties: Mapping[str, Mapping[str, Any]] | None,
    median_seconds: float | None,
) -> tuple[CostSpec, str | None, str | None]:
    """Return the cost, an "inferred" line and a "not inferred" line (either may be None)."""
    properties = properties or {}
    cleaned = re.sub(r"\s+", " ", text or "").strip()
    if not cleaned or not re.search(r"\d", cleaned):
        shown = f"{cleaned!r}" if cleaned else "none"
        return CostSpec(), None, f"cost: no price in the metadata (price text: {shown})"
    rates = [(label, _rate(body)) for label, body in _segments(cleaned)]
    priced = [(label, rate) for label, rate in rates if rate is not None]
    labelled = [(label, rate) for label, rate in priced if label is not None]
    if not priced:
        return CostSpec(text=cleaned), None, f"cost: cannot read the price {cleaned!r}"

    def usable(rate: _Rate) -> tuple[CostUnit | None, Decimal, str | None]:
        if rate.unit == "compute_second":
            if median_seconds is None:
                return None, rate.usd, "priced per second of compute and no median time"
            return (
                "run",
                rate.usd * Decimal(str(median_seconds)),
                (
                    f"priced per second of compute; estimated per run from the median "
                    f"{median_seconds} s"
                ),
            )
        if rate.unit is None:
            return None, rate.usd, f"unknown unit {rate.phrase!r}"
        return rate.unit, rate.usd, None

    if len(labelled) >= 2:
        units = {usable(rate)[0] for _, rate in labelled}
        unit = units.pop() if len(units) == 1 else None
        if unit is None:
            return (
                CostSpec(text=cleaned),
                None,
                (f"cost: the rates in {cleaned!r} have different or unknown units"),
            )
        labels = [str(label) for label, _ in labelled]
        target = _rate_field(labels, properties)
        values = [float(usable(rate)[1]) for _, rate in labelled]
        if target is None:
            highest = max(values)
            return (
                CostSpec(text=cleaned, per=unit, usd=highest),
                f"cost: up to ${highest:g} per {unit}",
                f"cost: labels {', '.join(labels)} match no input field; the highest rate is used",
            )
        name, keys = target
        table = dict(zip(keys, values, strict=True))
        shown = ", ".join(f"{k}: ${v:g}" for k, v in table.items())
        return (
            CostSpec(text=cleaned, per=unit, by=CostRateBy(field=name, usd=table)),
            f"cost: per {unit}, by {name} ({shown})",
            None,
        )
    _, rate = priced[0]
    unit, usd, problem = usable(rate)
    if unit is None:
        return CostSpec(text=cleaned), None, f"cost: {problem} in {cleaned!r}"
    line = f"cost: ${float(usd):g} per {unit}"
    return (
        CostSpec(text=cleaned, per=unit, usd=float(usd)),
        line,
        (f"cost: {problem}" if problem else None),
    )


def parse_cost(
    text: str | None,
    properties: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    median_seconds: float | None = None,
) -> CostSpec:
    """Turn a provider's price text into a cost formula.

    Args:
        text: The price text, e.g. ``"$0.10 per thousand input characters"`` or
            ``"*480p*: 0.018 per second of video *720p*: 0.036 per second of video"``.
        properties: The model's (normalised) input fields; labelled rates are matched to
            the field whose enum holds the labels (or a boolean field for
            ``with_X``/``without_X`` labels) to build a rate table.
        median_seconds: Used to estimate a per-run price from a per-second compute price.

    Returns:
        The :class:`CostSpec`; ``usd`` and ``by`` are None when no price can be read.
    """
    return _parse_cost(text, properties, median_seconds)[0]


# --------------------------------------------------------------------------------------
# Putting it together
# --------------------------------------------------------------------------------------


def _kind(
    media: Media, mapping: Mapping[str, FieldMapping], fields: Sequence[_Field]
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
    if media == "speech":
        return Kind.TEXT_TO_SPEECH, ""
    return Kind.TEXT_TO_MUSIC, ""


def import_metadata(data: Mapping[str, Any], *, source: str = "<memory>") -> ImportResult:
    """Infer a model declaration from a provider's published metadata (form 1 or form 2).

    Args:
        data: The parsed metadata (see the module docstring for the two forms).
        source: Where the metadata came from; used in messages and the declaration's
            ``source``.

    Returns:
        The declaration and the lists of what was inferred and what was not.

    Raises:
        DeclarationError: The metadata has no model name, no input schema, an input
            schema without fields or with an unresolvable ``$ref``, or nothing says what
            the model makes.
    """
    meta = _read(data, source)
    components = _referenced_components(meta.input_schema, meta.components)
    try:
        schema = normalise_openapi_schema(meta.input_schema, components)
        output_schema = (
            None
            if meta.output_schema is None
            else normalise_openapi_schema(meta.output_schema, meta.components)
        )
    except KeyError as exc:
        raise _fail(source, f"{meta.model}: input schema has an {exc.args[0]}") from None
    except DeclarationError as exc:
        raise _fail(source, f"{meta.model}: {exc}") from None
    fields = _fields(schema, meta.input_schema)
    inferred: list[str] = []
    not_inferred: list[str] = []
    unconfirmed: list[str] = []

    media, why, guessed = _infer_media(meta, fields, not_inferred, source)
    found = _infer_mapping(fields, media)
    kind, kind_why = _kind(media, found.mapping, fields)
    if output_schema is None:
        output_kind = "no Output schema"
    elif output_schema.get("type") == "array":
        output_kind = "output is a list of URIs"
    else:
        output_kind = "output is one URI"
    evidence = "; ".join(part for part in (why, kind_why, output_kind) if part)
    kind_line = f"kind: {kind.value} ({evidence})"
    if guessed:
        not_inferred.append(f"kind: guessed {kind.value} ({why})")
    else:
        inferred.append(kind_line)

    inferred.extend(found.inferred)
    not_inferred.extend(found.not_inferred)
    unconfirmed.extend(found.unconfirmed)
    for attribute in _RELEVANT[media]:
        if attribute not in found.mapping and not any(
            line.startswith(f"general attribute '{attribute}'") for line in not_inferred
        ):
            not_inferred.append(f"general attribute '{attribute}': no matching field")

    output = _output_spec(
        meta,
        fields,
        kind.media,
        "count" in found.mapping,
        inferred,
        unconfirmed,
        not_inferred,
    )

    secrets = _secret_fields(fields, meta.input_schema)
    for name, secret in secrets.items():
        inferred.append(f"secret: {name} <- {secret}")
        unconfirmed.append(f"secret {name}: detected from its name/description; named {secret}")

    defaults = _transport_defaults(fields)
    for name, value in defaults.items():
        inferred.append(f"default: {name}={value!r} (the field chooses between a URL and bytes)")

    properties = {f.name: dict(f.prop) for f in fields}
    cost, cost_line, cost_problem = _parse_cost(meta.cost_text, properties, meta.median_seconds)
    if cost_line:
        inferred.append(cost_line)
    if cost_problem:
        not_inferred.append(cost_problem)

    if meta.median_seconds is not None:
        if meta.median_from_example:
            inferred.append(
                f"median_seconds: {meta.median_seconds} (predict_time of the example prediction)"
            )
            unconfirmed.append(
                "median_seconds: the predict_time of one example prediction, not a median"
            )
        else:
            inferred.append(f"median_seconds: {meta.median_seconds}")
    else:
        not_inferred.append("median_seconds: no latency in the metadata")
    if meta.form == 2 and meta.version is None:
        not_inferred.append("version: the metadata names no version id")

    origin = f"imported from {source}"
    if meta.origin:
        origin += f" ({meta.origin})"
    declaration_data: dict[str, Any] = {
        "model": meta.model,
        "version": meta.version if meta.form == 2 else None,
        "kind": kind.value,
        "description": meta.description,
        "input_schema": meta.input_schema,
        "schema_components": components,
        "output": output.model_dump(),
        "mapping": {k: v.model_dump() for k, v in found.mapping.items()},
        "defaults": defaults,
        "secret_fields": secrets,
        "cost": cost.model_dump(),
        "median_seconds": meta.median_seconds,
        "unconfirmed": unconfirmed,
        "source": origin,
    }
    declaration = parse_declaration(declaration_data, source=source)
    return ImportResult(declaration=declaration, inferred=inferred, not_inferred=not_inferred)


def import_file(path: Path | str, *, source: str | None = None) -> ImportResult:
    """Read a metadata JSON file and infer its declaration (see :func:`import_metadata`).

    Args:
        path: The metadata file.
        source: How to name the file in the declaration's ``source``; defaults to ``path``.

    Raises:
        DeclarationError: The file cannot be read (a folder, missing, over
            :data:`~producers.sdk.limits.DECLARATION_MAX_BYTES`, not UTF-8, nested too
            deeply), is not JSON, or cannot be imported.
    """
    data = read_document(
        path,
        what="model metadata",
        max_bytes=DECLARATION_MAX_BYTES,
        formats=("json",),
        error=DeclarationError,
    )
    return import_metadata(data, source=source or str(path))


def write_declaration(declaration: ModelDeclaration, into: Path | str) -> Path:
    """Write ``declaration`` as ``<into>/<owner>/<name>.json`` and return that path."""
    owner, name = declaration.model.split("/", 1)
    path = Path(into) / owner / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_declaration(declaration), encoding="utf-8")
    return path
