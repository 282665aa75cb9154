"""Provider adapters (transports): one per provider, plus the generic mock."""

from __future__ import annotations

from typing import Any

from producers.clients.base import (
    MediaClient,
    MediaHints,
    MediaJob,
    TextClient,
    TextRequest,
    TextResult,
)
from producers.clients.mock import MockClient
from producers.sdk.runtime import ClientContext, ClientRegistry


def _mock(context: ClientContext) -> MockClient:
    return MockClient(context.provider)


def _openai_live(context: ClientContext) -> Any:
    from producers.clients.openai import OpenAIClient

    return OpenAIClient(context.secrets.require("OPENAI_API_KEY"), **dict(context.options))


def _replicate_live(context: ClientContext) -> Any:
    from producers.clients.replicate import ReplicateClient

    return ReplicateClient(context.secrets.require("REPLICATE_API_TOKEN"), **dict(context.options))


def default_client_registry() -> ClientRegistry:
    """The adapters this installation has: OpenAI and Replicate live, the mock for all.

    Live adapters take their base URL from ``OPENAI_BASE_URL`` / ``REPLICATE_BASE_URL``
    and their key from the secret resolver (``OPENAI_API_KEY`` / ``REPLICATE_API_TOKEN``),
    unless the client passes options (``base_url``, ``timeout``, ``transport``...).
    """
    registry = ClientRegistry()
    registry.register("*", "mock", _mock)
    registry.register("openai", "live", _openai_live)
    registry.register("replicate", "live", _replicate_live)
    return registry


__all__ = [
    "ClientContext",
    "ClientRegistry",
    "MediaClient",
    "MediaHints",
    "MediaJob",
    "MockClient",
    "TextClient",
    "TextRequest",
    "TextResult",
    "default_client_registry",
]
