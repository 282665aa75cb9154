"""The fake provider servers, driven by the OFFICIAL clients (replicate-python, openai).

Each test starts its own fake on a free port; the Replicate fake serves HTTPS with the test
CA, trusted through ``SSL_CERT_FILE`` as a real deployment would trust a real CA.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from PIL import Image
from pydantic import BaseModel
from replicate.client import Client
from replicate.exceptions import ModelError, ReplicateError
from replicate.helpers import FileOutput

from producers.testing.fakes import (
    FAKE_OPENAI_KEY,
    FAKE_TOKEN,
    NSFW_ERROR,
    FakeOpenAI,
    FakeReplicate,
    Fault,
    ca_bundle_path,
    ca_path,
    client_ssl_context,
    mask_secret,
)

pytestmark = pytest.mark.integration

FLUX = "black-forest-labs/flux-dev"
IMAGEN = "google/imagen-4"
SEEDREAM = "bytedance/seedream-4"
SD = "stability-ai/stable-diffusion"
SD_VERSION = "ac732df83cea7fff18b8472768c88ad041fa750ff7682a21affe81863cbe77e4"
FLUX_INPUT: dict[str, Any] = {
    "prompt": "A red panda explaining volcanoes",
    "aspect_ratio": "16:9",
    "output_format": "png",
}
PREDICTION_KEYS = {
    "id",
    "model",
    "version",
    "input",
    "logs",
    "output",
    "data_removed",
    "error",
    "status",
    "created_at",
    "started_at",
    "completed_at",
    "urls",
    "metrics",
}


@pytest.fixture(scope="module")
def replicate_server() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        yield server


@pytest.fixture
def trust_fake_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CA alone loads faster than the bundle with the public roots (ca_bundle_path()).
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_path()))


@pytest.fixture
def fake(replicate_server: FakeReplicate, trust_fake_ca: None) -> Iterator[FakeReplicate]:
    """The module's fake Replicate, reset to its defaults."""
    replicate_server.reset()
    replicate_server.latency = 0.0
    replicate_server.big_output_bytes = None
    yield replicate_server
    replicate_server.reset()


def make_client(fake: FakeReplicate, *, token: str = FAKE_TOKEN, **kwargs: Any) -> Client:
    client = Client(api_token=token, base_url=fake.base_url, **kwargs)
    client.poll_interval = 0.01
    return client


@pytest.fixture
def client(fake: FakeReplicate) -> Client:
    return make_client(fake, timeout=httpx.Timeout(5.0))


def first_file(outputs: Any) -> FileOutput:
    assert isinstance(outputs, list)
    output = outputs[0]
    assert isinstance(output, FileOutput)
    return output


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# -- Replicate: the happy paths ------------------------------------------------------------


def test_create_then_get_has_the_real_prediction_shape(fake: FakeReplicate, client: Client) -> None:
    created = client.predictions.create(model=FLUX, input={**FLUX_INPUT, "num_outputs": 2})
    assert created.status == "starting"
    assert created.model == FLUX
    assert created.output is None
    assert created.urls is not None
    assert created.urls["get"] == f"{fake.base_url}/v1/predictions/{created.id}"

    done = client.predictions.get(created.id)
    assert done.status == "succeeded"
    assert isinstance(done.output, list)
    assert len(done.output) == 2
    assert all(url.startswith(f"{fake.base_url}/files/") for url in done.output)
    assert done.completed_at is not None
    assert done.completed_at.endswith("Z")
    assert done.metrics is not None
    assert "predict_time" in done.metrics

    raw = httpx.get(
        f"{fake.base_url}/v1/predictions/{created.id}",
        headers={"Authorization": f"Bearer {FAKE_TOKEN}"},
        verify=client_ssl_context(),
    ).json()
    assert set(raw) >= PREDICTION_KEYS
    assert raw["data_removed"] is False
    assert set(raw["urls"]) >= {"get", "cancel", "web"}
    assert len(raw["id"]) == 26


