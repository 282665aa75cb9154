"""A job's life, written once: prepare, reuse, resume or submit, wait, collect, remember.

Every client runs jobs through :class:`Job`: the CLI (``movie``, ``produce``), the Airflow
operator (on a worker) and its trigger (in the triggerer). Each adds only what is its own
(the CLI: concurrency, retries, progress; Airflow: the task state store, deferral, XCom,
``on_kill``). The one wait loop, :meth:`Job.wait`, owns every decision about a submitted job
(common-ai's rule: "the decision of what to do with each poll result lives here, once"):

- the poll delay: a fixed :attr:`WaitPolicy.poll_interval`, else a short first wait growing
  by half each time up to the producer's own interval (none in mock mode);
- a poll answered ``rate_limited`` waits its ``retry_after`` and polls again;
- up to :attr:`WaitPolicy.max_poll_failures` transient poll failures in a row (a 5xx, a
  timeout, a dropped connection) are tolerated; one more fails the job, with its handle, so
  a retry resumes the same job instead of paying for a second;
- a deadline per job, counted from its submission (so it survives a deferral or a restart):
  :attr:`WaitPolicy.deadline` if given, else :data:`DEADLINE_FACTOR` times the model's
  usual latency (``Prepared.expected_seconds``), at least :data:`MIN_DEADLINE`, or
  :data:`DEFAULT_DEADLINE` when the latency is unknown. On expiry the job is cancelled at
  the provider and fails with ``timeout`` (not retryable: a retry would pay again for a
  job that did not finish);
- a :class:`~producers.sdk.runtime.CancellationSignal` (Ctrl-C in the CLI) cancels the job
  at the provider between polls.

Each job has a trace (:attr:`Job.trace`, :mod:`producers.sdk.tracing`): :meth:`Job.run` runs in
its span, a client that runs the steps itself opens it with ``job.trace.span()``, and the steps
record on it what they learn (cost, reuse, provider job, poll events, usage, error).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from producers.sdk.artefacts import ProducerResult
from producers.sdk.errors import ErrorCode, ProviderError, raw_summary
from producers.sdk.handler import ProducerHandler
from producers.sdk.jobs import JobHandle, JobRequest, Kind, Prepared
from producers.sdk.reuse import keep_submission, kept_submission, lookup, remember
from producers.sdk.runtime import CancellationSignal
from producers.sdk.tracing import JobTrace, now_ns

__all__ = [
    "DEADLINE_FACTOR",
    "DEFAULT_DEADLINE",
    "FIRST_POLL_DELAY",
    "MIN_DEADLINE",
    "Job",
    "JobOutcome",
    "WaitPolicy",
]

#: The first wait between polls of a live job; later waits grow by half each time.
FIRST_POLL_DELAY = 0.25
#: A job may take this many times its model's usual latency before it is given up.
DEADLINE_FACTOR = 10.0
#: The shortest deadline: a cold start of a model on its provider can take minutes.
MIN_DEADLINE = 15 * 60.0
#: The deadline of a job whose model's latency is unknown.
DEFAULT_DEADLINE = 60 * 60.0
#: Codes of a failed poll that say nothing about the job itself: poll again.
_TRANSIENT = frozenset({ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.TIMEOUT})
#: Codes of a kept job that is over: a new try submits anew.
_OVER = frozenset({ErrorCode.MODEL_FAILED, ErrorCode.CANCELED, ErrorCode.NOT_FOUND})

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


def _job_ended(error: ProviderError, handle: JobHandle) -> bool:
    """True if ``error`` is the provider saying ``handle``'s job itself ended and a new job
    may succeed (Replicate's ``aborted``, outputs removed): retryable and naming the job. Such
    a job is not polled again nor resumed: a retry submits anew."""
    return (
        error.retryable
        and error.provider_job_id is not None
        and error.provider_job_id == handle.provider_job_id
    )


def _kind_of(handler: ProducerHandler, request: JobRequest) -> Kind | None:
    """What the job's producer makes, for its trace (None if the producer cannot say)."""
    try:
        return handler.definition.kind_for(request.descriptor.model)
    except Exception:  # a kind function that fails here fails the job later, not its trace
        return None


def _spread(job_id: str, polls: int) -> float:
    """A number in [0, 1) fixed by the job and the poll (no randomness in tests or reruns)."""
    digest = hashlib.blake2b(f"{job_id}:{polls}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32


@dataclass(frozen=True)
class WaitPolicy:
    """How a submitted job is waited for (see the module docstring).

    Attributes:
        poll_interval: Fixed seconds between polls; None: start short, grow to the
            producer's own interval.
        max_poll_failures: Transient poll failures tolerated in a row.
        deadline: Seconds from submission before the job is cancelled and fails with
            ``timeout``; None: from the model's usual latency.
    """

    poll_interval: float | None = None
    max_poll_failures: int = 3
    deadline: float | None = None

    def deadline_for(self, prepared: Prepared | None) -> float:
        """The job's deadline in seconds from its submission."""
        if self.deadline is not None:
            return self.deadline
        expected = prepared.expected_seconds if prepared is not None else None
        if not expected:
            return DEFAULT_DEADLINE
        return max(MIN_DEADLINE, DEADLINE_FACTOR * expected)


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: its result, whether it was reused, and the provider job if any."""

    result: ProducerResult
    reused: bool = False
    handle: JobHandle | None = None


class Job:
    """One job of one request, from preparation to its stored result.

    Build it once per job and use it for every step; its provider adapters are built once
    (or taken from ``HandlerDeps.shared_clients``) and closed by :meth:`aclose` (or
    ``async with``). Steps that a client runs elsewhere (an Airflow trigger waits for what a
    worker submitted) take the :class:`JobHandle`; build that side's ``Job`` from
    ``request.for_waiting()``: the handle holds the prepared job.

    Args:
        handler: The producer's handler (its deps carry the store and the adapters).
        request: The job.
        policy: How to wait (poll delay, failures tolerated, deadline).
        cancel: A signal a client sets to stop the job (cancelled at the provider).
        prepared: The job as prepared before (skips preparing again).
        sleep: How to wait (tests pass a fake).
        clock: Wall-clock seconds (tests pass a fake).
    """

    def __init__(
        self,
        handler: ProducerHandler,
        request: JobRequest,
        *,
        policy: WaitPolicy | None = None,
        cancel: CancellationSignal | None = None,
        prepared: Prepared | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
    ) -> None:
        self.handler = handler
        self.request = request
        self.policy = policy or WaitPolicy()
        self.rt = handler.runtime(request, cancel)
        self._sleep = sleep
        self._clock = clock
        #: The job's OpenTelemetry span and what the steps record on it.
        self.trace = JobTrace(
            request,
            kind=_kind_of(handler, request),
            producer=handler.definition.name,
        )
        if prepared is not None:
            handler.adopt(self.rt, prepared)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the adapters this job built (shared ones stay open)."""
        await self.rt.clients.aclose()

    # -- before any request ------------------------------------------------------------

    async def prepare(self) -> Prepared:
        """Map and validate the job (no request), once; :attr:`fingerprint` then holds."""
        if self.rt.prepared is None:
            await self.handler.prepare_job(self.rt)
        assert self.rt.prepared is not None
        self.trace.prepared(self.rt.prepared)
        return self.rt.prepared

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the prepared job (same fingerprint, same artefacts)."""
        if self.rt.prepared is None:
            raise RuntimeError("the job is not prepared yet")
        return self.handler.fingerprint(self.rt.prepared)

    async def reused(self) -> ProducerResult | None:
        """The stored result of an identical job made before, if all its blobs are there."""
        await self.prepare()
        started = now_ns()
        found = await lookup(self.handler.deps.store, self.fingerprint, self.request.mode)
        self.trace.reuse_looked_up(found is not None, started=started)
        return found

    async def remember(self, result: ProducerResult) -> None:
        """Record ``result`` for reuse under this job's fingerprint."""
        await self.prepare()
        await remember(self.handler.deps.store, self.fingerprint, self.request.mode, result)

    async def kept(self) -> JobHandle | None:
        """The handle :meth:`keep` recorded for this job in the store (submitted by another
        process, e.g. an Airflow trigger), if any."""
        await self.prepare()
        store = self.handler.deps.store
        return await kept_submission(
            store, self.request.job_id, self.fingerprint, self.request.mode
        )

    async def keep(self, handle: JobHandle | None) -> None:
        """Record this job's submission in the store, for whoever takes the job over (None:
        forget it, the job is done)."""
        await self.prepare()
        store = self.handler.deps.store
        await keep_submission(
            store, self.request.job_id, self.fingerprint, self.request.mode, handle
        )

    @property
    def submits(self) -> bool:
        """True if the job is submitted and waited for (not answered in one call)."""
        return self.handler.definition.invoke is None

    # -- the provider job --------------------------------------------------------------

    async def resumable(self, kept: JobHandle | None) -> JobHandle | None:
        """``kept`` (an earlier try's job) if it is this job and not over; None to submit anew.

        A poll that fails otherwise (a 5xx, a 429, a bad key) raises: the job may still be
        alive, and submitting again could pay twice.
        """
        if kept is None or kept.descriptor != self.request.descriptor:
            return None
        prepared = await self.prepare()
        if kept.prepared is not None and self.handler.fingerprint(kept.prepared) != (
            self.handler.fingerprint(prepared)
        ):
            return None
        try:
            await self.handler.poll_job(self.rt, kept)
        except ProviderError as error:
            if error.code in _OVER or _job_ended(error, kept):
                self.handler.logger.event(
                    "invoke.resume_over", provider_job_id=kept.provider_job_id, code=error.code
                )
                return None
            raise
        self.trace.submitted(kept, resumed=True)
        return kept

    async def start(self) -> JobHandle | ProducerResult:
        """Submit the job (a handle), or run it to the end for producers that answer in one
        call (their result)."""
        await self.prepare()
        started = await self.handler.start_job(self.rt)
        if isinstance(started, JobHandle):  # its deadline counts on this job's clock
            started = started.model_copy(update={"submitted_at": self._clock()})
            self.trace.submitted(started)
        else:
            self.trace.collected(started)
        return started

    async def wait(self, handle: JobHandle) -> None:
        """Wait until ``handle``'s job succeeded: the one wait loop (module docstring)."""
        prepared = self._adopt(handle)
        deadline = self.policy.deadline_for(prepared)
        submitted = handle.submitted_at or self._clock()
        polls = failures = 0
        while True:
            if self._clock() - submitted > deadline:
                await self.cancel(handle)
                raise self._expired(handle, deadline)
            try:
                status = await self.handler.poll_job(self.rt, handle)
            except ProviderError as error:
                delay = self._after_failed_poll(error, handle, polls, failures)
                self.trace.poll_failed(error, delay)
                if error.code is not ErrorCode.RATE_LIMITED:
                    failures += 1
            else:
                self.trace.polled(status)
                if status.state.terminal:
                    return
                failures = 0
                delay = status.poll_after if status.poll_after is not None else self._delay(polls)
            polls += 1
            await self._pause(handle, delay)

    async def collect(self, handle: JobHandle) -> ProducerResult:
        """Collect a finished job's artefacts into the store."""
        self._adopt(handle)
        result = await self.handler.collect_job(self.rt, handle)
        self.trace.collected(result)
        return result

    async def cancel(self, handle: JobHandle) -> None:
        """Cancel the job at the provider (best effort: never raises for it)."""
        self._adopt(handle)
        await self.handler.cancel_job(self.rt, handle)

    # -- all of it ---------------------------------------------------------------------

    async def run(
        self,
        *,
        reuse: bool = True,
        remember: bool = True,
        kept: JobHandle | None = None,
        on_submitted: Callable[[JobHandle], Awaitable[None] | None] | None = None,
        cancel_on_interrupt: bool = True,
    ) -> JobOutcome:
        """Prepare; reuse an identical job's result (``reuse``); resume ``kept`` or submit
        (``on_submitted`` hears of a new handle at once); wait; collect; remember the result
        for reuse (``remember``).

        ``cancel_on_interrupt``: if the caller is cancelled (``asyncio.CancelledError``)
        while the job runs, cancel it at the provider; a client that hands the job to
        another process (an Airflow trigger being moved) passes False.
        """
        logger = self.handler.logger
        started = time.monotonic()
        logger.event("invoke.start", job_id=self.request.job_id, attempt=self.request.attempt)
        try:
            with self.trace.span():
                outcome = await self.handler.guard(
                    self.rt, self._run(reuse, remember, kept, on_submitted, cancel_on_interrupt)
                )
        except ProviderError as error:
            logger.event(
                "invoke.error",
                job_id=self.request.job_id,
                attempt=self.request.attempt,
                code=error.code.value,
                retryable=error.retryable,
                retry_after=error.retry_after,
                reason=error.reason,
                status_code=error.status_code,
                provider_job_id=error.provider_job_id
                or (error.handle.provider_job_id if isinstance(error.handle, JobHandle) else None),
                raw=raw_summary(error.raw),
                duration_ms=round((time.monotonic() - started) * 1000, 3),
            )
            raise
        logger.event(
            "invoke.end",
            job_id=self.request.job_id,
            attempt=self.request.attempt,
            reused=outcome.reused,
            artefacts=[a.id for a in outcome.result.artefacts],
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )
        return outcome

    async def _run(
        self,
        reuse: bool,
        remember: bool,
        kept: JobHandle | None,
        on_submitted: Callable[[JobHandle], Awaitable[None] | None] | None,
        cancel_on_interrupt: bool,
    ) -> JobOutcome:
        await self.prepare()
        if reuse:
            cached = await self.reused()
            if cached is not None:
                return JobOutcome(cached, reused=True)
        self.rt.cancel.raise_if_cancelled()
        handle = await self.resumable(kept)
        if handle is None:
            started = await self._start_then_cancel_if_interrupted()
            if isinstance(started, ProducerResult):
                if remember:
                    await self.remember(started)
                return JobOutcome(started)
            handle = started
            if on_submitted is not None:
                announced = on_submitted(handle)
                if announced is not None:
                    await announced
        try:
            await self.wait(handle)
            result = await self.collect(handle)
        except asyncio.CancelledError:
            if cancel_on_interrupt:
                await asyncio.shield(self.cancel(handle))
            raise
        except ProviderError as error:
            if not _job_ended(error, handle):
                error.handle = error.handle or handle
            error.provider_job_id = error.provider_job_id or handle.provider_job_id
            raise
        if remember:
            await self.remember(result)
        return JobOutcome(result, handle=handle)

    # -- details -----------------------------------------------------------------------

    async def _start_then_cancel_if_interrupted(self) -> JobHandle | ProducerResult:
        """Start; if the caller is cancelled while the create is in flight, let the create
        finish, then cancel that job at the provider: nothing is left running (and paying)."""
        task = asyncio.ensure_future(self.start())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            try:
                started = await task
            except Exception:  # the create failed anyway: nothing to cancel
                raise asyncio.CancelledError from None
            if isinstance(started, JobHandle):
                await self.cancel(started)
            raise

    def _adopt(self, handle: JobHandle) -> Prepared | None:
        """Take what ``handle`` knows of the prepared job when this side did not prepare it."""
        if self.rt.prepared is None and handle.prepared is not None:
            self.handler.adopt(self.rt, handle.prepared, handle)
        prepared = self.rt.prepared or handle.prepared
        self.trace.prepared(prepared)
        return prepared

    def _delay(self, polls: int) -> float:
        if self.request.mode == "mock":
            return 0.0
        if self.policy.poll_interval is not None:
            return self.policy.poll_interval
        delay = min(self.handler.definition.poll_interval, FIRST_POLL_DELAY * 1.5**polls)
        # Spread jobs started together (a movie's, a backfill's) over +-20%, the same way on
        # every run of a job: their polls must not all land on the provider at once.
        return float(delay * (0.8 + 0.4 * _spread(self.request.job_id, polls)))

    def _after_failed_poll(
        self, error: ProviderError, handle: JobHandle, polls: int, failures: int
    ) -> float:
        """Seconds before polling again after ``error``; raises when it should end the job."""
        if _job_ended(error, handle):
            raise error  # not a failed poll, and nothing to resume
        transient = error.code in _TRANSIENT and failures < self.policy.max_poll_failures
        if error.code is not ErrorCode.RATE_LIMITED and not transient:
            error.handle = error.handle or handle
            raise error
        delay = error.retry_after if error.retry_after is not None else self._delay(polls)
        self.handler.logger.event(
            "invoke.poll_failed",
            job_id=self.request.job_id,
            provider_job_id=handle.provider_job_id,
            code=error.code.value,
            status_code=error.status_code,
            raw=raw_summary(error.raw),
            in_a_row=failures + 1,
            retry_in=round(delay, 3),
        )
        return delay

    async def _pause(self, handle: JobHandle, delay: float) -> None:
        signal = self.rt.cancel
        if delay <= 0:
            await asyncio.sleep(0)
        elif self._sleep is asyncio.sleep:
            waiter = asyncio.ensure_future(signal.wait())
            try:
                await asyncio.wait({waiter}, timeout=delay)
            finally:
                waiter.cancel()
        else:
            await self._sleep(delay)
        if signal.cancelled:
            await self.cancel(handle)
            signal.raise_if_cancelled()

    def _expired(self, handle: JobHandle, deadline: float) -> ProviderError:
        expected = handle.prepared.expected_seconds if handle.prepared else None
        usual = f" (its model usually takes {expected:g} s)" if expected else ""
        return ProviderError(
            ErrorCode.TIMEOUT,
            f"job {handle.provider_job_id or handle.job_id} did not finish within its deadline "
            f"of {deadline:g} s{usual}; it was cancelled at the provider",
            retryable=False,
            provider_job_id=handle.provider_job_id,
            handle=handle,
            hint="raise the job's deadline (CLI --deadline, operator job_deadline) if the "
            "model is just slow",
        )
