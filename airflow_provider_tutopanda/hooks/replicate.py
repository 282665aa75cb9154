"""The Replicate hook: a ``replicate`` connection turned into a producers ``ReplicateClient``."""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_tutopanda.hooks.base import ProducerHook, tutopanda_setting
from producers.clients.spec import REPLICATE_DEFAULT_BASE_URL, REPLICATE_SPEC

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
    ``download_deadline``. The secret name, the base-URL variable and the default URL are
    the Replicate client spec's. ``client`` is the producers ``ReplicateClient``.

    :param replicate_conn_id: The Airflow connection id.
    """

    conn_name_attr = "replicate_conn_id"
    default_conn_name = "replicate_default"
    conn_type = "replicate"
    hook_name = "Replicate"

    provider = REPLICATE_SPEC.provider

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
                "host": REPLICATE_DEFAULT_BASE_URL,
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

    def test_connection(self) -> tuple[bool, str]:
        """One authenticated GET: ``/v1/account``, else ``/v1/models/{PROBE_MODEL}``."""
        return self._probe([("/v1/account", {200}), (f"/v1/models/{PROBE_MODEL}", {200})])
