"""Replicate: what every Replicate model shares. Error mapping now; the live adapter later.

The live adapter over the official ``replicate`` package arrives with the live-providers
work; the mapping of Replicate's answers to :class:`ProviderError` lives here already so
the producer and the mock agree with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from producers.sdk.errors import ErrorCode, ProviderError

PROVIDER = "replicate"
_SAFETY_WORDS = ("nsfw", "safety", "sensitive", "content policy", "flagged", "moderation")
DOCS_HINT = "https://replicate.com/docs/topics/predictions/lifecycle"


def failed_prediction_error(error_text: str | None, *, prediction_id: str | None) -> ProviderError:
    """Map a prediction that ended ``failed`` to ``safety_blocked`` or ``model_failed``."""
    text = (error_text or "the prediction failed without an error message").strip()
    lowered = text.lower()
    if any(word in lowered for word in _SAFETY_WORDS):
        return ProviderError(
            ErrorCode.SAFETY_BLOCKED,
            text,
            retryable=False,
            caused_by_user=True,
            provider=PROVIDER,
            provider_job_id=prediction_id,
            hint="the provider's safety filter refused the prompt; change the prompt",
        )
    return ProviderError(
        ErrorCode.MODEL_FAILED,
        text,
        retryable=False,
        caused_by_user=False,
        provider=PROVIDER,
        provider_job_id=prediction_id,
        hint=DOCS_HINT,
    )


def http_error(
    status: int, body: Mapping[str, Any] | None, *, retry_after: float | None = None
) -> ProviderError:
    """Map an HTTP error answer (``{"title", "detail", "status"}``) to a ProviderError."""
    body = body or {}
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    code: ErrorCode
    if status == 429:
        code = ErrorCode.RATE_LIMITED
    elif status in (401, 403):
        code = ErrorCode.AUTH_FAILED
    elif status == 404:
        code = ErrorCode.NOT_FOUND
    elif status in (400, 409, 422):
        code = ErrorCode.INVALID_INPUT
    elif status in (408, 504):
        code = ErrorCode.TIMEOUT
    elif status >= 500:
        code = ErrorCode.PROVIDER_UNAVAILABLE
    else:
        code = ErrorCode.UNKNOWN
    return ProviderError(
        code,
        detail,
        status_code=status,
        retry_after=retry_after,
        provider=PROVIDER,
        raw=dict(body),
        caused_by_user=code in (ErrorCode.INVALID_INPUT, ErrorCode.AUTH_FAILED),
    )


def error_from_exception(exc: BaseException, *, retry_after: float | None = None) -> ProviderError:
    """Map an exception raised by the ``replicate`` package (or httpx) to ProviderError.

    ``ReplicateError`` keeps no response headers, so a 429's ``Retry-After`` must be read
    by the caller (an httpx response hook) and passed as ``retry_after``.
    """
    import json

    import httpx
    from replicate.exceptions import ModelError, ReplicateError

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ModelError):
        prediction = exc.prediction
        return failed_prediction_error(
            getattr(prediction, "error", None), prediction_id=getattr(prediction, "id", None)
        )
    if isinstance(exc, ReplicateError):
        body = {"title": exc.title, "detail": exc.detail}
        return http_error(exc.status or 0, body, retry_after=retry_after)
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(
            ErrorCode.TIMEOUT, f"Replicate timed out: {type(exc).__name__}", provider=PROVIDER
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        return ProviderError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            f"the connection to Replicate broke: {exc}",
            provider=PROVIDER,
        )
    if isinstance(exc, httpx.TransportError):
        return ProviderError(
            ErrorCode.PROVIDER_UNAVAILABLE, f"could not reach Replicate: {exc}", provider=PROVIDER
        )
    if isinstance(exc, json.JSONDecodeError):
        return ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            f"Replicate answered with a body that is not JSON ({exc.msg})",
            provider=PROVIDER,
            retryable=True,
        )
    return ProviderError(
        ErrorCode.UNKNOWN,
        f"{type(exc).__name__}: {exc}",
        provider=PROVIDER,
        retryable=False,
        raw=type(exc).__name__,
    )