def test_run_returns_file_outputs_with_the_requested_shape(
    fake: FakeReplicate, client: Client
) -> None:
    outputs = client.run(FLUX, input=FLUX_INPUT)
    assert isinstance(outputs, list)
    assert len(outputs) == 1
    output = outputs[0]
    assert isinstance(output, FileOutput)
    image = open_image(output.read())
    assert image.format == "PNG"
    assert image.width / image.height == pytest.approx(16 / 9, rel=0.02)
    # run() waits on the create request (Prefer: wait) and needs no poll.
    create = fake.requests[0]
    assert create.route == "create"
    assert create.headers["prefer"] == "wait"
    assert fake.count("get") == 0
    assert fake.count("download") == 1


def test_single_output_model_returns_one_file_output(client: Client) -> None:
    output = client.run(IMAGEN, input={"prompt": "A volcano", "aspect_ratio": "9:16"})
    assert isinstance(output, FileOutput)
    image = open_image(output.read())
    assert image.format == "JPEG"
    assert image.width / image.height == pytest.approx(9 / 16, rel=0.02)


def test_versioned_model_create_and_run(fake: FakeReplicate, client: Client) -> None:
    created = client.predictions.create(version=SD_VERSION, input={"prompt": "A volcano"})
    assert created.version == SD_VERSION
    assert created.model == SD
    assert fake.requests[-1].path == "/v1/predictions"

    outputs = client.run(f"{SD}:{SD_VERSION}", input={"prompt": "A volcano"})
    assert isinstance(outputs, list)
    assert open_image(outputs[0].read()).format == "PNG"
    # The sync run() of owner/name:version also fetches the version.
    assert fake.count("model") == 1


def test_lifecycle_starting_processing_succeeded(fake: FakeReplicate, client: Client) -> None:
    fake.latency = 0.5
    started = time.monotonic()
    created = client.predictions.create(model=FLUX, input=FLUX_INPUT)
    assert created.status == "starting"
    polled = client.predictions.get(created.id)
    assert polled.status == "processing"
    assert polled.output is None
    assert polled.started_at is not None
    assert polled.progress is not None
    time.sleep(max(0.0, started + 0.55 - time.monotonic()))
    done = client.predictions.get(created.id)
    assert done.status == "succeeded"
    assert done.metrics is not None
    assert done.metrics["total_time"] == pytest.approx(0.5, abs=0.01)
    assert done.metrics["predict_time"] > 0
    fake.latency = 0.05
    outputs = client.run(FLUX, input=FLUX_INPUT, wait=False)
    assert isinstance(outputs, list)
    assert fake.count("get") >= 3


def test_prefer_wait_answers_the_finished_prediction(fake: FakeReplicate, client: Client) -> None:
    fake.latency = 0.2
    started = time.monotonic()
    prediction = client.models.predictions.create(model=FLUX, input=FLUX_INPUT, wait=5)
    assert prediction.status == "succeeded"
    assert 0.15 <= time.monotonic() - started < 2.0
    assert fake.requests[0].headers["prefer"] == "wait=5"
    # predictions.create(model=...) pops ``wait`` before delegating to
    # models.predictions.create, so it never sends Prefer (replicate 1.0.7).
    client.predictions.create(model=FLUX, input=FLUX_INPUT, wait=5)
    assert "prefer" not in fake.requests[1].headers


def test_prefer_wait_runs_out_and_answers_starting(fake: FakeReplicate, client: Client) -> None:
    fake.latency = 3.0
    started = time.monotonic()
    prediction = client.models.predictions.create(model=FLUX, input=FLUX_INPUT, wait=1)
    assert 0.9 <= time.monotonic() - started < 2.5
    # replicate-python's run() treats anything but "starting" as finished.
    assert prediction.status == "starting"
    client.predictions.cancel(prediction.id)


