"""The tutopanda pytest plugin (entry point ``pytest11``): fixtures for producer authors.

Fixtures:
    tutopanda_context: a :class:`~producers.testing.fixtures.JobContext` (memory store,
        fake secrets, the built-in producers).
    fake_secrets: a fake secret resolver with fake provider keys.
    job_request_factory: :func:`~producers.testing.fixtures.make_job_request`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
