"""Each provider's errors map to ProviderError codes, retryability and retry_after."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import httpx2
import openai
import pytest
from replicate.exceptions import ModelError, ReplicateError

from producers.clients import openai as openai_errors
from producers.clients import replicate as replicate_errors
from producers.clients.base import retry_after_seconds
from producers.sdk import ErrorCode
from producers.sdk.secrets import register_secret

REQUEST = httpx2.Request("POST", "https://api.openai.com/v1/responses")


def status_error(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> openai.APIStatusError:
    response = httpx2.Response(status, request=REQUEST, headers=headers or {}, json=body)
    client = openai.OpenAI(api_key="sk-x", max_retries=0)
    return client._make_status_error_from_response(
        response
    )  # the class the client itself would raise


def oai(
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


OPENAI_CASES: list[tuple[str, Any, ErrorCode, bool, bool, float | None]] = [
    (
        "429-retry-after",
        lambda: status_error(
            429, oai("Rate limit reached", "requests", "rate_limit_exceeded"), {"retry-after": "20"}
        ),
        ErrorCode.RATE_LIMITED,
        True,
        False,
        20.0,
    ),
    (
        "429-retry-after-ms",
        lambda: status_error(
            429, oai("Rate limit"), {"retry-after-ms": "1500", "retry-after": "9"}
        ),
        ErrorCode.RATE_LIMITED,
        True,
        False,
        1.5,
    ),
    (
        "500",
        lambda: status_error(500, oai("The server had an error", "server_error")),
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        None,
    ),
    (
        "503-should-not-retry",
        lambda: status_error(503, oai("overloaded", "server_error"), {"x-should-retry": "false"}),
        ErrorCode.PROVIDER_UNAVAILABLE,
        False,
        False,
        None,
    ),
    (
        "400-unsupported-param",
        lambda: status_error(
            400,
            oai(
                "Unsupported parameter: 'temperature'",
                param="temperature",
                code="unsupported_parameter",
            ),
        ),
        ErrorCode.INVALID_INPUT,
        False,
        True,
        None,
    ),
    (
        "401",
        lambda: status_error(
            401,
            oai(
                "Incorrect API key provided: sk-test-***cdef",
                "invalid_request_error",
                "invalid_api_key",
            ),
        ),
        ErrorCode.AUTH_FAILED,
        False,
        False,
        None,
    ),
    (
        "404-model",
        lambda: status_error(404, oai("The model `gpt-9` does not exist", code="model_not_found")),
        ErrorCode.NOT_FOUND,
        False,
        False,
        None,
    ),
    (
        "400-safety",
        lambda: status_error(
            400,
            oai("Your request was rejected by the safety system", code="content_policy_violation"),
        ),
        ErrorCode.SAFETY_BLOCKED,
        False,
        True,
        None,
    ),
    (
        "timeout",
        lambda: openai.APITimeoutError(request=REQUEST),
        ErrorCode.TIMEOUT,
        True,
        False,
        None,
    ),
    (
        "connection",
        lambda: openai.APIConnectionError(request=REQUEST),
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        None,
    ),
    (
        "non-json-200",
        lambda: json.JSONDecodeError("Expecting value", "<html>", 0),
        ErrorCode.MALFORMED_OUTPUT,
        True,
        False,
        None,
    ),
    ("other", lambda: ValueError("strange"), ErrorCode.UNKNOWN, False, False, None),
]


@pytest.mark.parametrize(
    ("make", "code", "retryable", "user", "retry_after"),
    [c[1:] for c in OPENAI_CASES],
    ids=[c[0] for c in OPENAI_CASES],
)
def test_openai_errors(
    make: Any, code: ErrorCode, retryable: bool, user: bool, retry_after: float | None
) -> None:
    error = openai_errors.error_from_exception(make())
    assert error.code is code
    assert error.retryable is retryable
    assert error.caused_by_user is user
    assert error.retry_after == retry_after
    assert error.provider == "openai"


def test_openai_error_keeps_the_message_and_param() -> None:
    error = openai_errors.error_from_exception(
        status_error(400, oai("Unsupported parameter: 'temperature'", param="temperature"))
    )
    assert error.reason == "Unsupported parameter: 'temperature' (param: temperature)"
    assert error.status_code == 400


def test_openai_error_message_never_shows_a_registered_secret() -> None:
    register_secret("sk-live-SECRET-abcdef123456")
    error = openai_errors.error_from_exception(
        status_error(401, oai("Incorrect API key provided: sk-live-SECRET-abcdef123456"))
    )
    assert "sk-live-SECRET-abcdef123456" not in str(error)


def prediction(error: str) -> Any:
    return SimpleNamespace(id="p123", error=error, status="failed")


REPLICATE_CASES: list[tuple[str, Any, ErrorCode, bool, bool]] = [
    (
        "422-validation",
        lambda: ReplicateError(
            status=422,
            title="Input validation failed",
            detail='- input.size: size must be one of the following: "1K", "2K"',
        ),
        ErrorCode.INVALID_INPUT,
        False,
        True,
    ),
    (
        "401",
        lambda: ReplicateError(
            status=401,
            title="Unauthenticated",
            detail="You did not pass a valid authentication token",
        ),
        ErrorCode.AUTH_FAILED,
        False,
        True,
    ),
    (
        "404",
        lambda: ReplicateError(
            status=404, title="Not found", detail="The requested resource could not be found."
        ),
        ErrorCode.NOT_FOUND,
        False,
        False,
    ),
    (
        "429",
        lambda: ReplicateError(
            status=429, title="Too Many Requests", detail="Request was throttled."
        ),
        ErrorCode.RATE_LIMITED,
        True,
        False,
    ),
    (
        "502",
        lambda: ReplicateError(status=502, title="Bad Gateway"),
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
    ),
    (
        "504",
        lambda: ReplicateError(status=504, title="Gateway Timeout"),
        ErrorCode.TIMEOUT,
        True,
        False,
    ),
    (
        "model-failed",
        lambda: ModelError(prediction("CUDA out of memory")),
        ErrorCode.MODEL_FAILED,
        False,
        False,
    ),
    (
        "nsfw",
        lambda: ModelError(
            prediction("NSFW content detected. Try running it again, or try a different prompt.")
        ),
        ErrorCode.SAFETY_BLOCKED,
        False,
        True,
    ),
    (
        "truncated-download",
        lambda: httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        ),
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
    ),
    ("read-timeout", lambda: httpx.ReadTimeout("timed out"), ErrorCode.TIMEOUT, True, False),
    (
        "connect-error",
        lambda: httpx.ConnectError("connection refused"),
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
    ),
    (
        "non-json",
        lambda: json.JSONDecodeError("Expecting value", "oops", 0),
        ErrorCode.MALFORMED_OUTPUT,
        True,
        False,
    ),
]


@pytest.mark.parametrize(
    ("make", "code", "retryable", "user"),
    [c[1:] for c in REPLICATE_CASES],
    ids=[c[0] for c in REPLICATE_CASES],
)
def test_replicate_errors(make: Any, code: ErrorCode, retryable: bool, user: bool) -> None:
    error = replicate_errors.error_from_exception(
        make(), retry_after=3.0 if code is ErrorCode.RATE_LIMITED else None
    )
    assert (error.code, error.retryable, error.caused_by_user) == (code, retryable, user)
    assert error.provider == "replicate"
    if code is ErrorCode.RATE_LIMITED:
        assert error.retry_after == 3.0


def test_replicate_validation_detail_names_the_field() -> None:
    error = replicate_errors.error_from_exception(
        ReplicateError(
            status=422,
            title="Input validation failed",
            detail='- input.size: size must be one of the following: "1K"',
        )
    )
    assert "input.size" in error.reason
    nsfw = replicate_errors.error_from_exception(ModelError(prediction("NSFW content detected.")))
    assert nsfw.provider_job_id == "p123"


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert (
        retry_after_seconds({"retry-after": "Wed, 25 Nov 2026 10:00:30 GMT"}, now=1795600800.0)
        == 30.0
    )
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
