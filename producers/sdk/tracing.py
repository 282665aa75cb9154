"""OpenTelemetry traces of jobs: one span per job, named ``tutopanda.job <role>``.

A client opens the span around the steps it runs (:meth:`JobTrace.span`; ``Job.run`` does it
for the whole job) and the job's steps record what they learn on it: the estimated cost when
prepared, ``reused``, the provider job id when submitted or resumed, poll events when the
provider's state changes or a poll fails, the actual cost and the token usage when collected,
the error (code, HTTP status, status ERROR, the exception) when it fails.

Attributes follow the OpenTelemetry GenAI semantic conventions where they fit
(``gen_ai.operation.name``, ``gen_ai.provider.name`` and its predecessor ``gen_ai.system``,
``gen_ai.request.model``, ``gen_ai.output.type``, ``gen_ai.response.id``,
``gen_ai.usage.input_tokens`` / ``output_tokens``, ``error.type``,
``http.response.status_code``); the rest is ``tutopanda.*``.

What a span never holds: a secret (every string goes through
:func:`~producers.sdk.secrets.redact`), the payload, the provider's raw answer, and the prompt,
unless the deployment opts in with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``
(the GenAI instrumentations' switch); without it, the prompt and the job's other text inputs
are also cut out of error messages (a provider may echo them).

Only the OpenTelemetry API is used here: with no tracer provider configured (the default) every
call is a no-op. A client that exports spans configures a provider (the CLI:
:func:`configure_otlp`; Airflow: its own ``[traces] otel_on``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from producers.sdk.errors import ProviderError
from producers.sdk.jobs import Kind
from producers.sdk.secrets import redact

if TYPE_CHECKING:
    from producers.sdk.artefacts import ProducerResult
    from producers.sdk.jobs import JobHandle, JobRequest, JobStatus, Prepared

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "SPAN_PREFIX",
    "TRACER_NAME",
    "JobTrace",
    "capture_content",
    "configure_otlp",
    "parent_from_traceparent",
    "traced_command",
    "traceparent",
]

#: The instrumentation scope of the spans.
TRACER_NAME = "producers"
#: Every job span's name starts with it.
SPAN_PREFIX = "tutopanda.job"
#: The GenAI instrumentations' opt-in to record message contents (here: the prompt).
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
#: A recorded prompt is cut to this many characters.
PROMPT_LIMIT = 2_000
#: An error message on a span is cut to this many characters.
MESSAGE_LIMIT = 1_000

_PROPAGATOR = TraceContextTextMapPropagator()
_OUTPUT_TYPES: dict[Kind, str] = {
    Kind.TEXT: "text",
    Kind.TEXT_TO_IMAGE: "image",
    Kind.IMAGE_TO_IMAGE: "image",
    Kind.TEXT_TO_SPEECH: "speech",
}
_TOKENS = {
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "total_tokens": "tutopanda.usage.total_tokens",
    "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
    "cached_input_tokens": "gen_ai.usage.cache_read.input_tokens",
}


def capture_content() -> bool:
    """True if the deployment opted in to record prompts on spans (:data:`CAPTURE_CONTENT_ENV`)."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in ("true", "1", "yes")


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (to carry to another process), or None
    when no valid span is current (tracing off)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def parent_from_traceparent(value: str | None) -> otel_context.Context | None:
    """The parent context for a job span in a process that received ``value`` (a W3C
    ``traceparent``): None (the current context) when there is none or it does not parse,
    or when a span of the same trace is current (the process's own span for the task,
    e.g. Airflow's trigger span, is the nearer parent)."""
    if not value:
        return None
    carried = _PROPAGATOR.extract({"traceparent": value})
    carried_span = trace.get_current_span(carried).get_span_context()
    if not carried_span.is_valid:
        return None
    current = trace.get_current_span().get_span_context()
    if current.is_valid and current.trace_id == carried_span.trace_id:
        return None
    return carried


def _tracer() -> trace.Tracer:
    # Looked up per span, not cached: the global provider may be set after import.
    return trace.get_tracer(TRACER_NAME)


def _role(request: JobRequest) -> str:
    """The job's role for the span name: its pipeline key without an index (``image`` for
    ``<run id>.image[2]``), else its job id."""
    job_id = request.job_id
    run_id = request.run_id
    if run_id and job_id.startswith(run_id + "."):
        key = job_id[len(run_id) + 1 :]
        return key.split("[", 1)[0] or key
    return job_id