async def test_async_create_get_and_run(fake: FakeReplicate, client: Client) -> None:
    fake.latency = 0.1
    created = await client.predictions.async_create(model=FLUX, input=FLUX_INPUT)
    assert created.status == "starting"
    await created.async_wait()
    status: str = created.status
    assert status == "succeeded"
    fetched = await client.predictions.async_get(created.id)
    assert fetched.output == created.output

    outputs = await client.async_run(FLUX, input=FLUX_INPUT)
    assert isinstance(outputs, list)
    image = open_image(await outputs[0].aread())
    assert image.width / image.height == pytest.approx(16 / 9, rel=0.02)


def test_cancel(fake: FakeReplicate, client: Client) -> None:
    fake.latency = 30.0
    prediction = client.predictions.create(model=FLUX, input=FLUX_INPUT)
    prediction.cancel()
    assert prediction.status == "canceled"
    assert client.predictions.get(prediction.id).status == "canceled"
    assert fake.count("cancel") == 1


def test_big_output_streams_in_chunks(fake: FakeReplicate, client: Client) -> None:
    fake.big_output_bytes = 8 * 2**20
    output = client.run(IMAGEN, input={"prompt": "A volcano", "output_format": "png"})
    assert isinstance(output, FileOutput)
    total = 0
    chunks = 0
    for chunk in output:
        if chunks == 0:
            assert chunk.startswith(b"\x89PNG")
        total += len(chunk)
        chunks += 1
    assert total == 8 * 2**20
    assert chunks > 1


def test_secrets_are_masked_in_the_request_log(fake: FakeReplicate, client: Client) -> None:
    client.predictions.create(
        model="openai/gpt-image-1-mini",
        input={"prompt": "A volcano", "openai_api_key": "sk-real-secret-0123456789"},
    )
    record = fake.requests[0]
    assert record.headers["authorization"] == "Bearer " + mask_secret(FAKE_TOKEN)
    assert FAKE_TOKEN not in json.dumps(record.to_dict())
    assert record.json["input"]["openai_api_key"] == "***"
    assert record.json["input"]["prompt"] == "A volcano"


# -- Replicate: errors the API answers --------------------------------------------------------


def test_invalid_input_is_a_422_naming_the_field(fake: FakeReplicate, client: Client) -> None:
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(model=SEEDREAM, input={"prompt": "x", "size": "8K"})
    error = caught.value
    assert error.status == 422
    assert error.detail is not None
    assert '- input.size: size must be one of the following: "1K", "2K", "4K", "custom"' in (
        error.detail
    )
    with pytest.raises(ReplicateError) as missing:
        client.predictions.create(model=SEEDREAM, input={"max_images": 99})
    assert missing.value.detail is not None
    assert "- input: prompt is required" in missing.value.detail
    assert "- input.max_images: Must be less than or equal to 15" in missing.value.detail


def test_unknown_model_and_version(client: Client) -> None:
    with pytest.raises(ReplicateError) as model:
        client.predictions.create(model="nobody/nothing", input={"prompt": "x"})
    assert model.value.status == 404
    with pytest.raises(ReplicateError) as version:
        client.predictions.create(version="0" * 64, input={"prompt": "x"})
    assert version.value.status == 422
    assert version.value.title == "Invalid version or not permitted"


def test_bad_token_is_401_unauthenticated(fake: FakeReplicate) -> None:
    client = make_client(fake, token="r8_wrong_token_000000000")
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(model=FLUX, input=FLUX_INPUT)
    assert caught.value.status == 401
    assert caught.value.title == "Unauthenticated"


def test_failed_prediction_raises_model_error(fake: FakeReplicate, client: Client) -> None:
    fake.inject(Fault.failed("CUDA out of memory"), route="create")
    with pytest.raises(ModelError) as caught:
        client.run(FLUX, input=FLUX_INPUT)
    assert str(caught.value) == "CUDA out of memory"
    assert caught.value.prediction.status == "failed"
    assert caught.value.prediction.error == "CUDA out of memory"


def test_nsfw_on_poll_raises_model_error(fake: FakeReplicate, client: Client) -> None:
    fake.inject(Fault.nsfw(), route="get")
    with pytest.raises(ModelError) as caught:
        client.run(FLUX, input=FLUX_INPUT, wait=False)
    assert caught.value.prediction.error == NSFW_ERROR


