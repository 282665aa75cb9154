"""Bad input: each mistake is a clear error naming what was wrong and what is allowed,
raised before any request reaches the provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers.replicate.catalogue import Catalogue
from producers.sdk.errors import DeclarationError, InvalidInputError, UnknownModelError
from producers.sdk.jobs import Attachment, Descriptor
from producers.testing import JobContext, make_job_request

SEEDREAM = "replicate:bytedance/seedream-4"
SPEECH = "replicate:minimax/speech-02-hd"
SCRIPT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title"],
    "properties": {"title": {"type": "string"}},
}

# (id, model, request overrides, error type, words the message must contain)
CASES: list[tuple[str, str, dict[str, Any], type[Exception], list[str]]] = [
    (
        "wrong-type",
        SEEDREAM,
        {"custom": {"max_images": "lots"}},
        InvalidInputError,
        ["max_images", "'lots'", "integer"],
    ),
    (
        "outside-enum",
        SEEDREAM,
        {"custom": {"size": "5K"}},
        InvalidInputError,
        ["size", "'5K'", "'1K'", "'2K'", "'4K'"],
    ),
    (
        "out-of-range",
        SEEDREAM,
        {"custom": {"max_images": 99}},
        InvalidInputError,
        ["max_images", "99", "from 1 to 15"],
    ),
    (
        "missing-required",
        SPEECH,
        {"inputs": {"voice": "Wise_Woman"}},
        InvalidInputError,
        ["text", "required", "missing"],
    ),
    (
        "unknown-custom-attribute",
        SEEDREAM,
        {"custom": {"colour": "red"}},
        InvalidInputError,
        ["'colour'", "allowed", "aspect_ratio", "max_images"],
    ),
    (
        "unknown-general-attribute",
        SEEDREAM,
        {"inputs": {"prompt": "x", "style": "noir"}},
        InvalidInputError,
        ["'style'", "general attributes are", "aspect_ratio"],
    ),
    (
        "bad-aspect-ratio",
        "replicate:stability-ai/stable-diffusion",
        {"inputs": {"prompt": "x", "aspect_ratio": "wide"}},
        InvalidInputError,
        ["aspect_ratio", "'wide'", "W:H"],
    ),
    (
        "malformed-json-attachment",
        "openai:gpt-5-mini",
        {"attachments": (Attachment(name="style.json", content='{"tone": "calm",}'),)},
        InvalidInputError,
        ["style.json", "not valid JSON", "line 1"],
    ),
    (
        "malformed-toml-attachment",
        "openai:gpt-5-mini",
        {"attachments": (Attachment(name="style.toml", content="tone = = calm"),)},
        InvalidInputError,
        ["style.toml", "not valid TOML"],
    ),
    (
        "oversized-attachment",
        "openai:gpt-5-mini",
        {"attachments": (Attachment(name="notes.txt", content="x" * 300_000),)},
        InvalidInputError,
        ["notes.txt", "293.0 KiB", "limit is 256.0 KiB"],
    ),
    (
        "missing-template-variable",
        "openai:gpt-5-mini",
        {
            "config": {"user_prompt": "Explain {{ topic }} to {{ audience }}"},
            "inputs": {"topic": "lava"},
        },
        InvalidInputError,
        ["user_prompt", "'audience'", "available variables", "topic"],
    ),
    (
        "bad-config-field",
        "openai:gpt-5-mini",
        {"config": {"output": "xml"}},
        InvalidInputError,
        ["config.output", "'xml'", "text", "json"],
    ),
    (
        "schema-not-strict",
        "openai:gpt-5-mini",
        {
            "config": {
                "output": "json",
                "json_schema": {"type": "object", "properties": {"a": {"type": "string"}}},
            }
        },
        InvalidInputError,
        ["strict structured output", "additionalProperties: false", "missing: a", "strict: false"],
    ),
    (
        "json-output-without-schema",
        "openai:gpt-5-mini",
        {"config": {"output": "json"}},
        InvalidInputError,
        ["json_schema"],
    ),
]


@pytest.mark.parametrize(
    ("model_id", "overrides", "error_type", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
async def test_bad_input_is_refused_before_any_request(
    model_id: str, overrides: dict[str, Any], error_type: type[Exception], words: list[str]
) -> None:
    context = JobContext()
    fields: dict[str, Any] = {"inputs": {"prompt": "A volcano at dawn"}, **overrides}
    request = make_job_request(model_id, **fields)
    handler = context.handler(request)
    with pytest.raises(error_type) as caught:
        await handler.run(request)
    message = str(caught.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert caught.value.code.value == "invalid_input"
    assert caught.value.retryable is False
    assert caught.value.caused_by_user is True
    assert all(not calls for calls in context.client_requests.values()), context.client_requests


def test_unknown_model_id_names_close_matches() -> None:
    context = JobContext()
    with pytest.raises(UnknownModelError) as caught:
        context.registry.find(Descriptor.parse("replicate:bytedance/seedream-5"))
    assert "replicate:bytedance/seedream-4" in str(caught.value)
    with pytest.raises(UnknownModelError, match="no producer for provider 'fal'"):
        context.registry.find(Descriptor.parse("fal:flux/dev"))
    with pytest.raises(UnknownModelError, match="provider:model"):
        Descriptor.parse("seedream-4")


MALFORMED: list[tuple[str, str, list[str]]] = [
    ("not-json", "{ nope", ["not valid JSON", "line 1"]),
    ("not-an-object", "[1, 2]", ["JSON object"]),
    (
        "missing-kind",
        json.dumps({"model": "acme/x", "input_schema": {}, "output": {"media": "image"}}),
        ["kind", "Field required"],
    ),
    (
        "bad-kind",
        json.dumps(
            {
                "model": "acme/x",
                "kind": "text-to-smell",
                "input_schema": {},
                "output": {"media": "image"},
            }
        ),
        ["kind", "text-to-image"],
    ),
    (
        "mapping-to-unknown-field",
        json.dumps(
            {
                "model": "acme/x",
                "kind": "text-to-image",
                "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}}},
                "output": {"media": "image"},
                "mapping": {"prompt": {"field": "text"}},
            }
        ),
        ["mapping.prompt", "'text'", "fields: prompt"],
    ),
    (
        "unknown-general-attribute",
        json.dumps(
            {
                "model": "acme/x",
                "kind": "text-to-image",
                "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}}},
                "output": {"media": "image"},
                "mapping": {"colour": {"field": "prompt"}},
            }
        ),
        ["mapping.colour", "general attribute", "aspect_ratio"],
    ),
    (
        "unresolvable-ref",
        json.dumps(
            {
                "model": "acme/x",
                "kind": "text-to-image",
                "input_schema": {
                    "type": "object",
                    "properties": {"size": {"allOf": [{"$ref": "#/components/schemas/size"}]}},
                },
                "output": {"media": "image"},
            }
        ),
        ["input_schema", "unresolvable $ref", "#/components/schemas/size"],
    ),
]


@pytest.mark.parametrize(
    ("text", "words"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_declaration_file(tmp_path: Path, text: str, words: list[str]) -> None:
    folder = tmp_path / "models" / "acme"
    folder.mkdir(parents=True)
    path = folder / "x.json"
    path.write_text(text)
    # Validated when listed (or when the model is first asked for): never silently missing.
    with pytest.raises(DeclarationError) as caught:
        list(Catalogue.load([tmp_path / "models"]))
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_a_catalogue_validates_a_declaration_when_it_is_first_used(tmp_path: Path) -> None:
    """A task that runs one model validates one declaration; a bad one fails where it is used
    (and in every listing), naming its file."""
    folder = tmp_path / "models"
    (folder / "acme").mkdir(parents=True)
    good = json.loads(
        (
            Path(__file__).resolve().parents[2]
            / "producers/replicate/models/bytedance/seedream-4.json"
        ).read_text()
    )
    good["model"] = "acme/good"
    (folder / "acme" / "good.json").write_text(json.dumps(good))
    (folder / "acme" / "bad.json").write_text(
        json.dumps({**good, "model": "acme/bad", "kind": "x"})
    )
    catalogue = Catalogue.load([folder])
    assert catalogue.models() == ["acme/bad", "acme/good"]
    good_declaration = catalogue.get("acme/good")
    assert good_declaration is not None and good_declaration.model == "acme/good"
    with pytest.raises(DeclarationError, match=r"bad\.json"):
        catalogue.get("acme/bad")
