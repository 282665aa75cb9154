"""The trigger that waits for a submitted producer job in the triggerer, not a worker slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent
from asgiref.sync import sync_to_async

from producers.sdk.errors import ProviderError
from producers.sdk.handler import ProducerHandler
from producers.sdk.jobs import JobHandle, JobRequest
from producers.sdk.lifecycle import Job, WaitPolicy
from producers.sdk.tracing import parent_from_traceparent


class ProducerTrigger(BaseTrigger):
    """Waits for a job with the SDK's one wait loop (submitting it first when the task
    deferred before submitting: ``handle`` None); yields one event.

    The event is a :class:`~airflow_provider_tutopanda.triggers.jobs.JobEvent`: done, or the
    error (a poll rate-limited is waited out, a few transient poll failures are tolerated,
    and a job past its deadline is cancelled at the provider and fails with ``timeout``).

    With ``finish`` (where the job sits in a pipeline), the trigger also collects the
    artefacts into the store and ends the task itself (``TaskSuccessEvent`` with the return
    value and the ``tutopanda_job`` record): the task never comes back to a worker slot. A
    failure still goes back to the task (its retry policy decides).

    Args:
        job: The job as ``JobRequest.for_waiting()`` JSON: ids, inputs and config, no
            attachment contents (the handle holds the prepared job).
        handle: The submitted job (``JobHandle`` JSON), or None: the trigger submits it (and
            records the submission in the store at once: a restarted trigger or a retried
            task resumes it instead of paying again).
        store: The artefact store URI or path.
        conn_id: The provider connection (live mode); None for the provider's default.
        policy: The wait policy (``WaitPolicy`` fields: ``poll_interval``, ``deadline``,
            ``max_poll_failures``).
        finish: ``{"where": {key, role, segment}}`` to collect and end the task here; None to
            hand the task back to a worker to collect.
        traceparent: The W3C ``traceparent`` of the task's span on the worker that deferred
            (None: no tracing there): the job's span here is its child, unless the triggerer
            has a span of that trace for this trigger (Airflow's own trigger span).
    """

    def __init__(
        self,
        job: dict[str, Any],
        handle: dict[str, Any] | None,
        store: str,
        conn_id: str | None = None,
        policy: dict[str, Any] | None = None,
        finish: dict[str, Any] | None = None,
        traceparent: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's, untyped
        self.job = job
        self.handle = handle
        self.store = store
        self.conn_id = conn_id
        self.policy = policy or {}
        self.finish = finish
        self.traceparent = traceparent

    @property
    def mode(self) -> str:
        """The job's mode (``mock`` or ``live``)."""
        return str(self.job.get("mode", "mock"))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The import path and plain kwargs the triggerer rebuilds this trigger from."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job": self.job,
                "handle": self.handle,
                "store": self.store,
                "conn_id": self.conn_id,
                "policy": self.policy,
                "finish": self.finish,
                "traceparent": self.traceparent,
            },
        )

    async def _job(self) -> tuple[Job, JobHandle | None]:
        from airflow_provider_tutopanda.triggers.jobs import job_handler

        request = JobRequest.model_validate(self.job)
        handle = None if self.handle is None else JobHandle.model_validate(self.handle)
        # the hook reads its connection through a sync API: keep it off the event loop
        handler: ProducerHandler = await sync_to_async(job_handler)(
            request, self.store, self.conn_id, shared=True
        )
        return Job(handler, request, policy=WaitPolicy(**self.policy)), handle

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait until the job ends (collect it too with ``finish``), then yield one event."""
        from airflow_provider_tutopanda.triggers.jobs import JobEvent, close_handler

        job, handle = await self._job()
        parent = parent_from_traceparent(self.traceparent)
        try:
            with job.trace.span(parent=parent, where="triggerer"):
                if handle is None:
                    handle = await self._submit(job)
                await job.wait(handle)
                if self.finish is not None:
                    xcoms = await self._collect(job, handle, self.finish)
        except ProviderError as error:
            failed = JobEvent.failed(handle or error.handle, error).model_dump(mode="json")
            yield TriggerEvent(failed)  # type: ignore[no-untyped-call]  # Airflow's, untyped
            return
        finally:
            await job.aclose()
            await close_handler(job.handler)
        if self.finish is not None:
            yield TaskSuccessEvent(xcoms=xcoms)
            return
        done = JobEvent(status="done", handle=handle).model_dump(mode="json")
        yield TriggerEvent(done)  # type: ignore[no-untyped-call]  # Airflow's, untyped

    @staticmethod
    async def _submit(job: Job) -> JobHandle:
        """Submit the job (the task deferred before submitting): resume the one a trigger of
        this job recorded before (this trigger restarted, or an earlier try's), else submit
        and record it at once, so that whoever takes the job over never pays twice."""
        handle = await job.resumable(await job.kept())
        if handle is None:
            started = await job.start()
            if not isinstance(started, JobHandle):  # only submitting producers defer
                raise ProviderError("unknown", "the job answered in one call in a trigger")
            handle = started
            await job.keep(handle)
        return handle

    @staticmethod
    async def _collect(job: Job, handle: JobHandle, finish: dict[str, Any]) -> dict[str, Any]:
        """Collect into the store, remember for reuse; the task's XComs."""
        from airflow_provider_tutopanda import JOB_XCOM_KEY
        from producers.storage.manifest import JobRecord

        result = await job.collect(handle)
        await job.remember(result)
        await job.keep(None)
        record = JobRecord.succeeded(job.request, result, **dict(finish.get("where") or {}))
        return {
            "return_value": [a.record() for a in result.artefacts],
            JOB_XCOM_KEY: record.model_dump(mode="json"),
        }

    async def on_kill(self) -> None:
        """The task was killed while deferred: cancel the job at the provider."""
        from airflow_provider_tutopanda.triggers.jobs import close_handler

        job, handle = await self._job()
        try:
            handle = handle or await job.kept()
            if handle is not None:
                await job.cancel(handle)
        finally:
            await job.aclose()
            await close_handler(job.handler)
