"""Limits on what a person or a model can make large, and bad files and values as one line.

The helpers: ``producers.sdk.documents`` (files and texts), ``KEY=VALUE`` values and
overrides, ``$ref`` inlining, the mapping of numbers (finite; ``count`` never snapped),
attachments. Each bad input raises one error whose message names the input and what is
allowed, without a traceback; each limit is exercised just over and just under.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from producers.cli.values import error_line, parse_pairs
from producers.pipeline.options import load_options, parse_override
from producers.replicate.catalogue import Catalogue
from producers.replicate.declaration import load_declaration
from producers.replicate.mapping import map_inputs
from producers.sdk.attachments import attachment_from_path
from producers.sdk.documents import json_or_text, parse_document, read_document
from producers.sdk.errors import DeclarationError, InvalidInputError
from producers.sdk.jobs import Attachment
from producers.sdk.limits import MAX_NESTING_DEPTH, MIB, size_text
from producers.sdk.schema import InvalidSchemaError, check_schema, normalise_openapi_schema
from producers.testing import JobContext, make_job_request

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def _nested(fmt: str, depth: int) -> str:
    if fmt == "json":
        return "[" * depth + "]" * depth
    if fmt == "toml":  # the document's own table is the first level
        return "a = " + "[" * (depth - 1) + "]" * (depth - 1)
    return "[" * depth + "]" * depth  # YAML flow sequences


# -- files --------------------------------------------------------------------------------

# (id, file name, bytes, words the one-line refusal must contain)
BAD_FILES: list[tuple[str, str, bytes, list[str]]] = [
    ("non-utf8", "c.yaml", b"topic: caf\xe9\n", ["not UTF-8", "byte 0xe9 at offset 10", "line 1"]),
    ("utf16-bom", "c.json", b"\xff\xfe{\x00}\x00", ["not UTF-8", "UTF-16 byte-order mark"]),
    ("binary-garbage", "c.yaml", bytes(range(256)) * 4, ["not UTF-8", "offset 128"]),
    ("control-character", "c.yaml", b"a: \x00\n", ["not valid YAML", "special characters"]),
    ("json-syntax", "c.json", b'{"a": 1,}', ["not valid JSON", "line 1, column 9"]),
    ("yaml-syntax", "c.yaml", b"a: [1\nb: 2\n", ["not valid YAML", "line 2, column 2"]),
    ("toml-syntax", "c.toml", b"a = \n", ["not valid TOML", "line 1, column 5"]),
    ("json-deep", "c.json", _nested("json", 100_000).encode(), ["deeper than 64 levels"]),
    ("toml-deep", "c.toml", _nested("toml", 5_000).encode(), ["deeper than 64 levels"]),
    ("toml-dotted-deep", "c.toml", ("a" + ".a" * 100 + " = 1").encode(), ["deeper than 64"]),
    ("yaml-flow-deep", "c.yaml", _nested("yaml", 5_000).encode(), ["deeper than 64 levels"]),
    (
        "yaml-block-deep",
        "c.yaml",
        "".join("  " * i + "- \n" for i in range(100)).encode(),
        ["deeper than 64 levels", "line 66"],
    ),
    ("yaml-alias-bomb", "c.yaml", BILLION_LAUGHS.encode(), ["more than 100,000 values", "alias"]),
    ("yaml-recursive-alias", "c.yaml", b"a: &a [*a]\n", ["alias that contains itself"]),
    ("yaml-recursive-merge", "c.yaml", b"a: &a {<<: *a}\n", ["alias that contains itself"]),
    ("yaml-binary-tag", "c.yaml", b"a: !!binary aGk=\n", ["YAML tag", "binary", "JSON-like"]),
    ("yaml-python-tag", "c.yaml", b"a: !!python/name:os.system\n", ["not valid YAML"]),
    ("yaml-int-key", "c.yaml", b"1: x\n", ["key 1", "not text"]),
    ("json-nan", "c.json", b'{"a": {"b": NaN}}', ["a.b is nan", "finite"]),
    ("json-1e999", "c.json", b'{"a": [1e999]}', ["a.0 is inf", "finite"]),
    ("yaml-inf", "c.yaml", b"count: .inf\n", ["count is inf", "finite"]),
    ("toml-nan", "c.toml", b"x = nan\n", ["x is nan", "finite"]),
    ("huge-integer", "c.json", b'{"a": ' + b"9" * 5000 + b"}", ["more than 4300 digits"]),
    ("yaml-multi-document", "c.yaml", b"a: 1\n---\nb: 2\n", ["another document"]),
]


@pytest.mark.parametrize(
    ("name", "data", "words"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_a_bad_file_is_one_line_naming_it(
    tmp_path: Path, name: str, data: bytes, words: list[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InvalidInputError) as caught:
        read_document(path, what="config")
    reason = caught.value.reason
    assert reason.startswith(f"config {path}"), reason
    assert "\n" not in reason
    for word in words:
        assert word in reason, reason


def test_a_missing_file_a_folder_and_a_file_over_the_cap(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"c\.json does not exist; give a JSON"):
        read_document(tmp_path / "c.json", what="config")
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(InvalidInputError, match=r"d\.yaml is a folder; give a JSON or TOML"):
        read_document(tmp_path / "d.yaml", what="config")
    big = tmp_path / "big.json"
    big.write_text('{"a": "' + "x" * 2000 + '"}')
    with pytest.raises(InvalidInputError, match=r"is 2.0 KiB; the limit is 1000 bytes"):
        read_document(big, what="config", max_bytes=1000)
    assert read_document(big, what="config", max_bytes=2010) == {"a": "x" * 2000}


def test_the_read_is_bounded_even_when_the_size_lies() -> None:
    # /dev/zero says it is empty and never ends: the read stops at the cap.
    with pytest.raises(InvalidInputError, match=r"larger than 1\.00 MiB"):
        read_document("/dev/zero", what="config", max_bytes=MIB)


def test_the_alias_bomb_is_refused_quickly_in_little_memory() -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(InvalidInputError, match="alias"):
            parse_document(BILLION_LAUGHS, "yaml", label="options file o.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 1.0
    assert peak < 5 * MIB


# (id, format, text, expected): what real files do still parses.
GOOD_DOCUMENTS: list[tuple[str, str, str, Any]] = [
    ("utf8-bom-json", "json", '\ufeff{"a": 1}', {"a": 1}),
    ("anchors-and-merge", "yaml", "b: &b {x: 1}\nc: *b\nd: {<<: *b, y: 2}\n", None),
    ("dates-stay-text", "yaml", "day: 2024-01-31\n", {"day": "2024-01-31"}),
    ("empty-yaml", "yaml", "", None),
    ("nested-64", "json", _nested("json", MAX_NESTING_DEPTH), None),
    (
        "toml-table",
        "toml",
        '[image]\nmodel = "replicate:x/y"\n',
        {"image": {"model": "replicate:x/y"}},
    ),
    ("brackets-in-strings", "json", '{"a": "[[[[[[" }', {"a": "[[[[[["}),
]


@pytest.mark.parametrize(
    ("fmt", "text", "expected"), [c[1:] for c in GOOD_DOCUMENTS], ids=[c[0] for c in GOOD_DOCUMENTS]
)
def test_legitimate_documents_still_parse(fmt: Any, text: str, expected: Any) -> None:
    data = parse_document(text, fmt, label="doc")
    if expected is not None:
        assert data == expected
    if fmt == "yaml" and text.startswith("b:"):
        assert data == {"b": {"x": 1}, "c": {"x": 1}, "d": {"x": 1, "y": 2}}


def test_one_level_more_than_the_limit_is_refused_in_every_format() -> None:
    for fmt in ("json", "toml", "yaml"):
        parse_document(_nested(fmt, MAX_NESTING_DEPTH), fmt, label="doc")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="deeper than 64"):
            parse_document(_nested(fmt, MAX_NESTING_DEPTH + 1), fmt, label="doc")  # type: ignore[arg-type]


# -- KEY=VALUE values and ROLE.KEY=VALUE overrides --------------------------------------

# (id, raw value, expected value or the words of the refusal)
VALUES: list[tuple[str, str, Any]] = [
    ("integer", "3", 3),
    ("text", "a volcano", "a volcano"),
    ("not-json", "[[[", "[[["),
    ("json-list", "[1, 2]", [1, 2]),
    ("overflow", "1e999", ["is inf", "finite"]),
    ("nan", "NaN", ["is nan", "finite"]),
    ("infinity", "Infinity", ["is inf"]),
    ("minus-infinity", "-Infinity", ["is -inf"]),
    ("nested-infinity", '{"a": [Infinity]}', ["a.0 is inf"]),
    ("huge-integer", "9" * 5000, ["more than 4300 digits"]),
    ("deep", "[" * 100 + "]" * 100, ["deeper than 64"]),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in VALUES], ids=[c[0] for c in VALUES])
def test_set_values(raw: str, expected: Any) -> None:
    if isinstance(expected, list) and all(isinstance(w, str) for w in expected) and raw[0] != "[":
        with pytest.raises(InvalidInputError) as caught:
            parse_pairs([f"count={raw}"], option="--set")
        assert caught.value.reason.startswith("--set count")
        for word in expected:
            assert word in caught.value.reason
        with pytest.raises(InvalidInputError) as caught:
            parse_override(f"image.inputs.count={raw}")
        assert caught.value.reason.startswith("override image.inputs.count")
    elif raw.startswith("[" * 100):
        with pytest.raises(InvalidInputError, match=expected[0]):
            json_or_text(raw, label="--custom x")
    else:
        assert parse_pairs([f"count={raw}"], option="--set") == {"count": expected}
        assert parse_override(f"image.inputs.count={raw}") == {
            "image": {"inputs": {"count": expected}}
        }


# (id, override, words of the refusal)
BAD_OVERRIDES: list[tuple[str, str, str]] = [
    ("no-equals", "image.model", "is not ROLE.KEY=VALUE"),
    ("no-key", "image=x", "is not ROLE.KEY=VALUE"),
    ("unknown-role", "poster.model=x", "unknown role 'poster'"),
    ("too-many-keys", "image" + ".a" * 100 + "=1", "has 101 keys; at most 64"),
]


@pytest.mark.parametrize(
    ("text", "words"), [c[1:] for c in BAD_OVERRIDES], ids=[c[0] for c in BAD_OVERRIDES]
)
def test_bad_overrides(text: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        parse_override(text)


def test_options_file_attachments_must_be_paths(tmp_path: Path) -> None:
    options = tmp_path / "o.yaml"
    options.write_text("image:\n  attachments: [1]\n")
    with pytest.raises(InvalidInputError, match=r"image\.attachments must be a list of file paths"):
        load_options([options])


def test_an_error_line_is_one_line() -> None:
    error = InvalidInputError("bad value", prompt="two\nlines")
    line = error_line(error)
    assert "\n" not in line and "bad value" in line and "two\\nlines" in line


# -- schemas and declarations ----------------------------------------------------------

_REF = "#/components/schemas/"

# (id, schema, components, words of the DeclarationError)
BAD_SCHEMAS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (
        "ref-cycle",
        {"properties": {"x": {"$ref": _REF + "A"}}},
        {"A": {"allOf": [{"$ref": _REF + "B"}]}, "B": {"$ref": _REF + "A"}},
        f"$ref cycle: {_REF}A -> {_REF}B -> {_REF}A",
    ),
    (
        "self-reference",
        {"properties": {"x": {"$ref": _REF + "A"}}},
        {"A": {"items": {"$ref": _REF + "A"}}},
        f"$ref cycle: {_REF}A -> {_REF}A",
    ),
    (
        "deep",
        {"properties": {"x": json.loads('{"items": ' * 100 + "{}" + "}" * 100)}},
        {},
        "deeper than 64 levels",
    ),
    (
        "ref-bomb",
        {"properties": {"x": {"$ref": _REF + "L6"}}},
        {
            "L0": {"type": "string"},
            **{f"L{i}": {"anyOf": [{"$ref": f"{_REF}L{i - 1}"}] * 10} for i in range(1, 7)},
        },
        "more than 100,000 values",
    ),
]


@pytest.mark.parametrize(
    ("schema", "components", "words"),
    [c[1:] for c in BAD_SCHEMAS],
    ids=[c[0] for c in BAD_SCHEMAS],
)
def test_a_bad_schema_is_a_declaration_error(
    schema: dict[str, Any], components: dict[str, Any], words: str
) -> None:
    with pytest.raises(DeclarationError) as caught:
        normalise_openapi_schema(schema, components)
    assert words in str(caught.value)


# (id, JSON Schema, words of the refusal)
BAD_JSON_SCHEMAS: list[tuple[str, dict[str, Any], str]] = [
    ("invalid-type", {"type": "nope"}, "not valid: 'nope' is not valid"),
    ("huge-min-items", {"type": "array", "minItems": 10**8}, "more than 1,000,000"),
    ("huge-min-length", {"type": "string", "minLength": 10**9}, "more than 1,000,000"),
    (
        "nested-min-items",
        {"type": "array", "minItems": 1000, "items": {"type": "array", "minItems": 1001}},
        "more than 1,000,000",
    ),
    (
        "min-items-through-refs",
        {
            "$defs": {"row": {"type": "array", "minItems": 5000, "items": {"type": "string"}}},
            "type": "object",
            "properties": {
                "rows": {"type": "array", "minItems": 500, "items": {"$ref": "#/$defs/row"}}
            },
        },
        "more than 1,000,000",
    ),
]


@pytest.mark.parametrize(
    ("schema", "words"), [c[1:] for c in BAD_JSON_SCHEMAS], ids=[c[0] for c in BAD_JSON_SCHEMAS]
)
def test_a_json_schema_that_asks_for_too_much_is_refused(
    schema: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidSchemaError, match=words) as caught:
        check_schema(schema)
    assert "\n" not in str(caught.value)


def test_recursive_and_ordinary_json_schemas_pass() -> None:
    check_schema({"type": "object", "properties": {"next": {"$ref": "#"}}})
    check_schema({"type": "array", "minItems": 1000, "items": {"type": "string", "minLength": 900}})


def _declaration(**schema: Any) -> dict[str, Any]:
    return {
        "model": "acme/pic",
        "kind": "text-to-image",
        "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}}},
        "output": {"media": "image"},
        "mapping": {"prompt": {"field": "prompt"}},
        **schema,
    }


# (id, file bytes, words of the DeclarationError)
BAD_DECLARATIONS: list[tuple[str, bytes, list[str]]] = [
    (
        "non-utf8",
        json.dumps(_declaration(description="caf\u00e9"), ensure_ascii=False).encode("latin-1"),
        [
            "not UTF-8",
            "byte 0xe9",
        ],
    ),
    (
        "ref-cycle",
        json.dumps(
            _declaration(
                input_schema={
                    "type": "object",
                    "properties": {"prompt": {"$ref": _REF + "P"}},
                },
                schema_components={"P": {"$ref": _REF + "P"}},
            )
        ).encode(),
        ["input_schema", "$ref cycle"],
    ),
    ("deep", _nested("json", 1000).encode(), ["deeper than 64 levels"]),
    ("not-an-object", b"[1]", ["expected a JSON object"]),
]


@pytest.mark.parametrize(
    ("data", "words"), [c[1:] for c in BAD_DECLARATIONS], ids=[c[0] for c in BAD_DECLARATIONS]
)
def test_a_bad_declaration_file_is_one_line(tmp_path: Path, data: bytes, words: list[str]) -> None:
    path = tmp_path / "acme" / "pic.json"
    path.parent.mkdir()
    path.write_bytes(data)
    for load in (lambda: load_declaration(path), lambda: list(Catalogue.load([tmp_path]))):
        with pytest.raises(DeclarationError) as caught:
            load()
        message = str(caught.value)
        assert "pic.json" in message and "\n" not in message
        for word in words:
            assert word in message, message


def test_a_models_path_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "models.json").write_text("{}")
    with pytest.raises(DeclarationError, match="is not a folder"):
        Catalogue.load([tmp_path / "models.json"])


# -- numbers in a job's attributes ------------------------------------------------------

SEEDREAM = "replicate:bytedance/seedream-4"
SD = "replicate:stability-ai/stable-diffusion"
ENUM_COUNT = "replicate:tommoore515/material_stable_diffusion"

# (id, model, inputs, custom, words of the refusal)
BAD_NUMBERS: list[tuple[str, str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("count-inf", SEEDREAM, {"count": float("inf")}, {}, ["count", "inf", "finite"]),
    ("count-nan", SEEDREAM, {"count": float("nan")}, {}, ["count", "nan", "finite"]),
    ("custom-inf", SEEDREAM, {}, {"max_images": float("inf")}, ["max_images", "inf"]),
    ("nested-inf", SEEDREAM, {}, {"image_input": [float("-inf")]}, ["image_input", "-inf"]),
    ("count-over-max", SEEDREAM, {"count": 16}, {}, ["count=16", "max_images", "from 1 to 15"]),
    ("count-zero", SEEDREAM, {"count": 0}, {}, ["count=0", "at least 1"]),
    ("count-negative", SEEDREAM, {"count": -3}, {}, ["count=-3", "at least 1"]),
    ("count-fraction", SEEDREAM, {"count": 2.5}, {}, ["count=2.5", "whole number"]),
    ("count-bool", SEEDREAM, {"count": True}, {}, ["count=True", "whole number"]),
    ("count-huge", SEEDREAM, {"count": 10**30}, {}, ["is outside", "never adjusted"]),
    ("count-not-in-enum", ENUM_COUNT, {"count": 3}, {}, ["count=3", "num_outputs", "one of 1, 4"]),
    ("seed-overflow-float", SD, {"seed": 1e308}, {}, ["input.seed", "1025-bit", "64-bit"]),
    ("seed-overflow-custom", SD, {}, {"seed": 2**64}, ["input.seed", "66-bit"]),
    ("aspect-ratio-inf", SD, {"aspect_ratio": "1e999:1"}, {}, ["aspect_ratio", "W:H"]),
    ("aspect-ratio-nan", SD, {"aspect_ratio": "nan:1"}, {}, ["aspect_ratio", "W:H"]),
]


@pytest.mark.parametrize(
    ("model", "inputs", "custom", "words"),
    [c[1:] for c in BAD_NUMBERS],
    ids=[c[0] for c in BAD_NUMBERS],
)
def test_bad_numbers_are_refused_by_the_mapping(
    model: str, inputs: dict[str, Any], custom: dict[str, Any], words: list[str]
) -> None:
    declaration = Catalogue.load().get(model.split(":", 1)[1])
    assert declaration is not None
    with pytest.raises(InvalidInputError) as caught:
        map_inputs(declaration, {"prompt": "a fox", **inputs}, custom)
    for word in words:
        assert word in caught.value.reason, caught.value.reason


def test_allowed_counts_pass_and_other_numbers_still_snap() -> None:
    catalogue = Catalogue.load()
    seedream = catalogue.get("bytedance/seedream-4")
    assert seedream is not None
    assert map_inputs(seedream, {"prompt": "x", "count": 15}, {}).payload["max_images"] == 15
    assert map_inputs(seedream, {"prompt": "x", "count": 2.0}, {}).payload["max_images"] == 2
    sd = catalogue.get("stability-ai/stable-diffusion")
    assert sd is not None
    assert map_inputs(sd, {"prompt": "x"}, {"seed": -(2**63)}).payload["seed"] == -(2**63)
    seedance = catalogue.get("bytedance/seedance-1-lite")  # duration: 2 to 12, snapped
    assert seedance is not None
    mapped = map_inputs(seedance, {"prompt": "x", "duration_seconds": 10_000}, {})
    assert mapped.payload["duration"] == 12
    assert mapped.warnings and "duration_seconds=10000" in mapped.warnings[0]


# -- attachments ------------------------------------------------------------------------


def test_attachment_errors_name_the_file_and_who_it_is_for(tmp_path: Path) -> None:
    owner = "replicate:acme/pic"
    with pytest.raises(InvalidInputError, match=f"attachment of {owner} {tmp_path} is a folder"):
        attachment_from_path(tmp_path, owner=owner)
    missing = tmp_path / "nope.txt"
    with pytest.raises(InvalidInputError, match=r"nope\.txt does not exist"):
        attachment_from_path(missing, owner=owner)
    big = tmp_path / "big.txt"
    big.write_text("x" * 300_000)
    with pytest.raises(InvalidInputError, match=f"of {owner} .* is 293.0 KiB; the limit is 256.0"):
        attachment_from_path(big, owner=owner)
    latin = tmp_path / "l.txt"
    latin.write_bytes(b"caf\xe9")
    with pytest.raises(InvalidInputError, match=r"not UTF-8 text \(byte 0xe9 at offset 3"):
        attachment_from_path(latin)


async def test_the_runtime_check_names_producer_and_model() -> None:
    request = make_job_request(
        "openai:gpt-5-mini",
        inputs={"prompt": "x"},
        attachments=(Attachment(name="style.txt", content="x" * 300_000),),
    )
    with pytest.raises(InvalidInputError) as caught:
        await JobContext().handler(request).run(request)
    text = str(caught.value)
    assert "producer openai.prompt" in text and "model openai:gpt-5-mini" in text
    assert "attachment 'style.txt' is 293.0 KiB" in text


async def test_a_deep_json_attachment_is_refused_not_a_recursion_error() -> None:
    request = make_job_request(
        "openai:gpt-5-mini",
        inputs={"prompt": "x"},
        attachments=(Attachment(name="a.json", content=_nested("json", 10_000)),),
    )
    with pytest.raises(InvalidInputError, match=r"attachment 'a\.json' nests deeper than 64"):
        await JobContext().handler(request).run(request)


def test_size_text() -> None:
    assert [size_text(n) for n in (512, 300 * 1024, 1024 * 1024 + 52429)] == [
        "512 bytes",
        "300.0 KiB",
        "1.05 MiB",
    ]
