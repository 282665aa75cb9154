"""What a provider's client needs, written once per vendor: a :class:`ClientSpec`.

A spec names the provider, how to build its live adapter, the secret its key is resolved by,
the variable that may point it at another base URL and its default URL. The client registry
builds adapters from specs; the Airflow hooks take the secret name, the base-URL variable and
the default URL from them (and refuse to send the environment's key anywhere else); the pools
command makes a pool per spec. Nothing here imports a vendor SDK: the built-in factories
import their adapter when they build one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from producers.sdk.definition import PROVIDER_PATTERN
from producers.sdk.runtime import ClientContext, ClientFactory

#: A secret's or a variable's name, as an environment variable is spelled.
ENV_NAME_PATTERN = re.compile(r"^[A-Z_][A-Z0-9_]*$")

OPENAI_API_KEY: Final = "OPENAI_API_KEY"
OPENAI_BASE_URL: Final = "OPENAI_BASE_URL"
OPENAI_DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
REPLICATE_API_TOKEN: Final = "REPLICATE_API_TOKEN"
REPLICATE_BASE_URL: Final = "REPLICATE_BASE_URL"
REPLICATE_DEFAULT_BASE_URL: Final = "https://api.replicate.com"


@dataclass(frozen=True)
class ClientSpec:
    """How to reach one provider: its live adapter, its secret and its base URL.

    Attributes:
        provider: The provider name (``acme`` in ``acme:pixel-1``), lower case.
        live_factory: Builds the live adapter from a :class:`ClientContext` (mock mode
            never calls it: the SDK's generic mock answers for every provider).
        secret_name: The secret the key is resolved by (``ACME_API_KEY``): from the
            environment in the CLI, from the connection's password in Airflow.
        base_url_env: The variable that may point the adapter at another base URL (a
            proxy, a fake); the environment's key is sent only there or to
            ``default_base_url``.
        default_base_url: The provider's own API base URL.
        description: One line for listings (the pool's description in Airflow).
        probe_path: A path (under the base URL) that a GET with a good key answers with
            200, for Airflow's "Test connection"; None: the connection cannot be tested.
    """

    provider: str
    live_factory: ClientFactory
    secret_name: str
    base_url_env: str | None = None
    default_base_url: str | None = None
    description: str = ""
    probe_path: str | None = None

    def __post_init__(self) -> None:
        if not PROVIDER_PATTERN.match(self.provider):
            raise ValueError(
                f"ClientSpec provider {self.provider!r} must be lower-case letters, digits, "
                "'-' or '_' (it names the provider in model ids and its Airflow pool)"
            )
        for label, name in (("secret_name", self.secret_name), ("base_url_env", self.base_url_env)):
            if name is not None and not ENV_NAME_PATTERN.match(name):
                raise ValueError(
                    f"ClientSpec {self.provider!r}: {label} {name!r} must be spelled like an "
                    "environment variable (A-Z, 0-9, _)"
                )
        if self.default_base_url is not None and not re.match(
            r"^https?://[^/\s]+", self.default_base_url
        ):
            raise ValueError(
                f"ClientSpec {self.provider!r}: default_base_url {self.default_base_url!r} "
                "is not an http(s) URL"
            )
        if not callable(self.live_factory):
            raise ValueError(f"ClientSpec {self.provider!r}: live_factory must be callable")

    def environment_base_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Where the environment points the adapter: ``$base_url_env``, else the default."""
        env = os.environ if environ is None else environ
        named = (env.get(self.base_url_env) or "").strip() if self.base_url_env else ""
        url = named or self.default_base_url
        return url.rstrip("/") if url else None

    def api_key(self, context: ClientContext) -> str:
        """The key from the context's secret resolver (``auth_failed`` naming it if unset)."""
        return context.secrets.require(self.secret_name)

    def options(self, context: ClientContext) -> dict[str, Any]:
        """The context's client options, with ``base_url`` filled in from the environment
        or the default when the client did not pass one (a connection's host, in Airflow)."""
        options = dict(context.options)
        if not options.get("base_url"):
            options.pop("base_url", None)
            base_url = self.environment_base_url()
            if base_url:
                options["base_url"] = base_url
        return options

    def build(self, context: ClientContext) -> Any:
        """The live adapter for ``context`` (what the client registry calls)."""
        return self.live_factory(context)


def _openai_live(context: ClientContext) -> Any:
    from producers.clients.openai import OpenAIClient

    return OpenAIClient(OPENAI_SPEC.api_key(context), **OPENAI_SPEC.options(context))


def _replicate_live(context: ClientContext) -> Any:
    from producers.clients.replicate import ReplicateClient

    return ReplicateClient(REPLICATE_SPEC.api_key(context), **REPLICATE_SPEC.options(context))


OPENAI_SPEC: Final = ClientSpec(
    provider="openai",
    live_factory=_openai_live,
    secret_name=OPENAI_API_KEY,
    base_url_env=OPENAI_BASE_URL,
    default_base_url=OPENAI_DEFAULT_BASE_URL,
    description="OpenAI (Responses API): prompt producers",
)
REPLICATE_SPEC: Final = ClientSpec(
    provider="replicate",
    live_factory=_replicate_live,
    secret_name=REPLICATE_API_TOKEN,
    base_url_env=REPLICATE_BASE_URL,
    default_base_url=REPLICATE_DEFAULT_BASE_URL,
    description="Replicate predictions: media producers",
)
#: The vendors tutopanda ships.
BUILTIN_SPECS: Final = (OPENAI_SPEC, REPLICATE_SPEC)

__all__ = [
    "BUILTIN_SPECS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_DEFAULT_BASE_URL",
    "OPENAI_SPEC",
    "REPLICATE_API_TOKEN",
    "REPLICATE_BASE_URL",
    "REPLICATE_DEFAULT_BASE_URL",
    "REPLICATE_SPEC",
    "ClientSpec",
]
