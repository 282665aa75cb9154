"""OpenAI: what every OpenAI model shares: the live adapter and the error mapping."""

from __future__ import annotations

import json
import os
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
        code = code_for_status(status)
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


def _result(response: Any) -> TextResult:
    if response.error is not None:
        raise ProviderError(
            ErrorCode.MODEL_FAILED,
            str(getattr(response.error, "message", response.error)),
            provider=PROVIDER,
            retryable=False,
            provider_job_id=response.id,
        )
    if response.status == "incomplete":
        details = getattr(response.incomplete_details, "reason", None) or "unknown reason"
        code = (
            ErrorCode.SAFETY_BLOCKED if details == "content_filter" else ErrorCode.MALFORMED_OUTPUT
        )
        raise ProviderError(
            code,
            f"the answer is incomplete ({details})"
            + ("; raise max_output_tokens" if details == "max_output_tokens" else ""),
            provider=PROVIDER,
            retryable=False,
            caused_by_user=True,
            provider_job_id=response.id,
        )
    for item in response.output:
        for part in getattr(item, "content", None) or []:
            if getattr(part, "type", None) == "refusal":
                raise ProviderError(
                    ErrorCode.SAFETY_BLOCKED,
                    f"the model refused: {part.refusal}",
                    provider=PROVIDER,
                    retryable=False,
                    caused_by_user=True,
                    provider_job_id=response.id,
                )
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
    return TextResult(
        text=response.output_text,
        model=response.model,
        response_id=response.id,
        usage=usage,
    )
