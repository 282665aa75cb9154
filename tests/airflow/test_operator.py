"""ProducerOperator under Airflow's own test runner (``dag.test()``), mock and live."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow

MODEL = "replicate:bytedance/seedream-4"
OPENAI_MODEL = "openai:gpt-5-mini"

DAG_FILE = """\
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_tutopanda.operators import ProducerOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False) as dag:
{tasks}
"""


@pytest.fixture
def run_dag(airflow_db: Path, airflow_home: Path) -> Callable[..., dict[str, Any]]:
    """Write a DAG file into the dags folder (``dag.test()`` syncs it from there), run it
    with ``dag.test()``, and return its task instances and return values."""
    dags = airflow_home / "dags"
    dags.mkdir(exist_ok=True)

    def run(dag_id: str, tasks: str) -> dict[str, Any]:
        path = dags / f"{dag_id}.py"
        path.write_text(DAG_FILE.format(dag_id=dag_id, tasks=textwrap.indent(tasks, "    ")))
        spec = importlib.util.spec_from_file_location(f"tp_test_{dag_id}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dag_run = module.dag.test()
        return {"run": dag_run, "tis": _task_instances(dag_run), "xcom": _returns(dag_run)}

    return run


def _task_instances(dag_run: Any) -> dict[tuple[str, int], Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {
            (ti.task_id, ti.map_index): (ti.state, ti.try_number)
            for ti in dag_run.get_task_instances(session=session)
        }


def _returns(dag_run: Any, key: str = "return_value") -> dict[tuple[str, int], Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.key == key,
            )
        ).all()
        return {(x.task_id, x.map_index): XComModel.deserialize_value(x) for x in rows}


def _exists(store: Path, uri: str) -> bool:
    from producers.storage import open_store

    return asyncio.run(open_store(str(store)).exists(uri))


def _files(store: Path) -> set[str]:
    return {str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()}


# -- mock mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["inline", "deferrable"])
def test_mock_run_returns_small_records_then_reuses(
    run_dag: Callable[..., dict[str, Any]], tmp_path: Path, deferrable: bool
) -> None:
    store = tmp_path / "store"
    dag_id = f"tp_mock_{'deferred' if deferrable else 'inline'}"
    tasks = f"""\
ProducerOperator(
    task_id="image", model={MODEL!r}, inputs={{"prompt": "a red panda"}},
    store={str(store)!r}, deferrable={deferrable},
)
ProducerOperator(
    task_id="text", model={OPENAI_MODEL!r}, inputs={{"prompt": "a story"}},
    store={str(store)!r}, deferrable={deferrable},
)
ProducerOperator.partial(
    task_id="many", model={MODEL!r}, store={str(store)!r}, deferrable={deferrable},
).expand(inputs=[{{"prompt": "one"}}, {{"prompt": "two"}}])
"""
    first = run_dag(dag_id, tasks)
    assert first["run"].state == "success", first["tis"]
    keys = {("image", -1), ("text", -1), ("many", 0), ("many", 1)}
    assert set(first["xcom"]) == keys
    for records in first["xcom"].values():
        assert records, "every task returns at least one artefact record"
        assert len(json.dumps(records)) < 20_000, "XCom carries records, never blobs"
        for record in records:
            assert {"id", "uri", "sha256", "mime_type"} <= set(record)
            assert _exists(store, record["uri"])
    before = _files(store)

    second = run_dag(dag_id, tasks)
    assert second["run"].state == "success", second["tis"]
    assert _files(store) == before, "a re-run with unchanged inputs makes no new artefact"
    for key in keys:
        assert [r["sha256"] for r in second["xcom"][key]] == [
            r["sha256"] for r in first["xcom"][key]
        ]


def test_bad_model_id_fails_at_parse_time() -> None:
    from airflow_provider_tutopanda.operators import ProducerOperator

    with pytest.raises(ValueError, match="provider:model"):
        ProducerOperator(task_id="bad", model="seedream-4")
    with pytest.raises(ValueError, match="mode"):
        ProducerOperator(task_id="bad_mode", model=MODEL, mode="paid")


def test_defaults_pool_retry_policy_and_trigger_serializes() -> None:
    from airflow_provider_tutopanda.operators import ProducerOperator
    from airflow_provider_tutopanda.pools import pool_for
    from airflow_provider_tutopanda.retry import ProviderErrorRetryPolicy
    from airflow_provider_tutopanda.triggers import ProducerTrigger

    op = ProducerOperator(task_id="op", model=MODEL)
    assert op.pool == pool_for("replicate")
    assert isinstance(op.retry_policy, ProviderErrorRetryPolicy)
    path, kwargs = ProducerTrigger(
        job={"descriptor": {"provider": "replicate", "model": "m"}},
        handle={},
        store="s",
        policy={"poll_interval": 1.0},
    ).serialize()
    assert path == "airflow_provider_tutopanda.triggers.producer.ProducerTrigger"
    json.dumps(kwargs)  # plain kwargs only


def test_artefact_link_points_at_the_first_uri() -> None:
    from airflow_provider_tutopanda.links.artefact import first_artefact_uri

    assert first_artefact_uri([{"uri": "file:///a.png"}, {"uri": "file:///b.png"}]) == (
        "file:///a.png"
    )
    assert first_artefact_uri(None) == ""


# -- live mode against the fake Replicate -----------------------------------------------------


@pytest.fixture
def live_replicate(live_fakes: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fake Replicate, its token given only through the Airflow connection."""
    from producers.testing.fakes import FAKE_TOKEN

    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_REPLICATE_DEFAULT",
        json.dumps({"conn_type": "replicate", "password": FAKE_TOKEN}),
    )
    return live_fakes.replicate


