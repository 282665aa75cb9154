"""The provider's own words survive in error records: raw, status code, provider job id."""

from __future__ import annotations

import json
import logging

import pytest

from producers.sdk.errors import ErrorCode, ProviderError, raw_summary
from producers.sdk.secrets import register_secret


def test_raw_keeps_the_providers_code_type_and_status_and_nothing_else() -> None:
    error = ProviderError(
        ErrorCode.QUOTA_EXCEEDED,
        "You exceeded your current quota",
        status_code=429,
        provider="openai",
        provider_job_id="resp_1",
        raw={
            "status": 429,
            "code": "insufficient_quota",
            "type": "insufficient_quota",
            "param": None,
            "message": "You exceeded your current quota, please check your plan.",
            "request_id": "req_abc",
            "body": {"echo": "the whole prompt"},
            "headers": {"set-cookie": "x"},
            "retryable": True,
        },
    )
    record = error.to_dict()
    assert record["raw"] == {
        "status": 429,
        "code": "insufficient_quota",
        "type": "insufficient_quota",
        "message": "You exceeded your current quota, please check your plan.",
        "request_id": "req_abc",
    }
    assert record["code"] == "quota_exceeded" and record["retryable"] is False
    json.dumps(record)  # JSON-able as XCom and manifests need
    again = ProviderError.from_dict(record)
    assert again.to_dict() == record


def test_raw_is_cut_and_redacted() -> None:
    register_secret("r8_SECRETSECRETSECRET1234")
    raw = {"detail": "token r8_SECRETSECRETSECRET1234 is invalid " + "x" * 2000, "title": "Bad"}
    summary = raw_summary(raw)
    assert summary is not None
    assert "r8_SECRETSECRETSECRET1234" not in json.dumps(summary)
    assert len(summary["detail"]) == 500 and summary["detail"].endswith("...")
    assert raw_summary("a string") is None and raw_summary({"body": {}}) is None


def test_the_message_names_the_status_and_the_providers_job() -> None:
    error = ProviderError(
        "provider_unavailable",
        "The service is temporarily unavailable.",
        status_code=503,
        provider_job_id="p-123",
        model="bytedance/seedream-4",
        provider="replicate",
        hint="Replicate is having trouble: retry later or use a fallback model",
    )
    text = str(error)
    assert "provider_unavailable: The service is temporarily unavailable. (HTTP 503, " in text
    assert "provider job p-123" in text and "hint: Replicate is having trouble" in text


async def test_error_events_carry_the_status_code_the_providers_job_and_raw(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from producers.sdk import JobHandle, Kind, ProducerRuntime, Submission, define_producer
    from producers.sdk.jobs import JobStatus
    from producers.sdk.lifecycle import Job, WaitPolicy
    from producers.testing import JobContext, fake_secret_resolver, make_job_request

    async def submit(rt: ProducerRuntime) -> Submission:
        return Submission(provider_job_id="pred-42")

    async def poll(rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
        raise ProviderError(
            "model_failed",
            "CUDA out of memory",
            status_code=200,
            retryable=False,
            raw={"status": "failed", "detail": "CUDA out of memory"},
        )

    async def collect(rt: ProducerRuntime, handle: JobHandle) -> list[object]:
        raise AssertionError("never collected")

    definition = define_producer(
        name="slow", provider="echo", models=["*"], kind=Kind.TEXT,
        submit=submit, poll=poll, collect=collect,
    )  # fmt: skip
    context = JobContext(secrets=fake_secret_resolver({}))
    context.register(definition)
    request = make_job_request("echo:x", inputs={"prompt": "p"})
    handler = context.handler(request)
    with caplog.at_level(logging.INFO, logger="producers.sdk"), pytest.raises(ProviderError):
        await Job(handler, request, policy=WaitPolicy(poll_interval=0.0)).run()
    (event,) = [
        r.__dict__["fields"]
        for r in caplog.records
        if r.__dict__.get("event") == "providers.sdk.invoke.error"
    ]
    assert event["code"] == "model_failed" and event["status_code"] == 200
    assert event["provider_job_id"] == "pred-42"  # from the handle: the poll did not say
    assert event["raw"] == {"status": "failed", "detail": "CUDA out of memory"}
