"""The examples of docs/authoring.md run here, in-process, so the guide stays true.

The guide's files also run as written outside the repository, and the example provider package
(examples/tutopanda-acme) is installed and run through the CLI and Airflow, in
tests/integration/test_plugin_package.py.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from PIL import Image

from producers.clients import default_client_registry
from producers.registry import ProviderRegistry, builtin_definitions
from producers.sdk import ErrorCode, ProviderError
from producers.testing import JobContext, assert_artefact, fake_secret_resolver, make_job_request

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
GUIDE = ROOT / "docs" / "authoring.md"
ACME_SRC = ROOT / "examples" / "tutopanda-acme" / "src"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def guide_blocks() -> list[str]:
    """The guide's Python blocks."""
    return BLOCK.findall(GUIDE.read_text(encoding="utf-8"))


def guide_files() -> dict[str, str]:
    """The guide's files: the blocks whose first line is ``# file: NAME``."""
    files = {}
    for block in guide_blocks():
        first, _, rest = block.partition("\n")
        if first.startswith("# file: "):
            files[first.removeprefix("# file: ").strip()] = rest
    return files


def load_source(name: str, source: str) -> ModuleType:
    module = ModuleType(name)
    exec(compile(source, f"docs/authoring.md:{name}", "exec"), module.__dict__)
    return module


@pytest.fixture
def acme_package(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``tutopanda_acme`` imported from the example's sources (not installed here)."""
    monkeypatch.syspath_prepend(str(ACME_SRC))
    for name in [m for m in sys.modules if m.startswith("tutopanda_acme")]:
        monkeypatch.delitem(sys.modules, name)
    spec = importlib.util.find_spec("tutopanda_acme")
    assert spec is not None and spec.origin is not None and spec.origin.startswith(str(ACME_SRC))
    import tutopanda_acme

    return tutopanda_acme


def test_every_python_block_of_the_guide_is_a_file_or_says_it_is_a_fragment() -> None:
    firsts = [block.partition("\n")[0] for block in guide_blocks()]
    assert firsts and all(f.startswith(("# file: ", "# fragment: ")) for f in firsts), firsts
    assert {"my_producer.py", "test_my_producer.py", "me_client.py", "dags/acme_pictures.py"} <= (
        set(guide_files())
    )


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


async def test_the_guides_producer_runs_in_mock_mode() -> None:
    module = load_source("my_producer", guide_files()["my_producer.py"])
    context = JobContext()
    context.register(module.MY_PRODUCER)
    request = make_job_request("me:text-1", config={"template": "Hi {{ prompt }}"})
    result = await context.handler(request).run(request)
    assert result.diagnostics.producer == "me.text"
    assert result.diagnostics.payload == {"input": "Hi A red panda explaining volcanoes"}
    assert result.artefacts[0].value and result.diagnostics.mocked


@pytest.mark.parametrize(
    ("environment", "producer", "queue"),
    [("local", "acme.images", "interactive"), ("airflow", "acme.images.airflow", "batch")],
    ids=["cli", "airflow"],
)
async def test_the_example_provider_in_mock_mode_without_a_mock_of_its_own(
    acme_package: ModuleType, environment: str, producer: str, queue: str
) -> None:
    context = JobContext()
    for definition in acme_package.PRODUCERS:
        context.register(definition)
    request = make_job_request(
        "acme:pixel-1",
        inputs={"prompt": "a kite", "count": 2, "aspect_ratio": "1:1"},
        environment=environment,
    )
    result = await context.handler(request).run(request)
    assert result.diagnostics.producer == producer
    assert result.diagnostics.payload["queue"] == queue
    assert len(result.artefacts) == 2
    for artefact in result.artefacts:
        await assert_artefact(
            artefact, store=context.store, kind="blob", mime_prefix="image/", mocked=True
        )


def fake_acme(calls: list[str], output: str) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.url.path == "/v1/models/pixel-1/jobs":
            return httpx.Response(201, json={"id": "j1", "state": "queued"})
        if request.url.path == "/v1/jobs/j1":
            return httpx.Response(200, json={"id": "j1", "state": "done", "files": [output]})
        return httpx.Response(404, json={"message": "no such route"})

    return httpx.MockTransport(handle)


async def test_the_example_provider_downloads_outputs_only_from_its_own_hosts(
    acme_package: ModuleType,
) -> None:
    """The example teaches the safe pattern: an output URL naming another host (here a
    cloud metadata address) is refused before any connection, and nothing is stored."""
    clients = default_client_registry()
    clients.register("acme", "live", acme_package.ACME_CLIENT.build)
    context = JobContext(
        clients=clients, secrets=fake_secret_resolver({"ACME_API_KEY": "acme-secret-key-1"})
    )
    context.register(acme_package.ACME_IMAGES)
    calls: list[str] = []
    request = make_job_request("acme:pixel-1", mode="live", inputs={"prompt": "a kite"})
    handler = context.handler(request)
    handler.deps.client_options = {
        "acme": {"transport": fake_acme(calls, "https://169.254.169.254/latest/meta-data")}
    }
    with pytest.raises(ProviderError) as caught:
        await handler.run(request)
    assert caught.value.code is ErrorCode.MALFORMED_OUTPUT and not caught.value.retryable
    assert "169.254.169.254" in str(caught.value) and "acme-secret-key-1" not in str(caught.value)
    assert calls[0] == "POST /v1/models/pixel-1/jobs"  # the spec's default base URL
    assert not any("meta-data" in call for call in calls)  # never contacted
