"""OpenAI: what every OpenAI model shares: the live adapter and the error mapping."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import openai

from producers.clients.base import (
    TextRequest,
    TextResult,
    code_for_status,
    retry_after_seconds,
    ssl_context,
)
from producers.sdk.errors import ErrorCode, ProviderError
from producers.sdk.secrets import redact, register_secret

PROVIDER = "openai"
DOCS_HINT = "https://platform.openai.com/docs/guides/error-codes"
_SAFETY_CODES = ("content_policy_violation", "content_filter", "moderation_blocked", "safety")
#: Error codes and types the API answers when the account cannot pay: out of credit, past
#: its spend limit, or billing not set up (429 ``insufficient_quota``; 400
#: ``billing_hard_limit_reached``; 429 ``billing_not_active``). Retrying never helps.
QUOTA_CODES = frozenset(
    {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active", "quota_exceeded"}
)
BILLING_URL = "https://platform.openai.com/settings/organization/billing"
QUOTA_HINT = (
    "the OpenAI account is out of credit or past its spend limit: add credit or raise the "
    f"limit at {BILLING_URL} (retrying cannot help)"
)
_STATUS_HINTS = {
    400: "OpenAI refused the request as malformed: check the parameter it names",
    401: (
        "check the OpenAI API key (OPENAI_API_KEY, or the connection's password): it is "
        "missing, mistyped or revoked; keys are at https://platform.openai.com/api-keys"
    ),
    403: (
        "the key's organization or project may not use this model or endpoint, or the request "
        "comes from a country or region OpenAI does not serve: check the project's model "
        "access at https://platform.openai.com/settings"
    ),
    404: (
        "the model does not exist or the key's project has no access to it: check the model "
        "id and the project's model access"
    ),
    409: "a conflicting request held a lock at OpenAI; it is safe to retry",
    422: "OpenAI could not process a value of the request: check the parameter it names",
    429: (
        "OpenAI's rate limit for the organization or project: lower the concurrency or wait; "
        "limits at https://platform.openai.com/settings/organization/limits"
    ),
}
MAX_TOKENS_HINT = (
    "the answer used up max_output_tokens before it was finished (a reasoning model spends "
    "part of it on reasoning): raise max_output_tokens, or lower reasoning_effort"
)
_SERVER_HINT = (
    "OpenAI had a server error or is overloaded ({status}); retry later, and see "
    "https://status.openai.com if it persists"
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _error_body(body: object) -> dict[str, Any]:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            return dict(inner)
    return {}


def _duration_seconds(text: str) -> float | None:
    """Seconds of an ``x-ratelimit-reset-*`` duration (``"1s"``, ``"6m0s"``, ``"12ms"``)."""
    text = text.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait before a retry after a 429, from the answer's headers.

    ``retry-after-ms``, then ``retry-after`` (seconds or an HTTP date), as the openai
    package reads them; without either, the ``x-ratelimit-reset-*`` duration of the limit
    that is used up (``x-ratelimit-remaining-*`` is 0), or the longest reset given.
    """
    wait = retry_after_seconds(headers)
    if wait is not None:
        return wait
    lowered = {key.lower(): value for key, value in headers.items()}
    resets: dict[str, float] = {}
    for kind in ("requests", "tokens"):
        seconds = _duration_seconds(lowered.get(f"x-ratelimit-reset-{kind}", ""))
        if seconds is not None:
            resets[kind] = seconds
    spent = [
        resets[kind]
        for kind in resets
        if lowered.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0"
    ]
    chosen = spent or list(resets.values())
    return max(chosen) if chosen else None


def _is_quota(body: Mapping[str, Any]) -> bool:
    return any(str(body.get(key) or "") in QUOTA_CODES for key in ("code", "type"))


def _hint(status: int, code: ErrorCode, body: Mapping[str, Any]) -> str:
    """What to check for an error answer, with the error-codes guide."""
    if code is ErrorCode.QUOTA_EXCEEDED:
        return QUOTA_HINT
    if status >= 500:
        text = _SERVER_HINT.format(status=status)
    elif code is ErrorCode.SAFETY_BLOCKED:
        text = "OpenAI's safety system refused the prompt: rephrase it"
    elif status == 403 and body.get("code") == "unsupported_country_region_territory":
        text = "OpenAI does not serve the country or region the request comes from"
    else:
        text = _STATUS_HINTS.get(status, "see OpenAI's error codes")
        param = body.get("param")
        if status in (400, 422) and param:
            text = f"{text} ('{param}')"
    return f"{text} ({DOCS_HINT})"