async def test_async_run_failed_raises_model_error(fake: FakeReplicate, client: Client) -> None:
    fake.inject(Fault.nsfw(), route="create")
    with pytest.raises(ModelError, match="NSFW content detected"):
        await client.async_run(FLUX, input=FLUX_INPUT)


# -- Replicate: retries (replicate-python's own RetryTransport) ----------------------------


def test_429_on_get_is_retried_by_the_client(fake: FakeReplicate, client: Client) -> None:
    created = client.predictions.create(model=FLUX, input=FLUX_INPUT)
    fake.inject(Fault.status(429, retry_after=0), route="get", times=2)
    assert client.predictions.get(created.id).status == "succeeded"
    assert fake.statuses("get") == [429, 429, 200]


@pytest.mark.parametrize("status", [503, 504])
def test_503_and_504_on_get_are_retried(fake: FakeReplicate, client: Client, status: int) -> None:
    created = client.predictions.create(model=FLUX, input=FLUX_INPUT)
    fake.inject(Fault.status(status, retry_after=0), route="get")
    assert client.predictions.get(created.id).status == "succeeded"
    assert fake.statuses("get") == [status, 200]


def test_503_on_download_is_retried_too(fake: FakeReplicate, client: Client) -> None:
    output = first_file(client.run(FLUX, input=FLUX_INPUT))
    fake.inject(Fault.status(503, retry_after=0), route="download")
    assert open_image(output.read()).format == "PNG"
    assert fake.statuses("download") == [503, 200]


def test_retry_after_is_slept_as_given(fake: FakeReplicate, client: Client) -> None:
    created = client.predictions.create(model=FLUX, input=FLUX_INPUT)
    fake.inject(Fault.status(429, retry_after=1), route="get")
    started = time.monotonic()
    client.predictions.get(created.id)
    assert time.monotonic() - started >= 0.95
    assert fake.count("get") == 2


def test_500_on_get_is_not_retried(fake: FakeReplicate, client: Client) -> None:
    created = client.predictions.create(model=FLUX, input=FLUX_INPUT)
    fake.inject(Fault.status(500), route="get")
    with pytest.raises(ReplicateError) as caught:
        client.predictions.get(created.id)
    assert caught.value.status == 500
    assert fake.count("get") == 1


def test_429_on_create_is_not_retried(fake: FakeReplicate, client: Client) -> None:
    fake.inject(Fault.status(429, retry_after=2), route="create")
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(model=FLUX, input=FLUX_INPUT)
    assert caught.value.status == 429
    assert caught.value.detail == "Request was throttled. Expected available in 2 seconds."
    assert fake.count("create") == 1
    # ReplicateError keeps no headers; the Retry-After is on the wire only.
    assert not hasattr(caught.value, "headers")


# -- Replicate: broken transport --------------------------------------------------------------


def test_truncated_download_raises_remote_protocol_error(
    fake: FakeReplicate, client: Client
) -> None:
    fake.inject(Fault.truncated(), route="download")
    output = first_file(client.run(FLUX, input=FLUX_INPUT))
    with pytest.raises(httpx.RemoteProtocolError):
        output.read()
    assert fake.requests[-1].fault == "truncate"
    # The next download is whole.
    assert open_image(output.read()).format == "PNG"


async def test_truncated_async_download(fake: FakeReplicate, client: Client) -> None:
    fake.inject(Fault.truncated(keep_bytes=100), route="download")
    output = first_file(await client.async_run(FLUX, input=FLUX_INPUT))
    with pytest.raises(httpx.RemoteProtocolError):
        await output.aread()


def test_dropped_connection(fake: FakeReplicate, client: Client) -> None:
    fake.inject(Fault.drop(), route="create")
    with pytest.raises(httpx.RemoteProtocolError):
        client.predictions.create(model=FLUX, input=FLUX_INPUT)
    assert fake.requests[0].status is None
    # The client recovers on a new connection.
    assert client.predictions.create(model=FLUX, input=FLUX_INPUT).status == "starting"


