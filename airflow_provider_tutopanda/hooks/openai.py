"""The OpenAI hook: an ``openai`` connection turned into a producers ``OpenAIClient``.

It reads the official OpenAI provider's connection layout (type ``openai``, default
``openai_default``, password = API key, host = base URL, extra ``openai_client_kwargs``
with ``base_url`` / ``api_key`` / ``timeout``), so one connection serves both providers.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_tutopanda.hooks.base import ProducerHook
from producers.clients.spec import OPENAI_DEFAULT_BASE_URL, OPENAI_SPEC

#: An id that exists nowhere: with a good key, ``GET /v1/responses/{id}`` answers 404.
PROBE_RESPONSE_ID = "resp_tutopanda_connection_test"


class OpenAIHook(ProducerHook):
    """OpenAI through the tutopanda Producer SDK.

    The secret name, the base-URL variable and the default URL are the OpenAI client spec's
    (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``). ``client`` is the producers ``OpenAIClient``.

    :param openai_conn_id: The Airflow connection id.
    """

    conn_name_attr = "openai_conn_id"
    default_conn_name = "openai_default"
    conn_type = "openai"
    hook_name = "OpenAI"

    provider = OPENAI_SPEC.provider

    def __init__(self, openai_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(openai_conn_id, **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form, as the official OpenAI provider lays it out."""
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {
                "password": "API Key",
                "host": "Base URL (optional, for proxies and fakes)",
            },
            "placeholders": {
                "host": OPENAI_DEFAULT_BASE_URL,
                "extra": '{"openai_client_kwargs": {"timeout": 60}}',
            },
        }

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs = self.extras.get("openai_client_kwargs") or {}
        return dict(kwargs) if isinstance(kwargs, dict) else {}

    def _password(self) -> str | None:
        return self._client_kwargs().get("api_key") or super()._password()

    def base_url(self) -> str | None:
        """``openai_client_kwargs.base_url``, else the host (as the official hook does)."""
        base_url = self._client_kwargs().get("base_url")
        return str(base_url).rstrip("/") if base_url else super().base_url()

    def client_options(self) -> dict[str, Any]:
        """``base_url`` and ``timeout`` for :class:`OpenAIClient`, when the connection sets them."""
        options = super().client_options()
        timeout = self._client_kwargs().get("timeout")
        if timeout is not None:
            options["timeout"] = float(timeout)
        return options

    def test_connection(self) -> tuple[bool, str]:
        """One authenticated GET ``/models``; where not served, ``/responses/{unknown id}``."""
        return self._probe([("/models", {200}), (f"/responses/{PROBE_RESPONSE_ID}", {200, 404})])
