"""The Replicate adapter's reading of answers: prediction JSON (every status and output
shape), HTTP error bodies (codes, hints, raw) and its upload settings; pure functions, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from producers.clients.replicate import (
    DEFAULT_INLINE_MAX_BYTES,
    INLINE_MAX_BYTES_ENV,
    UPLOAD_REUSE_MARGIN,
    Upload,
    http_error,
    job_from_json,
    output_urls,
    read_inline_max_bytes,
    refused_fields,
)
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.errors import ConfigurationError


def prediction(**fields: Any) -> dict[str, Any]:
    return {"id": "p1", "status": "succeeded", "output": None, "error": None, **fields}


@pytest.mark.parametrize("status", ["starting", "processing", "succeeded", "failed", "canceled"])
def test_every_known_status_is_a_job(status: str) -> None:
    job = job_from_json(prediction(status=status, metrics={"predict_time": 1.5}))
    assert (job.id, job.status, job.provider_seconds) == ("p1", status, 1.5)


def test_aborted_is_a_retryable_timeout_naming_the_prediction() -> None:
    with pytest.raises(ProviderError) as caught:
        job_from_json(prediction(status="aborted", error="deadline exceeded"))
    error = caught.value
    assert (error.code, error.retryable, error.provider_job_id) == (ErrorCode.TIMEOUT, True, "p1")
    assert "deadline exceeded" in error.reason and error.handle is None


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (prediction(status="teleported"), ErrorCode.UNKNOWN),
        (prediction(status=None), ErrorCode.UNKNOWN),
        ({"status": "succeeded"}, ErrorCode.MALFORMED_OUTPUT),
        (["not", "an", "object"], ErrorCode.MALFORMED_OUTPUT),
    ],
    ids=["new-status", "no-status", "no-id", "not-an-object"],
)
def test_answers_it_cannot_read_are_errors_never_jobs(answer: Any, code: ErrorCode) -> None:
    with pytest.raises(ProviderError) as caught:
        job_from_json(answer)
    assert caught.value.code is code


@pytest.mark.parametrize(
    ("output", "urls"),
    [
        ("https://replicate.delivery/x.png", ("https://replicate.delivery/x.png",)),
        (["https://a.example/1.png", "data:image/png;base64,AA=="], None),
        (["Hello", " world"], ()),
        ("A sentence: with a colon", ()),
        ({"url": "https://replicate.delivery/x.png"}, ()),
        (["https://a.example/1.png", 3], ()),
        ([], ()),
        (None, ()),
    ],
    ids=["url", "urls", "tokens", "text", "object", "mixed", "empty", "none"],
)
def test_outputs_are_urls_only_when_the_output_is_urls(output: Any, urls: Any) -> None:
    expected = tuple(output) if urls is None else urls
    assert output_urls(output) == expected
    job = job_from_json(prediction(output=output))
    assert job.value == output and job.outputs == expected


def test_data_removed_is_carried() -> None:
    job = job_from_json(prediction(data_removed=True))
    assert job.data_removed and job.value is None and job.outputs == ()


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (
            402,
            {"title": "Insufficient credit", "detail": "You have insufficient credit"},
            ErrorCode.QUOTA_EXCEEDED,
            False,
        ),
        (403, {"detail": "Monthly spend limit reached"}, ErrorCode.QUOTA_EXCEEDED, False),
        (429, {"detail": "Request was throttled."}, ErrorCode.RATE_LIMITED, True),
        (403, {"detail": "Forbidden"}, ErrorCode.AUTH_FAILED, False),
        (413, {"detail": "Request Entity Too Large"}, ErrorCode.INVALID_INPUT, False),
        (503, {}, ErrorCode.PROVIDER_UNAVAILABLE, True),
    ],
    ids=["402", "403-spend-limit", "429", "403", "413", "503"],
)
def test_http_errors(status: int, body: dict[str, Any], code: ErrorCode, retryable: bool) -> None:
    error = http_error(status, body, retry_after=4.0, method="POST", path="/v1/predictions")
    assert (error.code, error.retryable, error.status_code) == (code, retryable, status)
    assert error.retry_after == (4.0 if code is ErrorCode.RATE_LIMITED else None)
    assert error.raw["method"] == "POST" and error.raw["path"] == "/v1/predictions"
    assert error.hint


def test_a_422_names_the_refused_fields_in_its_hint() -> None:
    detail = '- input.size: size must be one of the following: "1K"\n- input.seed: Invalid type\n'
    error = http_error(422, {"title": "Input validation failed", "detail": detail})
    assert refused_fields(detail) == ["size", "seed"]
    assert error.hint and "size, seed" in error.hint
    version = http_error(422, {"detail": "- version: Invalid version or not permitted\n"})
    assert version.hint and "model version" in version.hint
    root = http_error(422, {"detail": "- (root): Additional property prompt is not allowed\n"})
    assert root.hint and "SDK bug" in root.hint


def test_the_inline_threshold_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INLINE_MAX_BYTES_ENV, raising=False)
    assert read_inline_max_bytes() == DEFAULT_INLINE_MAX_BYTES == 262144
    assert read_inline_max_bytes(0) == 0
    assert read_inline_max_bytes(None, {INLINE_MAX_BYTES_ENV: "1000"}) == 1000
    assert read_inline_max_bytes("5", {INLINE_MAX_BYTES_ENV: "1000"}) == 5  # the option wins
    for bad in (-1, "x", "2.5", True):
        with pytest.raises(ConfigurationError):
            read_inline_max_bytes(bad)


def test_an_upload_is_reused_only_while_it_stays_valid_long_enough() -> None:
    now = 1_000_000.0
    upload = Upload(
        id="f", url="https://x/f", sha256="s", size=1, expires_at=now + 2 * UPLOAD_REUSE_MARGIN
    )
    assert upload.valid(now)
    assert not upload.valid(now + UPLOAD_REUSE_MARGIN + 1)
    assert Upload(id="f", url="u", sha256="s", size=1, expires_at=None).valid(now)
