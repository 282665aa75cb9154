"""The trigger that waits for a submitted producer job in the triggerer, not a worker slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent
from asgiref.sync import sync_to_async

from producers.sdk.errors import ProviderError
from producers.sdk.handler import ProducerHandler
from producers.sdk.jobs import JobHandle, JobRequest


class ProducerTrigger(BaseTrigger):
    """Polls a submitted job until it ends; yields one event.

    The event is ``{"status": "done", "handle": ...}`` or ``{"status": "error", "error":
    ProviderError.to_dict(), "handle": ...}``. A ``rate_limited`` poll waits inside the
    trigger and polls again.

    With ``finish`` (the job's fingerprint and where it sits in a pipeline), the trigger also
    collects the artefacts into the store and ends the task itself (``TaskSuccessEvent`` with
    the return value and the ``tutopanda_job`` record): the task never comes back to a worker
    slot. A failure still goes back to the task (its retry policy decides).

    Args:
        request: The job request as a JSON dict (``JobRequest.model_dump(mode="json")``).
        handle: The submitted job as a JSON dict (``JobHandle.model_dump(mode="json")``).
        store: The artefact store URI or path.
        conn_id: The provider connection (live mode); None for the provider's default.
        poll_interval: Fixed seconds between polls; None lets the producer decide.
        finish: ``{"fingerprint", "where": {key, role, segment}}`` to collect and end the
            task here; None to hand the task back to a worker to collect.
    """

    def __init__(
        self,
        request: dict[str, Any],
        handle: dict[str, Any],
        store: str,
        conn_id: str | None = None,
        poll_interval: float | None = None,
        finish: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.request = request
        self.handle = handle
        self.store = store
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.finish = finish

    @property
    def mode(self) -> str:
        """The job's mode (``mock`` or ``live``)."""
        return str(self.request.get("mode", "mock"))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The import path and plain kwargs the triggerer rebuilds this trigger from."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "request": self.request,
                "handle": self.handle,
                "store": self.store,
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "finish": self.finish,
            },
        )

    async def _handler(self) -> tuple[ProducerHandler, JobRequest, JobHandle]:
        from airflow_provider_tutopanda.triggers.jobs import build_handler

        request = JobRequest.model_validate(self.request)
        handle = JobHandle.model_validate(self.handle)
        # the hook reads its connection through a sync API: keep it off the event loop
        handler = await sync_to_async(build_handler)(
            request, self.store, self.conn_id, self.poll_interval
        )
        return handler, request, handle

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job ends, then yield one event."""
        from airflow_provider_tutopanda.triggers.jobs import wait_until_done

        try:
            handler, request, handle = await self._handler()
            await wait_until_done(handler, request, handle, self.poll_interval)
            if self.finish is not None:
                xcoms = await self._collect(handler, request, handle, self.finish)
        except ProviderError as error:
            yield TriggerEvent({"status": "error", "error": error.to_dict(), "handle": self.handle})
            return
        if self.finish is not None:
            yield TaskSuccessEvent(xcoms=xcoms)
            return
        yield TriggerEvent({"status": "done", "handle": self.handle})

    @staticmethod
    async def _collect(
        handler: ProducerHandler, request: JobRequest, handle: JobHandle, finish: dict[str, Any]
    ) -> dict[str, Any]:
        """Collect into the store, remember for reuse; the task's XComs."""
        from airflow_provider_tutopanda import JOB_XCOM_KEY
        from airflow_provider_tutopanda.triggers.jobs import collect_and_remember
        from producers.storage.manifest import JobRecord

        result = await collect_and_remember(handler, request, handle, finish["fingerprint"])
        record = JobRecord.succeeded(request, result, **dict(finish.get("where") or {}))
        return {
            "return_value": [a.record() for a in result.artefacts],
            JOB_XCOM_KEY: record.model_dump(mode="json"),
        }

    async def on_kill(self) -> None:
        """The task was killed while deferred: cancel the job at the provider."""
        handler, request, handle = await self._handler()
        await handler.cancel(request, handle)
