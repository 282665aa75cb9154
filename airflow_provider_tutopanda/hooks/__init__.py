"""Hooks: one per provider connection type, each owning an Airflow connection.

OpenAI and Replicate have their own connection types (``openai``, ``replicate``); any other
provider, one an installed package brings, uses the generic ``tutopanda`` connection
(:class:`TutopandaHook`, default id ``tutopanda_<provider>``).
"""

from __future__ import annotations

from airflow_provider_tutopanda.hooks.base import ConnectionSecretResolver, ProducerHook
from airflow_provider_tutopanda.hooks.generic import TutopandaHook, default_conn_id
from airflow_provider_tutopanda.hooks.openai import OpenAIHook
from airflow_provider_tutopanda.hooks.replicate import ReplicateHook

#: The providers with a connection type of their own; every other one gets a TutopandaHook.
HOOKS: dict[str, type[ProducerHook]] = {"openai": OpenAIHook, "replicate": ReplicateHook}


def hook_for(provider: str, conn_id: str | None = None) -> ProducerHook:
    """The hook of ``provider`` on ``conn_id``, else on the provider's default connection.

    ``openai`` and ``replicate`` get their own hooks (``openai_default``,
    ``replicate_default``); any other provider the generic :class:`TutopandaHook`
    (``tutopanda_<provider>``). Building the hook reads nothing: a provider without an
    installed client fails when its key or client is asked for, naming what to install.
    """
    provider = provider.strip().lower()
    if not provider:
        raise ValueError("hook_for needs a provider name")
    hook_class = HOOKS.get(provider)
    if hook_class is not None:
        return hook_class(conn_id or hook_class.default_conn_name)
    return TutopandaHook(conn_id or default_conn_id(provider), provider=provider)


__all__ = [
    "HOOKS",
    "ConnectionSecretResolver",
    "OpenAIHook",
    "ProducerHook",
    "ReplicateHook",
    "TutopandaHook",
    "default_conn_id",
    "hook_for",
]
