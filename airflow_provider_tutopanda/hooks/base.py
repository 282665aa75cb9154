"""What the tutopanda hooks share: a connection turned into a secret resolver, client options
and, once per hook, the provider's live client.

A hook owns one Airflow connection (password = the provider's key, host = an optional base
URL) and hands ``producers`` what it needs: a :class:`SecretResolver` answering the
provider's secret name, client options (``base_url``), and :attr:`ProducerHook.client`, the
live adapter built once through the client registry (the provider's
:class:`~producers.clients.spec.ClientSpec` says the secret name, the base-URL variable and
the default URL). Secrets only ever come from the connection or, when the connection has no
password, from the environment.

The environment's key goes only where the environment says: to ``$<PROVIDER>_BASE_URL`` or
the provider's default URL. A connection that names another host must carry its own key:
whoever may edit a connection must not be able to point the deployment's key at a host of
theirs. Such a connection fails with ``auth_failed`` before any request.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from functools import cached_property
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from producers.sdk.errors import ErrorCode, ProviderError
from producers.sdk.secrets import SecretResolver, redact, register_secret

if TYPE_CHECKING:
    from producers.clients.spec import ClientSpec

PROBE_TIMEOUT = 10.0
SECTION = "tutopanda"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ConnectionSecretResolver(SecretResolver):
    """Answers exactly one secret name: the connection's password, else (if ``environment``)
    the environment."""

    def __init__(self, name: str, value: str | None, *, environment: bool = True) -> None:
        self.name = name
        self._value = value or None
        self._environment = environment

    def lookup(self, name: str) -> str | None:
        """The connection's secret for ``self.name``; None for any other name."""
        if name != self.name:
            return None
        if self._value:
            return self._value
        return (os.environ.get(name) or None) if self._environment else None


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of ``url``, or None if it is not an absolute URL."""
    import httpx

    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return None
    if not parsed.scheme or not host:
        return None
    return parsed.scheme, host, parsed.port or _DEFAULT_PORTS.get(parsed.scheme)


def tutopanda_setting(key: str) -> str | None:
    """``[tutopanda] key`` from Airflow's configuration, or None when unset or empty."""
    from airflow.sdk import conf

    value = conf.get(SECTION, key, fallback=None)
    text = str(value).strip() if value is not None else ""
    return text or None