class JobTrace:
    """The span of one job, and what the job's steps record on it (no-ops when no span is
    open, or when it does not record: tracing is off or the trace is not sampled).

    Args:
        request: The job.
        kind: What the producer makes (sets ``gen_ai.operation.name`` and
            ``gen_ai.output.type``); None if unknown.
        producer: The producer's name.
    """

    def __init__(
        self, request: JobRequest, *, kind: Kind | None = None, producer: str | None = None
    ) -> None:
        self.request = request
        self.kind = kind
        self.producer = producer
        #: True: record no standalone span for a reuse lookup (a client reading back a
        #: result it knows is stored, not a job).
        self.muted = False
        self._span: Span | None = None
        self._prepared: Prepared | None = None
        self._prepared_seen = False
        self._state: str | None = None
        self._polls = 0

    @property
    def name(self) -> str:
        """The span's name: ``tutopanda.job <role or job id>``."""
        return f"{SPAN_PREFIX} {_role(self.request)}"

    def _attributes(self, where: str | None) -> dict[str, Any]:
        request = self.request
        descriptor = request.descriptor
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat" if self.kind is Kind.TEXT else "generate_content",
            "gen_ai.provider.name": descriptor.provider,
            "gen_ai.system": descriptor.provider,
            "gen_ai.request.model": descriptor.model,
            "tutopanda.job.id": request.job_id,
            "tutopanda.mode": request.mode,
            "tutopanda.attempt": request.attempt,
            "tutopanda.environment": descriptor.environment,
            "tutopanda.reused": False,
        }
        if self.kind is not None:
            attributes["tutopanda.kind"] = self.kind.value
            if self.kind in _OUTPUT_TYPES:
                attributes["gen_ai.output.type"] = _OUTPUT_TYPES[self.kind]
        if self.producer:
            attributes["tutopanda.producer"] = self.producer
        if request.run_id:
            attributes["tutopanda.run.id"] = request.run_id
            if request.job_id.startswith(request.run_id + "."):
                attributes["tutopanda.job.key"] = request.job_id[len(request.run_id) + 1 :]
        if where:
            attributes["tutopanda.where"] = where
        return redact(attributes)  # type: ignore[no-any-return]

    @contextmanager
    def span(
        self,
        *,
        parent: otel_context.Context | None = None,
        where: str | None = None,
        start_time: int | None = None,
    ) -> Iterator[Span]:
        """Open the job's span, current for what runs inside (the span already open if
        any: nested calls share it). A :class:`ProviderError` leaving it is recorded
        (:meth:`failed`); another exception is recorded with its type only.

        Args:
            parent: The parent context; None: the current one.
            where: Where this part of the job runs (``worker``, ``triggerer``), when a job
                spans processes.
            start_time: The span's start (ns since the epoch); None: now.
        """
        if self._span is not None:
            yield self._span
            return
        if not _configured():  # the API's no-op: nothing to record, nothing to make current
            yield trace.INVALID_SPAN
            return
        span = _tracer().start_span(
            self.name,
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=self._attributes(where),
            start_time=start_time,
            record_exception=False,
            set_status_on_exception=False,
        )
        self._span = span
        self._prepared_seen = False
        self._state = None
        self._polls = 0
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        self.prepared(self._prepared)  # prepared before the span opened
        try:
            yield span
        except ProviderError as error:
            self.failed(error)
            raise
        except BaseException as error:
            self._unexpected(error)
            raise
        finally:
            otel_context.detach(token)
            self._span = None
            if self._polls and span.is_recording():
                span.set_attribute("tutopanda.polls", self._polls)
            span.end()

    def _live(self) -> Span | None:
        span = self._span
        return span if span is not None and span.is_recording() else None

    # -- what the steps record ---------------------------------------------------------------

    def prepared(self, prepared: Prepared | None) -> None:
        """The job is prepared: its estimated cost (and its prompt, when opted in)."""
        if prepared is not None:
            self._prepared = prepared
        span = self._live()
        if span is None or prepared is None or self._prepared_seen:
            return
        self._prepared_seen = True
        if prepared.estimated_cost_usd is not None:
            span.set_attribute("tutopanda.cost.estimated_usd", prepared.estimated_cost_usd)
            span.set_attribute(
                "tutopanda.cost.estimated_upper_bound", prepared.estimated_cost_upper_bound
            )
        if prepared.prompt and capture_content():
            span.set_attribute("tutopanda.prompt", redact(prepared.prompt[:PROMPT_LIMIT]))

    def reuse_looked_up(self, found: bool, *, started: int) -> None:
        """A reuse lookup (started at ``started``, ns) found a stored result or not. With no
        span open, a hit is recorded as a span of its own (the client looked up before it
        opened one: the job ends here), a miss not at all (the job's span comes later)."""
        if self._span is None:
            if found and not self.muted:
                with self.span(start_time=started) as span:
                    _set_reused(span, True)
            return
        _set_reused(self._span, found)

    def submitted(self, handle: JobHandle, *, resumed: bool = False) -> None:
        """The job was submitted (or an earlier one is ``resumed``) as ``handle``."""
        span = self._live()
        if span is None:
            return
        if resumed:
            span.set_attribute("tutopanda.resumed", True)
        if handle.provider_job_id:
            self._job_id(span, handle.provider_job_id)
        span.add_event("resumed" if resumed else "submitted")

    def polled(self, status: JobStatus) -> None:
        """A poll answered ``status``: an event when the provider's state changes."""
        self._polls += 1
        span = self._live()
        if span is None:
            return
        state = status.state.value
        if state == self._state:
            return
        self._state = state
        attributes: dict[str, Any] = {"tutopanda.state": state}
        if status.provider_status:
            attributes["tutopanda.provider_status"] = redact(status.provider_status)
        span.add_event("poll", attributes)

    def poll_failed(self, error: ProviderError, retry_in: float) -> None:
        """A poll failed with ``error`` and the job waits ``retry_in`` seconds to poll again."""
        self._polls += 1
        span = self._live()
        if span is None:
            return
        attributes: dict[str, Any] = {
            "error.type": error.code.value,
            "tutopanda.retry_in_s": round(retry_in, 3),
        }
        if error.status_code is not None:
            attributes["http.response.status_code"] = error.status_code
        span.add_event("poll_failed", attributes)

    def collected(self, result: ProducerResult) -> None:
        """The job's artefacts are collected: the actual cost, the usage, the provider job."""
        span = self._live()
        if span is None:
            return
        diagnostics = result.diagnostics
        span.set_attribute("tutopanda.artefacts", len(result.artefacts))
        if diagnostics.cost_usd is not None:
            span.set_attribute("tutopanda.cost.usd", diagnostics.cost_usd)
            span.set_attribute("tutopanda.cost.upper_bound", diagnostics.cost_upper_bound)
        if diagnostics.estimated_cost_usd is not None:
            span.set_attribute("tutopanda.cost.estimated_usd", diagnostics.estimated_cost_usd)
            span.set_attribute(
                "tutopanda.cost.estimated_upper_bound", diagnostics.estimated_cost_upper_bound
            )
        if diagnostics.provider_job_id:
            self._job_id(span, diagnostics.provider_job_id)
        if diagnostics.provider_seconds is not None:
            span.set_attribute("tutopanda.provider_seconds", diagnostics.provider_seconds)
        for key, name in _TOKENS.items():
            value = diagnostics.usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                span.set_attribute(name, value)

    def failed(self, error: ProviderError) -> None:
        """The job failed with ``error``: its code and HTTP status, status ERROR, and the
        exception (its message without secrets, and without the prompt unless opted in)."""
        span = self._live()
        if span is None:
            return
        message = self._safe(f"{error.code.value}: {error.reason}")
        span.set_attribute("error.type", error.code.value)
        span.set_attribute("tutopanda.error.code", error.code.value)
        span.set_attribute("tutopanda.error.retryable", error.retryable)
        if error.status_code is not None:
            span.set_attribute("http.response.status_code", error.status_code)
        job_id = error.provider_job_id or (
            error.handle.provider_job_id if hasattr(error.handle, "provider_job_id") else None
        )
        if isinstance(job_id, str) and job_id:
            self._job_id(span, job_id)
        self._exception(span, error, message)
        span.set_status(Status(StatusCode.ERROR, message))

    def _job_id(self, span: Span, provider_job_id: str) -> None:
        """The provider's job id (``gen_ai.response.id`` too). A mock job's id carries the
        job's inputs (the prompt among them): a digest of it stands in."""
        if self.request.mode == "mock":
            digest = hashlib.sha256(provider_job_id.encode()).hexdigest()[:16]
            provider_job_id = f"mock-sha256:{digest}"
        job_id = redact(provider_job_id)
        span.set_attribute("tutopanda.provider_job_id", job_id)
        span.set_attribute("gen_ai.response.id", job_id)

    def _unexpected(self, error: BaseException) -> None:
        span = self._live()
        if span is None:
            return
        if isinstance(error, GeneratorExit):
            return
        if isinstance(error, asyncio.CancelledError):  # the caller stopped: not a failure
            span.set_attribute("tutopanda.interrupted", True)
            return
        name = type(error).__name__
        span.set_attribute("error.type", name)
        self._exception(span, error, name)
        span.set_status(Status(StatusCode.ERROR, name))

    @staticmethod
    def _exception(span: Span, error: BaseException, message: str) -> None:
        """The ``exception`` event: type, safe message, and the stack (frames only: the
        formatted exception line would repeat the raw message)."""
        stack = "".join(traceback.format_tb(error.__traceback__))
        span.add_event(
            "exception",
            {
                "exception.type": f"{type(error).__module__}.{type(error).__qualname__}",
                "exception.message": message,
                "exception.stacktrace": redact(stack),
            },
        )

    def _safe(self, text: str) -> str:
        """``text`` with secrets masked, the job's text inputs (the prompt first of all) cut
        out unless opted in, and short."""
        text = redact(text)
        if not capture_content():
            fields = {**self.request.custom, **self.request.inputs}
            for name, value in sorted(fields.items(), key=lambda item: -len(str(item[1]))):
                if isinstance(value, str) and len(value) >= 8:
                    text = text.replace(value, f"[{name}]")
        return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _set_reused(span: Span, reused: bool) -> None:
    if span.is_recording():
        span.set_attribute("tutopanda.reused", reused)
        if reused:  # nothing paid again
            span.set_attribute("tutopanda.cost.usd", 0.0)


