"""The operator that runs one tutopanda producer job (a thin client of ``producers``).

Parsing a DAG file imports nothing from ``producers`` (it is heavy); the SDK is imported
when a task runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_tutopanda import JOB_XCOM_KEY
from airflow_provider_tutopanda.links.artefact import ArtefactLink, ArtefactsLink
from airflow_provider_tutopanda.retry import retry_policy_for
from airflow_provider_tutopanda.store import default_store

if TYPE_CHECKING:
    from airflow.sdk import Context

    from producers.sdk.errors import ProviderError
    from producers.sdk.handler import ProducerHandler
    from producers.sdk.jobs import JobHandle, JobRequest

T = TypeVar("T")
log = logging.getLogger(__name__)

#: The key under which a submitted job's handle is kept in the task state store (AIP-103).
STATE_KEY = "tutopanda_job"
MODES = ("mock", "live")
#: The environment Airflow jobs ask for: a producer declared for it beats one declared for "*".
ENVIRONMENT = "airflow"
#: How long a kept handle may outlive its task (a provider job does not run for days).
STATE_RETENTION = timedelta(days=2)


class ProducerFailed(AirflowException):
    """A producer job failed; the message is ``str(ProviderError)`` and ``error`` is it."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error


def parse_model_id(model: str) -> tuple[str, str]:
    """Split ``provider:model`` without importing the SDK (DAG files must parse fast)."""
    if not isinstance(model, str):
        raise TypeError(f"model must be a string 'provider:model', not {type(model).__name__}")
    provider, sep, name = model.partition(":")
    if not sep or not provider.strip() or not name.strip():
        raise ValueError(
            f"model id {model!r} is not of the form provider:model "
            "(e.g. replicate:bytedance/seedream-4 or openai:gpt-5-mini)"
        )
    return provider.strip().lower(), name.strip()


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from sync code, even when a loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