class ProducerHook(BaseHook):
    """Base for the hooks that build ``producers`` clients from an Airflow connection.

    Subclasses set the Airflow attributes (``conn_name_attr``, ``default_conn_name``,
    ``conn_type``, ``hook_name``) and ``provider``; :attr:`client_spec` (the provider's
    :class:`~producers.clients.spec.ClientSpec`) gives ``secret_name`` (what the SDK's
    resolver is asked for), ``base_url_env`` and ``default_base_url``.
    """

    provider: ClassVar[str]
    conn_name_attr: ClassVar[str]
    conn_type: ClassVar[str]
    # A generic hook names these per instance (its provider's connection).
    default_conn_name: str
    hook_name: str

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        setattr(self, self.conn_name_attr, self.conn_id)

    # -- the provider's spec ----------------------------------------------------------------

    @property
    def client_spec(self) -> ClientSpec:
        """The provider's client spec (the installed one: a plugin may replace a built-in).

        Raises:
            ConfigurationError: No installed package has a client for the provider.
        """
        from producers.clients import client_spec
        from producers.sdk.errors import ConfigurationError

        spec = client_spec(self.provider)
        if spec is None:
            raise ConfigurationError(
                f"live mode is not available for provider {self.provider!r}: no installed "
                "package registers a client for it (entry point group tutopanda.clients; "
                "docs/authoring.md); run with mode='mock'"
            )
        return spec

    @property
    def secret_name(self) -> str:
        """The secret the provider's key is resolved by (``REPLICATE_API_TOKEN``...)."""
        return self.client_spec.secret_name

    @property
    def base_url_env(self) -> str | None:
        """The variable that may name another base URL for the environment's key."""
        return self.client_spec.base_url_env

    @property
    def default_base_url(self) -> str | None:
        """The provider's own API base URL."""
        return self.client_spec.default_base_url

    # -- the connection ---------------------------------------------------------------------

    @cached_property
    def connection(self) -> Any | None:
        """The Airflow connection, or None when the default one is not defined at all.

        A missing *default* connection means "configure from the environment"; a missing
        connection that was asked for by name is an error.
        """
        try:
            return self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            if self.conn_id == self.default_conn_name:
                return None
            raise

    @property
    def extras(self) -> dict[str, Any]:
        """The connection's extra, as a dict (empty without a connection)."""
        conn = self.connection
        return dict(conn.extra_dejson) if conn is not None else {}

    def _password(self) -> str | None:
        conn = self.connection
        return (conn.password or None) if conn is not None else None

    def _host(self) -> str | None:
        conn = self.connection
        host = (conn.host or "").strip() if conn is not None else ""
        if host and "://" not in host:
            host = f"https://{host}"
        return host.rstrip("/") or None

    def base_url(self) -> str | None:
        """The base URL from the connection, or None (the client's default applies)."""
        return self._host()

    # -- where the environment's key may go --------------------------------------------------

    def environment_base_url(self) -> str | None:
        """Where the environment's key goes: ``$<PROVIDER>_BASE_URL``, else the default URL."""
        return self.client_spec.environment_base_url()

    def environment_token_refusal(self) -> ProviderError | None:
        """Why the environment's key must not be used with this connection, or None.

        A connection without a key of its own that names a host (a base URL) other than the
        environment's base URL or the provider's default URL would send the deployment's key
        to that host: ``auth_failed``, naming the connection and what to set.
        """
        named = self.base_url()
        if self._password() or not named:
            return None
        origin = _origin(named)
        allowed = {
            _origin(url)
            for url in (self.environment_base_url(), self.default_base_url)
            if url is not None
        }
        if origin is not None and origin in allowed:
            return None
        host = origin[1] if origin is not None else "(an invalid URL)"
        where = " or ".join(str(w) for w in (self.base_url_env, self.default_base_url) if w)
        return ProviderError(
            ErrorCode.AUTH_FAILED,
            f"connection {self.conn_id!r} names the host {host} but has no key of its own; "
            f"the environment's {self.secret_name} is sent only to {where or 'no other host'}. "
            f"Set the connection's password (the {self.hook_name} key) or remove its host",
            retryable=False,
            caused_by_user=False,
            provider=self.provider,
            hint="docs/security.md: connections",
        )

    # -- what producers need ----------------------------------------------------------------

    def secret_resolver(self) -> SecretResolver:
        """A resolver giving ``secret_name`` from the connection (or the environment).

        Raises:
            ProviderError: ``auth_failed`` when the connection names a host but has no key
                (see :meth:`environment_token_refusal`); nothing is sent anywhere.
        """
        refusal = self.environment_token_refusal()
        if refusal is not None:
            raise refusal
        password = self._password()
        if password:
            register_secret(password)
        return ConnectionSecretResolver(self.secret_name, password, environment=not password)

    def client_options(self) -> dict[str, Any]:
        """Options for the producers client factory: ``base_url`` when the connection sets one."""
        base_url = self.base_url()
        return {"base_url": base_url} if base_url else {}

    def api_key(self) -> str:
        """The key, registered for redaction; a ProviderError (auth_failed) when unset."""
        return self.secret_resolver().require(self.secret_name)

    @cached_property
    def client(self) -> Any:
        """The provider's live adapter for this connection, built once per hook through the
        client registry (the provider's spec), with :meth:`secret_resolver` and
        :meth:`client_options`. Reuse it for every call of a task or a trigger; close it
        with :meth:`aclose`.

        Raises:
            ProviderError: ``auth_failed`` (no key, or a host without a key of its own).
            ConfigurationError: No client is installed for the provider, or a setting is bad.
        """
        from producers.clients import default_client_registry
        from producers.sdk.runtime import ClientContext
        from producers.sdk.telemetry import ProducerLogger

        context = ClientContext(
            provider=self.provider,
            mode="live",
            secrets=self.secret_resolver(),
            logger=ProducerLogger().bind(provider=self.provider, conn_id=self.conn_id),
            options=self.client_options(),
        )
        return default_client_registry().build(context)

    def get_conn(self) -> Any:
        """The client (Airflow's generic accessor)."""
        return self.client

    async def aclose(self) -> None:
        """Close the client if this hook built one (the next use builds a new one)."""
        client = self.__dict__.pop("client", None)
        closer = getattr(client, "aclose", None)
        if closer is not None:
            await closer()

    # -- test_connection --------------------------------------------------------------------

    def _effective_base_url(self) -> str:
        url = self.base_url() or self.environment_base_url()
        if not url:
            raise ValueError(
                f"connection {self.conn_id!r} has no host, and the {self.provider} client "
                "has no default base URL: set the connection's host"
            )
        return url.rstrip("/")

    def _probe(self, probes: Sequence[tuple[str, Collection[int]]]) -> tuple[bool, str]:
        """GET each ``(path, ok statuses)`` in turn with the key; the first decisive answer wins.

        An ok status means the key works; 401/403 that it does not. A 404 that is not ok
        moves on to the next probe (a proxy or fake lacking that path). Messages name the
        status, never the key.
        """
        import httpx

        from producers.clients.base import ssl_context

        try:
            key = self.api_key()
            base = self._effective_base_url()
        except Exception as exc:
            return False, redact(str(exc))
        status = 0
        url = base
        ok = False
        try:
            with httpx.Client(
                verify=ssl_context(),
                timeout=PROBE_TIMEOUT,
                headers={"Authorization": f"Bearer {key}"},
                follow_redirects=True,
            ) as client:
                for path, ok_statuses in probes:
                    url = f"{base}{path}"
                    status = client.get(url).status_code
                    ok = status in ok_statuses
                    if ok or status != HTTPStatus.NOT_FOUND:
                        break
        except httpx.HTTPError as exc:
            return False, redact(f"could not reach {self.hook_name} at {url}: {exc!r}")
        answered = f"GET {url} answered {status} {_phrase(status)}".rstrip()
        if ok:
            return True, f"{self.hook_name}: authenticated ({answered})"
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            return False, (
                f"{self.hook_name} refused the credentials of connection {self.conn_id!r}: "
                f"{answered}"
            )
        return False, f"{self.hook_name}: {answered}"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
