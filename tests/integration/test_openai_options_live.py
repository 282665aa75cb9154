"""OpenAI options through the official client against the fake: what the producer allows is
what the API accepts, what it refuses the API refuses, and the fake answers the real 400."""

from __future__ import annotations

import itertools
from typing import Any

import openai
import pytest

from producers.clients import default_client_registry
from producers.clients.base import TextRequest
from producers.clients.openai import OpenAIClient
from producers.openai.options import FAMILIES, check_option, request_options
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.errors import InvalidInputError
from producers.testing import JobContext, fake_secret_resolver, make_job_request
from producers.testing.fakes import FAKE_OPENAI_KEY, FakeOpenAI
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration

MODELS = [model for family in FAMILIES for model in family.models]
VALUES: dict[str, list[Any]] = {
    "temperature": [0, 1.5, 2.5],
    "top_p": [0.5, 1.5],
    "max_output_tokens": [15, 16, 16_384, 16_385, 32_769, 100_001, 128_001],
    "reasoning_effort": ["none", "minimal", "low", "high", "xhigh"],
    "verbosity": ["low", "medium", "high"],
}
CASES = [
    (model, name, value)
    for model, (name, values) in itertools.product(MODELS, VALUES.items())
    for value in values
]


@pytest.fixture
def openai_fake(live_fakes: LiveFakes) -> FakeOpenAI:
    fake: FakeOpenAI = live_fakes.openai
    return fake


@pytest.fixture
async def adapter(openai_fake: FakeOpenAI) -> Any:
    client = OpenAIClient(FAKE_OPENAI_KEY, base_url=openai_fake.api_url)
    yield client
    await client.aclose()


def _request(model: str, name: str, value: Any) -> TextRequest:
    """A request carrying one option, placed as the producer places it."""
    if name == "reasoning_effort":
        return TextRequest(model=model, input="x", reasoning_effort=value)
    if name == "max_output_tokens":
        return TextRequest(model=model, input="x", max_output_tokens=value)
    return TextRequest(model=model, input="x", options=request_options({name: value}))


async def test_the_producer_allows_exactly_what_the_api_accepts(
    adapter: OpenAIClient, openai_fake: FakeOpenAI
) -> None:
    disagreements = []
    for model, name, value in CASES:
        try:
            check_option(model, name, value)
            allowed = True
        except InvalidInputError:
            allowed = False
        try:
            await adapter.generate(_request(model, name, value))
            accepted = True
        except ProviderError as exc:
            # An answer cut at a small token limit is still an accepted request.
            accepted = exc.status_code != 400
        if allowed != accepted:
            disagreements.append((model, name, value, allowed, accepted))
    assert disagreements == []
    assert openai_fake.count("responses") == len(CASES)
    refused = [s for s in openai_fake.statuses("responses") if s == 400]
    assert refused, "the grid must hold refused values too"


async def test_a_mistake_in_the_options_table_would_fail_live(adapter: OpenAIClient) -> None:
    # What the producer would send if its table allowed temperature on gpt-5.
    request = TextRequest(model="gpt-5", input="x", options={"temperature": 0.2})
    with pytest.raises(ProviderError) as caught:
        await adapter.generate(request)
    error = caught.value
    assert error.code is ErrorCode.INVALID_INPUT and error.status_code == 400
    assert "Unsupported parameter: 'temperature'" in error.reason
    assert "(param: temperature)" in error.reason
    assert {key: error.raw[key] for key in ("type", "code", "param", "status")} == {
        "type": "invalid_request_error",
        "code": "unsupported_parameter",
        "param": "temperature",
        "status": 400,
    }


