"""The job contract between clients and producers: descriptors, requests, handles, status."""

from __future__ import annotations

import enum
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["live", "mock"]
Domain = Literal["prompt", "media"]
MODES: tuple[Mode, ...] = ("live", "mock")

#: General attributes every producer may consume (ARCHITECTURE.md); anything else is custom.
GENERAL_ATTRIBUTES: tuple[str, ...] = (
    "prompt",
    "negative_prompt",
    "aspect_ratio",
    "count",
    "seed",
    "duration_seconds",
    "voice",
    "language",
    "image",
)


class Kind(enum.StrEnum):
    """What a producer makes; decides which MIME types its artefacts may have."""

    TEXT = "text-to-text"
    TEXT_TO_IMAGE = "text-to-image"
    IMAGE_TO_IMAGE = "image-to-image"
    TEXT_TO_SPEECH = "text-to-speech"
    TEXT_TO_MUSIC = "text-to-music"
    TEXT_TO_VIDEO = "text-to-video"
    IMAGE_TO_VIDEO = "image-to-video"

    @property
    def media(self) -> str:
        """The media family: ``text``, ``image``, ``audio`` or ``video``."""
        return _MEDIA[self]

    @property
    def domain(self) -> Domain:
        """``prompt`` for LLM producers, ``media`` for everything else."""
        return "prompt" if self is Kind.TEXT else "media"


_MEDIA: dict[Kind, str] = {
    Kind.TEXT: "text",
    Kind.TEXT_TO_IMAGE: "image",
    Kind.IMAGE_TO_IMAGE: "image",
    Kind.TEXT_TO_SPEECH: "audio",
    Kind.TEXT_TO_MUSIC: "audio",
    Kind.TEXT_TO_VIDEO: "video",
    Kind.IMAGE_TO_VIDEO: "video",
}


class Descriptor(BaseModel):
    """Which producer runs a job: ``(provider, model, environment)``."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    environment: str = "local"

    @property
    def model_id(self) -> str:
        """The id users type: ``provider:model``."""
        return f"{self.provider}:{self.model}"

    @classmethod
    def parse(cls, model_id: str, environment: str = "local") -> Descriptor:
        """Parse ``provider:model`` (e.g. ``replicate:bytedance/seedream-4``)."""
        provider, sep, model = model_id.partition(":")
        if not sep or not provider or not model:
            from producers.sdk.errors import UnknownModelError

            raise UnknownModelError(
                f"model id {model_id!r} is not of the form provider:model "
                "(e.g. replicate:bytedance/seedream-4 or openai:gpt-5-mini)"
            )
        return cls(provider=provider.strip().lower(), model=model.strip(), environment=environment)


class Attachment(BaseModel):
    """A file handed to a producer: JSON, TOML or text, parsed on demand by the runtime."""

    model_config = ConfigDict(frozen=True)

    name: str
    content: str
    format: Literal["json", "toml", "text"] | None = None
    sensitive: bool = False


class JobRequest(BaseModel):
    """Everything a producer needs for one job; JSON-serialisable so clients can ship it."""

    model_config = ConfigDict(frozen=True)

    job_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    run_id: str | None = None
    descriptor: Descriptor
    mode: Mode = "mock"
    attempt: int = 1
    inputs: dict[str, Any] = Field(default_factory=dict)
    custom: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    produces: tuple[str, ...] = ()

    def for_waiting(self) -> JobRequest:
        """This request without its attachments' contents: enough to poll, collect or cancel
        a submitted job (its handle holds the prepared payload) and to record it, small
        enough to ship (an Airflow trigger's kwargs)."""
        return self.model_copy(update={"attachments": ()})


class JobState(enum.StrEnum):
    """Where a submitted job is at the provider."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        """True once the job will not change any more."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED)


class Prepared(BaseModel):
    """A job made ready to send: the exact payload, the prompt, the estimated cost.

    ``prepare`` runs before any request in every path, so every validation error is
    raised with nothing sent, and clients can price and fingerprint a job for free.
    ``expected_seconds`` is the model's usual latency, when the producer knows it: a job's
    wait deadline follows from it.
    """

    model_config = ConfigDict(frozen=True)

    payload: dict[str, Any]
    redacted_payload: dict[str, Any] | None = None
    prompt: str | None = None
    estimated_cost_usd: float | None = None
    #: True if ``estimated_cost_usd`` is only an upper bound (the model's hardware is unknown).
    estimated_cost_upper_bound: bool = False
    artefact_ids: tuple[str, ...] = ()
    state: dict[str, Any] = Field(default_factory=dict)
    expected_seconds: float | None = None

    @property
    def safe_payload(self) -> dict[str, Any]:
        """The payload with secrets masked."""
        return self.redacted_payload if self.redacted_payload is not None else self.payload

    def safe(self) -> Prepared:
        """This preparation with the payload's secrets masked (what may be kept or shipped)."""
        return self.model_copy(update={"payload": self.safe_payload, "redacted_payload": None})


class JobHandle(BaseModel):
    """A submitted job, small and JSON-able: what a client keeps (task state store) or ships
    (an Airflow trigger) to wait for it, collect it or cancel it elsewhere.

    Attributes:
        job_id: The job's id (the request's).
        descriptor: Which producer runs it.
        mode: ``live`` or ``mock``.
        provider_job_id: The provider's id of the job (a Replicate prediction id).
        state: The producer's own state from its ``submit`` (``Submission.state``).
        submitted_at: When it was submitted (epoch seconds); its wait deadline counts from it.
        started_at: When the job started (epoch seconds), for its diagnostics.
        prepared: The job as prepared, secrets masked (payload, prompt, cost, artefact ids).
    """

    model_config = ConfigDict(frozen=True)

    job_id: str
    descriptor: Descriptor
    mode: Mode
    provider_job_id: str | None = None
    state: dict[str, Any] = Field(default_factory=dict)
    submitted_at: float | None = None
    started_at: float | None = None
    prepared: Prepared | None = None


class JobStatus(BaseModel):
    """The answer to a poll."""

    model_config = ConfigDict(frozen=True)

    state: JobState
    provider_status: str | None = None
    detail: str | None = None
    poll_after: float | None = None