def _live_task(store: Path, deferrable: bool = False) -> str:
    return f"""\
ProducerOperator(
    task_id="image", model={MODEL!r}, inputs={{"prompt": "a red panda"}}, mode="live",
    store={str(store)!r}, retries=2, retry_delay=timedelta(0), poll_interval=0.01,
    deferrable={deferrable},
)
"""


@pytest.mark.parametrize("deferrable", [False, True], ids=["inline", "deferrable"])
def test_live_retryable_fault_resumes_the_same_prediction(
    run_dag: Callable[..., dict[str, Any]],
    live_replicate: Any,
    tmp_path: Path,
    deferrable: bool,
) -> None:
    from producers.sdk.lifecycle import WaitPolicy
    from producers.testing.fakes import Fault

    # One failed poll more than the wait loop tolerates: the task fails, Airflow retries it.
    live_replicate.inject(Fault.status(503), route="get", times=WaitPolicy().max_poll_failures + 1)
    result = run_dag(f"tp_live_retry_{int(deferrable)}", _live_task(tmp_path / "s", deferrable))
    assert result["run"].state == "success", result["tis"]
    _, try_number = result["tis"][("image", -1)]
    assert try_number == 2, "Airflow retried the task once"
    assert live_replicate.count("create") == 1, "the retry resumed, it did not pay twice"
    (record,) = result["xcom"][("image", -1)]
    assert _exists(tmp_path / "s", record["uri"])