@pytest.mark.parametrize(
    ("kwargs", "status_code", "code", "param", "message"),
    [
        (
            {"model": "gpt-5-mini", "extra_body": {"seed": 7}},
            400,
            "unknown_parameter",
            "seed",
            "Unknown parameter: 'seed'.",
        ),
        (
            {"model": "o4-mini", "reasoning": {"effort": "minimal"}},
            400,
            "unsupported_value",
            "reasoning.effort",
            "Unsupported value: 'reasoning.effort' does not support 'minimal' with this model. "
            "Supported values are: 'low', 'medium', and 'high'.",
        ),
        (
            {"model": "gpt-4.1", "text": {"verbosity": "low"}},
            400,
            "unsupported_value",
            "text.verbosity",
            "Supported values are: 'medium'.",
        ),
        (
            {"model": "gpt-4.1", "temperature": 3},
            400,
            "decimal_above_max_value",
            "temperature",
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
            "but got 3 instead.",
        ),
        (
            {"model": "gpt-4o-mini", "max_output_tokens": 20_000},
            400,
            "integer_above_max_value",
            "max_output_tokens",
            "Expected a value <= 16384, but got 20000 instead.",
        ),
        (
            {"model": "gpt-4.1", "reasoning": {"effort": "low"}},
            400,
            "unsupported_parameter",
            "reasoning.effort",
            "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
        ),
    ],
    ids=[
        "unknown-parameter",
        "effort-the-model-lacks",
        "verbosity",
        "range",
        "token-limit",
        "reasoning-on-4.1",
    ],
)
async def test_the_fake_answers_the_real_400(
    openai_fake: FakeOpenAI,
    kwargs: dict[str, Any],
    status_code: int,
    code: str,
    param: str,
    message: str,
) -> None:
    client = openai.AsyncOpenAI(
        api_key=FAKE_OPENAI_KEY, base_url=openai_fake.api_url, max_retries=0
    )
    try:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(input="x", **kwargs)
    finally:
        await client.close()
    error = caught.value
    assert error.status_code == status_code
    assert (error.code, error.param) == (code, param)
    assert message in error.message
    body = error.response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"


def live_context() -> JobContext:
    return JobContext(
        clients=default_client_registry(),
        secrets=fake_secret_resolver({"OPENAI_API_KEY": FAKE_OPENAI_KEY}),
    )


async def test_a_live_job_sends_its_options(openai_fake: FakeOpenAI) -> None:
    context = live_context()
    request = make_job_request(
        "openai:gpt-4.1-mini",
        mode="live",
        inputs={"prompt": "lava"},
        custom={"temperature": 0.3, "top_p": 0.8, "topic": "volcanoes"},
        config={"user_prompt": "{{ topic }}: {{ prompt }}"},
    )
    result = await context.handler(request).run(request)
    assert result.artefacts[0].value
    body = openai_fake.requests[-1].json
    assert (body["temperature"], body["top_p"]) == (0.3, 0.8)
    assert body["input"] == "volcanoes: lava"
    assert "topic" not in body


async def test_a_live_job_sends_verbosity_beside_its_output_schema(openai_fake: FakeOpenAI) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["a"],
        "properties": {"a": {"type": "string"}},
    }
    request = make_job_request(
        "openai:gpt-5-mini",
        mode="live",
        custom={"verbosity": "low", "reasoning_effort": "minimal"},
        config={"output": "json", "json_schema": schema, "max_output_tokens": 4000},
    )
    result = await live_context().handler(request).run(request)
    assert isinstance(result.artefacts[0].value, dict)
    body = openai_fake.requests[-1].json
    assert body["text"]["verbosity"] == "low"
    assert body["text"]["format"]["schema"] == schema
    assert body["reasoning"] == {"effort": "minimal"}


async def test_a_refused_option_sends_nothing_live(openai_fake: FakeOpenAI) -> None:
    request = make_job_request("openai:gpt-5-mini", mode="live", custom={"temperature": 0.3})
    with pytest.raises(ProviderError) as caught:
        await live_context().handler(request).run(request)
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert "'temperature'" in caught.value.reason
    assert openai_fake.count("responses") == 0
