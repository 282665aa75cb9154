"""Opt-in tests against the real OpenAI and Replicate APIs (paid, a few cents at most).

They run only when asked: ``TUTOPANDA_REAL_API=1`` and real keys in ``OPENAI_API_KEY`` /
``REPLICATE_API_TOKEN`` (``make test-real``); otherwise every test here is skipped, so the
default test run and CI never reach the network. Base-URL variables are cleared: these tests
talk to the providers themselves, never to a fake or a proxy someone left set.
"""

from __future__ import annotations

import os

import pytest

from producers.testing.fakes import FAKE_OPENAI_KEY, FAKE_TOKEN

ASKED = os.environ.get("TUTOPANDA_REAL_API") == "1"


def _real(name: str, fake: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value if value and value != fake else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/real_api/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.real_api)


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = _real("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    if not ASKED or key is None:
        pytest.skip("real OpenAI test: set TUTOPANDA_REAL_API=1 and OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return key


@pytest.fixture
def replicate_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = _real("REPLICATE_API_TOKEN", FAKE_TOKEN)
    if not ASKED or token is None:
        pytest.skip("real Replicate test: set TUTOPANDA_REAL_API=1 and REPLICATE_API_TOKEN")
    monkeypatch.delenv("REPLICATE_BASE_URL", raising=False)
    return token
