"""The model-metadata importer and the shipped model declarations."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from producers.replicate.declaration import (
    ModelDeclaration,
    dump_declaration,
    load_declaration,
    parse_declaration,
)
from producers.replicate.importer import (
    ImportResult,
    import_file,
    import_metadata,
    parse_cost,
    write_declaration,
)
from producers.sdk.errors import DeclarationError, InvalidInputError
from producers.sdk.schema import normalise_openapi_schema

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "models"
SHIPPED = ROOT / "producers" / "replicate" / "models"
IMPORTER_SOURCE = ROOT / "producers" / "replicate" / "importer"

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is not there")

# The kind of every model in shared/models/, read off its metadata by hand.
SHARED_KINDS: dict[str, str] = {
    # seed/ (form 1)
    "bytedance/seedance-1-lite": "text-to-video",  # image is optional
    "bytedance/seedance-1-pro-fast": "text-to-video",
    "bytedance/seedream-4": "text-to-image",  # image_input optional
    "elevenlabs/music": "text-to-music",
    "elevenlabs/v3": "text-to-speech",
    "google/nano-banana": "text-to-image",
    "google/veo-3.1-fast": "text-to-video",  # image (first frame) optional
    "minimax/speech-02-hd": "text-to-speech",
    "minimax/speech-2.6-hd": "text-to-speech",
    "openai/gpt-image-1-mini": "text-to-image",
    "qwen/qwen-image": "text-to-image",
    "stability-ai/stable-audio-2.5": "text-to-music",
    # replicate-sample/ (form 2)
    "andreasjansson/musicgen-trance-chord": "text-to-music",
    "andreasjansson/parler-tts": "text-to-speech",
    "awerks/neon-tts": "text-to-speech",
    "black-forest-labs/flux-dev": "text-to-image",
    "fofr/musicgen-slipknot": "text-to-music",
    "genmoai/mochi-1": "text-to-video",
    "holywalley/bel-tts": "text-to-speech",
    "jaaari/kokoro-82m": "text-to-speech",
    "lucataco/open-dalle-v1.1": "text-to-image",
    "nightmareai/cogvideo": "text-to-video",  # image_prompt optional
    "playgroundai/playground-v2-1024px-aesthetic": "text-to-image",
    "sakemin/musicgen-chord": "text-to-music",
    "sakemin/musicgen-fine-tuner": "text-to-music",
    "stability-ai/stable-diffusion-3": "text-to-image",
    "stability-ai/stable-diffusion": "text-to-image",
    "thudm/cogvideox-t2v": "text-to-video",
    "tommoore515/material_stable_diffusion": "text-to-image",
    "wcarle/text2video-zero-openjourney": "text-to-video",
}
SHIPPED_KINDS: dict[str, str] = {
    **SHARED_KINDS,
    "google/imagen-4": "text-to-image",
    "tencent/hunyuan-image-3": "text-to-image",
}


def shared_file(model: str) -> Path:
    """The metadata file of ``model`` in shared/models/ (seed/ or replicate-sample/)."""
    stem = model.replace("/", "__") + ".json"
    for folder in ("seed", "replicate-sample"):
        path = SHARED / folder / stem
        if path.exists():
            return path
    pytest.skip(f"{stem} is not in {SHARED}")


_IMPORTED: dict[str, ImportResult] = {}


def imported(model: str) -> ImportResult:
    """Import a shared model once per test session."""
    if model not in _IMPORTED:
        _IMPORTED[model] = import_file(shared_file(model))
    return _IMPORTED[model]


# --------------------------------------------------------------------------------------
# Every shared model imports, with the right kind
# --------------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize(("model", "kind"), list(SHARED_KINDS.items()), ids=list(SHARED_KINDS))
def test_shared_model_imports_with_expected_kind(model: str, kind: str) -> None:
    result = imported(model)
    declaration = result.declaration
    assert declaration.model == model
    assert declaration.kind.value == kind
    assert "prompt" in declaration.mapping, result.not_inferred
    assert result.inferred[0].startswith(f"kind: {kind} (")
    # A declaration holds the input schema and what it references, not the whole document.
    assert "PredictionRequest" not in declaration.schema_components
    assert "Input" not in declaration.schema_components
    assert "default_example" not in dump_declaration(declaration)
    # The written form parses back to the same declaration.
    assert parse_declaration(json.loads(dump_declaration(declaration))) == declaration


@needs_shared
def test_every_shared_file_is_in_the_kind_table() -> None:
    files = sorted(SHARED.glob("*/*.json"))
    assert files, f"no metadata files under {SHARED}"
    names = {json.loads(path.read_text())["model"] for path in files}
    assert names == set(SHARED_KINDS)


@needs_shared
@pytest.mark.parametrize(
    ("model", "version"),
    [
        (
            "black-forest-labs/flux-dev",
            "7863d1ba11a1bb115732a12488486eb8bb3d54ae62cff189f1677a31dbcdfd2e",
        ),
        ("bytedance/seedream-4", None),
    ],
    ids=["form-2-has-version", "form-1-has-none"],
)
def test_version_comes_from_form_2_only(model: str, version: str | None) -> None:
    assert imported(model).declaration.version == version


@needs_shared
def test_form_2_median_comes_from_the_example_and_is_flagged() -> None:
    declaration = imported("jaaari/kokoro-82m").declaration
    assert declaration.median_seconds == pytest.approx(0.7)
    assert any("predict_time" in line for line in declaration.unconfirmed)
    assert imported("elevenlabs/v3").declaration.median_seconds == pytest.approx(4.7)


# --------------------------------------------------------------------------------------
# Mappings of interesting models
# --------------------------------------------------------------------------------------

MAPPINGS: list[tuple[str, str, dict[str, Any]]] = [
    ("bytedance/seedream-4", "aspect_ratio", {"field": "aspect_ratio", "fallback": "16:9"}),
    ("bytedance/seedream-4", "count", {"field": "max_images", "snap": True}),
    ("bytedance/seedream-4", "image", {"field": "image_input", "as_list": True}),
    (
        "stability-ai/stable-diffusion",
        "aspect_ratio",
        {"field": None, "size_fields": ("width", "height"), "multiple_of": 64, "long_side": 1024},
    ),
    (
        "tommoore515/material_stable_diffusion",
        "aspect_ratio",
        {"size_fields": ("width", "height"), "multiple_of": 128, "long_side": 1024},
    ),
    ("tommoore515/material_stable_diffusion", "image", {"field": "init_image"}),
    (
        "elevenlabs/music",
        "duration_seconds",
        {"field": "music_length_ms", "scale": 1000, "snap": True},
    ),
    ("google/veo-3.1-fast", "duration_seconds", {"field": "duration", "snap": True, "scale": None}),
    ("google/veo-3.1-fast", "negative_prompt", {"field": "negative_prompt"}),
    ("google/veo-3.1-fast", "image", {"field": "image", "as_list": False}),
    ("minimax/speech-02-hd", "prompt", {"field": "text"}),
    ("minimax/speech-02-hd", "voice", {"field": "voice_id"}),
    ("minimax/speech-2.6-hd", "language", {"field": "language_boost", "fallback": "Automatic"}),
    ("jaaari/kokoro-82m", "prompt", {"field": "text"}),
    ("jaaari/kokoro-82m", "voice", {"field": "voice"}),
    ("elevenlabs/v3", "prompt", {"field": "prompt"}),
    ("elevenlabs/v3", "language", {"field": "language_code"}),
    ("openai/gpt-image-1-mini", "aspect_ratio", {"field": "aspect_ratio", "fallback": "1:1"}),
    ("openai/gpt-image-1-mini", "count", {"field": "number_of_images", "snap": True}),
    ("openai/gpt-image-1-mini", "image", {"field": "input_images", "as_list": True}),
    ("nightmareai/cogvideo", "image", {"field": "image_prompt"}),
    ("awerks/neon-tts", "language", {"field": "language"}),
]


@needs_shared
@pytest.mark.parametrize(
    ("model", "attribute", "expected"),
    MAPPINGS,
    ids=[f"{m.split('/')[1]}:{a}" for m, a, _ in MAPPINGS],
)
def test_mapping(model: str, attribute: str, expected: dict[str, Any]) -> None:
    mapping = imported(model).declaration.mapping[attribute]
    for key, value in expected.items():
        assert getattr(mapping, key) == value, f"{model} {attribute}.{key}"


UNMAPPED: list[tuple[str, str, str]] = [
    ("wcarle/text2video-zero-openjourney", "seed", "is a string"),
    ("wcarle/text2video-zero-openjourney", "duration_seconds", "video_length"),
    ("genmoai/mochi-1", "duration_seconds", "num_frames"),
    ("andreasjansson/parler-tts", "voice", "no matching field"),
    ("qwen/qwen-image", "count", "no matching field"),
]


@needs_shared
@pytest.mark.parametrize(
    ("model", "attribute", "reason"),
    UNMAPPED,
    ids=[f"{m.split('/')[1]}:{a}" for m, a, _ in UNMAPPED],
)
def test_not_mapped_and_said_why(model: str, attribute: str, reason: str) -> None:
    result = imported(model)
    assert attribute not in result.declaration.mapping
    lines = [line for line in result.not_inferred if f"'{attribute}'" in line]
    assert lines, result.not_inferred
    assert reason in lines[0]


@needs_shared
def test_kokoro_voice_enum_is_resolved_from_its_ref() -> None:
    declaration = imported("jaaari/kokoro-82m").declaration
    assert "voice" in declaration.schema_components
    assert "af_bella" in declaration.properties["voice"]["enum"]


@needs_shared
def test_no_field_is_mapped_twice() -> None:
    for model in SHARED_KINDS:
        targets = [t for m in imported(model).declaration.mapping.values() for t in m.targets]
        assert len(targets) == len(set(targets)), model


# --------------------------------------------------------------------------------------
# Output, secrets, defaults, cost of shared models
# --------------------------------------------------------------------------------------

OUTPUTS: list[tuple[str, dict[str, Any]]] = [
    (
        "black-forest-labs/flux-dev",
        {
            "media": "image",
            "multiple": True,
            "format_field": "output_format",
            "default_format": "webp",
        },
    ),
    ("google/nano-banana", {"media": "image", "multiple": False, "default_format": "jpg"}),
    ("openai/gpt-image-1-mini", {"format_field": "output_format", "default_format": "webp"}),
    (
        "elevenlabs/music",
        {"media": "audio", "format_field": "output_format", "default_format": "mp3"},
    ),
    ("minimax/speech-2.6-hd", {"format_field": "audio_format", "default_format": "mp3"}),
    (
        "jaaari/kokoro-82m",
        {"media": "audio", "multiple": False, "format_field": None, "default_format": "wav"},
    ),
    ("thudm/cogvideox-t2v", {"media": "video", "multiple": False, "default_format": "mp4"}),
    ("nightmareai/cogvideo", {"media": "video", "multiple": True, "default_format": "gif"}),
    ("google/veo-3.1-fast", {"media": "video", "default_format": "mp4"}),
]


@needs_shared
@pytest.mark.parametrize(("model", "expected"), OUTPUTS, ids=[m for m, _ in OUTPUTS])
def test_output(model: str, expected: dict[str, Any]) -> None:
    output = imported(model).declaration.output
    for key, value in expected.items():
        assert getattr(output, key) == value, f"{model} output.{key}"


@needs_shared
def test_api_key_field_is_a_secret() -> None:
    declaration = imported("openai/gpt-image-1-mini").declaration
    assert declaration.secret_fields == {"openai_api_key": "OPENAI_API_KEY"}
    assert imported("google/nano-banana").declaration.secret_fields == {}


@needs_shared
def test_transport_field_defaults_to_url() -> None:
    assert imported("minimax/speech-2.6-hd").declaration.defaults == {"output_format": "url"}


@needs_shared
def test_seedream_count_dependency_is_flagged() -> None:
    unconfirmed = imported("bytedance/seedream-4").declaration.unconfirmed
    assert any("sequential_image_generation" in line for line in unconfirmed)


@needs_shared
def test_inferred_and_not_inferred_lines() -> None:
    result = imported("bytedance/seedream-4")
    assert result.inferred[0].startswith("kind: text-to-image (category 'Image Models'")
    assert "mapping: aspect_ratio -> aspect_ratio (exact name; fallback '16:9')" in result.inferred
    assert "cost: $0.03 per output" in result.inferred
    assert "general attribute 'seed': no matching field" in result.not_inferred
    no_price = imported("openai/gpt-image-1-mini")
    assert any(line.startswith("cost: no price") for line in no_price.not_inferred)


# --------------------------------------------------------------------------------------
# Cost text
# --------------------------------------------------------------------------------------

# Every price text in seed/, with the formula expected from it.
SEED_COSTS: list[tuple[str, str, float | None, dict[str, Any] | None]] = [
    (
        "bytedance/seedance-1-lite",
        "output_second",
        None,
        {"field": "resolution", "usd": {"480p": 0.018, "720p": 0.036, "1080p": 0.072}},
    ),
    (
        "bytedance/seedance-1-pro-fast",
        "output_second",
        None,
        {"field": "resolution", "usd": {"480p": 0.015, "720p": 0.025, "1080p": 0.06}},
    ),
    ("bytedance/seedream-4", "output", 0.03, None),
    ("elevenlabs/music", "output_second", 0.0083, None),
    ("elevenlabs/v3", "input_character", 0.0001, None),
    ("google/nano-banana", "output", 0.039, None),
    (
        "google/veo-3.1-fast",
        "output_second",
        None,
        {"field": "generate_audio", "usd": {"true": 0.15, "false": 0.10}},
    ),
    ("minimax/speech-02-hd", "input_token", 0.0001, None),
    ("minimax/speech-2.6-hd", "input_token", 0.0001, None),
    ("openai/gpt-image-1-mini", "run", None, None),  # "?"
    ("qwen/qwen-image", "output", 0.025, None),
    ("stability-ai/stable-audio-2.5", "run", 0.2, None),
]


def _properties(path: Path) -> dict[str, dict[str, Any]]:
    schema = normalise_openapi_schema(json.loads(path.read_text())["input_schema"])
    return dict(schema["properties"])


@needs_shared
@pytest.mark.parametrize(("model", "per", "usd", "by"), SEED_COSTS, ids=[m for m, *_ in SEED_COSTS])
def test_seed_price_text(
    model: str, per: str, usd: float | None, by: dict[str, Any] | None
) -> None:
    path = shared_file(model)
    text = json.loads(path.read_text())["cost"]
    cost = parse_cost(text, _properties(path))
    assert cost.per == per
    assert cost.usd == (pytest.approx(usd) if usd is not None else None)
    if by is None:
        assert cost.by is None
    else:
        assert cost.by is not None
        assert cost.by.field == by["field"]
        assert cost.by.usd == pytest.approx(by["usd"])
    assert cost.known == (usd is not None or by is not None)
    # The imported declaration carries the same formula; without one, a bound from its time.
    if cost.known:
        assert imported(model).declaration.cost == cost
    else:
        assert imported(model).declaration.cost.upper_bound


QUALITY = {"quality": {"type": "string", "enum": ["low", "medium", "high"]}}
COST_EDGES: list[tuple[str, str | None, dict[str, Any], float | None, str, Any]] = [
    # id, text, parse_cost kwargs, usd, per, by (field, table) or None
    ("empty", "", {}, None, "run", None),
    ("none", None, {}, None, "run", None),
    ("question-mark", "?", {}, None, "run", None),
    ("words-only", "free during beta", {}, None, "run", None),
    ("million-tokens", "$1.50 per million input tokens", {}, 1.5e-6, "input_token", None),
    ("minute-of-audio", "$0.06 per minute of output audio", {}, 0.001, "output_second", None),
    ("per-image", "$0.08 per image", {}, 0.08, "output", None),
    ("per-video", "$2 per video", {}, 2.0, "run", None),
    ("per-prediction", "0.5 USD per prediction", {}, 0.5, "run", None),
    ("per-1k-chars", "$0.30 / 1k characters", {}, 0.0003, "input_character", None),
    (
        "compute-seconds-with-median",
        "$0.0014 per second",
        {"median_seconds": 10.0},
        0.014,
        "run",
        None,
    ),
    ("compute-seconds-no-median", "$0.0014 per second", {}, None, "run", None),
    ("megapixels-unknown-unit", "$0.04 per output MP", {}, None, "run", None),
    (
        "key-value-labels",
        "quality=low: $0.013 per output image; quality=high: $0.136 per output image",
        {"properties": QUALITY},
        None,
        "output",
        ("quality", {"low": 0.013, "high": 0.136}),
    ),
    (
        "labels-case-insensitive",
        "*LOW*: 0.01 per output image *HIGH*: 0.02 per output image",
        {"properties": QUALITY},
        None,
        "output",
        ("quality", {"low": 0.01, "high": 0.02}),
    ),
    (
        "labels-without-field-use-highest",
        "*480p*: 0.018 per second of video *720p*: 0.036 per second of video",
        {},
        0.036,
        "output_second",
        None,
    ),
]


@pytest.mark.parametrize(
    ("text", "kwargs", "usd", "per", "by"),
    [case[1:] for case in COST_EDGES],
    ids=[case[0] for case in COST_EDGES],
)
def test_cost_edge_cases(
    text: str | None, kwargs: dict[str, Any], usd: float | None, per: str, by: Any
) -> None:
    cost = parse_cost(text, kwargs.get("properties"), median_seconds=kwargs.get("median_seconds"))
    assert cost.per == per
    assert cost.usd == (pytest.approx(usd) if usd is not None else None)
    if by is None:
        assert cost.by is None
    else:
        assert cost.by is not None
        assert (cost.by.field, cost.by.usd) == (by[0], pytest.approx(by[1]))


# --------------------------------------------------------------------------------------
# Models the importer has never seen
# --------------------------------------------------------------------------------------

SYNTHETIC_IMAGE: dict[str, Any] = {
    "model": "acme-labs/pixel-forge-9",
    "category": "Image Models",
    "description": "A made-up model for testing the importer.",
    "version": "0123456789abcdef",
    "openapi_schema": {
        "components": {
            "schemas": {
                "Input": {
                    "type": "object",
                    "title": "Input",
                    "required": ["input_text"],
                    "properties": {
                        "input_text": {
                            "type": "string",
                            "x-order": 0,
                            "description": "What to draw",
                        },
                        "num_images": {
                            "type": "integer",
                            "default": 1,
                            "minimum": 1,
                            "maximum": 8,
                            "x-order": 1,
                            "description": "How many pictures",
                        },
                        "width": {
                            "type": "integer",
                            "default": 1024,
                            "minimum": 256,
                            "maximum": 2048,
                            "x-order": 2,
                            "description": "Output width in pixels, a multiple of 64",
                        },
                        "height": {
                            "type": "integer",
                            "default": 1024,
                            "minimum": 256,
                            "maximum": 2048,
                            "x-order": 3,
                            "description": "Output height in pixels, a multiple of 64",
                        },
                        "style": {
                            "allOf": [{"$ref": "#/components/schemas/style"}],
                            "default": "photo",
                            "x-order": 4,
                        },
                        "access_token": {
                            "type": "string",
                            "x-order": 5,
                            "description": "Your Acme access token",
                        },
                    },
                },
                "style": {"type": "string", "enum": ["photo", "sketch"]},
                "Unused": {"type": "string"},
                "Output": {"type": "array", "items": {"type": "string", "format": "uri"}},
            }
        }
    },
    "default_example": {
        "input": {"input_text": "a fox"},
        "output": ["https://example.invalid/out-0.png"],
        "metrics": {"predict_time": 4.24},
    },
}


def test_never_seen_image_model() -> None:
    result = import_metadata(copy.deepcopy(SYNTHETIC_IMAGE), source="synthetic")
    declaration = result.declaration
    assert declaration.model == "acme-labs/pixel-forge-9"
    assert declaration.model_id == "replicate:acme-labs/pixel-forge-9"
    assert declaration.kind.value == "text-to-image"
    assert declaration.version == "0123456789abcdef"
    assert declaration.mapping["prompt"].field == "input_text"
    count = declaration.mapping["count"]
    assert (count.field, count.snap) == ("num_images", True)
    size = declaration.mapping["aspect_ratio"]
    assert size.size_fields == ("width", "height")
    assert (size.multiple_of, size.long_side) == (64, 1024)
    assert declaration.output.media == "image"
    assert declaration.output.multiple is True
    assert declaration.output.default_format == "png"
    assert declaration.secret_fields == {"access_token": "ACCESS_TOKEN"}
    assert set(declaration.schema_components) == {"style"}
    assert declaration.median_seconds == pytest.approx(4.2)
    # No price in the metadata: an upper bound from the example prediction's 4.24 s.
    assert declaration.cost.basis == "upper_bound"
    assert declaration.cost.seconds == pytest.approx(4.24)
    assert "cost: no price in the metadata (price text: none)" in result.not_inferred
    assert declaration.source == "imported from synthetic"


def test_never_seen_image_model_maps_a_job() -> None:
    from producers.replicate.mapping import map_inputs
    from producers.sdk.secrets import SecretResolver

    class Fixed(SecretResolver):
        def lookup(self, name: str) -> str | None:
            return "token-for-tests"

    declaration = import_metadata(copy.deepcopy(SYNTHETIC_IMAGE)).declaration
    mapped = map_inputs(
        declaration,
        {"prompt": "a fox", "aspect_ratio": "16:9", "count": 8},
        {},
        secrets=Fixed(),
    )
    assert mapped.payload["input_text"] == "a fox"
    assert (mapped.payload["width"], mapped.payload["height"]) == (1024, 576)
    assert mapped.payload["num_images"] == 8
    # count multiplies what is paid: outside the field's range it is refused, never snapped
    with pytest.raises(InvalidInputError, match=r"count=20 is outside .* num_images"):
        map_inputs(declaration, {"prompt": "a fox", "count": 20}, {}, secrets=Fixed())


SYNTHETIC_OTHERS: list[tuple[str, dict[str, Any], str, dict[str, dict[str, Any]]]] = [
    (
        "speech-form-1-audio-category",
        {
            "model": "someone/tiny-voice",
            "category": "Audio",
            "cost": "$0.02 per thousand input characters",
            "median_seconds": 1.5,
            "input_schema": {
                "type": "object",
                "required": ["input_text"],
                "properties": {
                    "input_text": {"type": "string", "description": "Text to speak"},
                    "speaker": {"type": "string", "enum": ["alice", "bob"], "default": "alice"},
                    "lang": {"type": "string", "enum": ["en", "de"], "default": "en"},
                },
            },
        },
        "text-to-speech",
        {
            "prompt": {"field": "input_text"},
            "voice": {"field": "speaker"},
            "language": {"field": "lang"},
        },
    ),
    (
        "video-required-start-image",
        {
            "model": "someone/animate-it",
            "category": "Video Models",
            "input_schema": {
                "type": "object",
                "required": ["start_image"],
                "properties": {
                    "start_image": {"type": "string", "format": "uri"},
                    "prompt": {"type": "string"},
                    "clip_duration_ms": {
                        "type": "integer",
                        "minimum": 1000,
                        "maximum": 10000,
                        "description": "Length of the clip in milliseconds",
                    },
                    "ratio": {"type": "string", "enum": ["1:1", "9:16"], "default": "9:16"},
                },
            },
        },
        "image-to-video",
        {
            "image": {"field": "start_image", "as_list": False},
            "duration_seconds": {"field": "clip_duration_ms", "scale": 1000, "snap": True},
            "aspect_ratio": {"field": "ratio", "fallback": "1:1"},
        },
    ),
    (
        "music-by-description-only",
        {
            "model": "someone/beats",
            "description": "Generate music loops from a text description",
            "openapi_schema": {
                "components": {
                    "schemas": {
                        "Input": {
                            "type": "object",
                            "properties": {
                                "caption": {"type": "string", "description": "Prompt"},
                                "seconds_total": {
                                    "type": "number",
                                    "description": "Duration of the loop in seconds",
                                },
                                "neg": {
                                    "type": "string",
                                    "description": "Negative prompt: what to avoid",
                                },
                            },
                        },
                        "Output": {"type": "string", "format": "uri"},
                    }
                }
            },
            "default_example": {"output": "https://example.invalid/loop.mp3"},
        },
        "text-to-music",
        {
            "prompt": {"field": "caption"},
            "duration_seconds": {"field": "seconds_total", "snap": True},
            "negative_prompt": {"field": "neg"},
        },
    ),
    (
        "replicate-api-model-object",
        {
            "owner": "someone",
            "name": "paint-o-matic",
            "description": "Text-to-image model",
            "latest_version": {
                "id": "v1",
                "openapi_schema": {
                    "components": {
                        "schemas": {
                            "Input": {
                                "type": "object",
                                "properties": {"prompt": {"type": "string"}},
                            }
                        }
                    }
                },
            },
        },
        "text-to-image",
        {"prompt": {"field": "prompt"}},
    ),
]


@pytest.mark.parametrize(
    ("data", "kind", "mappings"),
    [case[1:] for case in SYNTHETIC_OTHERS],
    ids=[case[0] for case in SYNTHETIC_OTHERS],
)
def test_never_seen_models(
    data: dict[str, Any], kind: str, mappings: dict[str, dict[str, Any]]
) -> None:
    declaration = import_metadata(data).declaration
    assert declaration.kind.value == kind
    for attribute, expected in mappings.items():
        mapping = declaration.mapping[attribute]
        for key, value in expected.items():
            assert getattr(mapping, key) == value, f"{attribute}.{key}"


def test_audio_category_is_reported_as_a_guess() -> None:
    result = import_metadata(SYNTHETIC_OTHERS[0][1])
    assert "kind: category 'Audio' says audio; guessed speech because it has a voice field" in (
        result.not_inferred
    )
    assert any(line.startswith("kind: guessed text-to-speech") for line in result.not_inferred)
    assert result.declaration.cost.usd == pytest.approx(0.00002)


def test_importer_names_no_known_model() -> None:
    source = "\n".join(path.read_text() for path in sorted(IMPORTER_SOURCE.glob("*.py")))
    assert "def import_metadata" in source
    for model in SHIPPED_KINDS:
        assert model not in source, model


# --------------------------------------------------------------------------------------
# Garbage in, a useful error out
# --------------------------------------------------------------------------------------

_PROPS = {"prompt": {"type": "string"}}
GARBAGE: list[tuple[str, Any, str]] = [
    ("not-an-object", ["model", "a/b"], "expected a JSON object"),
    ("empty-object", {}, "no model name"),
    (
        "model-not-owner-name",
        {"model": "justaname", "input_schema": {}},
        "not of the form owner/name",
    ),
    ("no-schema", {"model": "a/b", "category": "Image Models"}, "no input schema"),
    (
        "schema-without-fields",
        {"model": "a/b", "input_schema": {"type": "object", "properties": {}}},
        "no properties",
    ),
    (
        "openapi-without-input",
        {"model": "a/b", "openapi_schema": {"components": {"schemas": {"Output": {}}}}},
        "components.schemas.Input",
    ),
    (
        "dangling-ref",
        {
            "model": "a/b",
            "category": "Image Models",
            "input_schema": {
                "properties": {"x": {"allOf": [{"$ref": "#/components/schemas/Missing"}]}}
            },
        },
        "unresolvable $ref",
    ),
    (
        "nothing-says-what-it-makes",
        {"model": "a/b", "input_schema": {"properties": {"foo": {"type": "string"}}}},
        "cannot tell what the model makes",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"), [case[1:] for case in GARBAGE], ids=[case[0] for case in GARBAGE]
)
def test_garbage_raises_declaration_error(data: Any, message: str) -> None:
    with pytest.raises(DeclarationError, match="cannot import model metadata") as caught:
        import_metadata(data, source="garbage.json")
    assert message in str(caught.value)
    assert "garbage.json" in str(caught.value) or "a/b" in str(caught.value)


def test_import_file_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DeclarationError, match=r"broken\.json is not valid JSON \(line 1"):
        import_file(broken)
    with pytest.raises(DeclarationError, match=r"missing\.json does not exist"):
        import_file(tmp_path / "missing.json")


def test_write_declaration_round_trip(tmp_path: Path) -> None:
    declaration = import_metadata(copy.deepcopy(SYNTHETIC_IMAGE)).declaration
    path = write_declaration(declaration, tmp_path)
    assert path == tmp_path / "acme-labs" / "pixel-forge-9.json"
    assert load_declaration(path) == declaration


# --------------------------------------------------------------------------------------
# Shipped declarations
# --------------------------------------------------------------------------------------

SHIPPED_FILES = sorted(SHIPPED.glob("*/*.json"))


@pytest.mark.parametrize(
    "path", SHIPPED_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in SHIPPED_FILES]
)
def test_shipped_declaration_parses_and_sits_at_owner_name(path: Path) -> None:
    declaration = load_declaration(path)
    assert isinstance(declaration, ModelDeclaration)
    assert f"{path.parent.name}/{path.stem}" == declaration.model
    assert path.read_text(encoding="utf-8") == dump_declaration(declaration)
    assert declaration.source, "a shipped declaration says where its schema came from"


def test_shipped_model_ids_are_unique() -> None:
    ids = Counter(load_declaration(path).model_id for path in SHIPPED_FILES)
    assert [model_id for model_id, n in ids.items() if n > 1] == []


@pytest.mark.parametrize(("model", "kind"), list(SHIPPED_KINDS.items()), ids=list(SHIPPED_KINDS))
def test_every_expected_model_is_shipped(model: str, kind: str) -> None:
    path = SHIPPED / f"{model}.json"
    assert path.exists(), f"{model} has no declaration"
    assert load_declaration(path).kind.value == kind


@pytest.mark.parametrize("model", ["google/imagen-4", "tencent/hunyuan-image-3"])
def test_hand_declared_models_say_what_is_unconfirmed(model: str) -> None:
    declaration = load_declaration(SHIPPED / f"{model}.json")
    assert declaration.unconfirmed
    assert any(line.startswith("input_schema:") for line in declaration.unconfirmed)
    assert declaration.source
    assert "hand-written" in declaration.source
    assert declaration.mapping["aspect_ratio"].field == "aspect_ratio"