def _status_error(exc: openai.APIStatusError) -> ProviderError:
    status = exc.status_code
    body = _error_body(exc.body)
    message = redact(str(body.get("message") or exc.message))
    headers = dict(exc.response.headers) if exc.response is not None else {}
    code = code_for_status(status)
    retryable: bool | None = None
    error_code = str(body.get("code") or body.get("type") or "")
    if _is_quota(body):
        code, retryable = ErrorCode.QUOTA_EXCEEDED, False
    elif any(word in error_code for word in _SAFETY_CODES):
        code = ErrorCode.SAFETY_BLOCKED
    elif status == 409:
        # A lock conflict (the openai package retries it): not the request's fault.
        code = ErrorCode.PROVIDER_UNAVAILABLE
    param = body.get("param")
    reason = f"{message} (param: {param})" if param and code is ErrorCode.INVALID_INPUT else message
    if retryable is None and headers.get("x-should-retry") in ("true", "false"):
        retryable = headers["x-should-retry"] == "true"
    wait = None
    if code is ErrorCode.RATE_LIMITED:
        wait = rate_limit_wait(headers)
    elif code is not ErrorCode.QUOTA_EXCEEDED:
        wait = retry_after_seconds(headers)
    return ProviderError(
        code,
        reason,
        status_code=status,
        retry_after=wait,
        retryable=retryable,
        provider=PROVIDER,
        hint=_hint(status, code, body),
        raw={
            "status": status,
            "code": body.get("code"),
            "type": body.get("type"),
            "param": param,
            "message": message,
            "request_id": exc.request_id or headers.get("x-request-id"),
        },
    )


def error_from_exception(exc: BaseException) -> ProviderError:
    """Map an exception raised by the ``openai`` package (or its transport) to ProviderError.

    An HTTP error keeps the API's own words in ``raw`` (``status``, ``code``, ``type``,
    ``param``, ``message``, ``request_id``) and carries a hint: what to check for its
    status. Out of credit or past the spend limit (``insufficient_quota`` and the other
    :data:`QUOTA_CODES`) is ``quota_exceeded``, never retryable; a 429 rate limit is
    ``rate_limited`` with the wait its headers give.
    """
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
        return _status_error(exc)
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return ProviderError(ErrorCode.SAFETY_BLOCKED, str(exc), provider=PROVIDER, retryable=False)
    if isinstance(exc, openai.LengthFinishReasonError):
        return ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            "the answer was cut at the output token limit; raise max_output_tokens",
            provider=PROVIDER,
            retryable=False,
            caused_by_user=True,
            hint=MAX_TOKENS_HINT,
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
        raw={"type": type(exc).__name__},
    )


# ---- the live adapter -----------------------------------------------------------------------

DEFAULT_TIMEOUT = 120.0


class OpenAIClient:
    """The live OpenAI adapter (Responses API) over the official ``openai`` package.

    Implements :class:`producers.clients.base.TextClient`. The package's own retries are
    off (``max_retries=0``): with them on, its retries and a client's would multiply
    (3 x 3 = 9 requests on a 500), and a failure would reach the caller late.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: Any = None,
    ) -> None:
        register_secret(api_key)
        if http_client is None:
            http_client = openai.DefaultAsyncHttpxClient(verify=ssl_context())
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )

    @staticmethod
    def params(request: TextRequest) -> dict[str, Any]:
        """The ``responses.create`` arguments for a request (Responses API names).

        ``request.options`` are further Responses API parameters, nested as the API nests
        them (``{"temperature": 0.2, "text": {"verbosity": "low"}}``), checked by the
        producer for the model (:mod:`producers.openai.options`); they are merged in, never
        replacing what the request's own fields set (``text.format``, ``reasoning.effort``).
        """
        params: dict[str, Any] = {"model": request.model, "input": request.input}
        if request.instructions:
            params["instructions"] = request.instructions
        if request.json_schema is not None:
            params["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": request.schema_name,
                    "schema": request.json_schema,
                    "strict": request.strict,
                }
            }
        if request.reasoning_effort:
            params["reasoning"] = {"effort": request.reasoning_effort}
        if request.max_output_tokens:
            params["max_output_tokens"] = request.max_output_tokens
        return _merged(params, request.options)

    async def generate(self, request: TextRequest) -> TextResult:
        """One ``POST /responses``; the answer's text, usage and ids."""
        try:
            response = await self._client.responses.create(**self.params(request))
        except Exception as exc:  # the adapter boundary: every failure leaves mapped
            raise error_from_exception(exc) from exc
        return _result(response)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()