def test_malformed_json_raises_json_decode_error(fake: FakeReplicate, client: Client) -> None:
    created = client.predictions.create(model=FLUX, input=FLUX_INPUT)
    fake.inject(Fault.malformed(), route="get")
    with pytest.raises(json.JSONDecodeError):
        client.predictions.get(created.id)


def test_slow_answer_exceeds_the_client_timeout(fake: FakeReplicate) -> None:
    client = make_client(fake, timeout=httpx.Timeout(0.3))
    created = client.predictions.create(model=FLUX, input=FLUX_INPUT)
    fake.inject(Fault.slow(3.0), route="get")
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.predictions.get(created.id)
    assert time.monotonic() - started < 2.0


def test_faults_are_consumed_in_order_and_validated(fake: FakeReplicate) -> None:
    fake.inject(Fault.status(503), route="create", times=2)
    fake.inject(Fault.drop())
    assert [a.times for a in fake.faults] == [2, 1]
    with pytest.raises(ValueError, match="unknown route"):
        fake.inject(Fault.drop(), route="nope")
    with pytest.raises(ValueError, match="download"):
        fake.inject(Fault.truncated(), route="get")
    fake.clear_faults()
    assert fake.faults == []


# -- Replicate: hostile outputs (what the attack suite plays) ------------------------------

ELSEWHERE = "https://elsewhere.example/out-0.png"
PLAIN_HTTP = "http://127.0.0.2:9/out-1.png"


@pytest.mark.parametrize("route", ["create", "get"])
def test_output_fault_makes_the_prediction_name_other_urls(
    fake: FakeReplicate, client: Client, route: str
) -> None:
    fake.inject(Fault.output(ELSEWHERE, PLAIN_HTTP), route=route)
    created = client.predictions.create(model=FLUX, input={**FLUX_INPUT, "num_outputs": 2})
    done = client.predictions.get(created.id)
    assert done.status == "succeeded"
    assert done.output == [ELSEWHERE, PLAIN_HTTP]
    assert [r.fault for r in fake.requests] == (
        ["output", None] if route == "create" else [None, "output"]
    )


def test_run_turns_only_https_outputs_into_files(fake: FakeReplicate, client: Client) -> None:
    fake.inject(Fault.output(ELSEWHERE, PLAIN_HTTP), route="create")
    outputs = client.run(FLUX, input={**FLUX_INPUT, "num_outputs": 2})
    assert isinstance(outputs, list)
    assert isinstance(outputs[0], FileOutput) and outputs[0].url == ELSEWHERE
    assert outputs[1] == PLAIN_HTTP  # an http: URL comes back as a plain str
    assert fake.count("download") == 0


@pytest.mark.parametrize(
    ("status", "location"),
    [(302, "https://127.0.0.2:9/meta-data"), (307, "/files/elsewhere.png")],
    ids=["302-absolute", "307-relative"],
)
def test_redirect_fault_answers_a_redirect_to_the_location(
    fake: FakeReplicate, client: Client, status: int, location: str
) -> None:
    fake.inject(Fault.redirect(location, status=status), route="download")
    output = first_file(client.run(FLUX, input=FLUX_INPUT))
    with httpx.Client(verify=client_ssl_context()) as http:
        answer = http.get(output.url)  # httpx follows no redirect unless told to
    assert answer.status_code == status
    assert answer.headers["location"] == location
    assert fake.requests[-1].fault == "redirect" and fake.requests[-1].status == status
    # The next download is the file itself.
    assert open_image(output.read()).format == "PNG"


