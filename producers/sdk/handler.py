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
#: The first wait between polls of a live job; later waits grow by half each time.
FIRST_POLL_DELAY = 0.25
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

    async def _prepare(self, rt: ProducerRuntime) -> Prepared:
        if self.definition.prepare is not None:
            prepared = await self.definition.prepare(rt)
        else:
            prepared = Prepared(
                payload={"inputs": rt.inputs.general, "custom": rt.inputs.custom},
                prompt=_as_prompt(rt.inputs.get("prompt")),
            )
        rt.prepared = prepared
        rt.diagnostics.set(
            payload=prepared.safe_payload,
            prompt=prepared.prompt,
            estimated_cost_usd=prepared.estimated_cost_usd,
            fingerprint=fingerprint(self.descriptor, self.kind.value, prepared),
        )
        return prepared

    async def prepare(self, request: JobRequest) -> Prepared:
        """Validate and map ``request`` without any provider call (pricing, fingerprints)."""
        rt = self.runtime(request)
        try:
            return await self._guard(rt, self._prepare(rt))
        finally:
            await rt.clients.aclose()

    def fingerprint(self, prepared: Prepared) -> str:
        """The fingerprint of a prepared job (see :func:`fingerprint`)."""
        return fingerprint(self.descriptor, self.kind.value, prepared)

    # -- running ----------------------------------------------------------------------------

    async def run(
        self,
        request: JobRequest,
        *,
        cancel: CancellationSignal | None = None,
        resume: JobHandle | None = None,
    ) -> ProducerResult:
        """Run the job to the end: invoke, or submit then poll then collect.

        With ``resume`` (the ``handle`` of an earlier attempt's error), the job already
        submitted is waited for and collected again: a retry never pays twice.
        """
        rt = self.runtime(request, cancel)
        started = time.monotonic()
        self.logger.event(
            "invoke.start",
            job_id=request.job_id,
            attempt=request.attempt,
            resumed=None if resume is None else resume.provider_job_id,
        )
        try:
            result = await self._guard(rt, self._run(rt, resume))
        except ProviderError as exc:
            self.logger.event(
                "invoke.error",
                job_id=request.job_id,
                attempt=request.attempt,
                code=exc.code.value,
                retryable=exc.retryable,
                retry_after=exc.retry_after,
                reason=exc.reason,
                duration_ms=round((time.monotonic() - started) * 1000, 3),
            )
            raise
        finally:
            await rt.clients.aclose()
        self.logger.event(
            "invoke.end",
            job_id=request.job_id,
            attempt=request.attempt,
            artefacts=[a.id for a in result.artefacts],
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )
        return result

    async def _run(self, rt: ProducerRuntime, resume: JobHandle | None = None) -> ProducerResult:
        definition = self.definition
        await self._prepare(rt)
        rt.cancel.raise_if_cancelled()
        if definition.invoke is not None:
            return self._finish(rt, await definition.invoke(rt))
        if resume is not None and resume.provider_job_id:
            handle = resume
            rt.diagnostics.set(provider_job_id=handle.provider_job_id)
        else:
            handle = await self._submit_then_cancel_if_interrupted(rt)
        try:
            polls = 0
            while True:
                status = await self._poll(rt, handle)
                if status.state.terminal:
                    break
                delay = status.poll_after
                if delay is None:
                    delay = self._poll_delay(polls) if self.mode == "live" else 0.0
                polls += 1
                await _sleep_or_cancel(rt.cancel, delay)
                if rt.cancel.cancelled:
                    await self._cancel(rt, handle)
                    rt.cancel.raise_if_cancelled()
            return self._finish(rt, await self._collect(rt, handle))
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel(rt, handle))
            raise
        except ProviderError as exc:
            exc.handle = handle
            exc.provider_job_id = exc.provider_job_id or handle.provider_job_id
            raise

    def _poll_delay(self, polls: int) -> float:
        """Seconds before the next poll: a fixed ``HandlerDeps.poll_interval`` if set, else
        a short first wait growing by half each time up to the producer's ``poll_interval``,
        so quick jobs are noticed quickly and long ones are not polled needlessly."""
        if self.deps.poll_interval is not None:
            return self.deps.poll_interval
        return float(min(self.definition.poll_interval, FIRST_POLL_DELAY * 1.5**polls))

    async def _submit_then_cancel_if_interrupted(self, rt: ProducerRuntime) -> JobHandle:
        """Submit; if the caller is cancelled while the create is in flight, let the create
        finish, then cancel that job at the provider: an interrupted run leaves nothing
        running (and paying) behind."""
        task = asyncio.ensure_future(self._submit(rt))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            try:
                handle = await task
            except Exception:  # the create failed anyway: nothing to cancel
                raise asyncio.CancelledError from None
            await self._cancel(rt, handle)
            raise

    async def _submit(self, rt: ProducerRuntime) -> JobHandle:
        assert self.definition.submit is not None
        submission = await self.definition.submit(rt)
        rt.diagnostics.set(provider_job_id=submission.provider_job_id)
        prepared = rt.prepared
        state = dict(submission.state)
        if prepared is not None:
            safe = prepared.model_copy(update={"payload": prepared.safe_payload})
            state["_prepared"] = safe.model_dump(mode="json")
        state["_started_at"] = rt.diagnostics.data.started_at
        handle = JobHandle(
            job_id=rt.request.job_id,
            descriptor=self.descriptor,
            mode=self.mode,
            provider_job_id=submission.provider_job_id,
            state=state,
            submitted_at=time.time(),
        )
        self.logger.event(
            "invoke.submitted", job_id=rt.request.job_id, provider_job_id=handle.provider_job_id
        )
        return handle

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

    async def _collect(self, rt: ProducerRuntime, handle: JobHandle) -> Sequence[Artefact]:
        assert self.definition.collect is not None
        rt.diagnostics.set(provider_job_id=handle.provider_job_id)
        return await self.definition.collect(rt, handle)

    async def _cancel(self, rt: ProducerRuntime, handle: JobHandle) -> None:
        if self.definition.cancel is not None:
            try:
                await self.definition.cancel(rt, handle)
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

    async def _guard(self, rt: ProducerRuntime, work: Awaitable[T]) -> T:
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

    # -- submit / poll / collect for clients that wait elsewhere ------------------------------

    async def submit(self, request: JobRequest) -> JobHandle:
        """Validate and submit; returns a JSON-able handle (``invoke`` producers run here)."""
        rt = self.runtime(request)
        try:
            if self.definition.invoke is not None:
                result: ProducerResult = await self._guard(rt, self._run(rt))
                return JobHandle(
                    job_id=request.job_id,
                    descriptor=self.descriptor,
                    mode=self.mode,
                    state={"_result": result.model_dump(mode="json")},
                    submitted_at=time.time(),
                )

            async def go() -> JobHandle:
                await self._prepare(rt)
                return await self._submit(rt)

            handle: JobHandle = await self._guard(rt, go())
            return handle
        finally:
            await rt.clients.aclose()

    def _resume(self, request: JobRequest, handle: JobHandle) -> ProducerRuntime:
        rt = self.runtime(request)
        if "_prepared" in handle.state:
            rt.prepared = Prepared.model_validate(handle.state["_prepared"])
            rt.diagnostics.set(
                payload=rt.prepared.safe_payload,
                prompt=rt.prepared.prompt,
                estimated_cost_usd=rt.prepared.estimated_cost_usd,
                fingerprint=self.fingerprint(rt.prepared),
                provider_job_id=handle.provider_job_id,
            )
        if handle.state.get("_started_at"):
            rt.diagnostics.data.started_at = handle.state["_started_at"]
        return rt

    async def poll(self, request: JobRequest, handle: JobHandle) -> JobStatus:
        """Poll a submitted job once (raises the mapped error if it failed)."""
        if "_result" in handle.state:
            return JobStatus(state=JobState.SUCCEEDED)
        rt = self._resume(request, handle)
        try:
            status: JobStatus = await self._guard(rt, self._poll(rt, handle))
            return status
        finally:
            await rt.clients.aclose()

    async def collect(self, request: JobRequest, handle: JobHandle) -> ProducerResult:
        """Collect the artefacts of a finished job."""
        if "_result" in handle.state:
            return ProducerResult.model_validate(handle.state["_result"])
        rt = self._resume(request, handle)

        async def go() -> ProducerResult:
            return self._finish(rt, await self._collect(rt, handle))

        try:
            result: ProducerResult = await self._guard(rt, go())
            return result
        finally:
            await rt.clients.aclose()

    async def cancel(self, request: JobRequest, handle: JobHandle) -> None:
        """Cancel a submitted job at the provider (best effort, never raises for it)."""
        if "_result" in handle.state:
            return
        rt = self._resume(request, handle)
        try:
            await self._cancel(rt, handle)
        finally:
            await rt.clients.aclose()


HandlerFactory = Callable[[Descriptor, Mode, HandlerDeps], ProducerHandler]


def create_handler_factory(definition: ProducerDefinition) -> HandlerFactory:
    """Turn a definition into a registry handler factory."""

    def factory(descriptor: Descriptor, mode: Mode, deps: HandlerDeps) -> ProducerHandler:
        return ProducerHandler(definition, descriptor, mode, deps)

    return factory


async def _sleep_or_cancel(signal: CancellationSignal, delay: float) -> None:
    if delay <= 0:
        await asyncio.sleep(0)
        return
    waiter = asyncio.ensure_future(signal.wait())
    try:
        await asyncio.wait({waiter}, timeout=delay)
    finally:
        waiter.cancel()


def _as_prompt(value: Any) -> str | None:
    return None if value is None else str(value)


def _default_clients() -> ClientRegistry:
    from producers.clients import default_client_registry

    return default_client_registry()