def _merged(params: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``options`` merged in, object by object; ``params`` wins a clash."""
    merged = dict(params)
    for name, value in options.items():
        current = merged.get(name)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[name] = _merged(current, value)
        elif name not in merged:
            merged[name] = value
    return merged


def _fail(code: ErrorCode, reason: str, response: Any, **kwargs: Any) -> ProviderError:
    kwargs.setdefault("retryable", False)
    raw = {"status": getattr(response, "status", None), **kwargs.pop("raw", {})}
    return ProviderError(
        code, redact(reason), provider=PROVIDER, provider_job_id=response.id, raw=raw, **kwargs
    )


def _refusal(response: Any) -> str | None:
    """The model's refusal text, if a message of the answer is a refusal."""
    for item in response.output:
        for part in getattr(item, "content", None) or []:
            if getattr(part, "type", None) == "refusal":
                return str(getattr(part, "refusal", "") or "no reason given")
    return None


def _check_answer(response: Any) -> None:
    """Raise the ProviderError of an answer that holds no usable text.

    A response that failed, or ended ``incomplete`` (``max_output_tokens``: malformed
    output, raise the limit; ``content_filter``: safety blocked), or whose message is a
    refusal (safety blocked), or that has no ``message`` item at all (only reasoning) or
    an empty one (malformed output): never an empty artefact.
    """
    if response.error is not None:
        raise _fail(
            ErrorCode.MODEL_FAILED,
            str(getattr(response.error, "message", response.error)),
            response,
            raw={"code": getattr(response.error, "code", None)},
        )
    refusal = _refusal(response)
    status = response.status
    if status == "incomplete":
        reason = getattr(response.incomplete_details, "reason", None) or "unknown reason"
        if reason == "content_filter" or refusal is not None:
            raise _fail(
                ErrorCode.SAFETY_BLOCKED,
                f"the answer was stopped by OpenAI's content filter ({reason})",
                response,
                caused_by_user=True,
                hint="OpenAI's content filter stopped the answer: rephrase the prompt",
                raw={"code": reason},
            )
        raise _fail(
            ErrorCode.MALFORMED_OUTPUT,
            f"the answer is incomplete ({reason})"
            + ("; raise max_output_tokens" if reason == "max_output_tokens" else ""),
            response,
            caused_by_user=True,
            hint=MAX_TOKENS_HINT if reason == "max_output_tokens" else None,
            raw={"code": reason},
        )
    if refusal is not None:
        raise _fail(
            ErrorCode.SAFETY_BLOCKED,
            f"the model refused: {refusal}",
            response,
            caused_by_user=True,
            hint="the model refused to answer: rephrase the prompt",
            raw={"code": "refusal"},
        )
    if status not in (None, "completed"):
        code = ErrorCode.CANCELED if status == "cancelled" else ErrorCode.MODEL_FAILED
        raise _fail(code, f"the response ended {status!r}, not completed", response)
    messages = [item for item in response.output if getattr(item, "type", None) == "message"]
    if not messages:
        kinds = ", ".join(sorted({str(getattr(i, "type", "?")) for i in response.output}))
        raise _fail(
            ErrorCode.MALFORMED_OUTPUT,
            f"the answer holds no message, so no text (its output: {kinds or 'nothing'})",
            response,
            retryable=True,
            hint=(
                "the model spent its answer on reasoning: if it happens again, raise "
                "max_output_tokens or lower reasoning_effort"
            ),
            raw={"code": "no_message"},
        )
    if not response.output_text:
        raise _fail(
            ErrorCode.MALFORMED_OUTPUT,
            "the answer's message holds no text",
            response,
            retryable=True,
            raw={"code": "empty_message"},
        )


def _result(response: Any) -> TextResult:
    _check_answer(response)
    usage: dict[str, int] = {}
    if response.usage is not None:
        usage = {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
            "total_tokens": response.usage.total_tokens,
        }
        details = getattr(response.usage, "output_tokens_details", None)
        if details is not None and getattr(details, "reasoning_tokens", None) is not None:
            usage["reasoning_tokens"] = details.reasoning_tokens
        cached = getattr(response.usage, "input_tokens_details", None)
        if cached is not None and getattr(cached, "cached_tokens", None) is not None:
            usage["cached_input_tokens"] = cached.cached_tokens
    return TextResult(
        text=response.output_text,
        model=response.model,
        response_id=response.id,
        usage=usage,
    )
