"""What one span per job costs: the job lifecycle with its tracing against the same lifecycle
with the tracing taken out, in one run.

Run with ``.venv/bin/python -m benchmarks.tracing_overhead``.

Variants, per kind of job:

* ``untraced``: :class:`producers.sdk.lifecycle.Job` with its ``JobTrace`` replaced by a stub
  whose methods do nothing (as if the code had no tracing): the baseline of every ratio;
* ``api-noop``: as shipped, with no tracer provider configured (the default of the CLI without
  an OTLP endpoint, and of Airflow with ``[traces] otel_on`` off): every OpenTelemetry call
  is the API's no-op;
* ``sdk-recording``: a real SDK ``TracerProvider`` whose spans go through a
  ``BatchSpanProcessor`` to an exporter that drops them (what exporting costs in-process,
  short of the network).

Kinds of job, both in-process with a memory store:

* ``scripted``: a minimal submitting producer (prepare, submit, two polls, collect one inline
  artefact): almost nothing but the SDK, the worst case for a relative overhead;
* ``mock-image``: ``replicate:bytedance/seedream-4`` in mock mode (renders a PNG), a real job.

Rounds interleave the variants job by job; reported: the median wall time per job and its
ratio to ``untraced``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.util._once import Once

from producers.sdk import (
    Artefact,
    JobHandle,
    JobState,
    JobStatus,
    Kind,
    Prepared,
    ProducerRuntime,
    Submission,
    define_producer,
    lifecycle,
)
from producers.sdk.lifecycle import Job, WaitPolicy
from producers.testing import JobContext, make_job_request

VARIANTS = ("untraced", "api-noop", "sdk-recording")


class _Dropping(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _NoTrace:
    """A ``JobTrace`` that does nothing: the lifecycle without tracing."""

    muted = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    @contextmanager
    def span(self, **kwargs: Any) -> Iterator[None]:
        yield None

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


@contextmanager
def _global_provider(provider: TracerProvider | None) -> Iterator[None]:
    saved = (trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE)
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    if provider is not None:
        trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


@contextmanager
def _variant(name: str, recording: TracerProvider) -> Iterator[None]:
    original = vars(lifecycle)["JobTrace"]
    if name == "untraced":
        setattr(lifecycle, "JobTrace", _NoTrace)  # noqa: B010 - the module's global
    try:
        with _global_provider(recording if name == "sdk-recording" else None):
            yield
    finally:
        setattr(lifecycle, "JobTrace", original)  # noqa: B010


def _scripted_context() -> JobContext:
    async def prepare(rt: ProducerRuntime) -> Prepared:
        return Prepared(payload={"prompt": rt.inputs.require("prompt")}, artefact_ids=("out",))

    async def submit(rt: ProducerRuntime) -> Submission:
        return Submission(provider_job_id="p-1")

    polls: dict[str, int] = {}

    async def poll(rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
        polls[handle.job_id] = polls.get(handle.job_id, 0) + 1
        done = polls[handle.job_id] >= 2
        return JobStatus(state=JobState.SUCCEEDED if done else JobState.RUNNING)

    async def collect(rt: ProducerRuntime, handle: JobHandle) -> list[Artefact]:
        polls.pop(handle.job_id, None)
        return [await rt.artefacts.text("out", "done")]

    context = JobContext()
    context.register(
        define_producer(
            name="scripted",
            provider="scripted",
            models=["*"],
            kind=Kind.TEXT,
            prepare=prepare,
            submit=submit,
            poll=poll,
            collect=collect,
            poll_interval=0.0,
        )
    )
    return context


async def _one(context: JobContext, model: str, number: int) -> float:
    request = make_job_request(model, inputs={"prompt": f"job {number}"}, mode="mock")
    started = time.perf_counter()
    job = Job(context.handler(request), request, policy=WaitPolicy(poll_interval=0.0))
    async with job:
        await job.run(reuse=False, remember=False)
    return time.perf_counter() - started


async def _measure(jobs: int, kinds: dict[str, tuple[JobContext, str]]) -> dict[str, Any]:
    recording = TracerProvider()
    recording.add_span_processor(BatchSpanProcessor(_Dropping()))
    times: dict[tuple[str, str], list[float]] = {}
    for kind, (context, model) in kinds.items():
        for variant in VARIANTS:  # warm-up
            with _variant(variant, recording):
                await _one(context, model, -1)
        for number in range(jobs):
            order = VARIANTS[number % 3 :] + VARIANTS[: number % 3]
            for variant in order:
                with _variant(variant, recording):
                    seconds = await _one(context, model, number)
                times.setdefault((kind, variant), []).append(seconds)
    recording.shutdown()
    report: dict[str, Any] = {}
    for kind in kinds:
        base = statistics.median(times[(kind, "untraced")])
        report[kind] = {
            variant: {
                "median_ms": round(statistics.median(times[(kind, variant)]) * 1000, 4),
                "ratio": round(statistics.median(times[(kind, variant)]) / base, 3),
            }
            for variant in VARIANTS
        }
    return report


def _noop_calls_per_job(repeat: int = 20_000) -> float:
    """Seconds per job of the tracing calls alone with no provider (a job's trace built, its
    span opened, and what a submitted job records: prepared, reuse, submitted, two polls,
    collected), measured in a tight loop: the absolute cost that the job ratios hide in
    their noise."""
    from producers.sdk.artefacts import Diagnostics, ProducerResult
    from producers.sdk.tracing import JobTrace

    request = make_job_request("scripted:m", inputs={"prompt": "p"})
    prepared = Prepared(payload={}, estimated_cost_usd=0.01)
    handle = JobHandle(job_id="j", descriptor=request.descriptor, mode="mock")
    running = JobStatus(state=JobState.RUNNING)
    done = JobStatus(state=JobState.SUCCEEDED)
    result = ProducerResult(artefacts=(), diagnostics=Diagnostics())
    with _global_provider(None):
        started = time.perf_counter()
        for _ in range(repeat):
            job_trace = JobTrace(request, kind=Kind.TEXT, producer="scripted")
            with job_trace.span():
                job_trace.prepared(prepared)
                job_trace.reuse_looked_up(False, started=0)
                job_trace.submitted(handle)
                job_trace.polled(running)
                job_trace.polled(done)
                job_trace.collected(result)
        return (time.perf_counter() - started) / repeat


def main(argv: Sequence[str] | None = None) -> None:
    """Print the median time per job and the ratio to ``untraced``, per kind and variant."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400, help="jobs per kind and variant")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    kinds = {
        "scripted": (_scripted_context(), "scripted:m"),
        "mock-image": (JobContext(), "replicate:bytedance/seedream-4"),
    }
    report = asyncio.run(_measure(args.jobs, kinds))
    print(f"{'kind':<12} {'variant':<14} {'median ms/job':>14} {'ratio':>7}")
    for kind, variants in report.items():
        for variant, figures in variants.items():
            print(
                f"{kind:<12} {variant:<14} {figures['median_ms']:>14.4f} {figures['ratio']:>7.3f}"
            )
    calls = _noop_calls_per_job()
    scripted = report["scripted"]["untraced"]["median_ms"] / 1000
    report["noop_calls"] = {"us_per_job": round(calls * 1e6, 3), "of_scripted": calls / scripted}
    print(
        f"no-op tracing calls alone: {calls * 1e6:.2f} us per job, "
        f"{calls / scripted:.1%} of a scripted job"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
