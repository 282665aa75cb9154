"""The importer's steps, one at a time: each returns what it found and its notes."""

from __future__ import annotations

from typing import Any

import pytest

from producers.replicate.importer.cost import infer_cost
from producers.replicate.importer.fixed_fields import find_fixed_fields
from producers.replicate.importer.kind import infer_kind, infer_media
from producers.replicate.importer.mapping import infer_mapping
from producers.replicate.importer.metadata import read_metadata
from producers.replicate.importer.output import infer_output
from producers.replicate.importer.report import Notes, gather
from producers.replicate.importer.schema import find_schema
from producers.sdk.errors import DeclarationError
from producers.sdk.jobs import Kind

IMAGE: dict[str, Any] = {
    "model": "acme/pixel",
    "category": "Image Models",
    "cost": "$0.02 per image",
    "median_seconds": 3.5,
    "input_schema": {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "description": "Text prompt"},
            "aspect_ratio": {"type": "string", "enum": ["1:1", "16:9"]},
            "num_outputs": {"type": "integer", "minimum": 1, "maximum": 4},
            "api_key": {"type": "string", "description": "Your API key"},
        },
    },
}

FORM_2: dict[str, Any] = {
    "owner": "acme",
    "name": "clip",
    "description": "Makes a video",
    "openapi_schema": {
        "components": {
            "schemas": {
                "Input": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "prompt": {"type": "string"},
                        "image": {"type": "string", "format": "uri"},
                        "fps": {"type": "integer"},
                    },
                },
                "Output": {"type": "string", "format": "uri"},
            }
        }
    },
    "default_example": {"output": "https://x.test/out.mp4", "metrics": {"predict_time": 41.23}},
}


@pytest.mark.parametrize(
    ("data", "model", "form", "median", "from_example"),
    [(IMAGE, "acme/pixel", 1, 3.5, False), (FORM_2, "acme/clip", 2, 41.2, True)],
    ids=["form-1", "form-2-median-from-example"],
)
def test_read_metadata_finds_the_form_and_the_latency(
    data: dict[str, Any], model: str, form: int, median: float, from_example: bool
) -> None:
    meta = read_metadata(data, "test")
    assert (meta.model, meta.form, meta.median_seconds) == (model, form, median)
    assert meta.median_from_example is from_example


def test_find_schema_lists_fields_and_the_output_schema() -> None:
    meta = read_metadata(FORM_2, "test")
    schema = find_schema(meta, "test")
    assert [f.name for f in schema.fields] == ["prompt", "image", "fps"]
    assert schema.output_schema == {"type": "string", "format": "uri"}
    assert schema.fields[1].is_uri and schema.fields[1].required


@pytest.mark.parametrize(
    ("data", "media", "kind", "guessed"),
    [
        (IMAGE, "image", Kind.TEXT_TO_IMAGE, False),
        (FORM_2, "video", Kind.IMAGE_TO_VIDEO, False),
        (
            {"model": "a/b", "input_schema": {"properties": {"text": {"type": "string"}}}},
            "speech",
            Kind.TEXT_TO_SPEECH,
            True,
        ),
    ],
    ids=["category", "description-required-image", "guessed-from-fields"],
)
def test_kind_step(data: dict[str, Any], media: str, kind: Kind, guessed: bool) -> None:
    meta = read_metadata(data, "test")
    schema = find_schema(meta, "test")
    found_media = infer_media(meta, schema.fields, "test")
    mapping = infer_mapping(schema.fields, found_media.media)
    found = infer_kind(found_media, mapping.mapping, schema)
    assert (found_media.media, found.kind, found_media.guessed) == (media, kind, guessed)
    lines = found.notes.not_inferred if guessed else found.notes.inferred
    assert lines and lines[-1].startswith(f"kind: {'guessed ' if guessed else ''}{kind.value}")


def test_kind_step_refuses_metadata_that_says_nothing() -> None:
    data = {"model": "a/b", "input_schema": {"properties": {"zzz": {"type": "string"}}}}
    meta = read_metadata(data, "mine.json")
    with pytest.raises(DeclarationError, match=r"mine\.json: a/b: cannot tell what the model"):
        infer_media(meta, find_schema(meta, "mine.json").fields, "mine.json")


def test_mapping_step_returns_the_mapping_and_what_is_missing() -> None:
    meta = read_metadata(IMAGE, "test")
    found = infer_mapping(find_schema(meta, "test").fields, "image")
    assert {k: v.targets for k, v in found.mapping.items()} == {
        "prompt": ("prompt",),
        "aspect_ratio": ("aspect_ratio",),
        "count": ("num_outputs",),
    }
    assert "general attribute 'seed': no matching field" in found.notes.not_inferred


def test_output_fixed_fields_and_cost_steps() -> None:
    meta = read_metadata(IMAGE, "test")
    schema = find_schema(meta, "test")
    output = infer_output(meta, schema, "image", has_count=True)
    assert output.output.multiple and output.output.default_format == "png"
    assert any("no Output schema" in line for line in output.notes.unconfirmed)
    fixed = find_fixed_fields(schema.fields, meta.input_schema)
    assert fixed.secrets == {"api_key": "API_KEY"} and fixed.defaults == {}
    cost = infer_cost(meta, schema)
    assert (cost.cost.per, cost.cost.usd, cost.median_seconds) == ("output", 0.02, 3.5)
    assert cost.notes.inferred == ["cost: $0.02 per output", "median_seconds: 3.5"]


def test_gather_keeps_step_order_list_by_list() -> None:
    first = Notes(inferred=["a"], unconfirmed=["u1"])
    second = Notes(inferred=["b"], not_inferred=["n"], unconfirmed=["u2"])
    total = gather(first, second)
    assert (total.inferred, total.not_inferred, total.unconfirmed) == (
        ["a", "b"],
        ["n"],
        ["u1", "u2"],
    )
