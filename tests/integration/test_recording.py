"""Record once against a provider (here the fakes), then replay with no server and no key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producers.clients import default_client_registry
from producers.testing import JobContext, fake_secret_resolver, make_job_request
from producers.testing.fakes import FakeOpenAI, FakeReplicate, ca_path
from producers.testing.recording import recorder

pytestmark = pytest.mark.integration

OPENAI_KEY = "sk-proj-REALISTIC-planted-key-0123456789abcdef"
REPLICATE_TOKEN = "r8_PLANTEDtokenABCDEFGHIJKLMNOP0123456789"


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeReplicate, FakeOpenAI]]:
    with (
        FakeReplicate(token=REPLICATE_TOKEN) as replicate_fake,
        FakeOpenAI(api_key=OPENAI_KEY) as openai_fake,
    ):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_path()))
        monkeypatch.setenv("REPLICATE_BASE_URL", replicate_fake.base_url)
        monkeypatch.setenv("OPENAI_BASE_URL", openai_fake.api_url)
        yield replicate_fake, openai_fake


async def run(model_id: str, secrets: dict[str, str], **fields: Any) -> Any:
    context = JobContext(clients=default_client_registry(), secrets=fake_secret_resolver(secrets))
    request = make_job_request(model_id, mode="live", **fields)
    deps = context.deps()
    deps.poll_interval = 0.0
    return await context.registry.resolve(request.descriptor, "live", deps).run(request)


@pytest.mark.parametrize(
    ("model_id", "inputs"),
    [
        ("openai:gpt-5-mini", {"prompt": "volcanoes"}),
        ("replicate:bytedance/seedream-4", {"prompt": "A fox", "aspect_ratio": "1:1"}),
    ],
    ids=["openai", "replicate"],
)
async def test_record_then_replay_without_server_or_key(
    model_id: str, inputs: dict[str, Any], fakes: tuple[FakeReplicate, FakeOpenAI], tmp_path: Path
) -> None:
    replicate_fake, openai_fake = fakes
    fake = openai_fake if model_id.startswith("openai") else replicate_fake
    keys = {"OPENAI_API_KEY": OPENAI_KEY, "REPLICATE_API_TOKEN": REPLICATE_TOKEN}
    with recorder(tmp_path, record_mode="once", secrets=keys.values()).use_cassette("job.yaml"):
        recorded = await run(model_id, keys, inputs=inputs)
    sent = len(fake.requests)
    assert sent >= 1
    cassette = (tmp_path / "job.yaml").read_text()
    assert OPENAI_KEY not in cassette and REPLICATE_TOKEN not in cassette
    assert "***" in cassette

    # Replay: a wrong key, and the fake would refuse it; the cassette answers instead.
    wrong = {
        "OPENAI_API_KEY": "sk-wrong-key-00000000000",
        "REPLICATE_API_TOKEN": "r8_wrongtoken00000000000",
    }
    with recorder(tmp_path, record_mode="none").use_cassette("job.yaml"):
        replayed = await run(model_id, wrong, inputs=inputs)
    assert len(fake.requests) == sent  # nothing reached the server
    assert [a.sha256 for a in replayed.artefacts] == [a.sha256 for a in recorded.artefacts]
