"""Hooks: one per provider, each owning an Airflow connection."""

from __future__ import annotations

from airflow_provider_tutopanda.hooks.base import ConnectionSecretResolver, ProducerHook
from airflow_provider_tutopanda.hooks.openai import OpenAIHook
from airflow_provider_tutopanda.hooks.replicate import ReplicateHook

HOOKS: dict[str, type[ProducerHook]] = {"openai": OpenAIHook, "replicate": ReplicateHook}


def hook_for(provider: str, conn_id: str | None = None) -> ProducerHook:
    """The hook for ``provider`` (``openai`` / ``replicate``) on ``conn_id`` or its default."""
    try:
        hook_class = HOOKS[provider]
    except KeyError:
        raise ValueError(
            f"no tutopanda hook for provider {provider!r}; known: {', '.join(sorted(HOOKS))}"
        ) from None
    return hook_class(conn_id or hook_class.default_conn_name)


__all__ = [
    "HOOKS",
    "ConnectionSecretResolver",
    "OpenAIHook",
    "ProducerHook",
    "ReplicateHook",
    "hook_for",
]
