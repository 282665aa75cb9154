"""The SDK engine, from a producer author's side: define, run, submit/poll/collect."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

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
from producers.sdk.handler import HandlerDeps
from producers.sdk.lifecycle import Job, WaitPolicy
from producers.sdk.runtime import CancellationSignal, ClientRegistry
from producers.storage.memory import MemoryStore
from producers.testing import JobContext, fake_secret_resolver, make_job_request


class EchoConfig(BaseModel):
    shout: bool = False


async def echo_invoke(rt: ProducerRuntime) -> Sequence[Artefact]:
    text = rt.templates.render("{{ prompt }}!", rt.inputs.all(), name="echo")
    token = rt.secrets.require("ECHO_TOKEN")
    rt.logger.info("calling echo", token=token)
    rt.diagnostics.set(extra={"token_seen": token})
    return [await rt.artefacts.text("text", text.upper() if rt.config.shout else text)]


ECHO = define_producer(
    name="echo",
    provider="echo",
    models=["echo-*"],
    kind=Kind.TEXT,
    config_schema=EchoConfig,
    invoke=echo_invoke,
)


def context_with(definition: Any, **secrets: str) -> JobContext:
    context = JobContext(
        secrets=fake_secret_resolver({"ECHO_TOKEN": "echo-secret-value-42", **secrets})
    )
    context.register(definition)
    return context


async def test_invoke_producer_runs_and_records_diagnostics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = context_with(ECHO)
    request = make_job_request("echo:echo-1", inputs={"prompt": "hi"}, config={"shout": True})
    with caplog.at_level(logging.INFO, logger="producers.sdk"):
        result = await context.handler(request).run(request)
    (artefact,) = result.artefacts
    assert artefact.value == "HI!"
    assert await context.store.read_bytes(artefact.uri) == b"HI!"
    assert artefact.diagnostics.mocked is True
    assert artefact.diagnostics.producer == "echo"
    assert artefact.diagnostics.duration_ms is not None
    events = [r.__dict__["event"] for r in caplog.records if "event" in r.__dict__]
    assert events[0] == "providers.sdk.invoke.start"
    assert events[-1] == "providers.sdk.invoke.end"
    # The secret the producer touched never reaches logs or diagnostics.
    assert "echo-secret-value-42" not in caplog.text
    assert "echo-secret-value-42" not in result.model_dump_json()
    assert "***" in caplog.text


async def test_unexpected_exception_becomes_unknown_provider_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(rt: ProducerRuntime) -> Sequence[Artefact]:
        raise RuntimeError(f"boom with {rt.secrets.require('ECHO_TOKEN')}")

    context = context_with(
        define_producer(name="b", provider="echo", models=["*"], kind=Kind.TEXT, invoke=broken)
    )
    request = make_job_request("echo:x", inputs={"prompt": "the prompt"})
    with (
        caplog.at_level(logging.INFO, logger="producers.sdk"),
        pytest.raises(ProviderError) as caught,
    ):
        await context.handler(request).run(request)
    error = caught.value
    assert error.code is ErrorCode.UNKNOWN
    assert error.retryable is False
    assert error.producer == "b" and error.model == "x" and error.provider == "echo"
    assert error.prompt == "the prompt"
    assert "echo-secret-value-42" not in str(error)
    assert "RuntimeError: boom with ***" in str(error)
    assert any(r.__dict__.get("event") == "providers.sdk.invoke.error" for r in caplog.records)


async def test_provider_error_keeps_retry_fields_and_gets_context() -> None:
    async def limited(rt: ProducerRuntime) -> Sequence[Artefact]:
        raise ProviderError(ErrorCode.RATE_LIMITED, "slow down", status_code=429, retry_after=7.0)

    context = context_with(
        define_producer(name="rl", provider="echo", models=["*"], kind=Kind.TEXT, invoke=limited)
    )
    request = make_job_request("echo:x", inputs={"prompt": "p"}, attempt=3)
    with pytest.raises(ProviderError) as caught:
        await context.handler(request).run(request)
    error = caught.value
    assert (error.code, error.retryable, error.retry_after, error.attempt) == (
        ErrorCode.RATE_LIMITED,
        True,
        7.0,
        3,
    )
    text = str(error)
    assert (
        "producer rl" in text
        and "echo:x" in text
        and "rate_limited: slow down" in text
        and "'p'" in text
    )


def test_define_producer_refuses_incomplete_definitions() -> None:
    async def invoke(rt: ProducerRuntime) -> Sequence[Artefact]:
        return []

    with pytest.raises(ValueError, match="missing: poll, collect"):
        define_producer(name="x", provider="p", models=["*"], kind=Kind.TEXT, submit=invoke)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        define_producer(
            name="x", provider="p", models=["*"], kind=Kind.TEXT, invoke=invoke, submit=invoke
        )  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one model"):
        define_producer(name="x", provider="p", models=[], kind=Kind.TEXT, invoke=invoke)


def test_exact_model_beats_wildcard_and_later_registration_wins() -> None:
    async def invoke(rt: ProducerRuntime) -> Sequence[Artefact]:
        return []

    wild = define_producer(
        name="wild", provider="echo", models=["*"], kind=Kind.TEXT, invoke=invoke
    )
    exact = define_producer(
        name="exact", provider="echo", models=["echo-1"], kind=Kind.TEXT, invoke=invoke
    )
    later = define_producer(
        name="later", provider="echo", models=["*"], kind=Kind.TEXT, invoke=invoke
    )
    airflow_only = define_producer(
        name="af",
        provider="echo",
        models=["echo-2"],
        kind=Kind.TEXT,
        invoke=invoke,
        environments=["airflow"],
    )
    from producers.registry import ProviderRegistry
    from producers.sdk.jobs import Descriptor

    registry = ProviderRegistry([wild, exact, later, airflow_only])
    assert registry.find(Descriptor.parse("echo:echo-1")).name == "exact"
    assert registry.find(Descriptor.parse("echo:other")).name == "later"
    assert registry.find(Descriptor.parse("echo:echo-2")).name == "later"
    assert registry.find(Descriptor.parse("echo:echo-2", environment="airflow")).name == "af"


class Countdown:
    """A fake long-running provider: each job needs ``polls`` polls to finish."""

    def __init__(self, polls: int = 2) -> None:
        self.polls = polls
        self.jobs: dict[str, int] = {}
        self.canceled: list[str] = []
        self.calls: list[str] = []


def long_definition(provider: Countdown) -> Any:
    async def prepare(rt: ProducerRuntime) -> Prepared:
        return Prepared(
            payload={"prompt": rt.inputs.require("prompt")},
            prompt=rt.inputs.get("prompt"),
            estimated_cost_usd=0.5,
            artefact_ids=("out",),
        )

    async def submit(rt: ProducerRuntime) -> Submission:
        provider.calls.append("submit")
        job_id = f"job-{len(provider.jobs)}"
        provider.jobs[job_id] = provider.polls
        return Submission(
            provider_job_id=job_id,
            state={"echo": rt.prepared.payload["prompt"] if rt.prepared else ""},
        )

    async def poll(rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
        provider.calls.append("poll")
        assert handle.provider_job_id is not None
        provider.jobs[handle.provider_job_id] -= 1
        done = provider.jobs[handle.provider_job_id] <= 0
        return JobStatus(state=JobState.SUCCEEDED if done else JobState.RUNNING, poll_after=0.01)

    async def collect(rt: ProducerRuntime, handle: JobHandle) -> Sequence[Artefact]:
        provider.calls.append("collect")
        return [await rt.artefacts.text("out", f"made {handle.state['echo']}")]

    async def cancel(rt: ProducerRuntime, handle: JobHandle) -> None:
        provider.canceled.append(str(handle.provider_job_id))

    return define_producer(
        name="long",
        provider="slow",
        models=["*"],
        kind=Kind.TEXT,
        prepare=prepare,
        submit=submit,
        poll=poll,
        collect=collect,
        cancel=cancel,
    )


async def test_run_submits_polls_and_collects() -> None:
    provider = Countdown(polls=3)
    context = context_with(long_definition(provider))
    request = make_job_request("slow:m", inputs={"prompt": "lava"})
    result = await context.handler(request).run(request)
    assert provider.calls == ["submit", "poll", "poll", "poll", "collect"]
    assert result.artefacts[0].value == "made lava"
    assert result.diagnostics.provider_job_id == "job-0"
    assert result.diagnostics.estimated_cost_usd == 0.5
    assert result.diagnostics.fingerprint and len(result.diagnostics.fingerprint) == 64


async def test_handle_is_json_and_another_handler_can_collect() -> None:
    """An Airflow trigger polls in another process: the handle must round-trip through JSON."""
    provider = Countdown(polls=1)
    definition = long_definition(provider)
    store = MemoryStore()
    request = make_job_request("slow:m", inputs={"prompt": "ash"})
    first = context_with(definition)
    first.store = store
    async with Job(first.handler(request), request) as job:
        handle = await job.start()
    assert isinstance(handle, JobHandle)
    revived = JobHandle.model_validate(json.loads(handle.model_dump_json()))
    second = context_with(definition)
    second.store = store
    # The other side gets no inputs at all: the handle holds the prepared job.
    bare = request.model_copy(update={"inputs": {}, "custom": {}})
    async with Job(second.handler(bare), bare) as job:
        await job.wait(revived)
        result = await job.collect(revived)
    assert result.artefacts[0].value == "made ash"
    assert result.diagnostics.provider_job_id == "job-0"
    assert result.diagnostics.payload == {"prompt": "ash"}
    assert provider.calls == ["submit", "poll", "collect"]


async def test_cancellation_cancels_at_the_provider() -> None:
    provider = Countdown(polls=10_000)
    context = context_with(long_definition(provider))
    request = make_job_request("slow:m", inputs={"prompt": "p"})
    signal = CancellationSignal()
    task = asyncio.create_task(context.handler(request).run(request, cancel=signal))
    await asyncio.sleep(0.05)
    signal.cancel("user pressed Ctrl-C")
    with pytest.raises(ProviderError) as caught:
        await task
    assert caught.value.code is ErrorCode.CANCELED
    assert provider.canceled == ["job-0"]


async def test_task_cancellation_also_cancels_at_the_provider() -> None:
    provider = Countdown(polls=10_000)
    context = context_with(long_definition(provider))
    request = make_job_request("slow:m", inputs={"prompt": "p"})
    task = asyncio.create_task(context.handler(request).run(request))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert provider.canceled == ["job-0"]


async def test_failed_poll_state_is_model_failed() -> None:
    async def prepare(rt: ProducerRuntime) -> Prepared:
        return Prepared(payload={}, prompt="p")

    async def submit(rt: ProducerRuntime) -> Submission:
        return Submission(provider_job_id="j1")

    async def poll(rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
        return JobStatus(state=JobState.FAILED, detail="CUDA out of memory")

    async def collect(rt: ProducerRuntime, handle: JobHandle) -> Sequence[Artefact]:
        raise AssertionError("must not collect a failed job")

    context = context_with(
        define_producer(
            name="f",
            provider="slow",
            models=["*"],
            kind=Kind.TEXT,
            prepare=prepare,
            submit=submit,
            poll=poll,
            collect=collect,
        )
    )
    request = make_job_request("slow:m")
    with pytest.raises(ProviderError) as caught:
        await context.handler(request).run(request)
    assert (caught.value.code, caught.value.retryable, caught.value.provider_job_id) == (
        ErrorCode.MODEL_FAILED,
        False,
        "j1",
    )
    assert "CUDA out of memory" in str(caught.value)


async def test_live_mode_without_an_adapter_says_so() -> None:
    context = context_with(ECHO)
    context.clients = ClientRegistry()
    request = make_job_request("echo:echo-1", mode="live", inputs={"prompt": "x"})
    deps = HandlerDeps(store=context.store, secrets=context.secrets, clients=ClientRegistry())

    async def uses_client(rt: ProducerRuntime) -> Sequence[Artefact]:
        rt.clients.get("echo")
        return []

    context.register(
        define_producer(
            name="c", provider="echo", models=["echo-1"], kind=Kind.TEXT, invoke=uses_client
        )
    )
    handler = context.registry.resolve(request.descriptor, "live", deps)
    with pytest.raises(ProviderError, match="live mode is not available for provider 'echo'"):
        await handler.run(request)


async def test_artefact_mime_must_match_the_kind() -> None:
    async def wrong(rt: ProducerRuntime) -> Sequence[Artefact]:
        return [await rt.artefacts.blob("image[0]", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40)]

    context = context_with(
        define_producer(
            name="w", provider="echo", models=["*"], kind=Kind.TEXT_TO_IMAGE, invoke=wrong
        )
    )
    request = make_job_request("echo:x")
    with pytest.raises(ProviderError) as caught:
        await context.handler(request).run(request)
    assert caught.value.code is ErrorCode.MALFORMED_OUTPUT
    assert "audio/wav" in str(caught.value) and "image/*" in str(caught.value)


async def test_artefact_ids_are_checked_against_produces() -> None:
    context = context_with(ECHO)
    request = make_job_request("echo:echo-1", inputs={"prompt": "x"}, produces=("script",))
    with pytest.raises(
        ProviderError, match="'text' is not one this job produces; expected: script"
    ):
        await context.handler(request).run(request)


async def test_a_retry_resumes_the_submitted_job_instead_of_paying_twice() -> None:
    provider = Countdown(polls=2)
    definition = long_definition(provider)
    original_poll = definition.poll
    # One more failed poll in a row than the wait loop tolerates: the job fails, retryable.
    failures = {"left": WaitPolicy().max_poll_failures + 1}

    async def flaky_poll(rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
        if failures["left"]:
            failures["left"] -= 1
            raise ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, "502 Bad Gateway", status_code=502)
        assert original_poll is not None
        return await original_poll(rt, handle)

    import dataclasses

    context = context_with(dataclasses.replace(definition, poll=flaky_poll))
    request = make_job_request("slow:m", inputs={"prompt": "p"})
    handler = context.handler(request)
    with pytest.raises(ProviderError) as caught:
        await handler.run(request)
    assert caught.value.retryable is True
    assert caught.value.handle is not None
    assert caught.value.provider_job_id == "job-0"
    retry = request.model_copy(update={"attempt": 2})
    result = await handler.run(retry, resume=caught.value.handle)
    assert provider.calls.count("submit") == 1
    assert provider.calls.count("poll") == 2  # the failed polls never reached the provider
    assert result.diagnostics.provider_job_id == "job-0"
    assert result.diagnostics.attempt == 2


async def test_shared_adapters_are_not_closed_by_a_job() -> None:
    from producers.sdk.runtime import ClientContext, close_clients

    class Adapter:
        closed = False

        async def aclose(self) -> None:
            Adapter.closed = True

    async def uses(rt: ProducerRuntime) -> Sequence[Artefact]:
        rt.clients.get("echo")
        await asyncio.sleep(0.01)
        assert not Adapter.closed, "another job closed the adapter this job is using"
        return [await rt.artefacts.text("text", "ok")]

    registry = ClientRegistry()

    def build(context: ClientContext) -> Adapter:
        return Adapter()

    registry.register("echo", "mock", build)
    context = context_with(
        define_producer(name="u", provider="echo", models=["*"], kind=Kind.TEXT, invoke=uses)
    )
    context.clients = registry
    requests = [make_job_request("echo:m", inputs={"prompt": str(i)}) for i in range(4)]
    await asyncio.gather(*(context.handler(r).run(r) for r in requests))
    assert Adapter.closed is False and len(context.shared_clients) == 1
    await close_clients(context.shared_clients)
    assert Adapter.closed is True and context.shared_clients == {}