def _configured() -> bool:
    """True once a tracer provider is configured; until then (the default) the API's
    tracers are no-ops and a span is not worth opening."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def now_ns() -> int:
    """Nanoseconds since the epoch (a span's start)."""
    return time.time_ns()


@contextmanager
def traced_command(name: str, attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """A span around a client's command (e.g. ``tutopanda.movie``), current inside it so
    that the jobs it runs are its children. It ends with status ERROR when the command
    fails: an exception, or an exit with a non-zero code (its type and code only)."""
    with _tracer().start_as_current_span(
        name,
        kind=SpanKind.INTERNAL,
        attributes=redact(attributes or {}),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as error:
            code = getattr(error, "exit_code", None)
            if isinstance(code, int) and code == 0:
                raise
            description = type(error).__name__ + (f" {code}" if code is not None else "")
            if span.is_recording():
                span.set_attribute("error.type", type(error).__name__)
                if code is not None:
                    span.set_attribute("tutopanda.exit_code", code)
                span.set_status(Status(StatusCode.ERROR, description))
            raise


def configure_otlp(service_name: str) -> Callable[[], None] | None:
    """Export spans over OTLP/HTTP when an endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``
    or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; the exporter reads the standard OTel variables:
    headers, timeout, compression), as ``service_name`` unless ``OTEL_SERVICE_NAME`` (or
    ``OTEL_RESOURCE_ATTRIBUTES``) says otherwise. Nothing when no endpoint is set, when
    ``OTEL_SDK_DISABLED`` is true or ``OTEL_TRACES_EXPORTER`` is ``none``, or when a tracer
    provider is configured already (e.g. by ``opentelemetry-instrument``).

    Returns:
        A function that flushes the spans and shuts the provider down (call it on exit), or
        None when nothing was configured.
    """
    env = os.environ
    if not (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return None
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from producers import __version__

    attributes: dict[str, Any] = {"service.version": __version__}
    named = "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "").replace(" ", "")
    if not env.get("OTEL_SERVICE_NAME") and not named:
        attributes[SERVICE_NAME] = service_name
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider.shutdown
