"""What every provider adapter offers: the normalised transport the producers call.

A producer talks to a provider only through these protocols. Mock mode swaps the adapter
for :class:`producers.clients.mock.MockClient`; the producer code is the same.
"""

from __future__ import annotations

import email.utils
import functools
import os
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from producers.sdk.errors import ErrorCode

MediaJobStatus = Literal["starting", "processing", "succeeded", "failed", "canceled"]


class MediaHints(BaseModel):
    """The shape of the expected output, derived from the payload by the model's declaration.

    Live adapters ignore it; the mock transport and the fake servers use it to answer
    with media of the promised kind and shape.
    """

    model_config = ConfigDict(frozen=True)

    media: Literal["image", "audio", "video", "text"]
    count: int = 1
    aspect_ratio: str | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    format: str | None = None
    prompt: str = ""
    with_audio: bool = False
    #: Text models: the JSON Schema the answer must follow (None: plain text).
    json_schema: dict[str, Any] | None = None


def estimate_speech_seconds(text: str, words_per_minute: float = 150) -> float:
    """Estimate how long a text-to-speech reading of ``text`` lasts.

    Args:
        text: The text to be spoken.
        words_per_minute: Speaking rate; 150 is a typical narration pace.

    Returns:
        ``words * 60 / words_per_minute`` seconds, rounded to milliseconds, at least 1.0.

    Raises:
        ValueError: If ``words_per_minute`` is not positive.
    """
    if not words_per_minute > 0:
        raise ValueError(f"words_per_minute must be positive, got {words_per_minute}")
    words = len(text.split())
    return max(1.0, round(words * 60 / words_per_minute, 3))


class MediaJob(BaseModel):
    """A provider-side job (a Replicate prediction), normalised."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: MediaJobStatus
    outputs: tuple[str, ...] = ()
    #: The output as the provider sent it (JSON data: a URL, a list of URLs or of tokens, an
    #: object), for the producer to interpret by the model's declared output.
    value: Any = None
    #: The provider removed the output's data (Replicate keeps API outputs for an hour).
    data_removed: bool = False
    error: str | None = None
    provider_seconds: float | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class MediaClient(Protocol):
    """Submit / poll / cancel / download against a media provider."""

    async def create_job(
        self,
        *,
        model: str,
        version: str | None,
        payload: Mapping[str, Any],
        hints: MediaHints,
    ) -> MediaJob:
        """Create a job; returns as soon as the provider has an id for it."""
        ...

    async def get_job(self, job_id: str) -> MediaJob:
        """The job's current state."""
        ...

    async def cancel_job(self, job_id: str) -> MediaJob:
        """Ask the provider to cancel the job."""
        ...

    def download(self, url: str) -> AsyncIterator[bytes]:
        """Stream one output's bytes in chunks.

        ``url`` came from the provider and is untrusted: a live adapter streams it under
        an :class:`~producers.clients.downloads.OutputPolicy` (``policy.open(client, url)``:
        allowed hosts only, redirects checked, a byte cap and a deadline), with an HTTP
        client that carries no credentials and follows no redirects by itself.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class TextRequest(BaseModel):
    """One LLM call in provider-neutral terms (OpenAI Responses API semantics)."""

    model_config = ConfigDict(frozen=True)

    model: str
    instructions: str | None = None
    input: str
    json_schema: dict[str, Any] | None = None
    schema_name: str = "output"
    strict: bool = True
    reasoning_effort: str | None = None
    max_output_tokens: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class TextResult(BaseModel):
    """An LLM's answer: the text (JSON text for structured output), usage and ids."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    response_id: str | None = None
    usage: dict[str, int] = Field(default_factory=dict)
    raw: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class TextClient(Protocol):
    """Generate text or structured JSON."""

    async def generate(self, request: TextRequest) -> TextResult:
        """Run one request and return the answer."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def retry_after_seconds(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait according to ``retry-after-ms`` or ``retry-after`` (seconds or a date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


@functools.cache
def _ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def ssl_context() -> ssl.SSLContext:
    """One TLS context per CA configuration, shared by every adapter of the process.

    Loading a CA bundle takes tens of milliseconds; httpx would do it for every client.
    Honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` as httpx does, else certifi's bundle.
    """
    return _ssl_context(
        os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None
    )


def code_for_status(status: int) -> ErrorCode:
    """The error code an HTTP status means, the same for every provider."""
    if status == 429:
        return ErrorCode.RATE_LIMITED
    if status in (401, 403):
        return ErrorCode.AUTH_FAILED
    if status == 404:
        return ErrorCode.NOT_FOUND
    if status in (400, 409, 422):
        return ErrorCode.INVALID_INPUT
    if status in (408, 504):
        return ErrorCode.TIMEOUT
    if status >= 500:
        return ErrorCode.PROVIDER_UNAVAILABLE
    return ErrorCode.UNKNOWN