def test_trickle_fault_sends_one_byte_at_a_time(fake: FakeReplicate, client: Client) -> None:
    fake.inject(Fault.trickle(0.1), route="download")
    output = first_file(client.run(FLUX, input=FLUX_INPUT))
    started = time.monotonic()
    received = b""
    with (
        httpx.Client(verify=client_ssl_context()) as http,
        http.stream("GET", output.url) as answer,
    ):
        length = int(answer.headers["content-length"])
        for piece in answer.iter_raw():
            received += piece
            if len(received) >= 3:
                break
    elapsed = time.monotonic() - started
    assert length > 1000  # the whole file is announced...
    assert received[:3] == b"\x89PN"  # ...and trickles in, a byte per 0.1 s
    assert 0.25 <= elapsed < 5
    assert fake.requests[-1].fault == "trickle"


@pytest.mark.parametrize(
    "fault",
    [
        Fault.output(ELSEWHERE, "data:image/png;base64,iVBORw0KGgo="),
        Fault.redirect("/files/x.png", status=308),
        Fault.trickle(2.5),
    ],
    ids=["output", "redirect", "trickle"],
)
def test_hostile_output_faults_round_trip_through_the_control_endpoint(
    fake: FakeReplicate, fault: Fault
) -> None:
    assert Fault.from_dict(fault.to_dict()) == fault
    route = "create" if fault.kind == "output" else "download"
    with httpx.Client(base_url=fake.base_url, verify=client_ssl_context()) as control:
        armed = control.post("/__fake__/faults", json={**fault.to_dict(), "route": route})
    assert armed.status_code == 200, armed.text
    assert [a.fault for a in fake.faults] == [fault]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Fault.output(), "at least one URL"),
        (lambda: Fault.redirect("https://x.example/", status=200), "3xx"),
        (lambda: Fault.trickle(0), "positive"),
        (lambda: Fault.from_dict({"kind": "redirect"}), "Location"),
    ],
    ids=["output-no-url", "redirect-200", "trickle-zero", "redirect-no-url"],
)
def test_hostile_output_faults_are_validated(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_hostile_output_faults_apply_only_to_their_routes(fake: FakeReplicate) -> None:
    with pytest.raises(ValueError, match="create, get"):
        fake.inject(Fault.output(ELSEWHERE), route="download")
    with pytest.raises(ValueError, match="download"):
        fake.inject(Fault.trickle(1.0), route="get")
    with pytest.raises(ValueError, match="download"):
        fake.inject(Fault.redirect(ELSEWHERE), route="create")


# -- Replicate: control endpoints -----------------------------------------------------------


def test_control_endpoint_arms_a_fault_over_http(fake: FakeReplicate, client: Client) -> None:
    with httpx.Client(base_url=fake.base_url, verify=client_ssl_context()) as control:
        armed = control.post(
            "/__fake__/faults",
            json={"kind": "status", "status": 503, "retry_after": 1, "route": "create"},
        )
        assert armed.status_code == 200
        assert armed.json()["faults"][0]["route"] == "create"
        with pytest.raises(ReplicateError) as caught:
            client.predictions.create(model=FLUX, input=FLUX_INPUT)
        assert caught.value.status == 503

        control.post("/__fake__/faults", json={"faults": [{"kind": "nsfw", "route": "create"}]})
        with pytest.raises(ModelError):
            client.run(FLUX, input=FLUX_INPUT)

        log = control.get("/__fake__/requests").json()["requests"]
        assert [(r["route"], r["status"], r["fault"]) for r in log] == [
            ("create", 503, "status"),
            ("create", 201, "failed"),
        ]
        assert control.post("/__fake__/config", json={"latency": 0.5}).json()["latency"] == 0.5
        assert fake.latency == 0.5
        bad = control.post("/__fake__/faults", json={"kind": "explode"})
        assert bad.status_code == 400
        assert control.post("/__fake__/reset").status_code == 200
        assert control.get("/__fake__/requests").json()["requests"] == []
        assert fake.prediction_ids == []


def test_serve_forever_from_another_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    code = "from producers.testing.fakes import serve_forever; serve_forever('replicate')"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    try:
        env: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while "REPLICATE_API_TOKEN" not in env:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            key, sep, value = line.partition("=")
            if sep and key.isupper():
                env[key] = value
        assert env["REPLICATE_API_TOKEN"] == FAKE_TOKEN
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        client = Client()
        client.poll_interval = 0.01
        # The other process made its own CA: trust the bundle it printed.
        context = ssl.create_default_context(cafile=env["SSL_CERT_FILE"])
        with httpx.Client(verify=context) as control:
            control.post(
                env["REPLICATE_BASE_URL"] + "/__fake__/faults",
                json={"kind": "failed", "error": "CUDA out of memory", "route": "create"},
            )
        with pytest.raises(ModelError, match="CUDA out of memory"):
            client.run(FLUX, input=FLUX_INPUT)
        outputs = client.run(FLUX, input=FLUX_INPUT)
        assert isinstance(outputs, list)
        assert open_image(outputs[0].read()).format == "PNG"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


# -- OpenAI -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The module's fake OpenAI, reset."""
    openai_server.reset()
    yield openai_server
    openai_server.reset()


@pytest.fixture
async def oai(fake_openai: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        api_key=FAKE_OPENAI_KEY, base_url=fake_openai.api_url, max_retries=0, timeout=5.0
    )
    yield client
    await client.close()


SCENES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "scenes"],
    "properties": {
        "title": {"type": "string"},
        "scenes": {
            "type": "array",
            "minItems": 2,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["narration", "seconds"],
                "properties": {
                    "narration": {"type": "string"},
                    "seconds": {"type": "integer", "minimum": 3, "maximum": 12},
                },
            },
        },
    },
}


