"""The Replicate hook: a ``replicate`` connection turned into a producers ``ReplicateClient``."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_tutopanda.hooks.base import ProducerHook

if TYPE_CHECKING:
    from producers.clients.replicate import ReplicateClient

#: A public model in the tutopanda catalogue, read when ``/v1/account`` is not served.
PROBE_MODEL = "black-forest-labs/flux-dev"


class ReplicateHook(ProducerHook):
    """Replicate through the tutopanda Producer SDK.

    Connection (type ``replicate``, default ``replicate_default``): password = API token,
    host = base URL (optional, for proxies and fakes). Without a password the token comes
    from ``REPLICATE_API_TOKEN``; without the default connection, everything comes from the
    environment.

    :param replicate_conn_id: The Airflow connection id.
    """

    conn_name_attr = "replicate_conn_id"
    default_conn_name = "replicate_default"
    conn_type = "replicate"
    hook_name = "Replicate"

    provider = "replicate"
    secret_name = "REPLICATE_API_TOKEN"
    base_url_env = "REPLICATE_BASE_URL"
    default_base_url = "https://api.replicate.com"

    def __init__(self, replicate_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(replicate_conn_id, **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: password and host only, relabelled."""
        return {
            "hidden_fields": ["schema", "port", "login", "extra"],
            "relabeling": {
                "password": "API token",
                "host": "Base URL (optional, for proxies and fakes)",
            },
            "placeholders": {
                "password": "r8_...",
                "host": "https://api.replicate.com",
            },
        }

    @cached_property
    def client(self) -> ReplicateClient:
        """The producers Replicate client for this connection."""
        from producers.clients.replicate import ReplicateClient

        return ReplicateClient(self.api_key(), **self.client_options())

    def get_conn(self) -> ReplicateClient:
        """The client (Airflow's generic accessor)."""
        return self.client

    def test_connection(self) -> tuple[bool, str]:
        """One authenticated GET: ``/v1/account``, else ``/v1/models/{PROBE_MODEL}``."""
        return self._probe([("/v1/account", {200}), (f"/v1/models/{PROBE_MODEL}", {200})])
