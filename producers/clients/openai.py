"""OpenAI: what every OpenAI model shares. The error adapter now; the live adapter later.

The live adapter over the official ``openai`` package (``max_retries=0``: the SDK never
retries, the clients do) arrives with the live-providers work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import openai

from producers.clients.base import retry_after_seconds
from producers.sdk.errors import ErrorCode, ProviderError
from producers.sdk.secrets import redact

PROVIDER = "openai"
DOCS_HINT = "https://platform.openai.com/docs/guides/error-codes"
_SAFETY_CODES = ("content_policy_violation", "content_filter", "moderation_blocked", "safety")


def _status_code(status: int) -> ErrorCode:
    if status == 429:
        return ErrorCode.RATE_LIMITED
    if status in (401, 403):
        return ErrorCode.AUTH_FAILED
    if status == 404:
        return ErrorCode.NOT_FOUND
    if status in (400, 409, 422):
        return ErrorCode.INVALID_INPUT
    if status == 408:
        return ErrorCode.TIMEOUT
    if status >= 500:
        return ErrorCode.PROVIDER_UNAVAILABLE
    return ErrorCode.UNKNOWN


def _error_body(body: object) -> dict[str, Any]:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            return dict(inner)
    return {}


def error_from_exception(exc: BaseException) -> ProviderError:
    """Map an exception raised by the ``openai`` package (or its transport) to ProviderError."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(
            ErrorCode.TIMEOUT, "the request to OpenAI timed out", provider=PROVIDER
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            redact(f"could not reach OpenAI: {exc}"),
            provider=PROVIDER,
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = _error_body(exc.body)
        message = redact(str(body.get("message") or exc.message))
        code = _status_code(status)
        error_code = str(body.get("code") or body.get("type") or "")
        if any(word in error_code for word in _SAFETY_CODES):
            code = ErrorCode.SAFETY_BLOCKED
        param = body.get("param")
        if param and code is ErrorCode.INVALID_INPUT:
            message = f"{message} (param: {param})"
        headers = dict(exc.response.headers) if exc.response is not None else {}
        retryable = None
        if headers.get("x-should-retry") in ("true", "false"):
            retryable = headers["x-should-retry"] == "true"
        return ProviderError(
            code,
            message,
            status_code=status,
            retry_after=retry_after_seconds(headers),
            retryable=retryable,
            provider=PROVIDER,
            hint=DOCS_HINT,
            raw={"type": body.get("type"), "code": body.get("code"), "param": param},
        )
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return ProviderError(ErrorCode.SAFETY_BLOCKED, str(exc), provider=PROVIDER, retryable=False)
    if isinstance(exc, openai.LengthFinishReasonError):
        return ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            "the answer was cut at the output token limit; raise max_output_tokens",
            provider=PROVIDER,
            retryable=False,
            caused_by_user=True,
        )
    if isinstance(exc, json.JSONDecodeError):
        # A 200 whose body is not JSON (a proxy or gateway page): transient, worth a retry.
        return ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            f"OpenAI answered with a body that is not JSON ({exc.msg})",
            provider=PROVIDER,
            retryable=True,
        )
    return ProviderError(
        ErrorCode.UNKNOWN,
        redact(f"{type(exc).__name__}: {exc}"),
        provider=PROVIDER,
        retryable=False,
        raw=type(exc).__name__,
    )
