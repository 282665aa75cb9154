"""OpenAI custom attributes: API options checked per model and sent, or refused; never dropped."""

from __future__ import annotations

from typing import Any

import pytest

from producers.clients.base import TextRequest, TextResult
from producers.clients.openai import OpenAIClient
from producers.openai.options import OPTIONS, family_of, option_schemas, split_custom
from producers.openai.prompt import openai_prompt_producer, template_variables
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.runtime import ClientContext, ClientRegistry
from producers.testing import JobContext, make_job_request


class RecordingText:
    """A text client that records what it is asked and answers a fixed text."""

    def __init__(self) -> None:
        self.requests: list[TextRequest] = []

    async def generate(self, request: TextRequest) -> TextResult:
        self.requests.append(request)
        text = '{"a": "x"}' if request.json_schema is not None else "An answer."
        return TextResult(text=text, model=request.model, response_id="resp_1")

    async def aclose(self) -> None:
        pass


def recording() -> tuple[JobContext, RecordingText]:
    client = RecordingText()
    registry = ClientRegistry()

    def factory(context: ClientContext) -> RecordingText:
        return client

    registry.register("openai", "mock", factory)
    return JobContext(clients=registry), client


async def run(
    model: str, custom: dict[str, Any], config: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | ProviderError, RecordingText]:
    """Run a job; the ``responses.create`` arguments sent, or the error (and the client)."""
    context, client = recording()
    request = make_job_request(
        f"openai:{model}", inputs={"prompt": "lava"}, custom=custom, config=config or {}
    )
    try:
        await context.handler(request).run(request)
    except ProviderError as exc:
        return exc, client
    (sent,) = client.requests
    return OpenAIClient.params(sent), client


# -- allowed: sent at their place in the Responses API --------------------------------------

ALLOWED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("gpt-5-mini", {"reasoning_effort": "minimal"}, {"reasoning": {"effort": "minimal"}}),
    ("gpt-5-mini", {"verbosity": "low"}, {"text": {"verbosity": "low"}}),
    ("gpt-5-nano", {"max_output_tokens": 128_000}, {"max_output_tokens": 128_000}),
    ("gpt-5-mini-2025-08-07", {"reasoning_effort": "high"}, {"reasoning": {"effort": "high"}}),
    ("o4-mini", {"reasoning_effort": "low"}, {"reasoning": {"effort": "low"}}),
    ("o4-mini", {"verbosity": "medium"}, {"text": {"verbosity": "medium"}}),
    ("gpt-4.1-mini", {"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
    ("gpt-4.1", {"temperature": 0}, {"temperature": 0}),
    ("gpt-4o-mini", {"temperature": 2, "max_output_tokens": 16}, {"temperature": 2}),
    ("gpt-5.1", {"reasoning_effort": "none"}, {"reasoning": {"effort": "none"}}),
    ("chatgpt-4o-latest", {"top_p": 1}, {"top_p": 1}),
]


@pytest.mark.parametrize(
    ("model", "custom", "sent"),
    ALLOWED,
    ids=[f"{m}-{'-'.join(c)}" for m, c, _ in ALLOWED],
)
async def test_an_allowed_option_is_sent_where_the_api_takes_it(
    model: str, custom: dict[str, Any], sent: dict[str, Any]
) -> None:
    params, _ = await run(model, custom)
    assert isinstance(params, dict), params
    for name, value in sent.items():
        assert params[name] == value
    for name, value in custom.items():
        if name == "max_output_tokens":
            assert params["max_output_tokens"] == value


async def test_verbosity_joins_the_structured_output_format() -> None:
    config = {
        "output": "json",
        "json_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["a"],
            "properties": {"a": {"type": "string"}},
        },
    }
    params, _ = await run("gpt-5-mini", {"verbosity": "high"}, config)
    assert isinstance(params, dict)
    assert params["text"]["verbosity"] == "high"
    assert params["text"]["format"]["type"] == "json_schema"