class Scene(BaseModel):
    narration: str
    seconds: int


class Plan(BaseModel):
    title: str
    scenes: list[Scene]


async def test_openai_text_answer_from_a_reasoning_model(oai: openai.AsyncOpenAI) -> None:
    response = await oai.responses.create(
        model="gpt-5-mini", instructions="Be brief.", input="Explain volcanoes to a child"
    )
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == "gpt-5-mini-2025-08-07"
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output_text.startswith("Mock answer: Explain volcanoes")
    usage = response.usage
    assert usage is not None
    assert usage.output_tokens_details.reasoning_tokens > 0
    assert usage.output_tokens > usage.output_tokens_details.reasoning_tokens
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    stored = await oai.responses.retrieve(response.id)
    assert stored.output_text == response.output_text


async def test_openai_non_reasoning_model_answers_message_first(oai: openai.AsyncOpenAI) -> None:
    response = await oai.responses.create(model="gpt-4.1-mini", input="Hello", temperature=0.2)
    assert response.model == "gpt-4.1-mini-2025-04-14"
    assert response.output[0].type == "message"
    assert response.temperature == 0.2
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 0


async def test_openai_structured_output_validates(oai: openai.AsyncOpenAI) -> None:
    response = await oai.responses.create(
        model="gpt-5-mini",
        input="Plan a video about volcanoes",
        text={
            "format": {
                "type": "json_schema",
                "name": "plan",
                "schema": SCENES_SCHEMA,
                "strict": True,
            }
        },
    )
    value = json.loads(response.output_text)
    jsonschema.validate(value, SCENES_SCHEMA)
    assert len(value["scenes"]) >= 2

    parsed = await oai.responses.parse(
        model="gpt-5-nano", input="Plan a video about volcanoes", text_format=Plan
    )
    assert isinstance(parsed.output_parsed, Plan)
    assert parsed.output_parsed.scenes


async def test_openai_strict_schema_needs_additional_properties_false(
    oai: openai.AsyncOpenAI,
) -> None:
    loose: dict[str, Any] = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
    }
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(
            model="gpt-5-mini",
            input="x",
            text={"format": {"type": "json_schema", "name": "x", "schema": loose, "strict": True}},
        )
    assert caught.value.code == "invalid_json_schema"
    assert "'additionalProperties' is required" in caught.value.message


