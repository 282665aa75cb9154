"""Provider adapters (transports): one per provider, plus the generic mock.

Which providers have a live adapter is said by their :class:`ClientSpec`: the built-in OpenAI
and Replicate specs, then those other packages register under the ``tutopanda.clients``
entry point group (a plugin's spec for a built-in provider replaces it).
"""

from __future__ import annotations

import logging

from producers.clients.base import (
    MediaClient,
    MediaHints,
    MediaJob,
    TextClient,
    TextRequest,
    TextResult,
)
from producers.clients.mock import MockClient
from producers.clients.spec import BUILTIN_SPECS, ClientSpec
from producers.sdk.runtime import ClientContext, ClientRegistry

log = logging.getLogger(__name__)


def _mock(context: ClientContext) -> MockClient:
    return MockClient(context.provider)


def plugin_client_specs() -> tuple[ClientSpec, ...]:
    """The specs installed packages register (``tutopanda.clients``), in load order.

    Two packages registering the same provider is ambiguous: the second is skipped with a
    warning naming both.
    """
    from producers import plugins

    seen: dict[str, str] = {}
    specs: list[ClientSpec] = []
    for loaded in plugins.loaded(plugins.CLIENTS_GROUP):
        for spec in loaded.items:
            if spec.provider in seen:
                if seen[spec.provider] != str(loaded.plugin):
                    _warn_twice(spec.provider, seen[spec.provider], str(loaded.plugin))
                continue
            seen[spec.provider] = str(loaded.plugin)
            specs.append(spec)
    return tuple(specs)


_warned: set[str] = set()


def _warn_twice(provider: str, first: str, second: str) -> None:
    if provider not in _warned:
        _warned.add(provider)
        log.warning(
            "tutopanda plugin: provider %r has two client specs; %s is used, %s is skipped",
            provider,
            first,
            second,
        )


def client_specs() -> dict[str, ClientSpec]:
    """Every provider with a live adapter: the built-ins, then the plugins' (which win)."""
    specs = {spec.provider: spec for spec in BUILTIN_SPECS}
    specs.update((spec.provider, spec) for spec in plugin_client_specs())
    return specs


def client_spec(provider: str) -> ClientSpec | None:
    """The spec of ``provider``, or None if no installed package has one."""
    return client_specs().get(provider.lower())


def default_client_registry() -> ClientRegistry:
    """The adapters this installation has: a live one per :func:`client_specs` entry, and the
    generic mock for every provider.

    A live adapter takes its key from the secret resolver (the spec's ``secret_name``) and
    its base URL from the client's options (``base_url``), else the spec's ``base_url_env``,
    else its default URL; other options (``timeout``, ``transport``...) pass through.
    """
    registry = ClientRegistry()
    registry.register("*", "mock", _mock)
    for spec in client_specs().values():
        registry.register(spec.provider, "live", spec.build)
    return registry


__all__ = [
    "ClientContext",
    "ClientRegistry",
    "ClientSpec",
    "MediaClient",
    "MediaHints",
    "MediaJob",
    "MockClient",
    "TextClient",
    "TextRequest",
    "TextResult",
    "client_spec",
    "client_specs",
    "default_client_registry",
    "plugin_client_specs",
]
