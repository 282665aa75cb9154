"""The job span under Airflow: a child of the task's span on the worker, and in the
triggerer through the W3C ``traceparent`` the task carries in the trigger's kwargs.

``dag.test()`` runs tasks in-process and makes no task span of its own (Airflow's task
runner makes ``worker.<task_id>`` only in a task subprocess), so the tests open one around
it, as the task runner does when ``[traces] otel_on`` is set.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from opentelemetry.util._once import Once

pytestmark = pytest.mark.airflow

MODEL = "replicate:bytedance/seedream-4"
PROMPT = "a red panda eating bamboo"

DAG_FILE = """\
import pendulum
from airflow.sdk import DAG

from airflow_provider_tutopanda.operators import ProducerOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False) as dag:
{tasks}
"""


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


@pytest.fixture
def carried(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The ``traceparent`` of every trigger a task deferred with (its serialized kwargs)."""
    from airflow_provider_tutopanda.triggers.producer import ProducerTrigger

    seen: list[str | None] = []
    original = ProducerTrigger.serialize

    def spy(self: ProducerTrigger) -> tuple[str, dict[str, Any]]:
        path, kwargs = original(self)
        seen.append(kwargs["traceparent"])
        return path, kwargs

    monkeypatch.setattr(ProducerTrigger, "serialize", spy)
    return seen


@pytest.fixture
def run_dag(airflow_db: Path, airflow_home: Path) -> Callable[..., Any]:
    """Write a DAG file into the dags folder and run it with ``dag.test()``."""
    dags = airflow_home / "dags"
    dags.mkdir(exist_ok=True)

    def run(dag_id: str, tasks: str) -> Any:
        path = dags / f"{dag_id}.py"
        path.write_text(DAG_FILE.format(dag_id=dag_id, tasks=textwrap.indent(tasks, "    ")))
        spec = importlib.util.spec_from_file_location(f"tp_trace_{dag_id}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.dag.test()

    return run


def _task(store: Path, *, deferrable: bool, mode: str = "mock") -> str:
    return f"""\
ProducerOperator(
    task_id="image", model={MODEL!r}, inputs={{"prompt": {PROMPT!r}}}, mode={mode!r},
    store={str(store)!r}, deferrable={deferrable}, poll_interval=0.01,
)
"""


def job_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("tutopanda.job")]


def everything_said(span: ReadableSpan) -> str:
    events = [{"name": e.name, **dict(e.attributes or {})} for e in span.events]
    return json.dumps(
        {"attributes": dict(span.attributes or {}), "events": events, "status": span.status},
        default=str,
    )


