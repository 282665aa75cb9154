"""The generic hook: a ``tutopanda`` connection for any provider an installed package brings.

A provider package registers its client under the ``tutopanda.clients`` entry point group
(a :class:`~producers.clients.spec.ClientSpec`); this hook reads its key and base URL from
an Airflow connection laid out like the built-in ones, and builds its client through that
spec. Nothing here knows the provider in advance.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_tutopanda.hooks.base import ProducerHook
from producers.sdk.errors import ConfigurationError, ErrorCode, ProviderError
from producers.sdk.secrets import SecretResolver

#: Connection ids of the generic hook: ``tutopanda_<provider>`` unless a task names another.
CONN_PREFIX = "tutopanda_"


def default_conn_id(provider: str) -> str:
    """The default connection id of ``provider``'s generic hook: ``tutopanda_<provider>``."""
    return f"{CONN_PREFIX}{provider.lower()}"


class TutopandaHook(ProducerHook):
    """Any provider with an installed client spec, through the tutopanda Producer SDK.

    Connection (type ``tutopanda``, default id ``tutopanda_<provider>``): password = the
    provider's key, host = its base URL (optional, for proxies and fakes), extra
    ``{"provider": "acme"}`` (optional: names the provider when the id does not, and the
    connection then serves no other provider). Without a password the key comes from the
    environment variable the spec names (``secret_name``), but only for the spec's
    ``base_url_env`` or its default URL: a connection naming another host needs its own key,
    as with the Replicate and OpenAI connections. Without the default connection, everything
    comes from the environment.

    :param tutopanda_conn_id: The Airflow connection id (default ``tutopanda_<provider>``).
    :param provider: The provider (``acme``); default: the connection's extra ``provider``,
        else what follows ``tutopanda_`` in the connection id.
    """

    conn_name_attr = "tutopanda_conn_id"
    default_conn_name = "tutopanda_default"
    conn_type = "tutopanda"
    hook_name = "Tutopanda provider"

    def __init__(
        self, tutopanda_conn_id: str | None = None, provider: str | None = None, **kwargs: Any
    ) -> None:
        self._provider = provider.lower() if provider else None
        if self._provider:
            self.default_conn_name = default_conn_id(self._provider)
            self.hook_name = f"the {self._provider} provider"
        super().__init__(tutopanda_conn_id or self.default_conn_name, **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: key, base URL, and the provider in the extra."""
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {
                "password": "API key",
                "host": "Base URL (optional, for proxies and fakes)",
            },
            "placeholders": {
                "host": "https://api.provider.example/v1",
                "extra": '{"provider": "acme"}',
            },
        }

    @property
    def provider(self) -> str:  # type: ignore[override]
        """The provider this hook serves (see the class docstring for where it comes from).

        Raises:
            ConfigurationError: Neither the caller, the extra nor the connection id says it.
        """
        if self._provider:
            return self._provider
        named = self._named_provider()
        if named:
            return named
        if self.conn_id.startswith(CONN_PREFIX) and self.conn_id != self.default_conn_name:
            return self.conn_id.removeprefix(CONN_PREFIX).lower()
        raise ConfigurationError(
            f"connection {self.conn_id!r} does not say which provider it is for: set its "
            'extra to {"provider": "<name>"} or call it tutopanda_<provider>'
        )

    def _named_provider(self) -> str | None:
        named = self.extras.get("provider")
        return str(named).strip().lower() or None if named else None

    def secret_resolver(self) -> SecretResolver:
        """The connection's resolver (see :meth:`ProducerHook.secret_resolver`).

        Raises:
            ProviderError: ``auth_failed`` when the connection's extra names another
                provider (its key is not for this one), or as the base class says.
        """
        named = self._named_provider()
        if named and named != self.provider:
            raise ProviderError(
                ErrorCode.AUTH_FAILED,
                f"connection {self.conn_id!r} is for provider {named!r}, not "
                f"{self.provider!r}; its key is not sent to another provider. Use the "
                f"connection {default_conn_id(self.provider)!r} or one whose extra names "
                f"{self.provider!r}",
                retryable=False,
                caused_by_user=False,
                provider=self.provider,
                hint="docs/security.md: connections",
            )
        return super().secret_resolver()

    def test_connection(self) -> tuple[bool, str]:
        """One authenticated GET of the spec's ``probe_path``, when it declares one."""
        try:
            spec = self.client_spec
        except (ConfigurationError, ProviderError) as exc:
            return False, str(exc)
        if not spec.probe_path:
            return False, (
                f"the {spec.provider} client declares no probe_path, so connection "
                f"{self.conn_id!r} cannot be tested from here; run a job in live mode"
            )
        return self._probe([(spec.probe_path, {200})])
