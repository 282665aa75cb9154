"""OpenAI as it really answers, through the official client against the fake: out of credit,
rate limits, every common HTTP error with its hint and raw detail, answers with no usable
text, strict schemas the API refuses, and request fields the API does not take."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from producers.clients import default_client_registry
from producers.clients.base import TextRequest
from producers.clients.openai import OpenAIClient, error_from_exception, rate_limit_wait
from producers.openai.prompt import strict_schema_problems
from producers.sdk import ErrorCode, ProviderError
from producers.storage.local import LocalStore
from producers.testing import JobContext, fake_secret_resolver, make_job_request
from producers.testing.fakes import FAKE_OPENAI_KEY, FakeOpenAI, Fault
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration

GPT = "openai:gpt-5-mini"
PROMPT = "A volcano at dawn"
OBJECT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title"],
    "properties": {"title": {"type": "string"}},
}


@pytest.fixture
def openai_fake(live_fakes: LiveFakes) -> FakeOpenAI:
    fake: FakeOpenAI = live_fakes.openai
    return fake


@pytest.fixture
async def adapter(openai_fake: FakeOpenAI) -> Any:
    client = OpenAIClient(FAKE_OPENAI_KEY, base_url=openai_fake.api_url)
    yield client
    await client.aclose()


@pytest.fixture
async def official(openai_fake: FakeOpenAI) -> Any:
    """The official client as a user builds it (its own retries off, to count requests)."""
    client = openai.AsyncOpenAI(
        api_key=FAKE_OPENAI_KEY, base_url=openai_fake.api_url, max_retries=0
    )
    yield client
    await client.close()


async def run_job(store: LocalStore | None = None, **fields: Any) -> Any:
    """One live job of the OpenAI prompt producer through the SDK."""
    context = JobContext(
        clients=default_client_registry(),
        secrets=fake_secret_resolver({"OPENAI_API_KEY": FAKE_OPENAI_KEY}),
        store=store,
    )
    fields.setdefault("inputs", {"prompt": PROMPT})
    request = make_job_request(GPT, mode="live", **fields)
    handler = context.registry.resolve(request.descriptor, "live", context.deps())
    return await handler.run(request)


async def fail_job(store: LocalStore | None = None, **fields: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await run_job(store, **fields)
    return caught.value


def _stored_nothing(root: Path) -> bool:
    blobs = root / "blobs"
    return not blobs.exists() or not [p for p in blobs.rglob("*") if p.is_file()]


def _quota_body(code: str, type_: str, message: str) -> str:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


# ---- HTTP errors: code, retries, hint, raw ------------------------------------------------

# (id, fault, code, retryable, caused_by_user, retry_after, words in the hint, raw subset)
HTTP_CASES: list[tuple[str, Fault, ErrorCode, bool, bool, float | None, str, dict[str, Any]]] = [
    (
        "429-insufficient-quota",
        Fault.quota(),
        ErrorCode.QUOTA_EXCEEDED,
        False,
        False,
        None,
        "add credit",
        {"status": 429, "code": "insufficient_quota", "type": "insufficient_quota"},
    ),
    (
        "429-quota-null-code",
        Fault.status(
            429,
            body=_quota_body(
                None,  # type: ignore[arg-type]  # older answers carry the type only
                "insufficient_quota",
                "You exceeded your current quota, please check your plan and billing details.",
            ),
        ),
        ErrorCode.QUOTA_EXCEEDED,
        False,
        False,
        None,
        "raise the limit",
        {"status": 429, "type": "insufficient_quota"},
    ),
    (
        "429-billing-not-active",
        Fault.status(
            429,
            body=_quota_body(
                None,  # type: ignore[arg-type]
                "billing_not_active",
                "Your account is not active, please check your billing details on our website.",
            ),
        ),
        ErrorCode.QUOTA_EXCEEDED,
        False,
        False,
        None,
        "billing",
        {"status": 429, "type": "billing_not_active"},
    ),
    (
        "400-billing-hard-limit",
        Fault.status(
            400,
            body=_quota_body(
                "billing_hard_limit_reached",
                "invalid_request_error",
                "Billing hard limit has been reached",
            ),
        ),
        ErrorCode.QUOTA_EXCEEDED,
        False,
        False,
        None,
        "platform.openai.com",
        {"status": 400, "code": "billing_hard_limit_reached"},
    ),
    (
        "429-rate-retry-after",
        Fault.status(429, retry_after=7),
        ErrorCode.RATE_LIMITED,
        True,
        False,
        7.0,
        "rate limit",
        {"status": 429, "code": "rate_limit_exceeded", "type": "requests"},
    ),
    (
        "429-rate-reset-requests",
        # No Retry-After: the fake's x-ratelimit-reset-requests (1s, requests used up).
        Fault.status(429),
        ErrorCode.RATE_LIMITED,
        True,
        False,
        1.0,
        "concurrency",
        {"status": 429, "code": "rate_limit_exceeded"},
    ),
    (
        "429-rate-reset-tokens",
        Fault.status(
            429,
            headers={
                "x-ratelimit-remaining-requests": "4999",
                "x-ratelimit-reset-requests": "12ms",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "6m0.5s",
            },
        ),
        ErrorCode.RATE_LIMITED,
        True,
        False,
        360.5,
        "rate limit",
        {"status": 429},
    ),
    (
        "429-rate-retry-after-ms",
        Fault.status(429, retry_after=9, headers={"retry-after-ms": "1500"}),
        ErrorCode.RATE_LIMITED,
        True,
        False,
        1.5,
        "rate limit",
        {"status": 429},
    ),
    (
        "401-key",
        Fault.status(401),
        ErrorCode.AUTH_FAILED,
        False,
        False,
        None,
        "API key",
        {"status": 401, "code": "invalid_api_key", "type": "invalid_request_error"},
    ),
    (
        "403-region",
        Fault.status(
            403,
            body=_quota_body(
                "unsupported_country_region_territory",
                "request_forbidden",
                "Country, region, or territory not supported",
            ),
        ),
        ErrorCode.AUTH_FAILED,
        False,
        False,
        None,
        "country or region",
        {"status": 403, "code": "unsupported_country_region_territory"},
    ),
    (
        "403-project",
        Fault.status(403),
        ErrorCode.AUTH_FAILED,
        False,
        False,
        None,
        "project",
        {"status": 403, "code": "model_not_found", "type": "invalid_request_error"},
    ),
    ("404", Fault.status(404), ErrorCode.NOT_FOUND, False, False, None, "model", {"status": 404}),
    (
        "409-lock",
        Fault.status(409),
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        None,
        "retry",
        {"status": 409},
    ),
    (
        "422",
        Fault.status(422),
        ErrorCode.INVALID_INPUT,
        False,
        True,
        None,
        "value",
        {"status": 422},
    ),
    *[
        (
            f"{status}",
            Fault.status(status),
            ErrorCode.TIMEOUT if status == 504 else ErrorCode.PROVIDER_UNAVAILABLE,
            True,
            False,
            None,
            "status.openai.com",
            {"status": status, "type": "server_error"},
        )
        for status in (500, 502, 503, 504)
    ],
]


@pytest.mark.parametrize(
    ("fault", "code", "retryable", "user", "retry_after", "hint", "raw"),
    [case[1:] for case in HTTP_CASES],
    ids=[case[0] for case in HTTP_CASES],
)
async def test_http_errors_carry_code_hint_and_raw(
    fault: Fault,
    code: ErrorCode,
    retryable: bool,
    user: bool,
    retry_after: float | None,
    hint: str,
    raw: dict[str, Any],
    openai_fake: FakeOpenAI,
) -> None:
    openai_fake.inject(fault, route="responses", times=5)
    error = await fail_job()
    record = error.to_dict()
    assert (error.code, error.retryable, error.caused_by_user) == (code, retryable, user), str(
        error
    )
    assert error.code is not ErrorCode.RATE_LIMITED or fault.kind == "status"
    assert error.retry_after == pytest.approx(retry_after) if retry_after else not error.retry_after
    assert error.hint and hint in error.hint and "platform.openai.com" in error.hint
    assert record["raw"] is not None
    assert {key: record["raw"].get(key) for key in raw} == raw
    assert record["raw"]["request_id"].startswith("req_")
    assert record["raw"]["message"]
    assert record["status_code"] == raw["status"]
    assert FAKE_OPENAI_KEY not in json.dumps(record)
    assert openai_fake.count("responses") == 1  # the SDK never retries by itself


async def test_out_of_credit_is_never_a_rate_limit_even_with_retry_headers(
    openai_fake: FakeOpenAI,
) -> None:
    body = _quota_body(
        "insufficient_quota", "insufficient_quota", "You exceeded your current quota."
    )
    openai_fake.inject(
        Fault.status(429, retry_after=3, body=body, headers={"x-should-retry": "true"}),
        route="responses",
    )
    error = await fail_job()
    assert error.code is ErrorCode.QUOTA_EXCEEDED
    assert error.retryable is False and error.retry_after is None
    assert "rate" not in error.hint.lower() if error.hint else False


async def test_a_400_names_its_parameter_in_reason_hint_and_raw(adapter: OpenAIClient) -> None:
    request = TextRequest(model="gpt-5", input="x", options={"temperature": 0.2})
    with pytest.raises(ProviderError) as caught:
        await adapter.generate(request)
    error = caught.value
    assert error.code is ErrorCode.INVALID_INPUT
    assert "(param: temperature)" in error.reason
    assert error.hint and "'temperature'" in error.hint
    raw = error.to_dict()["raw"]
    assert raw["param"] == "temperature" and raw["code"] == "unsupported_parameter"
    # raw keeps the provider's own words, not ours
    assert (
        raw["message"] == "Unsupported parameter: 'temperature' is not supported with this model."
    )


async def test_an_unknown_model_is_not_found_with_a_model_hint(adapter: OpenAIClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate(TextRequest(model="gpt-9-nano", input="x"))
    error = caught.value
    assert error.code is ErrorCode.NOT_FOUND and error.status_code == 404
    assert error.hint and "model id" in error.hint
    assert error.to_dict()["raw"]["code"] == "model_not_found"


# ---- answers with no usable text ----------------------------------------------------------


async def test_no_message_item_is_malformed_output_not_an_empty_artefact(
    openai_fake: FakeOpenAI, tmp_path: Path
) -> None:
    openai_fake.inject(Fault.no_message(), route="responses")
    error = await fail_job(LocalStore(tmp_path))
    assert error.code is ErrorCode.MALFORMED_OUTPUT
    assert error.retryable is True and error.caused_by_user is False
    assert "no message" in error.reason and "reasoning" in error.reason
    assert error.hint and "max_output_tokens" in error.hint
    assert error.provider_job_id and error.provider_job_id.startswith("resp_")
    assert error.to_dict()["raw"] == {"status": "completed", "code": "no_message"}
    assert openai_fake.count("responses") == 1
    assert _stored_nothing(tmp_path)
    # The next answer is whole again: the fault was one answer.
    result = await run_job()
    assert result.artefacts[0].value


async def test_no_message_on_structured_output_is_malformed_output(
    openai_fake: FakeOpenAI,
) -> None:
    openai_fake.configure({"outcome": "no_message"})
    error = await fail_job(config={"output": "json", "json_schema": OBJECT_SCHEMA})
    assert error.code is ErrorCode.MALFORMED_OUTPUT
    assert openai_fake.count("responses") == 1


async def test_cut_at_max_output_tokens_asks_to_raise_it(
    openai_fake: FakeOpenAI, tmp_path: Path
) -> None:
    # gpt-5-mini spends 192 reasoning tokens at medium effort: 16 leaves no message at all.
    error = await fail_job(LocalStore(tmp_path), config={"max_output_tokens": 16})
    assert error.code is ErrorCode.MALFORMED_OUTPUT
    assert error.retryable is False and error.caused_by_user is True
    assert "max_output_tokens" in error.reason
    assert error.hint and "raise max_output_tokens" in error.hint
    assert error.to_dict()["raw"] == {"status": "incomplete", "code": "max_output_tokens"}
    (request,) = openai_fake.requests
    assert request.json["max_output_tokens"] == 16
    assert _stored_nothing(tmp_path)


@pytest.mark.parametrize(
    ("outcome", "words", "raw_code"),
    [
        ("content_filter", "content filter", "content_filter"),
        ("refusal", "I'm sorry", "refusal"),
    ],
)
async def test_a_filtered_or_refused_answer_is_safety_blocked(
    outcome: str, words: str, raw_code: str, openai_fake: FakeOpenAI, tmp_path: Path
) -> None:
    openai_fake.configure({"outcome": outcome})
    error = await fail_job(LocalStore(tmp_path))
    assert error.code is ErrorCode.SAFETY_BLOCKED
    assert error.retryable is False and error.caused_by_user is True
    assert words in error.reason
    assert error.hint and "rephrase" in error.hint
    assert error.to_dict()["raw"]["code"] == raw_code
    assert openai_fake.count("responses") == 1
    assert _stored_nothing(tmp_path)


# ---- strict schemas ------------------------------------------------------------------------

NOT_STRICT: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "root-array",
        {"type": "array", "items": {"type": "string"}},
        "root must be an object",
        """schema must be a JSON Schema of 'type: "object"', got 'type: "array"'.""",
    ),
    (
        "root-string",
        {"type": "string"},
        "root must be an object",
        """got 'type: "string"'""",
    ),
    (
        "root-anyOf",
        {"anyOf": [OBJECT_SCHEMA, {"type": "null"}]},
        "root must not be anyOf",
        """got 'type: "None"'""",
    ),
    (
        "root-object-anyOf",
        {**OBJECT_SCHEMA, "anyOf": [OBJECT_SCHEMA]},
        "root must not be anyOf",
        "'anyOf' is not permitted at the root",
    ),
    (
        "root-untyped-properties",
        {k: v for k, v in OBJECT_SCHEMA.items() if k != "type"},
        "root must be an object",
        "got 'type: \"None\"'",
    ),
]


@pytest.mark.parametrize(
    ("schema", "ours", "theirs"),
    [case[1:] for case in NOT_STRICT],
    ids=[case[0] for case in NOT_STRICT],
)
async def test_a_strict_schema_the_api_refuses_is_refused_before_any_request(
    schema: dict[str, Any],
    ours: str,
    theirs: str,
    openai_fake: FakeOpenAI,
    adapter: OpenAIClient,
) -> None:
    error = await fail_job(config={"output": "json", "json_schema": schema})
    assert error.code is ErrorCode.INVALID_INPUT and error.caused_by_user is True
    assert ours in error.reason
    assert openai_fake.count("responses") == 0
    # Sent anyway (the adapter does not check), the API refuses it with its own 400.
    with pytest.raises(ProviderError) as caught:
        await adapter.generate(TextRequest(model="gpt-5-mini", input="x", json_schema=schema))
    refused = caught.value
    assert refused.code is ErrorCode.INVALID_INPUT and refused.status_code == 400
    assert theirs in refused.reason
    raw = refused.to_dict()["raw"]
    assert (raw["code"], raw["param"]) == ("invalid_json_schema", "text.format.schema")


async def test_our_strict_check_and_the_api_agree(adapter: OpenAIClient) -> None:
    schemas = [OBJECT_SCHEMA, *[case[1] for case in NOT_STRICT]]
    schemas.append({**OBJECT_SCHEMA, "additionalProperties": True})
    schemas.append({**OBJECT_SCHEMA, "required": []})
    disagreements = []
    for schema in schemas:
        ours = not strict_schema_problems(schema)
        try:
            await adapter.generate(TextRequest(model="gpt-5-mini", input="x", json_schema=schema))
            theirs = True
        except ProviderError as exc:
            theirs = exc.status_code != 400
        if ours != theirs:
            disagreements.append((schema, ours, theirs))
    assert disagreements == []


# ---- request fields the API does not take -------------------------------------------------

MISPLACED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "unknown-top-level",
        {"extra_body": {"foo": 1}},
        {
            "message": "Unknown parameter: 'foo'.",
            "type": "invalid_request_error",
            "param": "foo",
            "code": "unknown_parameter",
        },
    ),
    (
        "response_format",
        {"extra_body": {"response_format": {"type": "json_object"}}},
        {
            "message": "Unsupported parameter: 'response_format'. In the Responses API, this "
            "parameter has moved to 'text.format'. Try again with the new parameter.",
            "type": "invalid_request_error",
            "param": None,
            "code": "unsupported_parameter",
        },
    ),
    (
        "max_tokens",
        {"extra_body": {"max_tokens": 100}},
        {
            "message": "Unsupported parameter: 'max_tokens'. In the Responses API, this "
            "parameter has moved to 'max_output_tokens'. Try again with the new parameter.",
            "type": "invalid_request_error",
            "param": None,
            "code": "unsupported_parameter",
        },
    ),
    (
        "messages",
        {"extra_body": {"messages": [{"role": "user", "content": "x"}]}},
        {
            "message": "Unsupported parameter: 'messages'. In the Responses API, this "
            "parameter has moved to 'input'. Try again with the new parameter.",
            "type": "invalid_request_error",
            "param": None,
            "code": "unsupported_parameter",
        },
    ),
    (
        "chat-shaped-text-format",
        {
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "out",
                    "schema": OBJECT_SCHEMA,
                    "json_schema": {"name": "out", "schema": OBJECT_SCHEMA},
                }
            }
        },
        {
            "message": "Unknown parameter: 'text.format.json_schema'.",
            "type": "invalid_request_error",
            "param": "text.format.json_schema",
            "code": "unknown_parameter",
        },
    ),
    (
        "format-beside-text",
        {"text": {"type": "json_object"}},
        {
            "message": "Unknown parameter: 'text.type'.",
            "type": "invalid_request_error",
            "param": "text.type",
            "code": "unknown_parameter",
        },
    ),
    (
        "unknown-reasoning-field",
        {"reasoning": {"effort": "low", "budget_tokens": 100}},
        {
            "message": "Unknown parameter: 'reasoning.budget_tokens'.",
            "type": "invalid_request_error",
            "param": "reasoning.budget_tokens",
            "code": "unknown_parameter",
        },
    ),
    (
        "text-not-an-object",
        {"extra_body": {"text": "json"}},
        {
            "message": "Invalid type for 'text': expected an object, but got a string instead.",
            "type": "invalid_request_error",
            "param": "text",
            "code": "invalid_type",
        },
    ),
]


@pytest.mark.parametrize(
    ("arguments", "body"),
    [case[1:] for case in MISPLACED],
    ids=[case[0] for case in MISPLACED],
)
async def test_misplaced_and_unknown_fields_get_the_real_400(
    arguments: dict[str, Any], body: dict[str, Any], official: Any, openai_fake: FakeOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await official.responses.create(model="gpt-5-mini", input="x", **arguments)
    assert caught.value.status_code == 400
    assert caught.value.body == body
    error = error_from_exception(caught.value)
    assert error.code is ErrorCode.INVALID_INPUT and error.retryable is False
    assert error.to_dict()["raw"]["code"] == body["code"]
    assert openai_fake.count("responses") == 1


async def test_what_the_adapter_sends_is_accepted(
    adapter: OpenAIClient, openai_fake: FakeOpenAI
) -> None:
    result = await adapter.generate(
        TextRequest(
            model="gpt-5-mini",
            instructions="Be brief.",
            input="volcanoes",
            json_schema=OBJECT_SCHEMA,
            reasoning_effort="low",
            max_output_tokens=2000,
            options={"text": {"verbosity": "low"}},
        )
    )
    assert json.loads(result.text)["title"]
    assert openai_fake.statuses("responses") == [200]


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),
        ({"retry-after": "3", "x-ratelimit-reset-requests": "9s"}, 3.0),
        (
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "1h2m3s",
                "x-ratelimit-remaining-tokens": "100",
                "x-ratelimit-reset-tokens": "12ms",
            },
            3723.0,
        ),
        ({"x-ratelimit-reset-requests": "20ms", "x-ratelimit-reset-tokens": "1.5s"}, 1.5),
        ({"x-ratelimit-reset-requests": "soon"}, None),
        ({"x-ratelimit-reset-requests": "1s2"}, None),
        ({}, None),
    ],
    ids=[
        "ms-first",
        "retry-after-first",
        "the-used-up-limit",
        "longest",
        "garbage",
        "trail",
        "none",
    ],
)
def test_rate_limit_wait_reads_the_headers_openai_sends(
    headers: dict[str, str], wait: float | None
) -> None:
    assert rate_limit_wait(headers) == (pytest.approx(wait) if wait is not None else None)