def test_live_safety_block_fails_at_once_with_the_full_message(
    run_dag: Callable[..., dict[str, Any]],
    live_replicate: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_tutopanda.operators import ProducerFailed, ProducerOperator
    from producers.testing.fakes import Fault

    raised: list[BaseException] = []
    original = ProducerOperator.execute

    def spy(self: ProducerOperator, context: Any) -> Any:
        try:
            return original(self, context)
        except Exception as error:
            raised.append(error)
            raise

    monkeypatch.setattr(ProducerOperator, "execute", spy)
    live_replicate.inject(Fault.nsfw(), route="get")
    result = run_dag("tp_live_nsfw", _live_task(tmp_path / "s"))
    assert result["run"].state == "failed"
    state, try_number = result["tis"][("image", -1)]
    assert (state, try_number) == ("failed", 1), "no retry for a safety block"
    assert live_replicate.count("create") == 1
    (error,) = raised
    assert isinstance(error, ProducerFailed)
    message = str(error)
    assert error.error.code.value in message
    for part in ("replicate:bytedance/seedream-4", "producer", "a red panda", error.error.reason):
        assert part in message
    # the failure is recorded where the UI reads it: the job record, with the error in place
    job = _returns(result["run"], "tutopanda_job")[("image", -1)]
    assert job["status"] == "failed"
    assert job["error"]["code"] == error.error.code.value
    assert job["error"]["prompt"] == "a red panda"
    assert job["error"]["model"] == "bytedance/seedream-4"
    assert job["error"]["reason"] == error.error.reason


FLUX = "replicate:black-forest-labs/flux-dev"


def _flux_creates(fake: Any) -> int:
    """Creates of flux-dev: pinned to a version, so ``POST /v1/predictions``."""
    return sum(1 for r in fake.requests if r.route == "create" and r.path == "/v1/predictions")


@pytest.mark.parametrize("deferrable", [False, True], ids=["inline", "deferrable"])
def test_a_model_whose_provider_stays_down_falls_back_on_the_last_try(
    run_dag: Callable[..., dict[str, Any]],
    live_replicate: Any,
    tmp_path: Path,
    deferrable: bool,
) -> None:
    from producers.testing.fakes import Fault

    live_replicate.inject(
        Fault.status(503), route="create", times=20, path_contains="bytedance/seedream-4"
    )
    tasks = f"""\
ProducerOperator(
    task_id="image", model={MODEL!r}, inputs={{"prompt": "a red panda"}}, mode="live",
    store={str(tmp_path / "s")!r}, retries=1, retry_delay=timedelta(0), poll_interval=0.01,
    deferrable={deferrable}, fallbacks=[{FLUX!r}], custom={{"size": "2K"}},
)
"""
    result = run_dag(f"tp_fallback_{int(deferrable)}", tasks)
    assert result["run"].state == "success", result["tis"]
    _, try_number = result["tis"][("image", -1)]
    assert try_number == 2, "the model's own retry came first"
    seedream = [r for r in live_replicate.requests if "seedream-4" in r.path]
    assert [r.status for r in seedream] == [503, 503]
    assert _flux_creates(live_replicate) == 1
    (flux_create,) = [r for r in live_replicate.requests if r.path == "/v1/predictions"]
    assert "size" not in flux_create.json["input"]  # custom belongs to the first model
    job = _returns(result["run"], "tutopanda_job")[("image", -1)]
    assert job["status"] == "succeeded" and job["model_id"] == FLUX
    (passed,) = job["passed_over"]
    assert passed["model_id"] == MODEL
    assert passed["code"] == "provider_unavailable" and passed["status_code"] == 503
    (record,) = result["xcom"][("image", -1)]
    assert _exists(tmp_path / "s", record["uri"])


def test_a_failed_model_falls_back_at_once_and_a_refused_input_never_does(
    run_dag: Callable[..., dict[str, Any]], live_replicate: Any, tmp_path: Path
) -> None:
    from producers.testing.fakes import Fault

    live_replicate.inject(Fault.failed("CUDA out of memory"), route="get")
    tasks = f"""\
ProducerOperator(
    task_id="image", model={MODEL!r}, inputs={{"prompt": "a red panda"}}, mode="live",
    store={str(tmp_path / "s")!r}, retries=2, retry_delay=timedelta(0), poll_interval=0.01,
    fallbacks=[{FLUX!r}],
)
"""
    result = run_dag("tp_fallback_now", tasks)
    assert result["run"].state == "success", result["tis"]
    assert result["tis"][("image", -1)] == ("success", 1), "no retry of a failed model"
    job = _returns(result["run"], "tutopanda_job")[("image", -1)]
    assert job["model_id"] == FLUX and job["passed_over"][0]["code"] == "model_failed"
    assert job["passed_over"][0]["provider_job_id"]

    live_replicate.reset()
    live_replicate.inject(Fault.nsfw(), route="get")
    result = run_dag("tp_fallback_never", tasks.replace("a red panda", "a blue panda"))
    assert result["run"].state == "failed"
    assert _flux_creates(live_replicate) == 0
    job = _returns(result["run"], "tutopanda_job")[("image", -1)]
    assert job["status"] == "failed" and job["error"]["code"] == "safety_blocked"
    assert job["passed_over"] == []


# -- the trigger ------------------------------------------------------------------------------


def _trigger_events(answers: list[Any]) -> tuple[list[Any], list[float]]:
    """Run a trigger whose provider answers its polls from ``answers``; its events and sleeps."""
    import time

    from airflow_provider_tutopanda.triggers.producer import ProducerTrigger
    from producers.sdk import Descriptor, JobHandle, Kind, Prepared, define_producer
    from producers.sdk.handler import HandlerDeps, ProducerHandler
    from producers.sdk.jobs import JobRequest
    from producers.sdk.lifecycle import Job, WaitPolicy
    from producers.storage.memory import MemoryStore

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def poll(rt: Any, handle: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def never(*_: Any) -> Any:
        raise AssertionError("not called")

    definition = define_producer(
        name="scripted", provider="scripted", models=["*"], kind=Kind.TEXT_TO_IMAGE,
        submit=never, poll=poll, collect=never,
    )  # fmt: skip
    descriptor = Descriptor.parse("scripted:m")
    handler = ProducerHandler(definition, descriptor, "live", HandlerDeps(store=MemoryStore()))
    request = JobRequest(job_id="j", descriptor=descriptor, mode="live")
    handle = JobHandle(
        job_id="j",
        descriptor=descriptor,
        mode="live",
        provider_job_id="p-1",
        submitted_at=time.time(),
        prepared=Prepared(payload={}),
    )

    async def job(self: ProducerTrigger) -> tuple[Job, JobHandle]:
        return Job(handler, request, policy=WaitPolicy(**self.policy), sleep=sleep), handle

    trigger = ProducerTrigger(
        job=request.model_dump(mode="json"),
        handle=handle.model_dump(mode="json"),
        store="s",
        policy={"poll_interval": 1.0},
    )
    trigger._job = job.__get__(trigger)  # type: ignore[method-assign]

    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect()), slept


def test_trigger_waits_out_a_rate_limit_and_failed_polls_then_reports_done() -> None:
    from producers.sdk.errors import ProviderError
    from producers.sdk.jobs import JobState, JobStatus

    answers = [
        JobStatus(state=JobState.RUNNING),
        ProviderError("rate_limited", "slow down", retry_after=9),
        ProviderError("provider_unavailable", "502 Bad Gateway"),
        ProviderError("provider_unavailable", "502 Bad Gateway"),
        JobStatus(state=JobState.SUCCEEDED),
    ]
    events, slept = _trigger_events(answers)
    assert [e.payload["status"] for e in events] == ["done"]
    assert slept == [1.0, 9, 1.0, 1.0]


def test_trigger_reports_a_failure_as_one_typed_error_event() -> None:
    from airflow_provider_tutopanda.triggers.jobs import JobEvent
    from producers.sdk.errors import ProviderError

    events, _ = _trigger_events([ProviderError("safety_blocked", "nsfw")])
    (event,) = events
    landed = JobEvent.model_validate(event.payload)
    assert landed.status == "error"
    error = landed.provider_error()
    assert (error.code.value, error.reason) == ("safety_blocked", "nsfw")
    assert error.handle is not None and error.handle.provider_job_id == "p-1"


def test_a_job_event_is_checked_where_it_lands() -> None:
    from pydantic import ValidationError

    from airflow_provider_tutopanda.triggers.jobs import JobEvent

    handle = {"job_id": "j", "descriptor": {"provider": "p", "model": "m"}, "mode": "mock"}
    for bad in (
        {"status": "done"},  # no handle
        {"status": "error", "handle": handle},  # an error event without its error
        {"status": "done", "handle": handle, "error": {"code": "unknown"}},
        {"status": "finished", "handle": handle},
        {"status": "done", "handle": handle, "_result": {}},  # no magic keys
    ):
        with pytest.raises(ValidationError):
            JobEvent.model_validate(bad)


def test_trigger_with_finish_collects_and_ends_the_task_itself(tmp_path: Path) -> None:
    from airflow.triggers.base import TaskSuccessEvent

    from airflow_provider_tutopanda.triggers.jobs import job_handler
    from airflow_provider_tutopanda.triggers.producer import ProducerTrigger
    from producers.sdk import reuse
    from producers.sdk.jobs import Descriptor, JobHandle, JobRequest
    from producers.sdk.lifecycle import Job

    store = str(tmp_path / "store")
    request = JobRequest(
        descriptor=Descriptor.parse(MODEL), mode="mock", inputs={"prompt": "a red panda"}
    )
    handler = job_handler(request, store, None)

    async def scenario() -> tuple[list[Any], JobHandle]:
        async with Job(handler, request) as job:
            handle = await job.start()
        assert isinstance(handle, JobHandle)
        trigger = ProducerTrigger(
            job=request.for_waiting().model_dump(mode="json"),
            handle=handle.model_dump(mode="json"),
            store=store,
            finish={"where": {"key": "image[0]", "role": "image"}},
        )
        return [event async for event in trigger.run()], handle

    events, handle = asyncio.run(scenario())
    (event,) = events
    assert isinstance(event, TaskSuccessEvent)
    assert event.xcoms is not None
    (record,) = event.xcoms["return_value"]
    job = event.xcoms["tutopanda_job"]
    assert job["key"] == "image[0]" and job["status"] == "succeeded"
    assert job["inputs"] == {"prompt": "a red panda"}
    assert job["artefacts"][0]["uri"] == record["uri"]
    assert _exists(tmp_path / "store", record["uri"])
    assert handle.prepared is not None
    fingerprint = handler.fingerprint(handle.prepared)
    remembered = asyncio.run(reuse.lookup(handler.deps.store, fingerprint, "mock"))
    assert remembered is not None and remembered.artefacts[0].uri == record["uri"]


def test_a_trigger_that_submits_records_it_and_a_restarted_one_never_pays_twice(
    live_replicate: Any, tmp_path: Path
) -> None:
    """A deferring task leaves the submission to its trigger (its pass needs no provider
    client). The trigger records the prediction in the store at once: killed mid-wait and
    started again (a triggerer moved it), it resumes that prediction."""
    from airflow.triggers.base import TaskSuccessEvent

    from airflow_provider_tutopanda.triggers.producer import ProducerTrigger
    from producers.sdk.jobs import Descriptor, JobRequest

    live_replicate.configure({"latency": 0.5})
    request = JobRequest(
        job_id="run-1.image[0]",
        descriptor=Descriptor.parse(MODEL, environment="airflow"),
        mode="live",
        inputs={"prompt": "a red panda"},
    )
    kwargs = {
        "job": request.for_waiting().model_dump(mode="json"),
        "handle": None,
        "store": str(tmp_path / "store"),
        "policy": {"poll_interval": 0.05},
        "finish": {"where": {"key": "image[0]", "role": "image", "segment": 0}},
    }

    async def killed_mid_wait() -> None:
        run = ProducerTrigger(**kwargs).run()
        task = asyncio.ensure_future(run.__anext__())
        while live_replicate.count("get") == 0:  # noqa: ASYNC110 (the fake runs in a thread)
            await asyncio.sleep(0.01)
        task.cancel()  # the triggerer stopped: nothing cancelled at the provider
        with pytest.raises(asyncio.CancelledError):
            await task

    async def restarted() -> list[Any]:
        return [event async for event in ProducerTrigger(**kwargs).run()]

    asyncio.run(killed_mid_wait())
    assert live_replicate.count("create") == 1 and live_replicate.count("cancel") == 0
    (event,) = asyncio.run(restarted())
    assert isinstance(event, TaskSuccessEvent) and event.xcoms is not None
    assert live_replicate.count("create") == 1  # resumed, never a second prediction
    (record,) = event.xcoms["return_value"]
    assert _exists(tmp_path / "store", record["uri"])
