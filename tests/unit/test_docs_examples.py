"""The examples of docs/authoring.md run here, so the guide stays true."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from PIL import Image

from producers.clients import default_client_registry
from producers.registry import ProviderRegistry, builtin_definitions
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.runtime import ClientRegistry
from producers.testing import JobContext, assert_artefact, fake_secret_resolver, make_job_request

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_adding_a_model_is_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUTOPANDA_MODELS_PATH", str(EXAMPLES / "models"))
    context = JobContext(registry=ProviderRegistry(builtin_definitions()))
    info = context.registry.describe("replicate:acme/tiny-image")
    assert info.kind.value == "text-to-image"
    assert set(info.general_attributes) == {"prompt", "aspect_ratio", "count"}
    request = make_job_request(
        "replicate:acme/tiny-image", inputs={"prompt": "a fox", "aspect_ratio": "16:9", "count": 2}
    )
    result = await context.handler(request).run(request)
    assert [a.id for a in result.artefacts] == ["image[0]", "image[1]"]
    payload = result.diagnostics.payload
    assert payload == {
        "style": "watercolour",
        "caption": "a fox",
        "width": 768,
        "height": 448,
        "images": 2,
    }
    assert result.diagnostics.estimated_cost_usd == pytest.approx(0.004)
    data = await assert_artefact(
        result.artefacts[0], store=context.store, kind="blob", mime_prefix="image/png", mocked=True
    )
    width, height = Image.open(io.BytesIO(data)).size
    assert width / height == pytest.approx(768 / 448, rel=0.01)


async def test_new_provider_runs_in_mock_mode_without_a_mock_of_its_own() -> None:
    acme = load_example("acme_provider")
    context = JobContext()
    context.register(acme.ACME_IMAGES)
    request = make_job_request(
        "acme:pixel-1", inputs={"prompt": "a kite", "count": 2, "aspect_ratio": "1:1"}
    )
    result = await context.handler(request).run(request)
    assert len(result.artefacts) == 2
    for artefact in result.artefacts:
        await assert_artefact(
            artefact, store=context.store, kind="blob", mime_prefix="image/", mocked=True
        )


def fake_acme(
    calls: list[str],
    *,
    rate_limited: bool = False,
    output: str = "https://files.acme.test/j1/0.png",
) -> httpx.MockTransport:
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(png, format="PNG")

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.url.host == "files.acme.test":  # outputs: fetched without the token
            assert "authorization" not in request.headers
            return httpx.Response(200, content=png.getvalue())
        assert request.headers["authorization"] == "Bearer acme-secret-token-1"
        if rate_limited:
            return httpx.Response(429, headers={"retry-after": "12"}, json={"message": "slow down"})
        if request.url.path == "/v1/models/pixel-1/jobs":
            body = json.loads(request.content)
            assert body == {"text": "a kite", "n": 1}
            return httpx.Response(201, json={"id": "j1", "state": "queued"})
        if request.url.path == "/v1/jobs/j1":
            return httpx.Response(
                200,
                json={"id": "j1", "state": "done", "files": [output]},
            )
        return httpx.Response(404, json={"message": "no such route"})

    return httpx.MockTransport(handle)


def live_context(acme: ModuleType) -> JobContext:
    clients: ClientRegistry = default_client_registry()
    clients.register("acme", "live", acme.acme_live_client)
    context = JobContext(
        clients=clients, secrets=fake_secret_resolver({"ACME_TOKEN": "acme-secret-token-1"})
    )
    context.register(acme.ACME_IMAGES)
    return context


async def test_new_provider_live_path_is_the_same_code_with_a_real_transport() -> None:
    acme = load_example("acme_provider")
    calls: list[str] = []
    context = live_context(acme)
    request = make_job_request("acme:pixel-1", mode="live", inputs={"prompt": "a kite"})
    handler = context.registry.resolve(request.descriptor, "live", context.deps())
    handler.deps.client_options = {
        "acme": {"base_url": "https://acme.test/v1", "transport": fake_acme(calls)}
    }
    result = await handler.run(request)
    (artefact,) = result.artefacts
    assert artefact.mime_type == "image/png"
    assert artefact.diagnostics.mocked is False
    assert calls == [
        "POST /v1/models/pixel-1/jobs",
        "GET /v1/jobs/j1",
        "GET /v1/jobs/j1",
        "GET /j1/0.png",
    ]


async def test_new_provider_downloads_outputs_only_from_its_own_hosts() -> None:
    """The example teaches the safe pattern: an output URL naming another host (here a
    cloud metadata address) is refused before any connection, and nothing is stored."""
    acme = load_example("acme_provider")
    calls: list[str] = []
    context = live_context(acme)
    request = make_job_request("acme:pixel-1", mode="live", inputs={"prompt": "a kite"})
    handler = context.registry.resolve(request.descriptor, "live", context.deps())
    handler.deps.client_options = {
        "acme": {
            "base_url": "https://acme.test/v1",
            "transport": fake_acme(calls, output="https://169.254.169.254/latest/meta-data"),
        }
    }
    with pytest.raises(ProviderError) as caught:
        await handler.run(request)
    assert caught.value.code is ErrorCode.MALFORMED_OUTPUT and not caught.value.retryable
    assert "169.254.169.254" in str(caught.value)
    assert not any("meta-data" in call for call in calls)  # never contacted


async def test_new_provider_errors_map_to_provider_error() -> None:
    acme = load_example("acme_provider")
    calls: list[str] = []
    context = live_context(acme)
    request = make_job_request("acme:pixel-1", mode="live", inputs={"prompt": "a kite"})
    handler = context.registry.resolve(request.descriptor, "live", context.deps())
    handler.deps.client_options = {
        "acme": {
            "base_url": "https://acme.test/v1",
            "transport": fake_acme(calls, rate_limited=True),
        }
    }
    with pytest.raises(ProviderError) as caught:
        await handler.run(request)
    assert (caught.value.code, caught.value.retryable, caught.value.retry_after) == (
        ErrorCode.RATE_LIMITED,
        True,
        12.0,
    )
    assert calls == ["POST /v1/models/pixel-1/jobs"]  # the SDK never retries by itself
    assert "acme-secret-token-1" not in str(caught.value)