@pytest.mark.parametrize(
    ("config", "custom", "effort", "tokens"),
    [
        ({"reasoning_effort": "low", "max_output_tokens": 500}, {}, "low", 500),
        (
            {"reasoning_effort": "low", "max_output_tokens": 500},
            {"reasoning_effort": "high", "max_output_tokens": 900},
            "high",
            900,
        ),
        ({}, {}, None, None),
    ],
    ids=["config-defaults", "custom-wins", "none"],
)
async def test_custom_attributes_override_the_config_defaults(
    config: dict[str, Any], custom: dict[str, Any], effort: str | None, tokens: int | None
) -> None:
    params, _ = await run("gpt-5-mini", custom, config)
    assert isinstance(params, dict)
    assert params.get("reasoning", {}).get("effort") == effort
    assert params.get("max_output_tokens") == tokens


# -- refused: invalid_input naming the attribute and what is allowed, before any request ----

REFUSED: list[tuple[str, str, dict[str, Any], dict[str, Any], list[str]]] = [
    (
        "temperature-on-gpt-5",
        "gpt-5-mini",
        {"temperature": 0.2},
        {},
        ["'temperature'", "reasoning models", "reasoning_effort (one of 'minimal'"],
    ),
    ("top-p-on-o-series", "o4-mini", {"top_p": 0.5}, {}, ["'top_p'", "refuses temperature"]),
    (
        "effort-on-gpt-4.1",
        "gpt-4.1",
        {"reasoning_effort": "low"},
        {},
        ["'reasoning_effort'", "take no reasoning", "temperature (number from 0 to 2)"],
    ),
    (
        "minimal-on-o4-mini",
        "o4-mini",
        {"reasoning_effort": "minimal"},
        {},
        ["'reasoning_effort'", "one of 'low', 'medium', 'high'", "'minimal'"],
    ),
    ("low-verbosity-on-4o", "gpt-4o-mini", {"verbosity": "low"}, {}, ["one of 'medium'"]),
    ("temperature-above-2", "gpt-4.1", {"temperature": 2.5}, {}, ["from 0 to 2", "2.5"]),
    ("top-p-below-0", "gpt-4.1-mini", {"top_p": -0.1}, {}, ["from 0 to 1"]),
    ("temperature-as-text", "gpt-4.1", {"temperature": "hot"}, {}, ["number", "'hot'"]),
    ("tokens-below-16", "gpt-5-mini", {"max_output_tokens": 10}, {}, ["from 16 to 128000"]),
    ("tokens-above-limit", "gpt-4o", {"max_output_tokens": 20_000}, {}, ["from 16 to 16384"]),
    ("tokens-as-bool", "gpt-5-mini", {"max_output_tokens": True}, {}, ["integer"]),
    (
        "typo",
        "gpt-5-mini",
        {"temprature": 0.2},
        {},
        ["'temprature'", "neither an option", "template variables: prompt"],
    ),
    ("seed", "gpt-4.1", {"seed": 7}, {}, ["'seed'", "takes no seed"]),
    ("max-tokens", "gpt-4.1", {"max_tokens": 50}, {}, ["Chat Completions", "max_output_tokens"]),
    (
        "config-field-as-custom",
        "gpt-5-mini",
        {"system_prompt": "Be brief."},
        {},
        ["'system_prompt'"],
    ),
    (
        "unused-variable",
        "gpt-5-mini",
        {"topic": "lava", "audience": "kids"},
        {"user_prompt": "About {{ topic }}"},
        ["'audience'", "template variables: topic"],
    ),
    (
        "config-effort-on-gpt-4.1",
        "gpt-4.1",
        {},
        {"reasoning_effort": "low"},
        ["config field 'reasoning_effort'", "not supported by openai:gpt-4.1"],
    ),
]


