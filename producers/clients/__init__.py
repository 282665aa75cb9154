"""Provider adapters (transports): one per provider, plus the generic mock."""

from __future__ import annotations

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


def default_client_registry() -> ClientRegistry:
    """The adapters this installation has: the generic mock for every provider."""
    registry = ClientRegistry()
    registry.register("*", "mock", _mock)
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