def _traceparent_of(span: trace.Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-01"


# -- dag.test() ------------------------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["inline", "deferrable"])
def test_the_job_span_is_a_child_of_the_tasks_span_and_the_trigger_carries_it(
    run_dag: Callable[..., Any],
    spans: InMemorySpanExporter,
    carried: list[str | None],
    tmp_path: Path,
    deferrable: bool,
) -> None:
    tracer = trace.get_tracer("airflow.sdk.execution_time.task_runner")
    with tracer.start_as_current_span("worker.image") as task_span:
        dag_run = run_dag(f"tp_trace_{int(deferrable)}", _task(tmp_path, deferrable=deferrable))
    assert dag_run.state == "success"
    task = task_span.get_span_context()
    jobs = job_spans(spans)
    for span in jobs:
        assert span.name == "tutopanda.job image"
        assert span.context.trace_id == task.trace_id
        assert span.parent is not None and span.parent.span_id == task.span_id
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.request.model"] == "bytedance/seedream-4"
        assert attributes["tutopanda.environment"] == "airflow"
        assert attributes["tutopanda.job.key"] == "image"
        assert PROMPT not in everything_said(span)
    where = [dict(s.attributes or {})["tutopanda.where"] for s in jobs]
    if not deferrable:
        assert where == ["worker"] and carried == []
        assert dict(jobs[0].attributes or {})["tutopanda.artefacts"] == 1
        return
    # the worker prepared and deferred; the triggerer submitted, waited and collected
    assert where == ["worker", "triggerer"]
    worker, triggerer = (dict(s.attributes or {}) for s in jobs)
    assert worker["tutopanda.deferred"] is True
    assert triggerer["tutopanda.artefacts"] == 1 and "tutopanda.provider_job_id" in triggerer
    (traceparent,) = carried
    assert traceparent is not None
    assert traceparent.split("-")[:3] == _traceparent_of(task_span).split("-")[:3]


def test_with_no_tracing_nothing_is_carried_and_the_task_runs(
    run_dag: Callable[..., Any], carried: list[str | None], tmp_path: Path
) -> None:
    with global_provider(None):
        dag_run = run_dag("tp_trace_off", _task(tmp_path, deferrable=True))
    assert dag_run.state == "success"
    assert carried == [None]


def test_a_failed_live_job_in_the_triggerer_has_its_error_and_no_secret(
    run_dag: Callable[..., Any],
    spans: InMemorySpanExporter,
    live_fakes: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from producers.testing.fakes import FAKE_TOKEN, Fault

    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_REPLICATE_DEFAULT",
        json.dumps({"conn_type": "replicate", "password": FAKE_TOKEN}),
    )
    live_fakes.replicate.inject(Fault.nsfw(), route="get")
    tracer = trace.get_tracer("airflow.sdk.execution_time.task_runner")
    with tracer.start_as_current_span("worker.image"):
        dag_run = run_dag("tp_trace_nsfw", _task(tmp_path, deferrable=True, mode="live"))
    assert dag_run.state == "failed"
    failed = [s for s in job_spans(spans) if s.status.status_code is StatusCode.ERROR]
    assert failed, "the job's failure is on its span"
    for span in failed:
        attributes = dict(span.attributes or {})
        assert attributes["error.type"] == "safety_blocked"
        assert attributes["tutopanda.mode"] == "live"
        assert "tutopanda.provider_job_id" in attributes
        assert any(e.name == "exception" for e in span.events)
    for span in job_spans(spans):
        said = everything_said(span)
        assert FAKE_TOKEN not in said and PROMPT not in said


# -- the trigger in the triggerer ----------------------------------------------------------


def _run_trigger(tmp_path: Path, traceparent: str | None) -> list[Any]:
    """A mock job submitted by its trigger (as a deferring task leaves it), run to the end."""
    from airflow_provider_tutopanda.triggers.producer import ProducerTrigger
    from producers.sdk.jobs import Descriptor, JobRequest

    request = JobRequest(
        job_id="run-1.image[0]",
        run_id="run-1",
        descriptor=Descriptor.parse(MODEL, environment="airflow"),
        mode="mock",
        inputs={"prompt": PROMPT},
    )
    _path, kwargs = ProducerTrigger(
        job=request.for_waiting().model_dump(mode="json"),
        handle=None,
        store=str(tmp_path / "store"),
        finish={"where": {"key": "image[0]", "role": "image"}},
        traceparent=traceparent,
    ).serialize()
    trigger = ProducerTrigger(**json.loads(json.dumps(kwargs)))  # as the triggerer rebuilds it

    async def events() -> list[Any]:
        return [event async for event in trigger.run()]

    return asyncio.run(events())


def test_in_the_triggerer_the_job_span_is_a_child_of_the_carried_task_span(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("worker.image") as task_span:
        carried = _traceparent_of(task_span)
    assert not trace.get_current_span().get_span_context().is_valid  # another process
    (event,) = _run_trigger(tmp_path, carried)
    assert event.xcoms["tutopanda_job"]["status"] == "succeeded"
    (span,) = job_spans(spans)
    assert span.name == "tutopanda.job image"
    assert span.context.trace_id == task_span.get_span_context().trace_id
    assert span.parent is not None and span.parent.span_id == task_span.get_span_context().span_id
    assert span.parent.is_remote
    attributes = dict(span.attributes or {})
    assert attributes["tutopanda.where"] == "triggerer"
    assert attributes["tutopanda.reused"] is False and attributes["tutopanda.artefacts"] == 1
    assert [e.name for e in span.events][:2] == ["submitted", "poll"]


def test_in_the_triggerer_airflows_own_trigger_span_of_the_task_is_the_nearer_parent(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("worker.image") as task_span:
        carried = _traceparent_of(task_span)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(task_span.get_span_context()))
    with tracer.start_as_current_span("trigger.image", context=parent) as trigger_span:
        _run_trigger(tmp_path, carried)
    (span,) = job_spans(spans)
    assert span.parent is not None
    assert span.parent.span_id == trigger_span.get_span_context().span_id


def test_a_trigger_serialized_before_traces_existed_still_runs(tmp_path: Path) -> None:
    from airflow_provider_tutopanda.triggers.producer import ProducerTrigger

    (event,) = _run_trigger(tmp_path, None)
    assert event.xcoms["tutopanda_job"]["status"] == "succeeded"
    _, kwargs = ProducerTrigger(job={}, handle=None, store="s").serialize()
    assert kwargs["traceparent"] is None
