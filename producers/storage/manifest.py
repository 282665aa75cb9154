"""Run manifests: what one run of a client asked for and made, stored beside the blobs."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from producers.sdk.artefacts import ProducerResult
from producers.sdk.errors import ProviderError
from producers.sdk.jobs import JobRequest
from producers.sdk.secrets import redact
from producers.storage.base import ArtefactStore

MANIFEST_VERSION = 1


def new_run_id(prefix: str = "run") -> str:
    """A sortable, unique run id such as ``run-20261125T143412Z-3f9a1c``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}-{stamp}-{secrets.token_hex(3)}"


class JobRecord(BaseModel):
    """One job of a run: what was asked, what it made, or how it failed."""

    job_id: str
    model_id: str
    mode: str
    status: Literal["succeeded", "failed", "skipped"]
    #: The job's key in its pipeline (``image[2]``), its role (``image``) and segment (2).
    key: str | None = None
    role: str | None = None
    segment: int | None = None
    reused: bool = False
    attempts: int = 1
    inputs: dict[str, Any] = Field(default_factory=dict)
    custom: dict[str, Any] = Field(default_factory=dict)
    artefacts: list[dict[str, Any]] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    #: The models tried before ``model_id`` (the role's model, then its fallbacks) and why
    #: each did not make the artefact: ``model_id``, ``code``, ``reason``, ``status_code``,
    #: ``provider_job_id``. Empty when the role's own model made it.
    passed_over: list[dict[str, Any]] = Field(default_factory=list)

    def model_post_init(self, context: Any, /) -> None:
        """Secrets never ride along in a passed-over model's reason."""
        self.passed_over = [redact(dict(item)) for item in self.passed_over]

    @classmethod
    def succeeded(
        cls, request: JobRequest, result: ProducerResult, *, reused: bool = False, **where: Any
    ) -> JobRecord:
        """The record of a finished job."""
        return cls(
            reused=reused,
            job_id=request.job_id,
            model_id=request.descriptor.model_id,
            mode=request.mode,
            status="succeeded",
            attempts=request.attempt,
            inputs=redact(request.inputs),
            custom=redact(request.custom),
            artefacts=[a.record() for a in result.artefacts],
            **where,
        )

    @classmethod
    def failed(cls, request: JobRequest, error: ProviderError, **where: Any) -> JobRecord:
        """The record of a failed job (the error redacted)."""
        return cls(
            job_id=request.job_id,
            model_id=request.descriptor.model_id,
            mode=request.mode,
            status="failed",
            attempts=error.attempt or request.attempt,
            inputs=redact(request.inputs),
            custom=redact(request.custom),
            error=redact(error.to_dict()),
            **where,
        )


class RunManifest(BaseModel):
    """``runs/<run_id>/manifest.json``: the record of a run, read by the UI and by re-runs."""

    manifest_version: int = MANIFEST_VERSION
    run_id: str
    client: str
    command: str
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    jobs: list[JobRecord] = Field(default_factory=list)
    #: What the run made as a whole (e.g. ``movie``, ``timeline`` URIs) and its parameters.
    outputs: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)

    def add_result(
        self,
        request: JobRequest,
        result: ProducerResult,
        *,
        reused: bool = False,
        **where: Any,
    ) -> None:
        """Record a finished job (``reused``: taken from an earlier identical job;
        ``where``: its ``key``, ``role`` and ``segment``)."""
        self.jobs.append(JobRecord.succeeded(request, result, reused=reused, **where))

    def add_failure(self, request: JobRequest, error: ProviderError, **where: Any) -> None:
        """Record a failed job with its error (no secrets: errors are redacted)."""
        self.jobs.append(JobRecord.failed(request, error, **where))

    async def save(self, store: ArtefactStore) -> str:
        """Write the manifest to ``store``; returns its URI."""
        self.updated_at = time.time()
        return await store.write_manifest(self.run_id, self.model_dump(mode="json"))
