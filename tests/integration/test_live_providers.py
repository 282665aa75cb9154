"""The live path: the official clients against local fakes that speak the real protocols.

One table covers the fault matrix: each fault maps to the right ProviderError code,
``retryable`` and ``caused_by_user``, with exactly one request per invoke (the SDK never
retries, and replicate-python's hidden retries are disarmed).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from producers.clients import default_client_registry
from producers.replicate.catalogue import Catalogue
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.lifecycle import WaitPolicy
from producers.storage.local import LocalStore
from producers.testing import JobContext, assert_artefact, fake_secret_resolver, make_job_request
from producers.testing.fakes import (
    FAKE_OPENAI_KEY,
    FAKE_TOKEN,
    FakeOpenAI,
    FakeReplicate,
    Fault,
)
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration

SCRIPT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "segments"],
    "properties": {
        "title": {"type": "string"},
        "segments": {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["narration"],
                "properties": {"narration": {"type": "string"}},
            },
        },
    },
}


@pytest.fixture
def replicate_fake(live_fakes: LiveFakes) -> FakeReplicate:
    return live_fakes.replicate


@pytest.fixture
def openai_fake(live_fakes: LiveFakes) -> FakeOpenAI:
    return live_fakes.openai


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


async def run_live(context: JobContext, model_id: str, **fields: Any) -> Any:
    request = make_job_request(model_id, mode="live", **fields)
    deps = context.deps()
    deps.client_options = getattr(context, "client_options", {})
    deps.poll_interval = 0.01
    handler = context.registry.resolve(request.descriptor, "live", deps)
    return await handler.run(request)


MODELS = Catalogue.load().models()


@pytest.mark.parametrize("model", MODELS)
async def test_every_model_runs_live_and_stores_the_same_kinds_as_mock(
    model: str, replicate_fake: FakeReplicate
) -> None:
    inputs = {"prompt": f"Live test of {model}", "aspect_ratio": "16:9"}
    declaration = Catalogue.load().get(model)
    assert declaration is not None
    image = declaration.mapping.get("image")
    if image is not None and image.targets[0] in declaration.required:
        inputs["image"] = "https://example.invalid/frame.png"
    live = await run_live(live_context(), f"replicate:{model}", inputs=inputs)
    mock_context = JobContext()
    mock_request = make_job_request(f"replicate:{model}", inputs=inputs)
    mock = await mock_context.handler(mock_request).run(mock_request)
    assert [a.id for a in live.artefacts] == [a.id for a in mock.artefacts]
    assert [a.mime_type.split("/")[0] for a in live.artefacts] == [
        a.mime_type.split("/")[0] for a in mock.artefacts
    ]
    assert live.diagnostics.mocked is False
    assert live.diagnostics.provider_job_id
    assert replicate_fake.count("create") == 1


async def test_live_image_is_what_the_provider_sent(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path)
    context = live_context(store=store)
    result = await run_live(
        context,
        "replicate:bytedance/seedream-4",
        inputs={"prompt": "A fox", "aspect_ratio": "16:9"},
    )
    (artefact,) = result.artefacts
    data = await assert_artefact(
        artefact, store=store, kind="blob", mime_prefix="image/", mocked=False
    )
    width, height = Image.open(io.BytesIO(data)).size
    assert width / height == pytest.approx(16 / 9, rel=0.02)
    (create,) = [r for r in replicate_fake.requests if r.route == "create"]
    assert create.json["input"]["prompt"] == "A fox"


async def test_openai_text_and_structured_output_live(openai_fake: FakeOpenAI) -> None:
    context = live_context()
    text = await run_live(context, "openai:gpt-5-mini", inputs={"prompt": "volcanoes"})
    assert "volcano" in text.artefacts[0].value.lower()
    assert text.diagnostics.usage["output_tokens"] > 0
    assert text.diagnostics.cost_usd is not None and text.diagnostics.cost_usd > 0
    assert text.diagnostics.extra["answer_model"] == "gpt-5-mini-2025-08-07"
    structured = await run_live(
        context,
        "openai:gpt-5-mini",
        inputs={"prompt": "volcanoes"},
        config={
            "output": "json",
            "json_schema": SCRIPT_SCHEMA,
            "split": {"script": ".", "narration[]": "segments[*].narration"},
        },
    )
    assert [a.id for a in structured.artefacts] == ["script", "narration[0]", "narration[1]"]
    import jsonschema

    jsonschema.validate(structured.artefacts[0].value, SCRIPT_SCHEMA)
    body = openai_fake.requests[-1].json
    assert (
        body["text"]["format"]["type"] == "json_schema" and body["text"]["format"]["strict"] is True
    )
    assert openai_fake.count("responses") == 2


# (id, model, fault, route, code, retryable, caused_by_user, {route: requests})
SEEDREAM = "replicate:bytedance/seedream-4"
#: A failing poll fails the job only after the wait loop's tolerated failures in a row.
POLLS_BEFORE_FAILING = WaitPolicy().max_poll_failures + 1
GPT = "openai:gpt-5-mini"
FAULTS: list[tuple[str, str, Fault, str, ErrorCode, bool, bool, dict[str, int]]] = [
    (
        "r-create-429",
        SEEDREAM,
        Fault.status(429, retry_after=3),
        "create",
        ErrorCode.RATE_LIMITED,
        True,
        False,
        {"create": 1, "get": 0},
    ),
    (
        "r-create-500",
        SEEDREAM,
        Fault.status(500),
        "create",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"create": 1},
    ),
    (
        "r-create-502",
        SEEDREAM,
        Fault.status(502),
        "create",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"create": 1},
    ),
    (
        "r-create-503",
        SEEDREAM,
        Fault.status(503),
        "create",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"create": 1},
    ),
    (
        "r-get-503",
        SEEDREAM,
        Fault.status(503),
        "get",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"create": 1, "get": POLLS_BEFORE_FAILING},
    ),
    (
        "r-get-504",
        SEEDREAM,
        Fault.status(504),
        "get",
        ErrorCode.TIMEOUT,
        True,
        False,
        {"create": 1, "get": POLLS_BEFORE_FAILING},
    ),
    (
        "r-create-slow",
        SEEDREAM,
        Fault.slow(3.0),
        "create",
        ErrorCode.TIMEOUT,
        True,
        False,
        {"create": 1},
    ),
    (
        "r-create-drop",
        SEEDREAM,
        Fault.drop(),
        "create",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"create": 1},
    ),
    (
        "r-create-malformed",
        SEEDREAM,
        Fault.malformed(),
        "create",
        ErrorCode.MALFORMED_OUTPUT,
        True,
        False,
        {"create": 1},
    ),
    (
        "r-create-401",
        SEEDREAM,
        Fault.status(401),
        "create",
        ErrorCode.AUTH_FAILED,
        False,
        True,
        {"create": 1},
    ),
    (
        "r-create-422",
        SEEDREAM,
        Fault.status(422),
        "create",
        ErrorCode.INVALID_INPUT,
        False,
        True,
        {"create": 1},
    ),
    (
        "r-failed",
        SEEDREAM,
        Fault.failed("CUDA out of memory"),
        "create",
        ErrorCode.MODEL_FAILED,
        False,
        False,
        {"create": 1, "download": 0},
    ),
    (
        "r-nsfw",
        SEEDREAM,
        Fault.nsfw(),
        "create",
        ErrorCode.SAFETY_BLOCKED,
        False,
        True,
        {"create": 1, "download": 0},
    ),
    (
        "r-truncated-download",
        SEEDREAM,
        Fault.truncated(),
        "download",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"create": 1, "download": 1},
    ),
    (
        "r-download-drop",
        SEEDREAM,
        Fault.drop(),
        "download",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"create": 1, "download": 1},
    ),
    (
        "o-429",
        GPT,
        Fault.status(429, retry_after=7),
        "responses",
        ErrorCode.RATE_LIMITED,
        True,
        False,
        {"responses": 1},
    ),
    (
        "o-500",
        GPT,
        Fault.status(500),
        "responses",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"responses": 1},
    ),
    (
        "o-503",
        GPT,
        Fault.status(503),
        "responses",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"responses": 1},
    ),
    ("o-slow", GPT, Fault.slow(3.0), "responses", ErrorCode.TIMEOUT, True, False, {"responses": 1}),
    (
        "o-drop",
        GPT,
        Fault.drop(),
        "responses",
        ErrorCode.PROVIDER_UNAVAILABLE,
        True,
        False,
        {"responses": 1},
    ),
    (
        "o-malformed",
        GPT,
        Fault.malformed(),
        "responses",
        ErrorCode.MALFORMED_OUTPUT,
        True,
        False,
        {"responses": 1},
    ),
    (
        "o-401",
        GPT,
        Fault.status(401),
        "responses",
        ErrorCode.AUTH_FAILED,
        False,
        False,
        {"responses": 1},
    ),
]


@pytest.mark.parametrize(
    ("model_id", "fault", "route", "code", "retryable", "user", "counts"),
    [c[1:] for c in FAULTS],
    ids=[c[0] for c in FAULTS],
)
async def test_fault_matrix(
    model_id: str,
    fault: Fault,
    route: str,
    code: ErrorCode,
    retryable: bool,
    user: bool,
    counts: dict[str, int],
    replicate_fake: FakeReplicate,
    openai_fake: FakeOpenAI,
    tmp_path: Path,
) -> None:
    fake = replicate_fake if model_id.startswith("replicate") else openai_fake
    fake.inject(fault, route=route, times=20)
    store = LocalStore(tmp_path)
    context = live_context(
        store=store,
        replicate={"timeout": httpx.Timeout(1.0)},
        openai={"timeout": 1.0},
    )
    with pytest.raises(ProviderError) as caught:
        await run_live(context, model_id, inputs={"prompt": "A volcano at dawn"})
    error = caught.value
    assert (error.code, error.retryable, error.caused_by_user) == (code, retryable, user), str(
        error
    )
    assert error.prompt == "A volcano at dawn"
    assert error.model and error.provider and error.producer
    if fault.retry_after is not None:
        assert error.retry_after == fault.retry_after
    for name, expected in counts.items():
        assert fake.count(name) == expected, (name, [r.route for r in fake.requests])
    if route in ("get", "download"):
        assert error.handle is not None  # a retry resumes this prediction, it does not pay again
    # Nothing half-written is visible in the store.
    assert not list((tmp_path / "blobs").rglob("*")) if (tmp_path / "blobs").exists() else True
    assert not list((tmp_path / "tmp").glob("*")) if (tmp_path / "tmp").exists() else True


async def test_no_secret_reaches_logs_diagnostics_errors_or_files(
    replicate_fake: FakeReplicate,
    openai_fake: FakeOpenAI,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = LocalStore(tmp_path)
    context = live_context(store=store)
    with caplog.at_level(logging.DEBUG):
        ok = await run_live(context, SEEDREAM, inputs={"prompt": "ok"})
        text = await run_live(context, GPT, inputs={"prompt": "ok"})
        replicate_fake.inject(Fault.status(401), route="create")
        with pytest.raises(ProviderError) as failed:
            await run_live(context, SEEDREAM, inputs={"prompt": "bad"})
        openai_fake.inject(Fault.status(401), route="responses")
        with pytest.raises(ProviderError) as failed_openai:
            await run_live(context, GPT, inputs={"prompt": "bad"})
    haystacks = [
        caplog.text,
        ok.model_dump_json(),
        text.model_dump_json(),
        str(failed.value),
        repr(failed.value.to_dict()),
        str(failed_openai.value),
        repr(failed_openai.value.to_dict()),
    ]
    haystacks += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    for secret in (FAKE_TOKEN, FAKE_OPENAI_KEY):
        assert all(secret not in hay for hay in haystacks), secret
    assert replicate_fake.count("create") == 2  # the requests did carry the token


async def test_a_stored_artefact_in_a_file_field_is_sent_inline(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    frame = tmp_path / "frame.png"
    Image.new("RGB", (16, 9), "red").save(frame)
    context = live_context()
    stored = await context.store.put_bytes(frame.read_bytes(), mime_type="image/png")
    await run_live(
        context,
        "replicate:bytedance/seedance-1-lite",
        inputs={"prompt": "p", "image": stored.uri},
    )
    (create,) = [r for r in replicate_fake.requests if r.route == "create"]
    assert create.json["input"]["image"].startswith("data:image/png;base64,")


async def test_a_local_file_uri_in_a_file_field_is_refused_before_any_request(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    frame = tmp_path / "frame.png"
    Image.new("RGB", (16, 9), "red").save(frame)
    with pytest.raises(ProviderError) as caught:
        await run_live(
            live_context(),
            "replicate:bytedance/seedance-1-lite",
            inputs={"prompt": "p", "image": frame.as_uri()},
        )
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert caught.value.field == "image"
    assert replicate_fake.count("create") == 0


async def test_a_rate_limited_poll_waits_its_retry_after_and_polls_again(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    """Rate limits while polling cost no failure: the wait loop waits them out."""
    replicate_fake.inject(Fault.status(429, retry_after=0), route="get", times=5)
    result = await run_live(
        live_context(store=LocalStore(tmp_path)), SEEDREAM, inputs={"prompt": "A volcano"}
    )
    assert result.artefacts[0].mime_type.startswith("image/")
    assert replicate_fake.count("create") == 1
    assert replicate_fake.statuses("get")[:5] == [429] * 5
