"""The Acme provider's own tests, on tutopanda's shipped pytest plugin (``tutopanda[testing]``):
the ``tutopanda_context`` fixture, ``make_job_request`` and ``assert_artefact``.

Mock mode needs nothing from Acme; the live path runs the real client against an
``httpx.MockTransport`` that plays Acme's API.
"""

from __future__ import annotations

import io
import json

import httpx
import pytest
from PIL import Image
from tutopanda_acme import ACME_CLIENT, ACME_IMAGES, ACME_IMAGES_AIRFLOW, PRODUCERS

from producers.clients import client_specs, default_client_registry
from producers.registry import default_registry
from producers.sdk import Descriptor, ErrorCode, ProviderError
from producers.testing import JobContext, assert_artefact, fake_secret_resolver, make_job_request

KEY = "acme-test-key-0123456789"


@pytest.fixture
def acme(tutopanda_context: JobContext) -> JobContext:
    """The plugin's job context with the Acme producers registered (installed, the package's
    entry points register them anyway: registering again changes nothing)."""
    for definition in PRODUCERS:
        tutopanda_context.register(definition)
    return tutopanda_context


@pytest.mark.parametrize(
    ("environment", "producer", "queue", "cost"),
    [
        ("local", "acme.images", "interactive", 0.02),
        ("airflow", "acme.images.airflow", "batch", 0.01),
    ],
    ids=["cli", "airflow"],
)
async def test_mock_mode_in_each_environment(
    acme: JobContext, environment: str, producer: str, queue: str, cost: float
) -> None:
    request = make_job_request(
        "acme:pixel-1",
        inputs={"prompt": "a kite", "count": 2, "aspect_ratio": "16:9"},
        environment=environment,
    )
    result = await acme.handler(request).run(request)
    assert [a.id for a in result.artefacts] == ["image[0]", "image[1]"]
    assert result.diagnostics.producer == producer
    assert result.diagnostics.payload == {
        "text": "a kite",
        "n": 2,
        "style": "flat",
        "queue": queue,
        "aspect_ratio": "16:9",
    }
    assert result.diagnostics.estimated_cost_usd == pytest.approx(cost)
    for artefact in result.artefacts:
        data = await assert_artefact(
            artefact, store=acme.store, kind="blob", mime_prefix="image/", mocked=True
        )
        width, height = Image.open(io.BytesIO(data)).size
        assert width > height  # 16:9


async def test_a_bad_style_is_refused_before_any_request(acme: JobContext) -> None:
    request = make_job_request("acme:pixel-1", custom={"style": "neon"})
    with pytest.raises(ProviderError) as caught:
        await acme.handler(request).run(request)
    assert caught.value.code is ErrorCode.INVALID_INPUT and "flat, watercolour, ink" in str(
        caught.value
    )
    assert acme.client_requests.get("acme", []) == []


def test_installed_the_package_is_what_tutopanda_sees() -> None:
    """Run where the package is installed: its entry points are read by tutopanda."""
    registry = default_registry()
    assert registry.find(Descriptor.parse("acme:pixel-2")) in (ACME_IMAGES,)
    assert registry.find(Descriptor.parse("acme:pixel-2", environment="airflow")) in (
        ACME_IMAGES_AIRFLOW,
    )
    listed = {info.model_id for info in registry.models()}
    assert {"acme:pixel-1", "acme:pixel-2", "replicate:acme/pixel-lite"} <= listed
    assert client_specs()["acme"] is ACME_CLIENT


def fake_acme(
    calls: list[str], *, rate_limited: bool = False, output: str = ""
) -> httpx.MockTransport:
    """Acme's API as a transport: a job that is done at the first look, one PNG output."""
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(png, format="PNG")
    output = output or "https://files.acme.example/j1/0.png"

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.url.host == "files.acme.example":  # outputs: fetched without the key
            assert "authorization" not in request.headers
            return httpx.Response(200, content=png.getvalue())
        assert request.headers["authorization"] == f"Bearer {KEY}"
        if rate_limited:
            return httpx.Response(429, headers={"retry-after": "12"}, json={"message": "slow"})
        if request.url.path == "/v1/models/pixel-1/jobs":
            assert json.loads(request.content)["text"] == "a kite"
            return httpx.Response(201, json={"id": "j1", "state": "queued"})
        if request.url.path == "/v1/jobs/j1":
            return httpx.Response(200, json={"id": "j1", "state": "done", "files": [output]})
        return httpx.Response(404, json={"message": "no such route"})

    return httpx.MockTransport(handle)


async def run_live(transport: httpx.MockTransport) -> object:
    clients = default_client_registry()
    clients.register("acme", "live", ACME_CLIENT.build)  # the entry point does it when installed
    context = JobContext(clients=clients, secrets=fake_secret_resolver({"ACME_API_KEY": KEY}))
    for definition in PRODUCERS:
        context.register(definition)
    request = make_job_request("acme:pixel-1", mode="live", inputs={"prompt": "a kite"})
    handler = context.handler(request)
    handler.deps.client_options = {
        "acme": {"base_url": "https://api.acme.example/v1", "transport": transport}
    }
    return await handler.run(request)


async def test_the_live_path_is_the_same_code_with_a_real_transport() -> None:
    calls: list[str] = []
    result = await run_live(fake_acme(calls))
    (artefact,) = result.artefacts  # type: ignore[attr-defined]
    assert artefact.mime_type == "image/png" and artefact.diagnostics.mocked is False
    assert calls[0] == "POST /v1/models/pixel-1/jobs" and calls[-1] == "GET /j1/0.png"
    assert set(calls[1:-1]) == {"GET /v1/jobs/j1"}


async def test_outputs_come_only_from_acmes_hosts() -> None:
    """An output URL naming another host (a cloud metadata address) is refused before any
    connection, and nothing is stored."""
    calls: list[str] = []
    with pytest.raises(ProviderError) as caught:
        await run_live(fake_acme(calls, output="https://169.254.169.254/latest/meta-data"))
    assert caught.value.code is ErrorCode.MALFORMED_OUTPUT and not caught.value.retryable
    assert "169.254.169.254" in str(caught.value)
    assert not any("meta-data" in call for call in calls)


async def test_errors_map_to_provider_error_and_never_carry_the_key() -> None:
    calls: list[str] = []
    with pytest.raises(ProviderError) as caught:
        await run_live(fake_acme(calls, rate_limited=True))
    error = caught.value
    assert (error.code, error.retryable, error.retry_after) == (ErrorCode.RATE_LIMITED, True, 12.0)
    assert calls == ["POST /v1/models/pixel-1/jobs"]  # the SDK never retries by itself
    assert KEY not in str(error)