@pytest.mark.parametrize("param", ["temperature", "top_p"])
async def test_openai_gpt5_refuses_sampling_parameters(oai: openai.AsyncOpenAI, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(model="gpt-5", input="x", **{param: 0.5})  # type: ignore[call-overload]
    error = caught.value
    assert error.status_code == 400
    assert error.param == param
    assert error.code == "unsupported_parameter"
    assert f"Unsupported parameter: '{param}' is not supported with this model." in error.message


async def test_openai_rate_limit_carries_headers(
    fake_openai: FakeOpenAI, oai: openai.AsyncOpenAI
) -> None:
    fake_openai.inject(Fault.status(429, retry_after=2), route="responses")
    with pytest.raises(openai.RateLimitError) as caught:
        await oai.responses.create(model="gpt-5-mini", input="x")
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-limit-tokens" in headers
    assert caught.value.code == "rate_limit_exceeded"
    assert fake_openai.count("responses") == 1


async def test_openai_sdk_retries_by_itself_unless_told_not_to(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject(
        Fault.status(500, headers={"retry-after-ms": "10"}), route="responses", times=2
    )
    retrying = openai.AsyncOpenAI(api_key=FAKE_OPENAI_KEY, base_url=fake_openai.api_url)
    try:
        response = await retrying.responses.create(model="gpt-5-mini", input="x")
    finally:
        await retrying.close()
    assert response.status == "completed"
    assert fake_openai.statuses("responses") == [500, 500, 200]
    retry_counts = [r.headers.get("x-stainless-retry-count") for r in fake_openai.requests]
    assert retry_counts == ["0", "1", "2"]


async def test_openai_bad_key_echoes_it_masked(fake_openai: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(
        api_key="sk-test-WRONG-0000abcdef", base_url=fake_openai.api_url, max_retries=0
    )
    try:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.responses.create(model="gpt-5-mini", input="x")
    finally:
        await client.close()
    assert "Incorrect API key provided: sk-test-***cdef." in caught.value.message
    assert caught.value.code == "invalid_api_key"
    assert "WRONG" not in json.dumps([r.to_dict() for r in fake_openai.requests])


async def test_openai_unknown_model(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await oai.responses.create(model="gpt-9-ultra", input="x")
    assert caught.value.code == "model_not_found"


async def test_openai_output_token_limit_makes_an_incomplete_response(
    oai: openai.AsyncOpenAI,
) -> None:
    response = await oai.responses.create(model="gpt-5-mini", input="x", max_output_tokens=100)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == ""


async def test_openai_malformed_body_raises_json_decode_error(
    fake_openai: FakeOpenAI, oai: openai.AsyncOpenAI
) -> None:
    fake_openai.inject(Fault.malformed())
    with pytest.raises(json.JSONDecodeError):
        await oai.responses.create(model="gpt-5-mini", input="x")


async def test_openai_dropped_connection_and_timeout(
    fake_openai: FakeOpenAI, oai: openai.AsyncOpenAI
) -> None:
    fake_openai.inject(Fault.drop())
    with pytest.raises(openai.APIConnectionError) as dropped:
        await oai.responses.create(model="gpt-5-mini", input="x")
    assert not isinstance(dropped.value, openai.APITimeoutError)

    fake_openai.inject(Fault.slow(3.0))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await oai.responses.create(model="gpt-5-mini", input="x", timeout=0.3)
    assert time.monotonic() - started < 2.0


async def test_openai_over_https_and_control_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_bundle_path()))  # CA + public roots
    with FakeOpenAI(tls=True) as fake:
        assert fake.api_url.startswith("https://")
        client = openai.AsyncOpenAI(api_key=FAKE_OPENAI_KEY, base_url=fake.api_url, max_retries=0)
        try:
            async with httpx.AsyncClient(verify=client_ssl_context()) as control:
                await control.post(
                    fake.url("/__fake__/faults"),
                    json={"kind": "status", "status": 503, "route": "responses"},
                )
            with pytest.raises(openai.InternalServerError) as caught:
                await client.responses.create(model="gpt-5-mini", input="x")
            assert caught.value.status_code == 503
            response = await client.responses.create(model="o4-mini", input="x")
            assert response.model == "o4-mini-2025-04-16"
        finally:
            await client.close()
