"""The operator that runs one tutopanda producer job (a thin client of ``producers``).

Parsing a DAG file imports nothing from ``producers`` (it is heavy); the SDK is imported
when a task runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import logging
import os
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
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

    from producers.sdk.artefacts import ProducerResult
    from producers.sdk.errors import ProviderError
    from producers.sdk.jobs import Descriptor, JobHandle, JobRequest, Mode
    from producers.sdk.lifecycle import Job, WaitPolicy

T = TypeVar("T")
log = logging.getLogger(__name__)

#: The key under which a submitted job's handle is kept in the task state store (AIP-103).
STATE_KEY = "tutopanda_job"
#: The task state store key of the models a task passed over (its fallbacks' progress).
FALLBACK_STATE_KEY = "tutopanda_fallback"
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
    """Run a coroutine to the end from sync code, even when a loop already runs here (in
    a thread then, with this context: the task's trace span stays the current one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    here = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(here.run, asyncio.run, work).result()


@dataclass(frozen=True)
class TaskJob:
    """The job a task instance runs: its request, and what its record says of it.

    Attributes:
        request: The SDK request.
        refresh: Make the artefacts again even if an identical job made them before.
        key: The job's key in a pipeline (``image[2]``), for its record.
        role: The job's role in a pipeline (``image``), for its record.
        segment: The job's segment in a pipeline, for its record.
    """

    request: JobRequest
    refresh: bool = False
    key: str | None = None
    role: str | None = None
    segment: int | None = None
    #: The same job on the next fallback model after a final error, or None (no fallback
    #: left, or the error is not one that falls back).
    fallback: Callable[[ProviderError], TaskJob | None] | None = None
    #: Why the models tried before this one did not make the artefact.
    passed_over: tuple[dict[str, Any], ...] = ()

    @property
    def where(self) -> dict[str, Any]:
        """Where the job sits in a pipeline (its record's ``key``, ``role``, ``segment``) and
        the models passed over before its own."""
        return {
            "key": self.key,
            "role": self.role,
            "segment": self.segment,
            "passed_over": list(self.passed_over),
        }


class ProducerOperator(BaseOperator):
    """Run one producer job (``provider:model``) and return its artefact records.

    The job's life is the SDK's (:class:`producers.sdk.lifecycle.Job`): reused if an identical
    job (same fingerprint, same mode) was made before, unless ``refresh``; a retry resumes the
    job an earlier try submitted (kept in the task state store) instead of paying for a second
    one; the wait polls with growing delays, waits out rate limits, tolerates a few failed
    polls, and cancels a job past its deadline. Provider errors go through the provider's
    retry policy: rate limits wait ``retry_after``, other retryable errors use the task's
    retries, the rest fail at once.

    A subclass that runs another job (a pipeline's) overrides :meth:`task_job` (which job)
    and :meth:`task_result` (what the task returns); nothing else.

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
        job_deadline: Seconds a submitted job may take before it is cancelled at the
            provider and fails with ``timeout``; None: 10x its model's usual latency, at
            least 15 minutes (1 hour when unknown).
        fallbacks: Models (``provider:model``) to try, in order, when ``model`` fails with a
            provider-side error that the task's retries did not cure (provider unavailable,
            rate limited, model failed, timeout, quota exceeded; never a refused input or a
            safety block): each gets the same inputs (not ``custom``: it belongs to
            ``model``), mapped and validated afresh. The switch happens on the task's last
            try, or at once for an error that is not retryable; later tries go on with the
            fallback. The job's record lists the models passed over and why.
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
        job_deadline: float | None = None,
        collect_in_trigger: bool = True,
        fallbacks: Sequence[str] = (),
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
        if job_deadline is not None and job_deadline <= 0:
            raise ValueError(f"job_deadline must be positive, not {job_deadline}")
        if isinstance(attachments, (str, os.PathLike)):
            raise TypeError("attachments is a list of paths, not one path")
        if isinstance(fallbacks, str):
            raise TypeError("fallbacks is a list of model ids, not one model id")
        for fallback in fallbacks:
            parse_model_id(fallback)
        self.model = model
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
        self.job_deadline = job_deadline
        self.collect_in_trigger = collect_in_trigger
        self.fallbacks = list(fallbacks)
        self.role = role
        self.segment = segment
        self.job_key = job_key
        #: The job of the running try and its submitted handle (``on_kill`` cancels it).
        self._running: tuple[TaskJob, JobHandle] | None = None

    # -- which job, what result: what a subclass overrides -------------------------------------

    def task_job(self, context: Context) -> TaskJob | None:
        """The job this task instance runs (None: nothing to run; see :meth:`task_result`):
        on ``model``, or on the fallback after the models an earlier try passed over."""
        passed_over = self.passed_over(context)
        if len(passed_over) > len(self.fallbacks):
            self.log.warning("tutopanda: the kept fallback record does not fit; starting again")
            passed_over = []
        return self._task_job_on(context, passed_over)

    def _task_job_on(self, context: Context, passed_over: list[dict[str, Any]]) -> TaskJob:
        from producers.pipeline.steps import passed_over_record

        position = len(passed_over)
        request = self.build_request(context)
        if position:
            request = request.model_copy(
                update={"descriptor": descriptor_of(self.fallbacks[position - 1]), "custom": {}}
            )

        def fallback(error: ProviderError) -> TaskJob | None:
            from producers.pipeline.steps import falls_back

            if position >= len(self.fallbacks) or not falls_back(error):
                return None
            record = passed_over_record(request.descriptor.model_id, error)
            return self._task_job_on(context, [*passed_over, record])

        return TaskJob(
            request=request,
            refresh=self.refresh,
            key=self.job_key,
            role=self.role,
            segment=self.segment,
            fallback=fallback if self.fallbacks else None,
            passed_over=tuple(passed_over),
        )

    def task_result(
        self, context: Context, job: TaskJob | None, records: list[dict[str, Any]]
    ) -> Any:
        """What the task returns (XCom ``return_value``): the artefact records."""
        return records

    # -- building -----------------------------------------------------------------------------

    @property
    def store_uri(self) -> str:
        """The artefact store this task writes to."""
        return self.store or default_store()

    def build_request(self, context: Context) -> JobRequest:
        """The SDK request of this task instance (rendered fields, attachments read)."""
        from producers.sdk.attachments import attachment_from_path
        from producers.sdk.jobs import JobRequest

        return JobRequest(
            job_id=job_id_of(context, self.job_key),
            descriptor=descriptor_of(self.model),
            mode=mode_of(self.mode),
            attempt=int(getattr(context.get("ti"), "try_number", None) or 1),
            run_id=context.get("run_id"),
            inputs=self.inputs,
            custom=self.custom,
            config=self.config,
            attachments=tuple(attachment_from_path(p, owner=self.model) for p in self.attachments),
            produces=tuple(self.produces),
        )

    def _policy(self) -> WaitPolicy:
        from airflow_provider_tutopanda.triggers.jobs import wait_policy

        return wait_policy(self.poll_interval, self.job_deadline)

    def _job(self, job: TaskJob) -> Job:
        """The SDK's job, its provider client built once by the hook (live mode)."""
        from airflow_provider_tutopanda.triggers.jobs import job_handler
        from producers.sdk.errors import ConfigurationError, UnknownModelError
        from producers.sdk.lifecycle import Job

        try:
            handler = job_handler(job.request, self.store_uri, self.conn_id)
        except (UnknownModelError, ConfigurationError) as error:
            raise AirflowFailException(str(error)) from error
        return Job(handler, job.request, policy=self._policy())

    # -- running ------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Reuse, resume or submit the job; wait inline or defer; return :meth:`task_result`."""
        job = self.task_job(context)
        if job is None:
            return self.task_result(context, None, [])
        return self._go(context, job)

    def _go(self, context: Context, job: TaskJob) -> Any:
        """Run ``job`` on a worker, moving to its fallback models while its model fails for
        good with a provider-side error; the records, or a deferral."""
        while True:
            try:
                step = self._call(self._start(context, job))
                break
            except ProducerFailed as failed:
                job = self._fall_back(context, job, failed)
        if isinstance(step, list):
            return self.task_result(context, job, step)
        from airflow_provider_tutopanda.triggers.producer import ProducerTrigger
        from producers.sdk.tracing import traceparent

        self._running = None
        self.defer(
            trigger=ProducerTrigger(
                job=job.request.for_waiting().model_dump(mode="json"),
                handle=None if step is None else step.model_dump(mode="json"),
                store=self.store_uri,
                conn_id=self.conn_id,
                policy=dataclasses.asdict(self._policy()),
                finish={"where": job.where} if self.collect_in_trigger else None,
                # the task's span, parent of the job's span in the triggerer too
                traceparent=traceparent(),
            ),
            method_name="execute_complete",
        )

    @staticmethod
    def _trigger_submits(job: TaskJob, sdk_job: Job) -> bool:
        """Whether a deferring task leaves the submission to its trigger: for a job that is
        submitted and waited for, with no attachment (the trigger prepares it again from
        the request, which carries no attachment contents)."""
        return sdk_job.submits and not job.request.attachments

    async def _start(
        self, context: Context, job: TaskJob
    ) -> list[dict[str, Any]] | JobHandle | None:
        """One pass on a worker, in the job's span: the records of a finished job, the handle
        to defer with, or None to defer a job the trigger submits."""
        from airflow_provider_tutopanda.triggers.jobs import close_handler

        sdk_job = self._job(job)
        try:
            with sdk_job.trace.span(where="worker") as span:
                step = await self._steps(context, job, sdk_job)
                if not isinstance(step, list) and span.is_recording():
                    span.set_attribute("tutopanda.deferred", True)
                return step
        finally:
            await sdk_job.aclose()
            await close_handler(sdk_job.handler)

    async def _steps(
        self, context: Context, job: TaskJob, sdk_job: Job
    ) -> list[dict[str, Any]] | JobHandle | None:
        """The steps of one pass (:meth:`_start`): reuse, resume or submit, wait or defer."""
        from producers.sdk.artefacts import ProducerResult

        await sdk_job.prepare()
        if not job.refresh:
            cached = await sdk_job.reused()
            if cached is not None:
                self.log.info(
                    "tutopanda: reusing %d artefact(s) of an identical job",
                    len(cached.artefacts),
                )
                return self._push_record(context, job, cached, reused=True)
        handle = await sdk_job.resumable(self._kept(context) or await sdk_job.kept())
        if handle is None and self.deferrable and self._trigger_submits(job, sdk_job):
            return None  # the trigger submits: this pass needs no provider client
        if handle is None:
            started = await sdk_job.start()
            if isinstance(started, ProducerResult):
                await sdk_job.remember(started)
                return self._push_record(context, job, started)
            handle = started
            self.log.info("tutopanda: submitted job %s (%s)", handle.job_id, handle.provider_job_id)
            self._keep(context, handle)
        else:
            self.log.info("tutopanda: resuming job %s", handle.provider_job_id)
        self._running = (job, handle)
        if self.deferrable:
            return handle
        await sdk_job.wait(handle)
        return await self._collected(context, job, sdk_job, handle)

    async def _collected(
        self, context: Context, job: TaskJob, sdk_job: Job, handle: JobHandle
    ) -> list[dict[str, Any]]:
        result = await sdk_job.collect(handle)
        await sdk_job.remember(result)
        await sdk_job.keep(None)
        state = context.get("task_state_store")
        if state is not None:
            state.delete(STATE_KEY)
            state.delete(FALLBACK_STATE_KEY)
        self._running = None
        return self._push_record(context, job, result)

    def execute_complete(self, context: Context, event: Any) -> Any:
        """Back from the trigger: collect the job's artefacts, or raise its error."""
        from airflow_provider_tutopanda.triggers.jobs import JobEvent

        job = self.task_job(context)
        if job is None:
            raise AirflowException(f"{self.task_id} resumed from a trigger but has no job")
        if not isinstance(event, dict):
            # The trigger collected and ended the task (TaskSuccessEvent), but this runner
            # (``dag.test()``) hands the event back instead: take what the trigger stored.
            return self.task_result(context, job, self._call(self._stored(context, job)))
        try:
            landed = JobEvent.model_validate(event)
        except ValueError as error:
            raise AirflowException(
                f"the trigger sent an event that is not a job event: {error}"
            ) from None
        try:
            if landed.status == "error" or landed.handle is None:
                raise ProducerFailed(landed.provider_error())
            records = self._call(self._finish(context, job, landed.handle))
        except ProducerFailed as failed:
            return self._go(context, self._fall_back(context, job, failed))
        return self.task_result(context, job, records)

    async def _finish(
        self, context: Context, job: TaskJob, handle: JobHandle
    ) -> list[dict[str, Any]]:
        from airflow_provider_tutopanda.triggers.jobs import close_handler

        sdk_job = self._job(job)
        try:
            with sdk_job.trace.span(where="worker"):
                return await self._collected(context, job, sdk_job, handle)
        finally:
            await sdk_job.aclose()
            await close_handler(sdk_job.handler)

    async def _stored(self, context: Context, job: TaskJob) -> list[dict[str, Any]]:
        from airflow_provider_tutopanda.triggers.jobs import close_handler

        sdk_job = self._job(job)
        sdk_job.trace.muted = True  # reading back what the trigger made: not a job of its own
        try:
            result = await sdk_job.reused()
        finally:
            await sdk_job.aclose()
            await close_handler(sdk_job.handler)
        if result is None:
            raise AirflowException("the trigger reported the job done but stored no result")
        return self._push_record(context, job, result)

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run an SDK coroutine; a ProviderError leaves as :class:`ProducerFailed`."""
        from producers.sdk.errors import ProviderError

        try:
            return _run(work)
        except ProviderError as error:
            raise ProducerFailed(error) from error

    # -- the job record (XCom ``tutopanda_job``) ----------------------------------------------

    def _push_record(
        self, context: Context, job: TaskJob, result: ProducerResult, *, reused: bool = False
    ) -> list[dict[str, Any]]:
        """Push the job's record; returns its artefact records."""
        from producers.storage.manifest import JobRecord

        record = JobRecord.succeeded(job.request, result, reused=reused, **job.where)
        context["ti"].xcom_push(key=JOB_XCOM_KEY, value=record.model_dump(mode="json"))
        return [a.record() for a in result.artefacts]

    def _fall_back(self, context: Context, job: TaskJob, failed: ProducerFailed) -> TaskJob:
        """The job on its next fallback model after ``failed``, when the error is final (not
        retryable, or this is the task's last try) and falls back; else push the failed
        job's record (with its error) and raise ``failed``.

        The models passed over are kept in the task state store, so the task's later tries
        go on with the fallback model instead of starting again from the first.
        """
        request = job.request
        prompt = request.inputs.get("prompt")
        error = failed.error.with_context(
            provider=request.descriptor.provider,
            model=request.descriptor.model,
            prompt=prompt if isinstance(prompt, str) else None,
        )
        ti = context.get("ti")
        last_try = int(getattr(ti, "try_number", None) or 1) > int(self.retries or 0)
        following = (
            job.fallback(error)
            if job.fallback is not None and (last_try or not error.retryable)
            else None
        )
        if following is None:
            from producers.storage.manifest import JobRecord

            record = JobRecord.failed(request, error, **job.where)
            try:
                context["ti"].xcom_push(key=JOB_XCOM_KEY, value=record.model_dump(mode="json"))
            except Exception:  # the failure itself must leave, whatever the XCom did
                self.log.exception("tutopanda: could not record the failure")
            raise failed
        self.log.warning(
            "tutopanda: %s failed (%s: %s); the job moves to its fallback model %s",
            request.descriptor.model_id,
            error.code.value,
            error.reason,
            following.request.descriptor.model_id,
        )
        state = context.get("task_state_store")
        if state is not None:
            state.delete(STATE_KEY)
            state.set(
                FALLBACK_STATE_KEY,
                {"passed_over": list(following.passed_over)},
                retention=STATE_RETENTION,
            )
        self._running = None
        return following

    def passed_over(self, context: Context) -> list[dict[str, Any]]:
        """The models an earlier try of this task passed over (kept in the task state store),
        for :meth:`task_job` to start from the model after them."""
        state = context.get("task_state_store")
        kept = state.get(FALLBACK_STATE_KEY) if state is not None else None
        items = kept.get("passed_over") if isinstance(kept, dict) else None
        if not isinstance(items, list):
            return []
        return [dict(item) for item in items if isinstance(item, dict)]

    # -- the task state store: one paid job per task, whatever the retries -------------------

    def _keep(self, context: Context, handle: JobHandle) -> None:
        state = context.get("task_state_store")
        if state is None:
            self.log.warning("tutopanda: no task state store; a retry may submit the job again")
            return
        state.set(STATE_KEY, {"handle": handle.model_dump(mode="json")}, retention=STATE_RETENTION)

    def _kept(self, context: Context) -> JobHandle | None:
        """The job an earlier try of this task submitted, if any (checked by the SDK)."""
        from producers.sdk.jobs import JobHandle

        state = context.get("task_state_store")
        kept = state.get(STATE_KEY) if state is not None else None
        if not isinstance(kept, dict) or "handle" not in kept:
            return None
        try:
            return JobHandle.model_validate(kept["handle"])
        except ValueError:
            self.log.warning("tutopanda: the kept job is unreadable; submitting anew")
            return None

    def on_kill(self) -> None:
        """The task is being killed: cancel the job at the provider (best effort)."""
        if self._running is None:
            return
        job, handle = self._running

        async def cancel() -> None:
            from airflow_provider_tutopanda.triggers.jobs import close_handler

            sdk_job = self._job(job)
            try:
                await sdk_job.cancel(handle)
            finally:
                await sdk_job.aclose()
                await close_handler(sdk_job.handler)

        try:
            _run(cancel())
        except Exception:  # a kill must not fail on its cleanup
            self.log.exception("tutopanda: could not cancel job %s", handle.provider_job_id)


def job_id_of(context: Context, job_key: str | None) -> str:
    """A task instance's job id, the same on every try: ``<run_id>.<key>``, the key being
    the job's pipeline key, else the task id (and map index)."""
    ti = context.get("ti")
    run_id = context.get("run_id") or "run"
    if job_key:
        return f"{run_id}.{job_key}"
    task_id = getattr(ti, "task_id", None) or "task"
    map_index = getattr(ti, "map_index", -1)
    suffix = f"[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
    return f"{run_id}.{task_id}{suffix}"


def descriptor_of(model: str) -> Descriptor:
    """The descriptor of ``model`` in the Airflow environment; a bad id fails the task."""
    from producers.sdk.errors import UnknownModelError
    from producers.sdk.jobs import Descriptor

    try:
        return Descriptor.parse(model, environment=ENVIRONMENT)
    except UnknownModelError as error:
        raise AirflowFailException(str(error)) from None


def mode_of(mode: str) -> Mode:
    """A rendered ``mode`` field as the SDK's mode; anything else fails the task."""
    if mode not in MODES:
        raise AirflowFailException(f"mode {mode!r} is not one of {', '.join(MODES)}")
    return "live" if mode == "live" else "mock"


class PromptProducerOperator(ProducerOperator):
    """A :class:`ProducerOperator` for prompt (LLM) producers, e.g. ``openai:gpt-5-mini``."""

    ui_color = "#d7e8f6"


class MediaProducerOperator(ProducerOperator):
    """A :class:`ProducerOperator` for media producers, e.g. ``replicate:bytedance/seedream-4``."""

    ui_color = "#e3d7f6"