@pytest.mark.parametrize(
    ("model", "custom", "config", "words"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
async def test_a_refused_attribute_is_invalid_input_before_any_request(
    model: str, custom: dict[str, Any], config: dict[str, Any], words: list[str]
) -> None:
    outcome, client = await run(model, custom, config)
    assert isinstance(outcome, ProviderError), f"accepted: {outcome}"
    assert outcome.code is ErrorCode.INVALID_INPUT
    assert outcome.retryable is False and outcome.caused_by_user is True
    for word in words:
        assert word in outcome.reason, outcome.reason
    assert "\n" not in outcome.reason
    assert client.requests == []


async def test_mock_mode_refuses_the_same_way(tutopanda_context: JobContext) -> None:
    request = make_job_request("openai:gpt-5-mini", custom={"temperature": 0.3})
    with pytest.raises(ProviderError) as caught:
        await tutopanda_context.handler(request).run(request)
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert "'temperature'" in caught.value.reason


async def test_used_template_variables_are_rendered_not_sent() -> None:
    params, _ = await run(
        "gpt-5-mini",
        {"topic": "lava", "temperature_hint": "calm"},
        {"user_prompt": "{{ topic }} in a {{ temperature_hint }} tone"},
    )
    assert isinstance(params, dict)
    assert params["input"] == "lava in a calm tone"
    assert "topic" not in params and "temperature_hint" not in params


# -- the catalogue shows the real options -----------------------------------------------------


@pytest.mark.parametrize(
    ("model", "names", "absent"),
    [
        ("gpt-5-mini", {"max_output_tokens", "reasoning_effort", "verbosity"}, {"temperature"}),
        ("o4-mini", {"max_output_tokens", "reasoning_effort", "verbosity"}, {"top_p"}),
        (
            "gpt-4.1",
            {"temperature", "top_p", "max_output_tokens", "verbosity"},
            {"reasoning_effort"},
        ),
    ],
    ids=["gpt-5", "o-series", "gpt-4.1"],
)
def test_model_info_lists_the_options_of_the_model(
    model: str, names: set[str], absent: set[str]
) -> None:
    definition = openai_prompt_producer()
    assert definition.catalogue is not None
    info = next(m for m in definition.catalogue() if m.model == model)
    assert set(info.custom_attributes) == names
    assert not absent & set(info.custom_attributes)
    assert "system_prompt" not in info.custom_attributes
    for prop in info.custom_attributes.values():
        assert prop["type"] in ("integer", "number", "string") and prop["description"]
    tokens = info.custom_attributes["max_output_tokens"]
    assert tokens["minimum"] == 16 and tokens["maximum"] >= 16_384


def test_every_option_has_a_place_in_the_request() -> None:
    for name, option in OPTIONS.items():
        assert option.name == name and option.path
    assert option_schemas("gpt-4.1")["temperature"]["maximum"] == 2


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-5", "gpt-5"),
        ("gpt-5-mini-2025-08-07", "gpt-5"),
        ("o3-mini", "o-series"),
        ("gpt-4.1-nano", "gpt-4.1"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-5.1", "reasoning (not listed)"),
        ("chatgpt-4o-latest", "non-reasoning (not listed)"),
    ],
    ids=["alias", "snapshot", "o3-mini", "4.1-nano", "4o-snapshot", "unlisted-5.1", "chatgpt"],
)
def test_family_of(model: str, family: str) -> None:
    assert family_of(model).name == family


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({}, {"prompt"}),
        (
            {"system_prompt": "For {{ audience }}", "user_prompt": "{{ topic }}"},
            {"audience", "topic"},
        ),
        ({"user_prompt": "{% if %}"}, set()),
    ],
    ids=["default", "both-templates", "broken-template"],
)
def test_template_variables(config: dict[str, Any], names: set[str]) -> None:
    assert template_variables(config) == names


def test_split_custom_keeps_options_and_variables_apart() -> None:
    options, variables = split_custom(
        "gpt-4.1", {"temperature": 0.5, "topic": "x"}, used={"topic", "prompt"}
    )
    assert options == {"temperature": 0.5} and variables == {"topic": "x"}


def test_params_merge_options_without_replacing_the_request_fields() -> None:
    request = TextRequest(
        model="gpt-5-mini",
        input="x",
        json_schema={"type": "object"},
        reasoning_effort="low",
        options={
            "text": {"verbosity": "low", "format": "clobbered"},
            "reasoning": {"summary": "auto"},
        },
    )
    params = OpenAIClient.params(request)
    assert params["text"]["verbosity"] == "low"
    assert params["text"]["format"]["type"] == "json_schema"
    assert params["reasoning"] == {"effort": "low", "summary": "auto"}
