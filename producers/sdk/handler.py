"""The handler: runs a producer definition for one descriptor and mode (the SDK's engine)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from producers.sdk.artefacts import (
    Artefact,
    ArtefactBuilder,
    DiagnosticsRecorder,
    ProducerResult,
)
from producers.sdk.attachments import Attachments
from producers.sdk.definition import Prepared, ProducerDefinition
from producers.sdk.errors import ErrorCode, InvalidInputError, ProviderError
from producers.sdk.jobs import Descriptor, JobHandle, JobRequest, JobState, JobStatus, Mode
from producers.sdk.runtime import (
    CancellationSignal,
    ClientRegistry,
    Clients,
    Inputs,
    ProducerRuntime,
    parse_config,
)
from producers.sdk.secrets import EnvSecretResolver, SecretResolver, redact
from producers.sdk.telemetry import ProducerLogger
from producers.sdk.templates import Templates
from producers.storage.base import ArtefactStore

FINGERPRINT_VERSION = 1
T = TypeVar("T")


@dataclass
class HandlerDeps:
    """What a handler needs from its client: the store, secrets, adapters, a logger."""

    store: ArtefactStore
    secrets: SecretResolver = field(default_factory=EnvSecretResolver)
    clients: ClientRegistry | None = None
    logger: ProducerLogger = field(default_factory=ProducerLogger)
    client_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Adapters shared by every job of one client process (connection reuse); None = per job.
    shared_clients: dict[str, Any] | None = None
    #: Seconds between polls of a live job, overriding the producer's default.
    poll_interval: float | None = None


def fingerprint(descriptor: Descriptor, kind: str, prepared: Prepared) -> str:
    """A content fingerprint of what would be sent: same fingerprint, same artefacts."""
    body = {
        "v": FINGERPRINT_VERSION,
        "provider": descriptor.provider,
        "model": descriptor.model,
        "kind": kind,
        "payload": prepared.safe_payload,
        "artefacts": list(prepared.artefact_ids),
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ProducerHandler:
    """Runs one producer for one ``(descriptor, mode)``.

    Every path validates first (config, attachments, inputs, the mapped payload in
    ``prepare``) and only then talks to the provider. Errors leave as
    :class:`ProviderError` with the job's context filled in; the handler never retries.
    """

    def __init__(
        self,
        definition: ProducerDefinition,
        descriptor: Descriptor,
        mode: Mode,
        deps: HandlerDeps,
    ) -> None:
        self.definition = definition
        self.descriptor = descriptor
        self.mode = mode
        self.deps = deps
        self.kind = definition.kind_for(descriptor.model)
        self.logger = deps.logger.bind(
            producer=definition.name,
            provider=descriptor.provider,
            model=descriptor.model,
            mode=mode,
        )

    # -- building ---------------------------------------------------------------------------

    def _check(self, request: JobRequest) -> None:
        if request.descriptor.provider != self.descriptor.provider or (
            request.descriptor.model != self.descriptor.model
        ):
            raise InvalidInputError(
                f"request for {request.descriptor.model_id} sent to the handler of "
                f"{self.descriptor.model_id}"
            )
        if request.mode != self.mode:
            raise InvalidInputError(f"request in {request.mode} mode sent to a {self.mode} handler")

    def runtime(
        self, request: JobRequest, cancel: CancellationSignal | None = None
    ) -> ProducerRuntime:
        """Build (and validate) the runtime for ``request``."""
        self._check(request)
        model_id = self.descriptor.model_id
        recorder = DiagnosticsRecorder(request, self.definition.name)
        try:
            config = parse_config(self.definition, request.config, model_id)
            attachments = Attachments(
                request.attachments, max_bytes=self.definition.max_attachment_bytes
            )
        except ProviderError as exc:
            raise exc.with_context(
                provider=self.descriptor.provider,
                model=self.descriptor.model,
                producer=self.definition.name,
                attempt=request.attempt,
            ) from None
        recorder.set(attachments=attachments.redacted())
        logger = self.logger.bind(job_id=request.job_id, attempt=request.attempt)
        return ProducerRuntime(
            request=request,
            definition=self.definition,
            kind=self.kind,
            config=config,
            inputs=Inputs(request.inputs, request.custom, model_id),
            attachments=attachments,
            secrets=self.deps.secrets,
            clients=Clients(
                self.deps.clients or _default_clients(),
                mode=self.mode,
                secrets=self.deps.secrets,
                logger=logger,
                options=self.deps.client_options,
                shared=self.deps.shared_clients,
            ),
            artefacts=ArtefactBuilder(
                store=self.deps.store, request=request, kind=self.kind, recorder=recorder
            ),
            templates=Templates(),
            logger=logger,
            cancel=cancel or CancellationSignal(),
            diagnostics=recorder,
            store=self.deps.store,
        )

    # -- the steps of a job, on one runtime (``producers.sdk.lifecycle.Job`` calls them) --------

    async def prepare_job(self, rt: ProducerRuntime) -> Prepared:
        """Map and validate the job (no request); sets ``rt.prepared`` and its diagnostics."""

        async def prepare() -> Prepared:
            if self.definition.prepare is not None:
                prepared = await self.definition.prepare(rt)
            else:
                prepared = Prepared(
                    payload={"inputs": rt.inputs.general, "custom": rt.inputs.custom},
                    prompt=_as_prompt(rt.inputs.get("prompt")),
                )
            self.adopt(rt, prepared)
            return prepared

        return await self.guard(rt, prepare())

    def adopt(
        self, rt: ProducerRuntime, prepared: Prepared, handle: JobHandle | None = None
    ) -> None:
        """Make ``rt`` the runtime of a job prepared before (here or in another process:
        ``handle`` then gives its provider job and start time)."""
        rt.prepared = prepared
        rt.diagnostics.set(
            payload=prepared.safe_payload,
            prompt=prepared.prompt,
            estimated_cost_usd=prepared.estimated_cost_usd,
            estimated_cost_upper_bound=prepared.estimated_cost_upper_bound,
            fingerprint=self.fingerprint(prepared),
        )
        if handle is not None:
            rt.diagnostics.set(provider_job_id=handle.provider_job_id)
            if handle.started_at is not None:
                rt.diagnostics.data.started_at = handle.started_at

    async def start_job(self, rt: ProducerRuntime) -> JobHandle | ProducerResult:
        """Submit the prepared job (its handle), or run an ``invoke`` producer to the end."""
        rt.cancel.raise_if_cancelled()
        if self.definition.invoke is not None:
            invoke = self.definition.invoke

            async def run() -> ProducerResult:
                return self._finish(rt, await invoke(rt))

            return await self.guard(rt, run())
        return await self.guard(rt, self._submit(rt))

    async def _submit(self, rt: ProducerRuntime) -> JobHandle:
        assert self.definition.submit is not None and rt.prepared is not None
        submission = await self.definition.submit(rt)
        rt.diagnostics.set(provider_job_id=submission.provider_job_id)
        handle = JobHandle(
            job_id=rt.request.job_id,
            descriptor=self.descriptor,
            mode=self.mode,
            provider_job_id=submission.provider_job_id,
            state=dict(submission.state),
            submitted_at=time.time(),
            started_at=rt.diagnostics.data.started_at,
            prepared=rt.prepared.safe(),
        )
        self.logger.event(
            "invoke.submitted", job_id=rt.request.job_id, provider_job_id=handle.provider_job_id
        )
        return handle

    async def poll_job(self, rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
        """Poll the job once; a job that failed or was cancelled raises its error."""
        return await self.guard(rt, self._poll(rt, handle))

    async def _poll(self, rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
        assert self.definition.poll is not None
        status = await self.definition.poll(rt, handle)
        if status.state is JobState.FAILED:
            raise ProviderError(
                ErrorCode.MODEL_FAILED,
                status.detail or "the provider reported the job as failed",
                retryable=False,
                provider_job_id=handle.provider_job_id,
            )
        if status.state is JobState.CANCELED:
            raise ProviderError(
                ErrorCode.CANCELED,
                status.detail or "the job was canceled at the provider",
                retryable=False,
                provider_job_id=handle.provider_job_id,
            )
        return status

    async def collect_job(self, rt: ProducerRuntime, handle: JobHandle) -> ProducerResult:
        """Collect a finished job's artefacts into the store."""
        assert self.definition.collect is not None
        collect = self.definition.collect

        async def run() -> ProducerResult:
            rt.diagnostics.set(provider_job_id=handle.provider_job_id)
            return self._finish(rt, await collect(rt, handle))

        return await self.guard(rt, run())

    async def cancel_job(self, rt: ProducerRuntime, handle: JobHandle) -> None:
        """Cancel the job at the provider (best effort: a failure is logged, not raised)."""
        if self.definition.cancel is not None:
            try:
                await self.guard(rt, self.definition.cancel(rt, handle))
            except ProviderError as exc:
                self.logger.event("invoke.cancel_failed", code=exc.code.value, reason=exc.reason)
        self.logger.event("invoke.canceled", provider_job_id=handle.provider_job_id)

    def _finish(self, rt: ProducerRuntime, artefacts: Sequence[Artefact]) -> ProducerResult:
        final = rt.diagnostics.finish()
        stamped = tuple(
            a.model_copy(
                update={"diagnostics": final.model_copy(update={"extra": a.diagnostics.extra})}
            )
            for a in artefacts
        )
        return ProducerResult(artefacts=stamped, diagnostics=final)

    async def guard(self, rt: ProducerRuntime, work: Awaitable[T]) -> T:
        """Await ``work``; give every failure the job's context and the ProviderError shape."""
        try:
            return await work
        except ProviderError as exc:
            prompt = rt.prepared.prompt if rt.prepared else _as_prompt(rt.inputs.get("prompt"))
            payload = rt.prepared.safe_payload if rt.prepared else None
            raise exc.with_context(
                provider=self.descriptor.provider,
                model=self.descriptor.model,
                producer=self.definition.name,
                attempt=rt.request.attempt,
                prompt=prompt,
                payload=payload,
            ) from exc.__cause__
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # the SDK boundary: anything else becomes a ProviderError
            raise ProviderError(
                ErrorCode.UNKNOWN,
                redact(f"{type(exc).__name__}: {exc}"),
                retryable=False,
                caused_by_user=False,
                provider=self.descriptor.provider,
                model=self.descriptor.model,
                producer=self.definition.name,
                attempt=rt.request.attempt,
                prompt=rt.prepared.prompt if rt.prepared else None,
                raw=type(exc).__name__,
            ) from exc

    # -- for callers that want one call -------------------------------------------------------

    async def prepare(self, request: JobRequest) -> Prepared:
        """Validate and map ``request`` without any provider call (pricing, fingerprints)."""
        rt = self.runtime(request)
        try:
            return await self.prepare_job(rt)
        finally:
            await rt.clients.aclose()

    def fingerprint(self, prepared: Prepared) -> str:
        """The fingerprint of a prepared job (see :func:`fingerprint`)."""
        return fingerprint(self.descriptor, self.kind.value, prepared)

    async def run(
        self,
        request: JobRequest,
        *,
        cancel: CancellationSignal | None = None,
        resume: JobHandle | None = None,
    ) -> ProducerResult:
        """Run the job to the end, neither reusing a stored result nor recording one for reuse
        (a :class:`~producers.sdk.lifecycle.Job` run; clients that reuse run the job).

        With ``resume`` (the ``handle`` of an earlier attempt's error), the job already
        submitted is waited for and collected again: a retry never pays twice.
        """
        from producers.sdk.lifecycle import Job, WaitPolicy

        policy = WaitPolicy(poll_interval=self.deps.poll_interval)
        async with Job(self, request, policy=policy, cancel=cancel) as job:
            outcome = await job.run(reuse=False, remember=False, kept=resume)
        return outcome.result


HandlerFactory = Callable[[Descriptor, Mode, HandlerDeps], ProducerHandler]


def create_handler_factory(definition: ProducerDefinition) -> HandlerFactory:
    """Turn a definition into a registry handler factory."""

    def factory(descriptor: Descriptor, mode: Mode, deps: HandlerDeps) -> ProducerHandler:
        return ProducerHandler(definition, descriptor, mode, deps)

    return factory


def _as_prompt(value: Any) -> str | None:
    return None if value is None else str(value)


def _default_clients() -> ClientRegistry:
    from producers.clients import default_client_registry

    return default_client_registry()
