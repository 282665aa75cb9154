"""The one job lifecycle and its wait loop (``producers.sdk.lifecycle``), with a scripted
provider and a fake clock: every decision about a submitted job, table by table."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from producers.sdk import (
    Artefact,
    ErrorCode,
    JobHandle,
    JobState,
    JobStatus,
    Kind,
    Prepared,
    ProducerRuntime,
    ProviderError,
    Submission,
    define_producer,
)
from producers.sdk.lifecycle import (
    DEADLINE_FACTOR,
    DEFAULT_DEADLINE,
    MIN_DEADLINE,
    Job,
    WaitPolicy,
)
from producers.sdk.runtime import CancellationSignal
from producers.testing import JobContext, make_job_request

RUNNING = JobStatus(state=JobState.RUNNING)
DONE = JobStatus(state=JobState.SUCCEEDED)


def unavailable() -> ProviderError:
    return ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, "502 Bad Gateway", status_code=502)


@dataclass
class Provider:
    """A scripted provider: each poll takes the next answer (the last one repeats)."""

    answers: list[Any]
    expected_seconds: float | None = 20.0
    calls: list[str] = field(default_factory=list)
    now: float = 1_000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.calls.append(f"sleep {seconds:g}")
        self.now += seconds

    def definition(self) -> Any:
        async def prepare(rt: ProducerRuntime) -> Prepared:
            return Prepared(
                payload={"prompt": rt.inputs.require("prompt")},
                prompt=rt.inputs.get("prompt"),
                artefact_ids=("out",),
                expected_seconds=self.expected_seconds,
            )

        async def submit(rt: ProducerRuntime) -> Submission:
            self.calls.append("submit")
            return Submission(provider_job_id=f"p-{self.calls.count('submit')}")

        async def poll(rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
            self.calls.append("poll")
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            if isinstance(answer, BaseException):
                raise answer
            return answer  # type: ignore[no-any-return]

        async def collect(rt: ProducerRuntime, handle: JobHandle) -> Sequence[Artefact]:
            self.calls.append("collect")
            return [await rt.artefacts.text("out", f"made by {handle.provider_job_id}")]

        async def cancel(rt: ProducerRuntime, handle: JobHandle) -> None:
            self.calls.append(f"cancel {handle.provider_job_id}")

        return define_producer(
            name="scripted", provider="scripted", models=["*"], kind=Kind.TEXT_TO_IMAGE,
            prepare=prepare, submit=submit, poll=poll, collect=collect, cancel=cancel,
            poll_interval=8.0,
        )  # fmt: skip


def job_of(provider: Provider, policy: WaitPolicy | None = None, **kwargs: Any) -> Job:
    context = JobContext()
    context.register(provider.definition())
    request = make_job_request("scripted:m", mode="live", inputs={"prompt": "p"})
    handler = context.handler(request)
    return Job(
        handler, request, policy=policy, sleep=provider.sleep, clock=provider.clock, **kwargs
    )


async def run(provider: Provider, policy: WaitPolicy | None = None) -> Any:
    async with job_of(provider, policy) as job:
        return await job.run()


@pytest.mark.parametrize(
    ("policy", "expected", "deadline"),
    [
        (WaitPolicy(), 20.0, MIN_DEADLINE),
        (WaitPolicy(), 600.0, DEADLINE_FACTOR * 600.0),
        (WaitPolicy(), None, DEFAULT_DEADLINE),
        (WaitPolicy(deadline=42.0), 600.0, 42.0),
    ],
    ids=["fast-model-gets-the-minimum", "slow-model-10x", "unknown-latency", "overridden"],
)
def test_the_deadline_follows_the_models_latency(
    policy: WaitPolicy, expected: float | None, deadline: float
) -> None:
    assert policy.deadline_for(Prepared(payload={}, expected_seconds=expected)) == deadline


async def test_polls_start_short_and_grow_to_the_producers_interval() -> None:
    provider = Provider([RUNNING, RUNNING, RUNNING, RUNNING, RUNNING, RUNNING, RUNNING, DONE])
    outcome = await run(provider)
    assert outcome.result.artefacts[0].value == "made by p-1"
    sleeps = [float(c.split()[1]) for c in provider.calls if c.startswith("sleep")]
    # 0.25 s growing by half each time, each spread by +-20% (fixed per job and poll)
    for polls, slept in enumerate(sleeps):
        base = min(8.0, 0.25 * 1.5**polls)
        assert 0.8 * base <= slept <= 1.2 * base
    assert sleeps[-1] > 4 * sleeps[0]
    assert provider.calls.count("submit") == 1 and provider.calls[-1] == "collect"


async def test_jobs_started_together_do_not_poll_together() -> None:
    """Two jobs' delays differ (spread by job id), but a job's are the same on every run."""

    async def delays(job_id: str) -> list[float]:
        provider = Provider([RUNNING, RUNNING, RUNNING, DONE])
        context = JobContext()
        context.register(provider.definition())
        request = make_job_request("scripted:m", mode="live", inputs={"prompt": "p"}, job_id=job_id)
        async with Job(
            context.handler(request), request, sleep=provider.sleep, clock=provider.clock
        ) as job:
            await job.run()
        return [float(c.split()[1]) for c in provider.calls if c.startswith("sleep")]

    assert await delays("run.image[0]") != await delays("run.image[1]")
    assert await delays("run.image[0]") == await delays("run.image[0]")


@pytest.mark.parametrize(
    ("failures", "fails"),
    [(1, False), (3, False), (4, True)],
    ids=["one", "as-many-as-tolerated", "one-too-many"],
)
async def test_transient_poll_failures_in_a_row_are_tolerated_up_to_the_policy(
    failures: int, fails: bool
) -> None:
    provider = Provider([*(unavailable() for _ in range(failures)), DONE])
    if not fails:
        outcome = await run(provider, WaitPolicy(poll_interval=1.0))
        assert outcome.result.artefacts
        return
    with pytest.raises(ProviderError) as caught:
        await run(provider, WaitPolicy(poll_interval=1.0))
    assert caught.value.code is ErrorCode.PROVIDER_UNAVAILABLE and caught.value.retryable
    assert caught.value.handle is not None  # a retry resumes the job, never pays twice
    assert "cancel p-1" not in provider.calls


async def test_a_success_between_failures_resets_the_count() -> None:
    answers: list[Any] = [unavailable(), unavailable(), unavailable(), RUNNING]
    answers += [unavailable(), unavailable(), unavailable(), DONE]
    outcome = await run(Provider(answers), WaitPolicy(poll_interval=1.0))
    assert outcome.result.artefacts


async def test_a_rate_limited_poll_waits_its_retry_after_and_costs_no_failure() -> None:
    limited = ProviderError(ErrorCode.RATE_LIMITED, "slow down", retry_after=30.0)
    provider = Provider([limited, limited, limited, limited, limited, DONE])
    outcome = await run(provider, WaitPolicy(poll_interval=1.0))
    assert outcome.result.artefacts
    assert provider.calls.count("sleep 30") == 5


@pytest.mark.parametrize(
    "answer",
    [
        ProviderError(ErrorCode.AUTH_FAILED, "401", retryable=False),
        ProviderError(ErrorCode.MODEL_FAILED, "CUDA out of memory", retryable=False),
        JobStatus(state=JobState.FAILED, detail="CUDA out of memory"),
        JobStatus(state=JobState.CANCELED),
    ],
    ids=["auth", "model-failed-error", "failed-status", "canceled-status"],
)
async def test_a_poll_that_says_the_job_is_over_or_cannot_go_on_fails_at_once(
    answer: Any,
) -> None:
    provider = Provider([answer])
    with pytest.raises(ProviderError) as caught:
        await run(provider)
    assert not caught.value.retryable
    assert provider.calls.count("poll") == 1


async def test_a_job_past_its_deadline_is_cancelled_at_the_provider_and_times_out() -> None:
    provider = Provider([RUNNING], expected_seconds=None)
    with pytest.raises(ProviderError) as caught:
        await run(provider, WaitPolicy(poll_interval=60.0, deadline=300.0))
    error = caught.value
    assert error.code is ErrorCode.TIMEOUT and error.retryable is False
    assert "300 s" in error.reason and "cancelled at the provider" in error.reason
    assert provider.calls[-1] == "cancel p-1"
    assert provider.calls.count("poll") == 6  # one at 0 s, then every 60 s up to 300 s


async def test_the_deadline_counts_from_submission_not_from_this_process() -> None:
    """A trigger that starts waiting late (a deferral, a restarted triggerer) gives up on time."""
    provider = Provider([RUNNING])
    async with job_of(provider, WaitPolicy(deadline=100.0)) as first:
        handle = await first.start()
    assert isinstance(handle, JobHandle)
    provider.now += 150.0  # the handle travelled for 150 s
    async with job_of(provider, WaitPolicy(deadline=100.0)) as elsewhere:
        with pytest.raises(ProviderError) as caught:
            await elsewhere.wait(handle)
    assert caught.value.code is ErrorCode.TIMEOUT
    assert provider.calls == ["submit", "cancel p-1"]  # not even one poll


async def test_a_kept_job_is_resumed_when_alive_and_replaced_when_over() -> None:
    provider = Provider([RUNNING])
    async with job_of(provider) as first:
        kept = await first.start()
    assert isinstance(kept, JobHandle)
    provider.answers = [DONE]
    async with job_of(provider) as retry:
        outcome = await retry.run(kept=kept, reuse=False)
    assert outcome.handle == kept and provider.calls.count("submit") == 1

    provider.answers = [JobStatus(state=JobState.CANCELED), DONE]
    async with job_of(provider) as retry:
        outcome = await retry.run(kept=kept, reuse=False)
    assert outcome.handle is not None and outcome.handle.provider_job_id == "p-2"


async def test_prepare_runs_once_and_reuse_pays_nothing() -> None:
    provider = Provider([DONE])
    prepared = 0
    context = JobContext()
    definition = provider.definition()
    original = definition.prepare

    async def counting(rt: ProducerRuntime) -> Prepared:
        nonlocal prepared
        prepared += 1
        return await original(rt)

    import dataclasses

    context.register(dataclasses.replace(definition, prepare=counting))
    request = make_job_request("scripted:m", mode="live", inputs={"prompt": "p"})
    async with Job(context.handler(request), request, sleep=provider.sleep) as job:
        first = await job.run()
    assert prepared == 1 and not first.reused
    async with Job(context.handler(request), request, sleep=provider.sleep) as job:
        again = await job.run()
    assert again.reused and provider.calls.count("submit") == 1


async def test_a_cancellation_signal_cancels_at_the_provider() -> None:
    provider = Provider([RUNNING])
    signal = CancellationSignal()
    job = job_of(provider, WaitPolicy(poll_interval=5.0), cancel=signal)
    original = provider.sleep

    async def sleep_then_cancel(seconds: float) -> None:
        await original(seconds)
        signal.cancel("user pressed Ctrl-C")

    job._sleep = sleep_then_cancel
    with pytest.raises(ProviderError) as caught:
        async with job:
            await job.run()
    assert caught.value.code is ErrorCode.CANCELED
    assert "cancel p-1" in provider.calls


async def test_an_interrupted_caller_cancels_the_job_unless_it_hands_it_on() -> None:
    for hand_on in (False, True):
        provider = Provider([RUNNING])
        job = job_of(provider, WaitPolicy(poll_interval=1.0))

        async def forever(seconds: float) -> None:
            await asyncio.sleep(3600)

        job._sleep = forever
        task = asyncio.ensure_future(job.run(cancel_on_interrupt=not hand_on))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ("cancel p-1" in provider.calls) is (not hand_on)
