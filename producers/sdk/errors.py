"""Errors: the one provider-failure type, its codes, and user-input errors."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class ErrorCode(enum.StrEnum):
    """What went wrong, in provider-independent terms (ARCHITECTURE.md)."""

    RATE_LIMITED = "rate_limited"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    TIMEOUT = "timeout"
    AUTH_FAILED = "auth_failed"
    INVALID_INPUT = "invalid_input"
    SAFETY_BLOCKED = "safety_blocked"
    MODEL_FAILED = "model_failed"
    MALFORMED_OUTPUT = "malformed_output"
    NOT_FOUND = "not_found"
    CANCELED = "canceled"
    #: The account is out of credit or past its spend limit: retrying cannot help.
    QUOTA_EXCEEDED = "quota_exceeded"
    UNKNOWN = "unknown"


#: Codes a client may retry by default; each error still carries its own ``retryable`` flag.
RETRYABLE_CODES = frozenset(
    {ErrorCode.RATE_LIMITED, ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.TIMEOUT}
)
#: Codes that come from what the user asked for (bad prompt, bad value): a person must act.
USER_CAUSED_CODES = frozenset({ErrorCode.INVALID_INPUT, ErrorCode.SAFETY_BLOCKED})
#: The keyword fields of :class:`ProviderError` that :meth:`ProviderError.to_dict` records.
_FIELDS = frozenset(
    {
        "retryable", "caused_by_user", "status_code", "retry_after", "provider", "model",
        "producer", "attempt", "prompt", "payload", "hint", "provider_job_id", "raw",
    }
)  # fmt: skip


#: The provider's own words kept in an error record: its code, type, status, title, detail...
RAW_KEYS = (
    "status", "code", "type", "param", "title", "detail", "message", "error", "method", "path",
    "request_id",
)  # fmt: skip
_RAW_TEXT_MAX = 500


def raw_summary(raw: Any) -> dict[str, Any] | None:
    """The provider's own error detail as a small JSON-able record, or None.

    Only scalar values of the keys in :data:`RAW_KEYS` are kept (texts cut at 500 chars,
    secrets redacted); a provider's body is never dumped whole, so nothing it echoed back
    (a prompt, a URL with a signature) rides along by accident.
    """
    from producers.sdk.secrets import redact

    if not isinstance(raw, Mapping):
        return None
    kept: dict[str, Any] = {}
    for key in RAW_KEYS:
        value = raw.get(key)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            kept[key] = value
        elif isinstance(value, str):
            text = redact(value)
            kept[key] = text if len(text) <= _RAW_TEXT_MAX else text[: _RAW_TEXT_MAX - 3] + "..."
    return kept or None


class ProviderError(Exception):
    """A failure of one producer job, mapped to a common shape.

    The SDK never retries: it reports ``retryable`` and ``retry_after`` and the client
    (CLI or Airflow) decides. ``str(error)`` names the producer, the model, the code, the
    provider's message and the prompt that was sent, so a person can act on it.
    """

    def __init__(
        self,
        code: ErrorCode | str,
        reason: str,
        *,
        retryable: bool | None = None,
        caused_by_user: bool | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        model: str | None = None,
        producer: str | None = None,
        attempt: int | None = None,
        prompt: str | None = None,
        payload: Mapping[str, Any] | None = None,
        hint: str | None = None,
        raw: Any = None,
        provider_job_id: str | None = None,
        handle: Any = None,
    ) -> None:
        self.code = ErrorCode(code)
        self.reason = reason
        self.retryable = self.code in RETRYABLE_CODES if retryable is None else retryable
        self.caused_by_user = (
            self.code in USER_CAUSED_CODES if caused_by_user is None else caused_by_user
        )
        self.status_code = status_code
        self.retry_after = retry_after
        self.provider = provider
        self.model = model
        self.producer = producer
        self.attempt = attempt
        self.prompt = prompt
        self.payload = dict(payload) if payload is not None else None
        self.hint = hint
        self.raw = raw
        self.provider_job_id = provider_job_id
        #: The submitted job (a ``JobHandle``) when the failure came after submission, so a
        #: retry can resume waiting for it instead of paying for a second job.
        self.handle = handle
        super().__init__(reason)

    def with_context(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        producer: str | None = None,
        attempt: int | None = None,
        prompt: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> ProviderError:
        """Fill in the job context that the raising code did not know; returns ``self``."""
        self.provider = self.provider or provider
        self.model = self.model or model
        self.producer = self.producer or producer
        self.attempt = self.attempt if self.attempt is not None else attempt
        self.prompt = self.prompt if self.prompt is not None else prompt
        if self.payload is None and payload is not None:
            self.payload = dict(payload)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record of the error (``raw`` is summarised, never dumped)."""
        return {
            "raw": raw_summary(self.raw),
            "code": self.code.value,
            "reason": self.reason,
            "retryable": self.retryable,
            "caused_by_user": self.caused_by_user,
            "status_code": self.status_code,
            "retry_after": self.retry_after,
            "provider": self.provider,
            "model": self.model,
            "producer": self.producer,
            "attempt": self.attempt,
            "prompt": self.prompt,
            "payload": self.payload,
            "hint": self.hint,
            "provider_job_id": self.provider_job_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, handle: Any = None) -> ProviderError:
        """Rebuild an error from its :meth:`to_dict` record (e.g. an Airflow trigger's event).

        Unknown keys are ignored; an unknown code becomes ``unknown``.
        """
        fields = dict(data)
        code = fields.pop("code", ErrorCode.UNKNOWN.value)
        if code not in ErrorCode.__members__.values():
            code = ErrorCode.UNKNOWN
        reason = str(fields.pop("reason", None) or "the job failed")
        kwargs = {key: value for key, value in fields.items() if key in _FIELDS}
        return cls(code, reason, handle=handle, **kwargs)

    def __str__(self) -> str:
        who = " ".join(
            part
            for part in (
                f"producer {self.producer}" if self.producer else "",
                f"model {self.provider}:{self.model}" if self.model else "",
            )
            if part
        )
        text = f"{self.code.value}: {self.reason}"
        where = ", ".join(
            part
            for part in (
                f"HTTP {self.status_code}" if self.status_code else "",
                f"provider job {self.provider_job_id}" if self.provider_job_id else "",
            )
            if part
        )
        if where:
            text += f" ({where})"
        if who:
            text = f"{who}: {text}"
        if self.prompt:
            shown = self.prompt if len(self.prompt) <= 500 else self.prompt[:497] + "..."
            text += f"\n  prompt: {shown!r}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __repr__(self) -> str:
        return f"ProviderError(code={self.code.value!r}, reason={self.reason!r})"


class InvalidInputError(ProviderError):
    """The job's inputs, config or attachments are wrong; raised before any request."""

    def __init__(self, reason: str, *, field: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("retryable", False)
        kwargs.setdefault("caused_by_user", True)
        super().__init__(ErrorCode.INVALID_INPUT, reason, **kwargs)
        self.field = field


class TemplateError(InvalidInputError):
    """A prompt template could not be rendered (undefined variable, syntax error)."""


class DeclarationError(ValueError):
    """A model declaration file is malformed; the message names the file and the field."""


class UnknownModelError(LookupError):
    """No producer is registered for a model id; the message lists close matches."""


class ConfigurationError(ValueError):
    """The runtime is set up wrongly (store URI, missing secret, unsupported mode)."""
