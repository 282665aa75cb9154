"""Replicate as it really is: every status, error and shape the real API gives, reproduced
by the fake (a fault or a real answer) and met through the official ``replicate`` client
(:class:`~producers.clients.replicate.ReplicateClient`) and, where it matters, a whole job.

Covers: ``aborted`` predictions (``timeout``, retryable, a retry runs a new prediction),
``data_removed`` outputs (``not_found``, retryable, never an empty result), outputs that are
not URLs (kept as the value), HTTP errors with hints and ``raw`` (402 is ``quota_exceeded``),
the fake's strictness (422 for unknown or misplaced fields, problem+json, whole-second
``Retry-After``) and large inputs through the files API (``POST /v1/files``) before the
create, small ones inline.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from producers.clients import default_client_registry
from producers.clients.base import MediaHints
from producers.clients.replicate import (
    DEFAULT_INLINE_MAX_BYTES,
    INLINE_MAX_BYTES_ENV,
    ReplicateClient,
    job_from_json,
)
from producers.replicate.catalogue import Catalogue
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.errors import ConfigurationError
from producers.sdk.uploads import LocalFile
from producers.storage.local import LocalStore
from producers.testing import JobContext, fake_secret_resolver, make_job_request
from producers.testing.fakes import FAKE_OPENAI_KEY, FAKE_TOKEN, FakeReplicate, Fault
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration

SEEDREAM = "bytedance/seedream-4"
SEEDANCE = "bytedance/seedance-1-lite"  # image-to-video: its ``image`` field takes a file
IMAGE_HINTS = MediaHints(media="image")
VIDEO_HINTS = MediaHints(media="video")


@pytest.fixture
def fake(live_fakes: LiveFakes) -> FakeReplicate:
    replicate: FakeReplicate = live_fakes.replicate
    return replicate


@asynccontextmanager
async def replicate_client(fake: FakeReplicate, **options: Any) -> AsyncIterator[ReplicateClient]:
    client = ReplicateClient(FAKE_TOKEN, base_url=fake.base_url, **options)
    try:
        yield client
    finally:
        await client.aclose()


def version_of(model: str) -> str | None:
    declaration = Catalogue.load().get(model)
    assert declaration is not None
    return declaration.version


async def create(client: ReplicateClient, model: str = SEEDREAM, **payload: Any) -> Any:
    payload = payload or {"prompt": "A fox at dawn"}
    return await client.create_job(
        model=model,
        version=version_of(model),
        payload=payload,
        hints=VIDEO_HINTS if model == SEEDANCE else IMAGE_HINTS,
    )


def noisy_png(path: Path, size_bytes: int) -> LocalFile:
    """A PNG of random pixels (incompressible) of about ``size_bytes``."""
    side = max(8, int((size_bytes / 3) ** 0.5))
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path)
    return LocalFile(path=path, mime_type="image/png", size=path.stat().st_size)


def live_context(store: Any = None, **options: Any) -> JobContext:
    context = JobContext(
        clients=default_client_registry(),
        secrets=fake_secret_resolver(
            {"REPLICATE_API_TOKEN": FAKE_TOKEN, "OPENAI_API_KEY": FAKE_OPENAI_KEY}
        ),
        store=store,
    )
    context.client_options = options  # type: ignore[attr-defined]
    return context


async def run_live(context: JobContext, model_id: str, resume: Any = None, **fields: Any) -> Any:
    request = make_job_request(model_id, mode="live", **fields)
    deps = context.deps()
    deps.client_options = getattr(context, "client_options", {})
    deps.poll_interval = 0.01
    handler = context.registry.resolve(request.descriptor, "live", deps)
    return await handler.run(request, resume=resume)


# ---- aborted ------------------------------------------------------------------------------


async def test_an_aborted_prediction_is_a_retryable_timeout_on_every_read(
    fake: FakeReplicate,
) -> None:
    async with replicate_client(fake) as client:
        job = await create(client)
        fake.inject(Fault.aborted(), route="get")
        for _ in range(2):  # it stays aborted, and stays known: never "unknown"
            with pytest.raises(ProviderError) as caught:
                await client.get_job(job.id)
            error = caught.value
            assert (error.code, error.retryable, error.caused_by_user) == (
                ErrorCode.TIMEOUT,
                True,
                False,
            )
            assert error.provider_job_id == job.id and error.handle is None
            assert "aborted before it started" in error.reason
            assert "nothing was billed" in error.reason
            assert error.hint and "run the job again" in error.hint
            assert error.to_dict()["raw"] == {"type": "aborted"}
        assert fake.prediction(job.id)["status"] == "aborted"
        with pytest.raises(ProviderError) as cancelled:
            await client.cancel_job(job.id)
        assert cancelled.value.code is ErrorCode.TIMEOUT
    assert fake.count("get") == 2 and fake.count("cancel") == 1


async def test_a_create_that_waits_and_sees_the_prediction_aborted(fake: FakeReplicate) -> None:
    fake.inject(Fault.aborted(), route="create")
    async with replicate_client(fake, wait_seconds=5) as client:
        with pytest.raises(ProviderError) as caught:
            await create(client)
    assert caught.value.code is ErrorCode.TIMEOUT and caught.value.retryable
    (prediction_id,) = fake.prediction_ids
    assert caught.value.provider_job_id == prediction_id
    assert fake.requests[-1].headers["prefer"] == "wait=5"


async def test_an_aborted_job_fails_at_once_and_its_retry_runs_a_new_prediction(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    context = live_context(store=LocalStore(tmp_path))
    fake.inject(Fault.aborted(), route="get", times=10)
    with pytest.raises(ProviderError) as caught:
        await run_live(context, f"replicate:{SEEDREAM}", inputs={"prompt": "A fox"})
    error = caught.value
    assert (error.code, error.retryable) == (ErrorCode.TIMEOUT, True)
    # Not polled again as a "transient" timeout, and nothing to resume.
    assert fake.count("get") == 1
    assert error.handle is None
    assert error.provider_job_id == fake.prediction_ids[0]
    assert error.prompt == "A fox" and error.model == SEEDREAM
    fake.clear_faults()
    result = await run_live(context, f"replicate:{SEEDREAM}", inputs={"prompt": "A fox"})
    assert result.artefacts[0].mime_type.startswith("image/")
    assert fake.count("create") == 2


async def test_resuming_a_kept_prediction_that_was_aborted_submits_anew(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    context = live_context(store=LocalStore(tmp_path))
    fake.inject(Fault.status(503), route="get", times=20)
    with pytest.raises(ProviderError) as caught:
        await run_live(context, f"replicate:{SEEDREAM}", inputs={"prompt": "A fox"})
    kept = caught.value.handle
    assert kept is not None  # a 503 says nothing about the job: a retry resumes it
    fake.clear_faults()
    fake.inject(Fault.aborted(), route="get")
    result = await run_live(
        context, f"replicate:{SEEDREAM}", resume=kept, inputs={"prompt": "A fox"}
    )
    assert result.artefacts
    assert fake.count("create") == 2
    assert fake.prediction(kept.provider_job_id)["status"] == "aborted"


# ---- data removed, other output shapes ----------------------------------------------------


async def test_removed_output_data_is_not_found_and_retryable_never_empty(
    fake: FakeReplicate,
) -> None:
    async with replicate_client(fake) as client:
        job = await create(client)
        fake.inject(Fault.removed(), route="get")
        with pytest.raises(ProviderError) as caught:
            await client.get_job(job.id)
    error = caught.value
    assert (error.code, error.retryable) == (ErrorCode.NOT_FOUND, True)
    assert error.provider_job_id == job.id
    assert "removed its output data" in error.reason
    assert error.hint and "within an hour" in error.hint
    answer = fake.prediction(job.id)
    assert answer["data_removed"] is True and answer["output"] is None
    seen = job_from_json(answer)
    assert seen.data_removed and seen.value is None and seen.outputs == ()


async def test_a_job_whose_output_data_was_removed_fails_with_nothing_stored(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    fake.inject(Fault.removed(), route="create")
    with pytest.raises(ProviderError) as caught:
        await run_live(
            live_context(store=LocalStore(tmp_path)),
            f"replicate:{SEEDREAM}",
            inputs={"prompt": "A fox"},
        )
    assert (caught.value.code, caught.value.retryable) == (ErrorCode.NOT_FOUND, True)
    assert caught.value.handle is None  # a retry runs a new prediction
    assert fake.count("download") == 0
    blobs = tmp_path / "blobs"
    assert not blobs.exists() or not list(blobs.rglob("*"))


@pytest.mark.parametrize(
    ("fault", "value", "outputs"),
    [
        (
            Fault.object_output({"text": "hi", "scores": [1, 2]}),
            {"text": "hi", "scores": [1, 2]},
            (),
        ),
        (Fault.output("Hello", ", world"), ["Hello", ", world"], ()),
        (Fault.output("Just text"), ["Just text"], ()),
        (
            Fault.output("https://replicate.delivery/a.png", "https://replicate.delivery/b.png"),
            ["https://replicate.delivery/a.png", "https://replicate.delivery/b.png"],
            ("https://replicate.delivery/a.png", "https://replicate.delivery/b.png"),
        ),
    ],
    ids=["object", "tokens", "one-text", "urls"],
)
async def test_any_output_shape_is_kept_as_sent(
    fake: FakeReplicate, fault: Fault, value: Any, outputs: tuple[str, ...]
) -> None:
    async with replicate_client(fake) as client:
        job = await create(client)
        fake.inject(fault, route="get")
        seen = await client.get_job(job.id)
    assert seen.status == "succeeded"
    assert seen.value == value  # seedream's output is a list
    assert seen.outputs == outputs


# ---- HTTP errors: codes, hints, raw ------------------------------------------------------

ERRORS: list[tuple[int, dict[str, Any], ErrorCode, bool, str]] = [
    (401, {}, ErrorCode.AUTH_FAILED, False, "REPLICATE_API_TOKEN"),
    (402, {}, ErrorCode.QUOTA_EXCEEDED, False, "replicate.com/account/billing"),
    (403, {}, ErrorCode.AUTH_FAILED, False, "access"),
    (404, {}, ErrorCode.NOT_FOUND, False, f"check the model id ({SEEDREAM})"),
    (409, {}, ErrorCode.INVALID_INPUT, False, "current state"),
    (422, {}, ErrorCode.INVALID_INPUT, False, "schema"),
    (429, {"retry_after": 2}, ErrorCode.RATE_LIMITED, True, "throttled"),
    (500, {}, ErrorCode.PROVIDER_UNAVAILABLE, True, "replicatestatus.com"),
    (503, {}, ErrorCode.PROVIDER_UNAVAILABLE, True, "retry later"),
    (504, {}, ErrorCode.TIMEOUT, True, "retry later"),
]


@pytest.mark.parametrize(
    ("status", "extra", "code", "retryable", "hint"), ERRORS, ids=[str(e[0]) for e in ERRORS]
)
async def test_http_errors_have_their_code_hint_and_raw(
    fake: FakeReplicate,
    status: int,
    extra: dict[str, Any],
    code: ErrorCode,
    retryable: bool,
    hint: str,
) -> None:
    fake.inject(Fault.status(status, **extra), route="create")
    async with replicate_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            await create(client)
    error = caught.value
    assert (error.code, error.retryable, error.status_code) == (code, retryable, status)
    assert error.hint and hint in error.hint, error.hint
    (request,) = fake.requests
    raw = error.to_dict()["raw"]
    assert raw["status"] == status and raw["method"] == "POST" and raw["path"] == request.path
    assert raw["title"] and raw["detail"] == error.reason
    assert fake.count("create") == 1  # one request, never retried underneath
    if status == 429:
        assert error.retry_after == 2.0
    if status == 402:
        assert "insufficient credit" in error.reason and not error.caused_by_user


async def test_a_throttle_that_says_out_of_credit_is_quota_exceeded(fake: FakeReplicate) -> None:
    body = json.dumps(
        {"detail": "Insufficient credit: you reached your spend limit.", "status": 429}
    )
    fake.inject(Fault.status(429, body=body, retry_after=5), route="create")
    async with replicate_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            await create(client)
    assert (caught.value.code, caught.value.retryable) == (ErrorCode.QUOTA_EXCEEDED, False)
    assert caught.value.retry_after is None


async def test_a_refused_input_names_the_field(fake: FakeReplicate) -> None:
    async with replicate_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            await create(client, prompt=42)
    error = caught.value
    assert (error.code, error.retryable, error.caused_by_user) == (
        ErrorCode.INVALID_INPUT,
        False,
        True,
    )
    assert "input.prompt" in error.reason
    assert error.hint and "the model refused the input prompt" in error.hint
    assert error.hint.endswith(f"(tutopanda models show replicate:{SEEDREAM})")
    assert error.to_dict()["raw"]["title"] == "Input validation failed"


async def test_an_unknown_model_is_not_found_naming_it(fake: FakeReplicate) -> None:
    async with replicate_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            await client.create_job(
                model="nobody/nothing", version=None, payload={"prompt": "x"}, hints=IMAGE_HINTS
            )
    assert caught.value.code is ErrorCode.NOT_FOUND and not caught.value.retryable
    assert caught.value.hint and "nobody/nothing" in caught.value.hint
    assert caught.value.to_dict()["raw"]["path"] == "/v1/models/nobody/nothing/predictions"


async def test_a_lost_prediction_says_so(fake: FakeReplicate) -> None:
    async with replicate_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            await client.get_job("no-such-prediction")
    assert caught.value.code is ErrorCode.NOT_FOUND
    assert caught.value.hint and "prediction is gone" in caught.value.hint
    assert caught.value.to_dict()["raw"]["method"] == "GET"


# ---- the fake is as strict as the real API -------------------------------------------------


def api(fake: FakeReplicate) -> httpx.Client:
    from producers.testing.fakes import ca_path

    return httpx.Client(
        base_url=fake.base_url,
        headers={"Authorization": f"Bearer {FAKE_TOKEN}"},
        verify=ssl.create_default_context(cafile=str(ca_path())),
    )


@pytest.mark.parametrize(
    ("path", "body", "refused"),
    [
        ("/v1/predictions", {"version": "x", "input": {}, "prompt": "p"}, ["prompt"]),
        (
            f"/v1/models/{SEEDREAM}/predictions",
            {"input": {"prompt": "p"}, "version": "v"},
            ["version"],
        ),
        (f"/v1/models/{SEEDREAM}/predictions", {"inputs": {"prompt": "p"}}, ["inputs"]),
        (
            f"/v1/deployments/{SEEDREAM}/predictions",
            {"input": {"prompt": "p"}, "model": "m"},
            ["model"],
        ),
    ],
    ids=["prompt-beside-input", "version-on-a-model-route", "inputs", "deployment"],
)
def test_unknown_or_misplaced_fields_are_refused_as_the_real_api_does(
    fake: FakeReplicate, path: str, body: dict[str, Any], refused: list[str]
) -> None:
    with api(fake) as http:
        answer = http.post(path, json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["title"] == "Input validation failed" and problem["status"] == 422
    for name in refused:
        assert f"- (root): Additional property {name} is not allowed" in problem["detail"]
    assert fake.prediction_ids == []


def test_a_create_without_input_is_refused(fake: FakeReplicate) -> None:
    with api(fake) as http:
        answer = http.post(f"/v1/models/{SEEDREAM}/predictions", json={})
    assert answer.status_code == 422
    assert "- (root): input is required" in answer.json()["detail"]


def test_a_deployment_runs_like_its_model(fake: FakeReplicate) -> None:
    with api(fake) as http:
        answer = http.post(
            f"/v1/deployments/{SEEDREAM}/predictions", json={"input": {"prompt": "p"}}
        )
        missing = http.post("/v1/deployments/a/b/predictions", json={"input": {"prompt": "p"}})
    assert answer.status_code == 201 and answer.json()["model"] == SEEDREAM
    assert missing.status_code == 404 and "Deployment a/b not found" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.status(401), 401), (Fault.status(500), 500), (Fault.status(429, retry_after=1.2), 429)],
    ids=["401", "500", "429"],
)
def test_every_error_answer_is_problem_json_with_whole_second_retry_after(
    fake: FakeReplicate, fault: Fault, status: int
) -> None:
    fake.inject(fault, route="get")
    with api(fake) as http:
        answer = http.get("/v1/predictions/whatever")
        unknown = http.get("/v1/predictions/whatever")  # the fault is used up: a real 404
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert set(answer.json()) >= {"title", "detail", "status"}
    assert answer.json()["status"] == status
    if status == 429:
        assert answer.headers["retry-after"] == "2"
        assert answer.json()["detail"] == "Request was throttled. Expected available in 2 seconds."
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


# ---- files: large inputs uploaded first, small ones inline ---------------------------------


async def test_a_large_file_goes_through_the_files_api_and_the_input_names_its_url(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    image = noisy_png(tmp_path / "frame.png", 2_000_000)
    assert image.size > 1_900_000
    async with replicate_client(fake) as client:
        job = await create(client, SEEDANCE, prompt="p", image=image)
        again = await create(client, SEEDANCE, prompt="q", image=image)
    (uploaded,) = fake.uploaded_files  # the same blob is uploaded once
    assert uploaded.data == image.path.read_bytes()
    assert uploaded.content_type == "image/png" and uploaded.name == "frame.png"
    assert [r.route for r in fake.requests] == ["upload", "create", "create"]
    for request in (r for r in fake.requests if r.route == "create"):
        assert request.json["input"]["image"] == fake.file_url(uploaded.id)
    upload_request = fake.requests[0]
    assert upload_request.headers["content-type"].startswith("multipart/form-data")
    assert fake.prediction(job.id)["status"] in ("starting", "processing", "succeeded")
    assert again.id != job.id
    assert client.uploads[hashlib.sha256(uploaded.data).hexdigest()].id == uploaded.id


async def test_a_small_file_stays_inline(fake: FakeReplicate, tmp_path: Path) -> None:
    image = noisy_png(tmp_path / "small.png", 100_000)
    assert image.size <= DEFAULT_INLINE_MAX_BYTES
    async with replicate_client(fake) as client:
        await create(client, SEEDANCE, prompt="p", image=image)
    assert fake.count("upload") == 0
    (request,) = fake.requests
    assert request.json["input"]["image"].startswith("data:image/png;base64,")


async def test_the_threshold_is_a_setting(
    fake: FakeReplicate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = noisy_png(tmp_path / "small.png", 100_000)
    async with replicate_client(fake, inline_max_bytes=50_000) as client:
        assert client.inline_max_bytes == 50_000
        await create(client, SEEDANCE, prompt="p", image=image)
    assert fake.count("upload") == 1
    monkeypatch.setenv(INLINE_MAX_BYTES_ENV, str(image.size))  # at the threshold: inline
    async with replicate_client(fake) as client:
        await create(client, SEEDANCE, prompt="p", image=image)
    assert fake.count("upload") == 1
    assert fake.requests[-1].json["input"]["image"].startswith("data:")
    for bad in ("-1", "lots", "1.5"):
        monkeypatch.setenv(INLINE_MAX_BYTES_ENV, bad)
        with pytest.raises(ConfigurationError, match=INLINE_MAX_BYTES_ENV):
            ReplicateClient(FAKE_TOKEN, base_url=fake.base_url)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.status(503), ErrorCode.PROVIDER_UNAVAILABLE),
        (Fault.status(500), ErrorCode.PROVIDER_UNAVAILABLE),
        (Fault.status(429, retry_after=3), ErrorCode.RATE_LIMITED),
        (Fault.drop(), ErrorCode.PROVIDER_UNAVAILABLE),
    ],
    ids=["503", "500", "429", "drop"],
)
async def test_a_failed_upload_is_retryable_and_creates_nothing(
    fake: FakeReplicate, tmp_path: Path, fault: Fault, code: ErrorCode
) -> None:
    image = noisy_png(tmp_path / "frame.png", 400_000)
    fake.inject(fault, route="upload")
    async with replicate_client(fake) as client:
        with pytest.raises(ProviderError) as caught:
            await create(client, SEEDANCE, prompt="p", image=image)
        error = caught.value
        assert (error.code, error.retryable, error.handle) == (code, True, None)
        assert "no prediction was created" in error.reason
        assert fake.count("create") == 0 and fake.prediction_ids == []
        if fault.kind == "status":
            raw = error.to_dict()["raw"]
            assert (raw["method"], raw["path"]) == ("POST", "/v1/files")
        # The retry uploads (once) and creates.
        await create(client, SEEDANCE, prompt="p", image=image)
    assert fake.count("upload") == 2 and fake.count("create") == 1
    assert len([f for f in fake.uploaded_files]) == 1


async def test_an_upload_about_to_expire_is_uploaded_again(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    image = noisy_png(tmp_path / "frame.png", 400_000)
    fake.configure({"file_ttl": 600})  # less than the reuse margin
    try:
        async with replicate_client(fake) as client:
            await create(client, SEEDANCE, prompt="p", image=image)
            await create(client, SEEDANCE, prompt="p", image=image)
    finally:
        fake.configure({"file_ttl": 24 * 3600})
    assert fake.count("upload") == 2


async def test_a_prediction_naming_a_missing_file_fails_like_the_real_one(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    image = noisy_png(tmp_path / "frame.png", 400_000)
    async with replicate_client(fake) as client:
        upload = await client.upload(image)
        assert await client._client.files.async_delete(upload.id)
        job = await create(client, SEEDANCE, prompt="p", image=image)  # still cached
        assert fake.requests[-1].json["input"]["image"] == upload.url
        done = await client.get_job(job.id)
    assert done.status == "failed"
    assert done.error and "404" in done.error and "image" in done.error


async def test_a_large_stored_artefact_goes_through_the_files_api_in_a_job(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    image = noisy_png(tmp_path / "frame.png", 2_000_000)
    stored = await store.put_bytes(image.path.read_bytes(), mime_type="image/png")
    result = await run_live(
        live_context(store=store),
        f"replicate:{SEEDANCE}",
        inputs={"prompt": "p", "image": stored.uri},
    )
    assert result.artefacts[0].mime_type.startswith("video/")
    (uploaded,) = fake.uploaded_files
    assert uploaded.data == image.path.read_bytes() and uploaded.content_type == "image/png"
    (request,) = [r for r in fake.requests if r.route == "create"]
    assert request.json["input"]["image"] == fake.file_url(uploaded.id)
    # The client option goes through the job's client options.
    fake.reset()
    await run_live(
        live_context(store=store, replicate={"inline_max_bytes": 10_000_000}),
        f"replicate:{SEEDANCE}",
        inputs={"prompt": "p", "image": stored.uri},
    )
    assert fake.count("upload") == 0


async def test_the_fake_files_api_answers_as_the_real_one(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    image = noisy_png(tmp_path / "frame.png", 300_000)
    data = image.path.read_bytes()
    async with replicate_client(fake) as client:
        files = client._client.files
        created = await files.async_create(image.path, metadata={"job": "j1"})
        assert created.size == len(data) and created.content_type == "image/png"
        assert created.checksums["sha256"] == hashlib.sha256(data).hexdigest()
        assert created.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert created.metadata == {"job": "j1"} and created.expires_at
        assert created.urls["get"] == fake.file_url(created.id)
        assert (await files.async_get(created.id)).name == "frame.png"
        assert [f.id for f in await files.async_list()] == [created.id]
        async with httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        ) as http:
            downloaded = await http.get(fake.file_download_url(created.id))
            forged = await http.get(
                fake.file_download_url(created.id).replace("signature=", "signature=x")
            )
        assert downloaded.content == data and downloaded.headers["content-type"] == "image/png"
        assert forged.status_code == 403
        assert await files.async_delete(created.id)
        with pytest.raises(ProviderError) as gone:
            await files.async_get(created.id)
    assert gone.value.code is ErrorCode.NOT_FOUND
    assert gone.value.hint and "uploaded file is gone" in gone.value.hint
    with api(fake) as http:
        refused = http.post(
            "/v1/files", files={"content": ("a.bin", b"x"), "colour": ("c", b"red")}
        )
        missing = http.post("/v1/files", files={"metadata": ("m", b"{}")})
    assert refused.status_code == 422 and "Additional property colour" in refused.json()["detail"]
    assert missing.status_code == 422 and "content is required" in missing.json()["detail"]
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_fault_with_its_own_body_keeps_whole_seconds_and_problem_json(
    fake: FakeReplicate,
) -> None:
    body = json.dumps({"detail": "Request was throttled.", "status": 429})
    fake.inject(Fault.status(429, body=body, retry_after=0.4), route="get")
    fake.inject(Fault.status(502, body="<html>Bad gateway</html>"), route="get")
    with api(fake) as http:
        throttled = http.get("/v1/predictions/x")
        proxy = http.get("/v1/predictions/x")
    assert throttled.headers["retry-after"] == "1"
    assert throttled.headers["content-type"] == "application/problem+json"
    assert throttled.json() == {"detail": "Request was throttled.", "status": 429}
    assert proxy.status_code == 502 and proxy.text == "<html>Bad gateway</html>"
    assert proxy.headers["content-type"] != "application/problem+json"