class ProducerOperator(BaseOperator):
    """Run one producer job (``provider:model``) and return its artefact records.

    The job is reused if an identical one (same fingerprint, same mode) was made before,
    unless ``refresh``. A retry resumes the job an earlier try submitted (kept in the task
    state store) instead of paying for a second one. Provider errors go through the
    provider's retry policy: rate limits wait ``retry_after``, other retryable errors use
    the task's retries, the rest fail at once.

    Args:
        model: ``provider:model``, e.g. ``replicate:bytedance/seedream-4``.
        inputs: General inputs (``prompt``, ``aspect_ratio``...); templated.
        custom: Model-specific inputs; templated.
        config: Producer config.
        attachments: Paths of JSON, TOML or text files handed to the producer.
        produces: Artefact ids the job should produce.
        mode: ``mock`` (no provider call, no secret) or ``live``; templated.
        store: The artefact store URI or path; default ``$TUTOPANDA_STORE``, else
            ``$AIRFLOW_HOME/tutopanda-store``.
        conn_id: The provider connection; default the provider's default connection.
        refresh: Make the artefacts again even if an identical job made them before.
        deferrable: Wait for the job in the triggerer instead of a worker slot.
        collect_in_trigger: When deferred, collect the artefacts in the triggerer and end the
            task there (it never comes back to a worker); False: back to a worker to collect.
        poll_interval: Fixed seconds between polls; None lets the producer decide.
        role: The job's role in a pipeline (``image``), for its record; optional.
        segment: The job's segment in a pipeline, for its record; optional.
        job_key: The job's key in a pipeline (``image[2]``), for its record; optional.

    Besides its return value (the artefact records), each try pushes the XCom
    ``tutopanda_job``: the job's record (inputs with secrets masked, artefacts, ``reused``,
    or the error with producer, model, code, message and prompt when it failed).
    """

    template_fields: Sequence[str] = ("inputs", "custom", "mode")
    template_fields_renderers: ClassVar[dict[str, str]] = {"inputs": "json", "custom": "json"}
    operator_extra_links = (ArtefactLink(), ArtefactsLink())
    ui_color = "#f6d7a7"

    def __init__(
        self,
        *,
        model: str,
        inputs: Mapping[str, Any] | None = None,
        custom: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        attachments: Sequence[str | os.PathLike[str]] = (),
        produces: Sequence[str] = (),
        mode: str = "mock",
        store: str | None = None,
        conn_id: str | None = None,
        refresh: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | None = None,
        collect_in_trigger: bool = True,
        role: str | None = None,
        segment: int | None = None,
        job_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        provider, _ = parse_model_id(model)
        if "pool" not in kwargs:
            from airflow_provider_tutopanda.pools import pool_for

            kwargs["pool"] = pool_for(provider)
        kwargs.setdefault("retry_policy", retry_policy_for(provider))
        super().__init__(**kwargs)
        if isinstance(mode, str) and "{{" not in mode and mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if poll_interval is not None and poll_interval < 0:
            raise ValueError(f"poll_interval must not be negative, not {poll_interval}")
        if isinstance(attachments, (str, os.PathLike)):
            raise TypeError("attachments is a list of paths, not one path")
        self.model = model
        self.provider = provider
        self.inputs = dict(inputs or {})
        self.custom = dict(custom or {})
        self.config = dict(config or {})
        self.attachments = [os.fspath(p) for p in attachments]
        self.produces = list(produces)
        self.mode = mode
        self.store = store
        self.conn_id = conn_id
        self.refresh = refresh
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.collect_in_trigger = collect_in_trigger
        self.role = role
        self.segment = segment
        self.job_key = job_key
        self._request: JobRequest | None = None
        self._job: tuple[ProducerHandler, JobRequest, JobHandle] | None = None

    # -- building -----------------------------------------------------------------------------

    @property
    def store_uri(self) -> str:
        """The artefact store this task writes to."""
        return self.store or default_store()

    def build_request(self, context: Context, job_id: str | None = None) -> JobRequest:
        """The SDK request of this task instance (rendered fields, attachments read)."""
        from producers.sdk.attachments import attachment_from_path
        from producers.sdk.jobs import Descriptor, JobRequest

        if self.mode not in MODES:
            raise AirflowFailException(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        ti = context.get("ti")
        fields: dict[str, Any] = {
            "descriptor": Descriptor.parse(self.model, environment=ENVIRONMENT),
            "mode": self.mode,
            "attempt": getattr(ti, "try_number", None) or 1,
            "run_id": context.get("run_id"),
            "inputs": self.inputs,
            "custom": self.custom,
            "config": self.config,
            "attachments": tuple(
                attachment_from_path(p, owner=self.model) for p in self.attachments
            ),
            "produces": tuple(self.produces),
        }
        if job_id is not None:
            fields["job_id"] = job_id
        elif self.job_key and context.get("run_id"):
            fields["job_id"] = f"{context['run_id']}.{self.job_key}"
        request = JobRequest(**fields)
        self._request = request
        return request

    def _handler(self, request: JobRequest) -> ProducerHandler:
        from airflow_provider_tutopanda.triggers.jobs import build_handler
        from producers.sdk.errors import ConfigurationError, UnknownModelError

        try:
            return build_handler(request, self.store_uri, self.conn_id, self.poll_interval)
        except (UnknownModelError, ConfigurationError) as error:
            raise AirflowFailException(str(error)) from error

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run an SDK call; a ProviderError leaves as :class:`ProducerFailed`."""
        from producers.sdk.errors import ProviderError

        try:
            return _run(work)
        except ProviderError as error:
            raise ProducerFailed(error) from error

    def _fingerprint(self, handler: ProducerHandler, request: JobRequest) -> str:
        return handler.fingerprint(self._call(handler.prepare(request)))

    # -- running ------------------------------------------------------------------------------

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Reuse, resume or submit the job; wait inline or defer; return artefact records."""
        with self._recording_failure(context):
            return self._execute(context)

    def _execute(self, context: Context) -> list[dict[str, Any]]:
        from producers.pipeline import reuse

        request = self.build_request(context)
        handler = self._handler(request)
        fingerprint = self._fingerprint(handler, request)
        if not self.refresh:
            cached = _run(reuse.lookup(handler.deps.store, fingerprint, request.mode))
            if cached is not None:
                self.log.info(
                    "tutopanda: reusing %d artefact(s) of an identical job", len(cached.artefacts)
                )
                self._push_record(context, request, cached, reused=True)
                return [a.record() for a in cached.artefacts]
        handle = self._resumable(context, handler, request, fingerprint)
        if handle is None:
            handle = self._call(handler.submit(request))
            self.log.info("tutopanda: submitted job %s (%s)", handle.job_id, handle.provider_job_id)
            if "_result" not in handle.state:
                self._keep(context, fingerprint, handle)
        else:
            request = request.model_copy(update={"job_id": handle.job_id})
        self._job = (handler, request, handle)
        if "_result" not in handle.state:
            if self.deferrable:
                from airflow_provider_tutopanda.triggers.producer import ProducerTrigger

                self.defer(
                    trigger=ProducerTrigger(
                        request=request.model_dump(mode="json"),
                        handle=handle.model_dump(mode="json"),
                        store=self.store_uri,
                        conn_id=self.conn_id,
                        poll_interval=self.poll_interval,
                        finish=(
                            {"fingerprint": fingerprint, "where": self._where()}
                            if self.collect_in_trigger
                            else None
                        ),
                    ),
                    method_name="execute_complete",
                )
            from airflow_provider_tutopanda.triggers.jobs import wait_until_done

            self._call(wait_until_done(handler, request, handle, self.poll_interval))
        return self._finish(context, handler, request, handle, fingerprint)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Resume after the trigger: collect the job's artefacts or raise its error."""
        from producers.sdk.jobs import JobHandle

        if not isinstance(event, dict):
            # The trigger collected and ended the task (TaskSuccessEvent), but this runner
            # (``dag.test()``) hands the event back instead: take what the trigger stored.
            return self._collected_by_trigger(context)
        with self._recording_failure(context):
            handle = JobHandle.model_validate(event["handle"])
            request = self.build_request(context, job_id=handle.job_id)
            if event.get("status") != "done":
                raise ProducerFailed(provider_error_from(event.get("error") or {}, handle))
            handler = self._handler(request)
            self._job = (handler, request, handle)
            fingerprint = self._fingerprint(handler, request)
            return self._finish(context, handler, request, handle, fingerprint)

    def _collected_by_trigger(self, context: Context) -> list[dict[str, Any]]:
        from producers.pipeline import reuse

        request = self.build_request(context)
        handler = self._handler(request)
        fingerprint = self._fingerprint(handler, request)
        result = _run(reuse.lookup(handler.deps.store, fingerprint, request.mode))
        if result is None:
            raise AirflowException("the trigger reported the job done but stored no result")
        self._push_record(context, request, result)
        return [a.record() for a in result.artefacts]

    def _finish(
        self,
        context: Context,
        handler: ProducerHandler,
        request: JobRequest,
        handle: JobHandle,
        fingerprint: str,
    ) -> list[dict[str, Any]]:
        from airflow_provider_tutopanda.triggers.jobs import collect_and_remember

        result = self._call(collect_and_remember(handler, request, handle, fingerprint))
        state = context.get("task_state_store")
        if state is not None:
            state.delete(STATE_KEY)
        self._job = None
        self._push_record(context, request, result)
        return [a.record() for a in result.artefacts]

    # -- the job record (XCom ``tutopanda_job``) ----------------------------------------------

    def _where(self) -> dict[str, Any]:
        return {"key": self.job_key, "role": self.role, "segment": self.segment}

    def _push_record(
        self, context: Context, request: JobRequest, result: Any, *, reused: bool = False
    ) -> None:
        from producers.storage.manifest import JobRecord

        record = JobRecord.succeeded(request, result, reused=reused, **self._where())
        context["ti"].xcom_push(key=JOB_XCOM_KEY, value=record.model_dump(mode="json"))

    @contextlib.contextmanager
    def _recording_failure(self, context: Context) -> Iterator[None]:
        """Push the failed job's record (with its error) before the failure leaves."""
        try:
            yield
        except ProducerFailed as failed:
            if self._request is not None:
                from producers.storage.manifest import JobRecord

                request = self._request
                prompt = request.inputs.get("prompt")
                error = failed.error.with_context(
                    provider=request.descriptor.provider,
                    model=request.descriptor.model,
                    prompt=prompt if isinstance(prompt, str) else None,
                )
                record = JobRecord.failed(request, error, **self._where())
                try:
                    context["ti"].xcom_push(key=JOB_XCOM_KEY, value=record.model_dump(mode="json"))
                except Exception:  # the failure itself must leave, whatever the XCom did
                    self.log.exception("tutopanda: could not record the failure")
            raise

    # -- the task state store: one paid job per task, whatever the retries -------------------

    def _keep(self, context: Context, fingerprint: str, handle: JobHandle) -> None:
        state = context.get("task_state_store")
        if state is None:
            self.log.warning("tutopanda: no task state store; a retry may submit the job again")
            return
        state.set(
            STATE_KEY,
            {"fingerprint": fingerprint, "handle": handle.model_dump(mode="json")},
            retention=STATE_RETENTION,
        )

    def _resumable(
        self, context: Context, handler: ProducerHandler, request: JobRequest, fingerprint: str
    ) -> JobHandle | None:
        """The job an earlier try submitted, if it is the same job and still alive."""
        from producers.sdk.errors import ErrorCode, ProviderError
        from producers.sdk.jobs import JobHandle

        state = context.get("task_state_store")
        kept = state.get(STATE_KEY) if state is not None else None
        if not isinstance(kept, dict) or kept.get("fingerprint") != fingerprint:
            return None
        handle = JobHandle.model_validate(kept["handle"])
        try:
            status = _run(
                handler.poll(request.model_copy(update={"job_id": handle.job_id}), handle)
            )
        except ProviderError as error:
            if error.code in (ErrorCode.MODEL_FAILED, ErrorCode.CANCELED, ErrorCode.NOT_FOUND):
                self.log.info(
                    "tutopanda: earlier job %s is over (%s); submitting anew",
                    handle.provider_job_id,
                    error.code.value,
                )
                return None
            raise ProducerFailed(error.with_context()) from error
        self.log.info("tutopanda: resuming job %s (%s)", handle.provider_job_id, status.state.value)
        return handle

    def on_kill(self) -> None:
        """The task is being killed: cancel the job at the provider (best effort)."""
        if self._job is None:
            return
        handler, request, handle = self._job
        try:
            _run(handler.cancel(request, handle))
        except Exception:  # a kill must not fail on its cleanup
            self.log.exception("tutopanda: could not cancel job %s", handle.provider_job_id)


def provider_error_from(data: Mapping[str, Any], handle: JobHandle | None = None) -> ProviderError:
    """Rebuild a :class:`ProviderError` from its ``to_dict()`` record (a trigger event)."""
    from producers.sdk.errors import ErrorCode, ProviderError

    fields = dict(data)
    code = fields.pop("code", ErrorCode.UNKNOWN.value)
    reason = fields.pop("reason", "the trigger reported an error")
    known = {
        "retryable", "caused_by_user", "status_code", "retry_after", "provider", "model",
        "producer", "attempt", "prompt", "payload", "hint", "provider_job_id",
    }  # fmt: skip
    return ProviderError(
        code, reason, handle=handle, **{k: v for k, v in fields.items() if k in known}
    )


class PromptProducerOperator(ProducerOperator):
    """A :class:`ProducerOperator` for prompt (LLM) producers, e.g. ``openai:gpt-5-mini``."""

    ui_color = "#d7e8f6"


class MediaProducerOperator(ProducerOperator):
    """A :class:`ProducerOperator` for media producers, e.g. ``replicate:bytedance/seedream-4``."""

    ui_color = "#e3d7f6"
