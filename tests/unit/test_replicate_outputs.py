"""Replicate output shapes (URLs, tokens, JSON objects) and the text-to-text declaration kind:
reading outputs by the declared output, the LLM producer's config and payload in mock mode,
its JSON extraction, and where text models are served and listed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers.clients.base import MediaJob
from producers.pipeline.steps import script_schema
from producers.registry import ProviderRegistry
from producers.replicate.catalogue import Catalogue
from producers.replicate.declaration import OutputSpec, load_declaration, parse_declaration
from producers.replicate.llm import extract_json
from producers.replicate.outputs import describe_output, media_urls, output_text
from producers.replicate.producer import replicate_producer, replicate_producers
from producers.replicate.shape import schema_in_prompt
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.errors import DeclarationError, InvalidInputError
from producers.sdk.jobs import Descriptor, Kind
from producers.sdk.schema import validate_instance
from producers.testing import JobContext, make_job_request

LLAMA = "meta/meta-llama-3-8b-instruct"
IMAGE = OutputSpec(media="image", multiple=True)
TEXT = OutputSpec(media="text")
SIGNED = "https://replicate.delivery/xezq/out-0.png?signature=SECRET-SIG-42"


def job(value: Any = None, outputs: tuple[str, ...] = (), **fields: Any) -> MediaJob:
    return MediaJob(id="p1", status="succeeded", value=value, outputs=outputs, **fields)


def refused(call: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value


# -- reading outputs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "outputs", "text"),
    [
        (["Hel", "lo", ",", " world", "\n"], (), "Hello, world\n"),
        ("One answer.", (), "One answer."),
        (None, ("Old", " adapter"), "Old adapter"),  # tokens in outputs: joined all the same
    ],
)
def test_text_is_the_string_or_the_tokens_joined(
    value: Any, outputs: tuple[str, ...], text: str
) -> None:
    assert output_text(job(value, outputs), TEXT) == text


def test_text_from_an_object_is_its_declared_key_or_the_object_as_json() -> None:
    answer = {"title": "Tides", "segments": []}
    assert json.loads(output_text(job(answer), TEXT)) == answer
    declared = OutputSpec(media="text", field="response")
    assert output_text(job({"response": ["a", "b"], "usage": {}}), declared) == "ab"
    error = refused(lambda: output_text(job({"usage": {"n": 3}}), declared))
    assert error.code is ErrorCode.MALFORMED_OUTPUT and "'response'" in str(error)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "without any output"),
        ([], "an empty answer"),
        (["  ", "\n"], "empty answer"),
        (["ok", 3, {"logprob": -1.5}], "a list of 3 items (number, object, string)"),
    ],
)
def test_no_text_is_malformed_and_retryable(value: Any, words: str) -> None:
    error = refused(lambda: output_text(job(value), TEXT))
    assert error.code is ErrorCode.MALFORMED_OUTPUT and error.retryable
    assert words in str(error) and error.provider_job_id == "p1"
    assert "-1.5" not in str(error)


@pytest.mark.parametrize(
    ("value", "urls"),
    [
        (SIGNED, [SIGNED]),
        (["https://a/1.png", "https://a/2.png"], ["https://a/1.png", "https://a/2.png"]),
        # An object: its URL values in key order, lists flattened, other values skipped.
        (
            {"seed": 7, "images": ["https://a/1.png", "https://a/2.png"], "cover": "https://a/c"},
            ["https://a/1.png", "https://a/2.png", "https://a/c"],
        ),
        ({"nsfw": [False], "image": "data:image/png;base64,AAAA"}, ["data:image/png;base64,AAAA"]),
    ],
)
def test_media_urls_of_each_shape(value: Any, urls: list[str]) -> None:
    assert media_urls(job(value), IMAGE) == urls


def test_media_urls_of_an_object_under_the_declared_key_only() -> None:
    declared = OutputSpec(media="image", field="images")
    value = {"preview": "https://a/p.png", "images": ["https://a/1.png"]}
    assert media_urls(job(value), declared) == ["https://a/1.png"]
    error = refused(lambda: media_urls(job({"preview": SIGNED}), declared))
    assert "'images'" in str(error) and "'preview'" in str(error) and "SECRET" not in str(error)
    error = refused(lambda: media_urls(job({"images": [1, 2]}), declared))
    assert "no URL under its declared key 'images'" in str(error)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"seed": 42, "note": "SECRET-SIG-42", "nsfw": False}, "keys: 'seed', 'note', 'nsfw'"),
        ({}, "an empty object"),
        (None, "without any output"),
        ("SECRET-SIG-42 is not a url", "a string that is not a URL"),
        ([SIGNED, "SECRET-SIG-42"], "1 of its 2 outputs not a URL"),
        (12, "a number"),
    ],
)
def test_no_usable_media_output_is_malformed_naming_its_shape_never_its_values(
    value: Any, words: str
) -> None:
    error = refused(lambda: media_urls(job(value), IMAGE))
    assert error.code is ErrorCode.MALFORMED_OUTPUT and not error.retryable
    assert words in str(error), str(error)
    assert "SECRET" not in json.dumps(error.to_dict())


def test_removed_output_data_is_not_found_and_retryable() -> None:
    for read in (lambda j: media_urls(j, IMAGE), lambda j: output_text(j, TEXT)):
        error = refused(lambda read=read: read(job(None, data_removed=True)))  # type: ignore[misc]
        assert error.code is ErrorCode.NOT_FOUND and error.retryable
        assert "removed" in str(error)


def test_describe_output_names_at_most_a_dozen_keys() -> None:
    described = describe_output({f"k{i}": i for i in range(20)})
    assert "'k0'" in described and "'k11'" in described and "'k12'" not in described
    assert "and 8 more" in described


# -- the JSON of an answer -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2]}',
        'Here you go:\n```json\n{"a": [1, 2]}\n```\nAnything else?',
        'Sure. {"a": [1, 2]} Hope it helps {"b": 1}',
        '```\n{"a": [1, 2]}\n```',
    ],
)
def test_json_is_found_in_an_answer(text: str) -> None:
    assert extract_json(text) == {"a": [1, 2]}


def test_an_answer_without_json_is_retryable_and_not_quoted() -> None:
    error = refused(lambda: extract_json("I'd rather write a poem about {tides"))
    assert error.code is ErrorCode.MALFORMED_OUTPUT and error.retryable
    assert "poem" not in str(error) and "36 characters" in str(error)


# -- the text-to-text kind -----------------------------------------------------------------


def llm_path() -> Path:
    return Catalogue.load().sources[LLAMA]


def llm_declaration(**changes: Any) -> dict[str, Any]:
    data = json.loads(llm_path().read_text(encoding="utf-8"))
    data.update(changes)
    return data


def test_the_shipped_llm_declaration_is_text_to_text() -> None:
    declaration = load_declaration(llm_path())
    assert declaration.kind is Kind.TEXT and declaration.output.media == "text"
    assert declaration.output.system_field == "system_prompt"
    assert declaration.output.max_tokens_field == "max_tokens"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"kind": "text-to-image"}, "makes image, but output.media is 'text'"),
        ({"output": {"media": "image"}}, "makes text, but output.media is 'image'"),
        ({"output": {"media": "text", "system_field": "system"}}, "'system', which is not"),
        ({"output": {"media": "text", "max_tokens_field": "length"}}, "'length', which is not"),
        ({"mapping": {}}, "needs mapping.prompt"),
    ],
)
def test_inconsistent_text_declarations_are_refused(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(DeclarationError, match=words):
        parse_declaration(llm_declaration(**changes))


def test_text_models_are_served_by_the_prompt_producer_and_listed_as_prompt_models() -> None:
    registry = ProviderRegistry(replicate_producers())
    assert registry.find(Descriptor.parse(f"replicate:{LLAMA}")).name == "replicate.prompt"
    assert registry.find(Descriptor.parse("replicate:bytedance/seedream-4")).name == (
        "replicate.media"
    )
    text_models = registry.models(Kind.TEXT)
    assert f"replicate:{LLAMA}" in {i.model_id for i in text_models}
    assert all(i.domain == "prompt" and i.producer == "replicate.prompt" for i in text_models)
    assert all(i.domain == "media" for i in registry.models() if i.kind is not Kind.TEXT)
    catalogue = Catalogue.load()
    assert catalogue.models(domain="prompt") == [i.model for i in text_models]
    assert LLAMA not in catalogue.models(domain="media")
    media_only = Catalogue([d for d in catalogue if d.kind is not Kind.TEXT])
    assert [d.name for d in replicate_producers(media_only)] == ["replicate.media"]
    with pytest.raises(ValueError, match="no text-to-text model"):
        replicate_producer(media_only, domain="prompt")


# -- the LLM producer in mock mode ---------------------------------------------------------


async def run_mock(context: JobContext | None = None, model: str = LLAMA, **fields: Any) -> Any:
    context = context or JobContext()
    request = make_job_request(f"replicate:{model}", **fields)
    return await context.handler(request).run(request)


async def test_mock_structured_answer_is_valid_against_the_schema() -> None:
    schema = script_schema(4)
    result = await run_mock(
        inputs={"prompt": "Tides"},
        config={"output": "json", "json_schema": schema, "split": {"script": "."}},
    )
    (artefact,) = result.artefacts
    validate_instance(artefact.value, schema, where="answer")
    assert len(artefact.value["segments"]) == 4
    assert result.diagnostics.mocked


async def test_mock_payload_takes_the_prompt_config_and_ignores_openai_options() -> None:
    context = JobContext()
    request = make_job_request(
        f"replicate:{LLAMA}",
        inputs={"prompt": "Tides"},
        custom={"topic": "tides", "top_k": 10, "verbosity": "low", "max_output_tokens": 900},
        config={
            "system_prompt": "Be brief.",
            "user_prompt": "Explain {{ topic }}",
            "reasoning_effort": "minimal",
            "strict": True,
            "max_output_tokens": 100,
        },
    )
    result = await context.handler(request).run(request)
    payload = result.diagnostics.payload
    assert payload == {
        "prompt": "Explain tides",
        "system_prompt": "Be brief.",
        "max_tokens": 900,  # the job's custom attribute beats the config's default
        "top_k": 10,
    }
    warnings = " | ".join(result.diagnostics.warnings)
    for name in ("config.reasoning_effort", "config.strict", "verbosity"):
        assert name in warnings
    assert result.artefacts[0].mime_type.startswith("text/plain")


@pytest.mark.parametrize(
    ("custom", "config", "words"),
    [
        ({"mood": "calm"}, {}, "custom attribute 'mood' is neither an input field"),
        ({"system_prompt": "x"}, {}, "(the config's templates set it)"),
        ({"max_output_tokens": 0}, {}, "max_output_tokens=0"),
        ({}, {"output": "json"}, "output 'json' needs a json_schema"),
        ({}, {"temperature": 0.2}, "config.temperature"),
        ({}, {"user_prompt": "{% if false %}x{% endif %}  "}, "user prompt is empty"),
    ],
)
async def test_bad_llm_jobs_are_refused_before_any_request(
    custom: dict[str, Any], config: dict[str, Any], words: str
) -> None:
    context = JobContext()
    with pytest.raises(InvalidInputError) as caught:
        await run_mock(context, inputs={"prompt": "Tides"}, custom=custom, config=config)
    assert words in str(caught.value)
    assert all(not calls for calls in context.client_requests.values())


async def test_a_model_without_a_system_field_gets_the_system_prompt_before_the_prompt() -> None:
    data = llm_declaration(model="acme/tiny-llm")
    props = dict(data["input_schema"]["properties"])
    props.pop("system_prompt")
    data["input_schema"] = {**data["input_schema"], "properties": props}
    data["output"] = {"media": "text"}  # no system field, no max tokens field
    catalogue = Catalogue([parse_declaration(data)])
    context = JobContext(registry=ProviderRegistry(replicate_producers(catalogue)))
    schema = {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}}
    result = await run_mock(
        context,
        model="acme/tiny-llm",
        inputs={"prompt": "Give x"},
        config={
            "system_prompt": "Be exact.",
            "output": "json",
            "json_schema": schema,
            "max_output_tokens": 50,
        },
    )
    prompt = result.diagnostics.payload["prompt"]
    assert prompt.startswith("Be exact.\n\n") and prompt.endswith("\n\nGive x")
    assert schema_in_prompt(prompt) == schema
    assert isinstance(result.artefacts[0].value["x"], int)
    assert any("max_output_tokens is not sent" in w for w in result.diagnostics.warnings)
    assert set(result.diagnostics.payload) == {"prompt"}
