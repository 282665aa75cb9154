"""``instance_for`` builds values that validate against structured-output schemas."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from producers.clients.mock_json import instance_for, text_for

SEED = "Explain the water cycle to ten year olds in three short scenes"


def _strict_object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


MOVIE_SCRIPT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "MovieScript",
    **_strict_object(
        {
            "title": {"type": "string", "description": "Movie title"},
            "segments": {
                "type": "array",
                "minItems": 3,
                "maxItems": 3,
                "items": _strict_object(
                    {
                        "narration": {"type": "string"},
                        "visual_description": {"type": "string"},
                    }
                ),
            },
        }
    ),
}

DEFS_AND_REFS = {
    "$defs": {
        "Mood": {"type": "string", "enum": ["calm", "tense", "joyful"]},
        "Shot": _strict_object(
            {
                "camera": {"enum": ["wide", "close-up"]},
                "mood": {"$ref": "#/$defs/Mood"},
                "seconds": {"type": "number", "minimum": 1, "maximum": 8},
            }
        ),
        "Scene": _strict_object(
            {
                "heading": {"type": "string", "maxLength": 40},
                "shots": {"type": "array", "items": {"$ref": "#/$defs/Shot"}, "minItems": 2},
            }
        ),
    },
    **_strict_object({"scenes": {"type": "array", "items": {"$ref": "#/$defs/Scene"}}}),
}

DRAFT7_DEFINITIONS = {
    "definitions": {"Tag": {"type": "string", "minLength": 3, "maxLength": 12}},
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"$ref": "#/definitions/Tag"}, "uniqueItems": True}
    },
    "required": ["tags"],
}

NUMERIC = _strict_object(
    {
        "count": {"type": "integer", "minimum": 3, "maximum": 5},
        "exclusive": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 12},
        "negative": {"type": "integer", "maximum": -20},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "step": {"type": "number", "minimum": 0.05, "maximum": 1, "multipleOf": 0.1},
        "sevens": {"type": "integer", "minimum": 8, "multipleOf": 7},
        "big_number": {"type": "number", "minimum": 1000},
        "scores": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 100}},
    }
)

NULLABLE = _strict_object(
    {
        "subtitle": {"type": ["string", "null"]},
        "only_null": {"type": "null"},
        "maybe_count": {"type": ["null", "integer"], "minimum": 2},
        "pydantic_optional": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "null_first": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Point"}]},
    }
) | {"$defs": {"Point": _strict_object({"x": {"type": "number"}, "y": {"type": "number"}})}}

FORMATS = _strict_object(
    {
        "day": {"type": "string", "format": "date"},
        "when": {"type": "string", "format": "date-time"},
        "link": {"type": "string", "format": "uri"},
        "contact": {"type": "string", "format": "email"},
        "id": {"type": "string", "format": "uuid"},
        "code": {"type": "string", "pattern": "^[a-z_]+$"},
        "upper": {"type": "string", "pattern": "^[A-Z_]+$"},
        "short": {"type": "string", "minLength": 2, "maxLength": 4},
        "long": {"type": "string", "minLength": 120},
        "fixed": {"const": {"version": 2}},
        "flag": {"type": "boolean"},
    }
)

COMBINATORS = {
    "type": "object",
    "properties": {
        "merged": {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string"}}, "required": ["b"]},
                {"properties": {"a": {"minimum": 10}}},
            ]
        },
        "either": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        "overlapping_one_of": {"oneOf": [{"type": "number"}, {"type": "integer", "minimum": 0}]},
        "ref_with_siblings": {
            "$ref": "#/$defs/Base",
            "required": ["extra"],
            "properties": {"extra": {"type": "boolean"}},
        },
        "untyped": {},
        "anything": True,
        "inferred_object": {"properties": {"k": {"type": "string"}}},
        "tuple": {
            "type": "array",
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "items": False,
        },
        "free_map": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "minProperties": 2,
        },
    },
    "required": ["merged", "either"],
    "$defs": {
        "Base": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    },
}

RECURSIVE = {
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "label": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                "parent": {"$ref": "#/$defs/Node"},
            },
            "required": ["label", "children"],
        }
    },
    "$ref": "#/$defs/Node",
}

SCHEMAS = {
    "movie-script": MOVIE_SCRIPT,
    "defs-and-refs": DEFS_AND_REFS,
    "draft7-definitions": DRAFT7_DEFINITIONS,
    "numeric-bounds": NUMERIC,
    "nullable": NULLABLE,
    "formats": FORMATS,
    "combinators": COMBINATORS,
    "recursive": RECURSIVE,
    "enum": {"enum": ["first", "second"]},
    "top-level-array": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    "empty-array": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
    "string": {"type": "string"},
    "boolean-true": True,
}


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_instances_validate_and_are_deterministic(schema: Any) -> None:
    value = instance_for(schema, seed_text=SEED)
    jsonschema.Draft202012Validator(schema).validate(value)
    assert instance_for(schema, seed_text=SEED) == value
    json.dumps(value)  # plain JSON types only


def test_movie_script_shape() -> None:
    script = instance_for(MOVIE_SCRIPT, seed_text=SEED)
    assert list(script) == ["title", "segments"]
    assert len(script["segments"]) == 3
    assert all(
        list(segment) == ["narration", "visual_description"] for segment in script["segments"]
    )
    narrations = [segment["narration"] for segment in script["segments"]]
    assert len(set(narrations)) == 3
    assert all("water cycle" in narration for narration in narrations)
    assert script["segments"][0] != script["segments"][1]


def test_array_items_differ() -> None:
    value = instance_for(DEFS_AND_REFS, seed_text=SEED)
    scenes = value["scenes"]
    assert len(scenes) == 3
    assert len({json.dumps(scene, sort_keys=True) for scene in scenes}) == 3
    assert len(scenes[0]["shots"]) == 2
    assert scenes[0]["shots"][0] != scenes[0]["shots"][1]
    tags = instance_for(DRAFT7_DEFINITIONS)["tags"]
    assert len(set(tags)) == len(tags) == 3
    scores = instance_for(NUMERIC)["scores"]
    assert len(set(scores)) == 3


def test_seed_text_changes_strings() -> None:
    assert instance_for(MOVIE_SCRIPT, seed_text="volcanoes") != instance_for(
        MOVIE_SCRIPT, seed_text="tides"
    )


def test_nullable_picks_the_non_null_type() -> None:
    value = instance_for(NULLABLE)
    assert isinstance(value["subtitle"], str)
    assert value["only_null"] is None
    assert isinstance(value["maybe_count"], int)
    assert isinstance(value["pydantic_optional"], str)
    assert set(value["null_first"]) == {"x", "y"}


def test_enum_and_bounds_values() -> None:
    assert instance_for({"enum": ["first", "second"]}) == "first"
    numbers = instance_for(NUMERIC)
    assert 3 <= numbers["count"] <= 5
    assert numbers["exclusive"] == 11
    assert numbers["negative"] <= -20
    assert 0 < numbers["ratio"] < 1
    assert numbers["sevens"] == 14


def test_recursion_stops() -> None:
    value = instance_for(RECURSIVE)
    assert value["children"]
    assert all(child["children"] == [] for child in value["children"])


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}},
            "#/properties/a/$ref",
        ),
        ({"type": "object", "properties": {"a": {"$ref": "other.json#/x"}}}, "#/properties/a/$ref"),
        (
            {"type": "object", "properties": {"a": {"not": {"type": "string"}}}},
            "#/properties/a/not",
        ),
        (
            {"type": "array", "items": {"if": {"type": "string"}, "then": {"minLength": 2}}},
            "#/items/if",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}},
            "#/properties/a/$ref",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string", "pattern": "^\\d{3}-[A-Z]{2}$"}},
            },
            "#/properties/a/pattern",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "integer", "minimum": 5, "maximum": 4}},
            },
            "#/properties/a",
        ),
        ({"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 2}, "#"),
        (_strict_object({"a": False}), "#/properties/a"),
    ],
    ids=[
        "external-url",
        "relative-file",
        "not",
        "if-then",
        "missing-def",
        "pattern",
        "empty-range",
        "items-range",
        "false",
    ],
)
def test_unsupported_constructs_name_the_path(schema: dict[str, Any], path: str) -> None:
    with pytest.raises(ValueError, match=f"schema at {re.escape(path)}[: ]") as caught:
        instance_for(schema)
    assert path in str(caught.value)


def test_pattern_with_a_matching_example_is_supported() -> None:
    schema = {"type": "string", "pattern": "^\\d{3}-[A-Z]{2}$", "examples": ["123-AB"]}
    assert instance_for(schema) == "123-AB"


def test_text_for() -> None:
    answer = text_for("Write a two sentence narration about volcanoes")
    assert answer.startswith("Mock answer:")
    assert "volcanoes" in answer
    assert text_for("Write a two sentence narration about volcanoes") == answer
    assert text_for("Something else") != answer
    assert len(text_for(" ".join(["word"] * 500), max_words=60).split()) == 60
    assert len(text_for("a b c d e f", max_words=4).split()) == 4
    assert text_for("").startswith("Mock answer:")
