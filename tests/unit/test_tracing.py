"""One OpenTelemetry span per job (``producers.sdk.tracing``), caught by the SDK's in-memory
exporter: attributes of a mock job, a failed live job against the fakes, reuse, poll
events, no secret and no prompt; the CLI's movie span and its OTLP/HTTP export."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from opentelemetry.util._once import Once
from typer.testing import CliRunner

from producers.clients import default_client_registry
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.lifecycle import Job, WaitPolicy
from producers.sdk.tracing import (
    CAPTURE_CONTENT_ENV,
    configure_otlp,
    parent_from_traceparent,
    traceparent,
)
from producers.storage.local import LocalStore
from producers.testing import JobContext, fake_secret_resolver, make_job_request
from producers.testing.fakes import FAKE_OPENAI_KEY, FAKE_TOKEN, FakeReplicate, Fault
from producers.testing.plugin import LiveFakes

SEEDREAM = "replicate:bytedance/seedream-4"
PROMPT = "A red fox asleep in fresh snow at dawn"
SECRETS = (FAKE_TOKEN, FAKE_OPENAI_KEY)


@contextmanager
def global_provider(provider: TracerProvider | None) -> Iterator[None]:
    """Install ``provider`` as the global tracer provider (None: none, the API's no-op),
    and put back the one before (OpenTelemetry lets a process set it only once)."""
    saved = (trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE)
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    if provider is not None:
        trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with global_provider(provider):
        yield exporter
    # not shut down: a library's proxy tracer may have bound to it (it records into memory)


def job_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("tutopanda.job")]


def everything_said(span: ReadableSpan) -> str:
    """Every attribute and event attribute of ``span``, as text."""
    events = [{"name": e.name, **dict(e.attributes or {})} for e in span.events]
    return json.dumps(
        {"name": span.name, "attributes": dict(span.attributes or {}), "events": events},
        default=str,
    )


async def run_job(context: JobContext, model: str = SEEDREAM, **fields: Any) -> Any:
    request = make_job_request(model, **fields)
    async with Job(context.handler(request), request, policy=WaitPolicy(poll_interval=0.01)) as job:
        return await job.run()


def live_context(store: Any = None) -> JobContext:
    return JobContext(
        clients=default_client_registry(),
        secrets=fake_secret_resolver(
            {"REPLICATE_API_TOKEN": FAKE_TOKEN, "OPENAI_API_KEY": FAKE_OPENAI_KEY}
        ),
        store=store,
    )


@pytest.fixture
def replicate_fake(live_fakes: LiveFakes) -> FakeReplicate:
    return live_fakes.replicate


# -- one job, one span ---------------------------------------------------------------------


async def test_a_mock_jobs_span_names_its_role_model_mode_cost_and_provider_job(
    spans: InMemorySpanExporter,
) -> None:
    outcome = await run_job(
        JobContext(), inputs={"prompt": PROMPT}, job_id="run-7.image[2]", run_id="run-7"
    )
    (span,) = job_spans(spans)
    attributes = dict(span.attributes or {})
    assert span.name == "tutopanda.job image"
    assert span.kind is trace.SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "replicate"
    assert attributes["gen_ai.request.model"] == "bytedance/seedream-4"
    assert attributes["gen_ai.operation.name"] == "generate_content"
    assert attributes["gen_ai.output.type"] == "image"
    assert attributes["tutopanda.mode"] == "mock"
    assert attributes["tutopanda.attempt"] == 1
    assert attributes["tutopanda.reused"] is False
    assert attributes["tutopanda.run.id"] == "run-7"
    assert attributes["tutopanda.job.key"] == "image[2]"
    assert attributes["tutopanda.job.id"] == "run-7.image[2]"
    estimated = outcome.result.diagnostics.estimated_cost_usd
    assert estimated and attributes["tutopanda.cost.estimated_usd"] == estimated
    assert attributes["tutopanda.cost.estimated_upper_bound"] is False
    assert attributes["tutopanda.cost.usd"] == outcome.result.diagnostics.cost_usd
    assert attributes["tutopanda.artefacts"] == 1
    # a mock job's id carries its inputs: a digest stands in for it
    assert str(attributes["tutopanda.provider_job_id"]).startswith("mock-sha256:")
    assert [e.name for e in span.events] == ["submitted", "poll"]
    assert dict(span.events[1].attributes or {})["tutopanda.state"] == "succeeded"
    assert "tutopanda.prompt" not in attributes
    assert "fox" not in everything_said(span)


async def test_a_text_jobs_span_has_the_token_usage(spans: InMemorySpanExporter) -> None:
    outcome = await run_job(JobContext(), "openai:gpt-5-mini", inputs={"prompt": "volcanoes"})
    (span,) = job_spans(spans)
    attributes = dict(span.attributes or {})
    usage = outcome.result.diagnostics.usage
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.usage.input_tokens"] == usage["input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] == usage["output_tokens"] > 0
    assert attributes["tutopanda.usage.total_tokens"] == usage["total_tokens"]


async def test_the_prompt_is_recorded_only_when_the_deployment_opts_in(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    await run_job(JobContext(), inputs={"prompt": PROMPT})
    (span,) = job_spans(spans)
    assert dict(span.attributes or {})["tutopanda.prompt"] == PROMPT


async def test_a_reused_job_is_recorded_as_reused_and_paid_nothing(
    spans: InMemorySpanExporter,
) -> None:
    context = JobContext()
    await run_job(context, inputs={"prompt": PROMPT}, job_id="a")
    await run_job(context, inputs={"prompt": PROMPT}, job_id="b")
    first, second = job_spans(spans)
    assert dict(first.attributes or {})["tutopanda.reused"] is False
    assert dict(second.attributes or {})["tutopanda.reused"] is True
    assert dict(second.attributes or {})["tutopanda.cost.usd"] == 0.0
    assert not second.events  # nothing submitted, nothing polled


async def test_a_reuse_lookup_outside_a_span_records_a_hit_as_its_job_and_a_miss_not_at_all(
    spans: InMemorySpanExporter,
) -> None:
    """The CLI looks up reuse before it takes a slot: a hit ends the job there."""
    context = JobContext()
    request = make_job_request(SEEDREAM, inputs={"prompt": PROMPT})
    async with Job(context.handler(request), request) as job:
        assert await job.reused() is None
    assert job_spans(spans) == []
    await run_job(context, inputs={"prompt": PROMPT})
    spans.clear()
    async with Job(context.handler(request), request) as job:
        assert await job.reused() is not None
    (span,) = job_spans(spans)
    assert dict(span.attributes or {})["tutopanda.reused"] is True
    assert dict(span.attributes or {})["tutopanda.cost.estimated_usd"] > 0


# -- live, against the fakes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        (Fault.status(401), ErrorCode.AUTH_FAILED, 401),
        (Fault.status(422), ErrorCode.INVALID_INPUT, 422),
        (Fault.nsfw(), ErrorCode.SAFETY_BLOCKED, None),
    ],
    ids=["401", "422", "safety"],
)
async def test_a_failed_live_job_has_its_error_code_status_and_exception_and_no_secret(
    spans: InMemorySpanExporter,
    replicate_fake: FakeReplicate,
    fault: Fault,
    code: ErrorCode,
    status: int | None,
) -> None:
    replicate_fake.inject(fault, route="create")
    with pytest.raises(ProviderError) as raised:
        await run_job(live_context(), mode="live", inputs={"prompt": PROMPT})
    assert raised.value.code is code
    (span,) = job_spans(spans)
    attributes = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert (span.status.description or "").startswith(f"{code.value}: ")
    assert attributes["error.type"] == attributes["tutopanda.error.code"] == code.value
    assert attributes["tutopanda.mode"] == "live"
    assert attributes["tutopanda.error.retryable"] is raised.value.retryable
    assert attributes.get("http.response.status_code") == status
    (exception,) = [e for e in span.events if e.name == "exception"]
    assert dict(exception.attributes or {})["exception.type"].endswith("ProviderError")
    said = everything_said(span)
    assert not any(secret in said for secret in SECRETS)
    assert PROMPT not in said and "fox" not in said


async def test_a_providers_message_that_echoes_the_prompt_is_cut_out(
    spans: InMemorySpanExporter, replicate_fake: FakeReplicate
) -> None:
    body = json.dumps({"title": "Invalid", "detail": f"input.prompt: {PROMPT!r} is refused"})
    replicate_fake.inject(Fault.status(422, body=body), route="create")
    with pytest.raises(ProviderError) as raised:
        await run_job(live_context(), mode="live", inputs={"prompt": PROMPT})
    assert PROMPT in str(raised.value)  # the error itself names it, for the user
    (span,) = job_spans(spans)
    said = everything_said(span) + (span.status.description or "")
    assert PROMPT not in said and "[prompt]" in said


async def test_a_live_job_records_its_prediction_and_failed_polls_as_events(
    spans: InMemorySpanExporter, replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    replicate_fake.inject(Fault.status(503, retry_after=0), route="get", times=2)
    outcome = await run_job(
        live_context(LocalStore(tmp_path)), mode="live", inputs={"prompt": PROMPT}
    )
    (span,) = job_spans(spans)
    attributes = dict(span.attributes or {})
    assert attributes["tutopanda.provider_job_id"] == outcome.handle.provider_job_id
    assert attributes["gen_ai.response.id"] == outcome.handle.provider_job_id
    failed = [dict(e.attributes or {}) for e in span.events if e.name == "poll_failed"]
    assert [f["http.response.status_code"] for f in failed] == [503, 503]
    assert {f["error.type"] for f in failed} == {"provider_unavailable"}
    assert attributes["tutopanda.polls"] >= 3
    assert span.status.status_code is StatusCode.UNSET
    assert not any(secret in everything_said(span) for secret in SECRETS)


# -- no provider, propagation ----------------------------------------------------------------


async def test_with_no_tracer_provider_every_path_runs_and_nothing_is_current() -> None:
    context = JobContext()
    with global_provider(None):
        made = await run_job(context, inputs={"prompt": PROMPT})
        again = await run_job(context, inputs={"prompt": PROMPT})  # reused in its span
        request = make_job_request(SEEDREAM, inputs={"prompt": PROMPT})
        async with Job(context.handler(request), request) as job:
            assert await job.reused() is not None  # reused with no span open
            with job.trace.span() as span:
                assert not span.is_recording()
                assert not trace.get_current_span().get_span_context().is_valid
        assert traceparent() is None
    assert made.result.artefacts and again.reused


def test_a_traceparent_carries_the_current_span_to_a_parent_elsewhere(
    spans: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("task") as task:
        carried = traceparent()
    assert carried is not None
    assert carried.split("-")[1] == format(task.get_span_context().trace_id, "032x")
    parent = parent_from_traceparent(carried)  # no span current: the carried one
    assert parent is not None
    assert trace.get_current_span(parent).get_span_context().span_id == (
        task.get_span_context().span_id
    )
    with tracer.start_as_current_span("nearer", context=parent):
        assert parent_from_traceparent(carried) is None  # the same trace's own span wins
    assert parent_from_traceparent("not a traceparent") is None
    assert parent_from_traceparent(None) is None


# -- the CLI -------------------------------------------------------------------------------


def test_a_cli_movies_job_spans_are_children_of_its_movie_span(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    from producers.cli.app import app

    args = ["movie", "--topic", "Volcanoes", "--segments", "1", "--mode", "mock"]
    args += ["--store", str(tmp_path / "store"), "--output", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (movie,) = [s for s in spans.get_finished_spans() if s.name == "tutopanda.movie"]
    jobs = job_spans(spans)
    roles = {s.name.removeprefix("tutopanda.job ") for s in jobs}
    assert {"script", "image", "narration"} <= roles
    for span in jobs:
        assert span.parent is not None and span.parent.span_id == movie.context.span_id
        assert span.context.trace_id == movie.context.trace_id
        assert dict(span.attributes or {})["tutopanda.reused"] is False
    assert movie.status.status_code is StatusCode.UNSET
    run_id = dict(movie.attributes or {})["tutopanda.run.id"]
    assert str(run_id).startswith("movie-")
    assert all(dict(s.attributes or {}).get("tutopanda.run.id") == run_id for s in jobs)

    spans.clear()  # the same movie again: every job is reused, each still has its span
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (movie,) = [s for s in spans.get_finished_spans() if s.name == "tutopanda.movie"]
    again = job_spans(spans)
    assert {s.name for s in again} == {s.name for s in jobs}
    assert all(dict(s.attributes or {})["tutopanda.reused"] is True for s in again)
    assert all(s.parent is not None and s.parent.span_id == movie.context.span_id for s in again)


class _Collector(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        type(self).bodies.append(data)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_cli_exports_its_spans_over_otlp_http_when_an_endpoint_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from producers.cli.app import app

    _Collector.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    try:
        with global_provider(None):
            assert configure_otlp("x") is None  # no endpoint: nothing
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
            monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
            assert configure_otlp("x") is None  # exporting turned off the standard way
            monkeypatch.delenv("OTEL_TRACES_EXPORTER")
            args = ["produce", SEEDREAM, "--set", f"prompt={PROMPT}", "--mode", "mock"]
            result = CliRunner().invoke(app, [*args, "--store", str(tmp_path)])
            assert result.exit_code == 0, result.output
    finally:
        server.shutdown()
        server.server_close()
    exported = []
    for body in _Collector.bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                exported += [(resource["service.name"], s) for s in scope.spans]
    # flushed on exit, not lost in the batch: the command's span and its job's, its child
    assert {service for service, _ in exported} == {"tutopanda-cli"}
    by_name = {span.name.split(" ")[0]: span for _, span in exported}
    assert len(exported) == 2 and set(by_name) == {"tutopanda.produce", "tutopanda.job"}
    assert by_name["tutopanda.job"].parent_span_id == by_name["tutopanda.produce"].span_id
    assert not any(PROMPT.encode() in body for body in _Collector.bodies)


async def test_a_caller_that_stops_waiting_leaves_an_interrupted_span_not_a_failed_one(
    spans: InMemorySpanExporter, replicate_fake: FakeReplicate
) -> None:
    before = replicate_fake.settings()["latency"]
    replicate_fake.configure({"latency": 30.0})
    try:
        running = asyncio.ensure_future(
            run_job(live_context(), mode="live", inputs={"prompt": PROMPT})
        )
        for _ in range(500):
            await asyncio.sleep(0.01)
            if replicate_fake.count("get"):
                break
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    finally:
        replicate_fake.configure({"latency": before})
    (span,) = job_spans(spans)
    attributes = dict(span.attributes or {})
    assert attributes["tutopanda.interrupted"] is True
    assert span.status.status_code is StatusCode.UNSET
    assert "tutopanda.provider_job_id" in attributes
    assert replicate_fake.count("cancel") == 1  # and the prediction was cancelled
