"""The Replicate hook: a ``replicate`` connection turned into a producers ``ReplicateClient``."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_tutopanda.hooks.base import ProducerHook, tutopanda_setting

if TYPE_CHECKING:
    from producers.clients.replicate import ReplicateClient

#: A public model in the tutopanda catalogue, read when ``/v1/account`` is not served.
PROBE_MODEL = "black-forest-labs/flux-dev"
#: ``[tutopanda]`` settings of output downloads: client option -> the variable that wins.
OUTPUT_SETTINGS = {
    "max_output_bytes": "TUTOPANDA_MAX_OUTPUT_BYTES",
    "download_deadline": "TUTOPANDA_DOWNLOAD_DEADLINE",
}


class ReplicateHook(ProducerHook):
    """Replicate through the tutopanda Producer SDK.

    Connection (type ``replicate``, default ``replicate_default``): password = API token,
    host = base URL (optional, for proxies and fakes). Without a password the token comes
    from ``REPLICATE_API_TOKEN``, but only for ``REPLICATE_BASE_URL`` or Replicate's own
    URL: a connection naming another host needs its own token. Without the default
    connection, everything comes from the environment. Outputs are downloaded under the
    ``[tutopanda]`` settings ``output_hosts``, ``max_output_bytes`` and
    ``download_deadline``.

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

    def client_options(self) -> dict[str, Any]:
        """``base_url`` from the connection, and the ``[tutopanda]`` output settings.

        ``output_hosts`` adds to ``$TUTOPANDA_OUTPUT_HOSTS``; ``$TUTOPANDA_MAX_OUTPUT_BYTES``
        and ``$TUTOPANDA_DOWNLOAD_DEADLINE`` win over ``max_output_bytes`` and
        ``download_deadline`` (as ``$TUTOPANDA_STORE`` wins over ``store``).
        """
        options = super().client_options()
        hosts = tutopanda_setting("output_hosts")
        if hosts:
            options["output_hosts"] = hosts
        for option, variable in OUTPUT_SETTINGS.items():
            value = tutopanda_setting(option)
            if value and not os.environ.get(variable, "").strip():
                options[option] = value
        return options

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
