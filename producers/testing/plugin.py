"""The tutopanda pytest plugin (entry point ``pytest11``): fixtures for producer authors.

Fixtures:
    tutopanda_context: a :class:`~producers.testing.fixtures.JobContext` (memory store,
        fake secrets, the built-in producers).
    live_fakes: the fake Replicate and OpenAI servers, reset, with the official variables
        pointing at them (``fake_provider_servers`` starts them once per session).
    tutopanda_recorder: a vcrpy recorder with cassettes beside the test module.
    fake_secrets: a fake secret resolver with fake provider keys.
    job_request_factory: :func:`~producers.testing.fixtures.make_job_request`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

from producers.sdk.jobs import JobRequest
from producers.sdk.secrets import StaticSecretResolver
from producers.testing.fixtures import JobContext, fake_secret_resolver, make_job_request


@pytest.fixture
def fake_secrets() -> StaticSecretResolver:
    """Fake provider keys (``OPENAI_API_KEY``, ``REPLICATE_API_TOKEN``)."""
    return fake_secret_resolver()


@pytest.fixture
def tutopanda_context(fake_secrets: StaticSecretResolver) -> JobContext:
    """A job context with a memory store, fake secrets and the built-in producers."""
    return JobContext(secrets=fake_secrets)


@pytest.fixture
def job_request_factory() -> Callable[..., JobRequest]:
    """Build realistic job requests: ``job_request_factory("replicate:x/y", inputs=...)``."""

    def factory(*args: Any, **kwargs: Any) -> JobRequest:
        return make_job_request(*args, **kwargs)

    return factory


@pytest.fixture
def tutopanda_recorder(request: pytest.FixtureRequest) -> Any:
    """A vcrpy recorder whose cassettes live in ``cassettes/`` beside the test module.

    Use ``with tutopanda_recorder.use_cassette("name.yaml"): ...``. Replay-only unless
    ``TUTOPANDA_RECORD`` is ``once``, ``new_episodes`` or ``all``.
    """
    from pathlib import Path

    from producers.testing.recording import recorder

    return recorder(Path(str(request.path)).parent / "cassettes")


class LiveFakes(NamedTuple):
    """The fake provider servers a live test talks to."""

    replicate: Any
    openai: Any


@pytest.fixture(scope="session")
def fake_provider_servers() -> Iterator[LiveFakes]:
    """A fake Replicate (HTTPS, test CA) and a fake OpenAI, started once per session."""
    from producers.testing.fakes import FakeOpenAI, FakeReplicate

    with FakeReplicate() as replicate_fake, FakeOpenAI() as openai_fake:
        yield LiveFakes(replicate_fake, openai_fake)


@pytest.fixture
def live_fakes(fake_provider_servers: LiveFakes, monkeypatch: pytest.MonkeyPatch) -> LiveFakes:
    """The fakes, reset, with the official variables pointing at them, as a user would set:
    ``SSL_CERT_FILE``, ``REPLICATE_BASE_URL``, ``REPLICATE_API_TOKEN``, ``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY`` (fake keys)."""
    from producers.testing.fakes import FAKE_OPENAI_KEY, FAKE_TOKEN, ca_path

    for fake in fake_provider_servers:
        fake.reset()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_path()))
    monkeypatch.setenv("REPLICATE_BASE_URL", fake_provider_servers.replicate.base_url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_provider_servers.openai.api_url)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    return fake_provider_servers
