"""The generic ``tutopanda`` connection: a plugin provider's key and base URL, its client built
once through its ClientSpec, and the same token-to-host rule as the built-in connections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from producers.sdk.runtime import ClientContext
from producers.testing.fakes import FAKE_TOKEN, FakeReplicate, ca_path

pytestmark = pytest.mark.airflow

ENV_KEY = "acme-env-key-never-elsewhere-5150"
CONN_KEY = "acme-connection-key-0042"
#: A path the fake Replicate answers with 200 for a good key (any such server will do).
PROBE_PATH = "/v1/models/black-forest-labs/flux-dev"


class AcmeStub:
    """What the Acme factory builds: its key and options, to check what the hook passed."""

    def __init__(self, key: str, options: dict[str, Any]) -> None:
        self.key = key
        self.options = options
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> list[AcmeStub]:
    """An installed ``acme`` client spec (as the ``tutopanda.clients`` entry point gives it);
    the list of the clients its factory built."""
    import producers.clients
    from producers.clients.spec import ClientSpec

    built: list[AcmeStub] = []

    def factory(context: ClientContext) -> AcmeStub:
        built.append(AcmeStub(spec.api_key(context), spec.options(context)))
        return built[-1]

    spec = ClientSpec(
        provider="acme",
        live_factory=factory,
        secret_name="ACME_API_KEY",
        base_url_env="ACME_BASE_URL",
        default_base_url="https://api.acme.example/v1",
        probe_path=PROBE_PATH,
    )
    monkeypatch.setattr(producers.clients, "plugin_client_specs", lambda: (spec,))
    for name in ("ACME_API_KEY", "ACME_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_TUTOPANDA_ACME", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_path()))
    return built


def _conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, value: dict[str, Any]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))


def test_the_client_is_built_once_from_the_connection(
    acme: list[AcmeStub], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from airflow_provider_tutopanda.hooks import TutopandaHook, hook_for
    from producers.sdk.secrets import MASK, redact

    _conn(
        monkeypatch,
        "tutopanda_acme",
        {"conn_type": "tutopanda", "password": CONN_KEY, "host": "https://proxy.example/v1/"},
    )
    hook = hook_for("acme")
    assert isinstance(hook, TutopandaHook)
    assert hook.secret_resolver().require("ACME_API_KEY") == CONN_KEY
    assert hook.client_options() == {"base_url": "https://proxy.example/v1"}
    client = hook.client
    assert hook.client is client and hook.get_conn() is client and len(acme) == 1
    assert (client.key, client.options) == (CONN_KEY, {"base_url": "https://proxy.example/v1"})
    assert redact(f"key {CONN_KEY}") == f"key {MASK}"
    asyncio.run(hook.aclose())
    assert client.closed
    assert hook.client is not client and len(acme) == 2  # a new one after aclose


@pytest.mark.parametrize(
    ("env_base", "expected_base"),
    [(None, "https://api.acme.example/v1"), ("http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1")],
    ids=["default-url", "env-base-url"],
)
def test_without_the_default_connection_everything_comes_from_the_environment(
    acme: list[AcmeStub], monkeypatch: pytest.MonkeyPatch, env_base: str | None, expected_base: str
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for

    monkeypatch.setenv("ACME_API_KEY", ENV_KEY)
    if env_base:
        monkeypatch.setenv("ACME_BASE_URL", env_base)
    client = hook_for("acme").client
    assert (client.key, client.options) == (ENV_KEY, {"base_url": expected_base})


@pytest.mark.parametrize(
    ("connection", "env_base", "refused"),
    [
        ({"host": "https://evil.example/v1"}, None, True),
        ({"host": "http://api.acme.example/v1"}, None, True),
        ({"host": "https://api.acme.example:8443/v1"}, None, True),
        ({"host": "https://gw.example/v1"}, "https://other.example/v1", True),
        ({"host": "https://api.acme.example/v1"}, None, False),
        ({"host": "https://gw.example/v1"}, "https://gw.example/v1", False),
        ({"host": "https://evil.example/v1", "password": CONN_KEY}, None, False),
    ],
    ids=[
        "other-host",
        "http-downgrade",
        "other-port",
        "env-base-elsewhere",
        "the-default-url",
        "the-env-base-url",
        "own-key-any-host",
    ],
)
def test_the_environments_key_goes_only_to_the_specs_urls(
    acme: list[AcmeStub],
    monkeypatch: pytest.MonkeyPatch,
    connection: dict[str, str],
    env_base: str | None,
    refused: bool,
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for
    from producers.sdk.errors import ErrorCode, ProviderError

    monkeypatch.setenv("ACME_API_KEY", ENV_KEY)
    if env_base:
        monkeypatch.setenv("ACME_BASE_URL", env_base)
    _conn(monkeypatch, "harvest", {"conn_type": "tutopanda", **connection})
    hook = hook_for("acme", "harvest")
    if not refused:
        assert hook.client.key == connection.get("password", ENV_KEY)
        return
    with pytest.raises(ProviderError) as caught:
        hook.client  # noqa: B018
    error = caught.value
    assert error.code is ErrorCode.AUTH_FAILED and not error.retryable
    assert "'harvest'" in error.reason and "ACME_API_KEY" in error.reason
    assert ENV_KEY not in str(error) and acme == []
    ok, message = hook.test_connection()
    assert not ok and "auth_failed" in message and ENV_KEY not in message


def test_a_connection_for_another_provider_is_refused(
    acme: list[AcmeStub], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for
    from producers.sdk.errors import ErrorCode, ProviderError

    _conn(
        monkeypatch,
        "shared",
        {"conn_type": "tutopanda", "password": CONN_KEY, "extra": {"provider": "other"}},
    )
    with pytest.raises(ProviderError, match="is for provider 'other', not 'acme'") as caught:
        hook_for("acme", "shared").client  # noqa: B018
    assert caught.value.code is ErrorCode.AUTH_FAILED and CONN_KEY not in str(caught.value)
    assert acme == []


@pytest.mark.parametrize(
    ("conn_id", "extra", "provider"),
    [("tutopanda_acme", {}, "acme"), ("acme_prod", {"provider": "Acme"}, "acme")],
    ids=["from-the-id", "from-the-extra"],
)
def test_the_connection_form_knows_its_provider(
    acme: list[AcmeStub],
    monkeypatch: pytest.MonkeyPatch,
    conn_id: str,
    extra: dict[str, str],
    provider: str,
) -> None:
    """The UI builds the hook from the connection id alone (``tutopanda_conn_id=...``)."""
    from airflow_provider_tutopanda.hooks import TutopandaHook

    _conn(monkeypatch, conn_id, {"conn_type": "tutopanda", "password": CONN_KEY, "extra": extra})
    hook = TutopandaHook(tutopanda_conn_id=conn_id)
    assert hook.provider == provider
    assert hook.secret_name == "ACME_API_KEY"


def test_a_connection_that_names_no_provider_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_tutopanda.hooks import TutopandaHook
    from producers.sdk.errors import ConfigurationError

    _conn(monkeypatch, "anon", {"conn_type": "tutopanda", "password": CONN_KEY})
    with pytest.raises(ConfigurationError, match=r'extra to \{"provider"'):
        TutopandaHook(tutopanda_conn_id="anon").provider  # noqa: B018


def test_a_provider_without_a_client_fails_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for
    from producers.sdk.errors import ConfigurationError

    monkeypatch.delenv("AIRFLOW_CONN_TUTOPANDA_NOCLIENT", raising=False)
    hook = hook_for("noclient")
    with pytest.raises(ConfigurationError, match=r"tutopanda\.clients"):
        hook.client  # noqa: B018
    ok, message = hook.test_connection()
    assert not ok and "noclient" in message


@pytest.fixture(scope="module")
def fake_replicate() -> Iterator[FakeReplicate]:
    with FakeReplicate() as fake:
        yield fake


@pytest.mark.parametrize(
    ("password", "ok", "words"),
    [(FAKE_TOKEN, True, "authenticated"), ("wrong-acme-key-77", False, "401")],
    ids=["good-key", "wrong-key"],
)
def test_test_connection_gets_the_specs_probe_path(
    acme: list[AcmeStub],
    monkeypatch: pytest.MonkeyPatch,
    fake_replicate: FakeReplicate,
    password: str,
    ok: bool,
    words: str,
) -> None:
    """Any server answering the probe path will do: here the fake Replicate."""
    from airflow_provider_tutopanda.hooks import hook_for

    _conn(
        monkeypatch,
        "tutopanda_acme",
        {"conn_type": "tutopanda", "password": password, "host": fake_replicate.base_url},
    )
    result, message = hook_for("acme").test_connection()
    assert result is ok and words in message and password not in message
    assert fake_replicate.requests[-1].path == PROBE_PATH


def test_test_connection_without_a_probe_path_says_it_cannot_tell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import producers.clients
    from airflow_provider_tutopanda.hooks import hook_for
    from producers.clients.spec import ClientSpec

    spec = ClientSpec(provider="quiet", live_factory=lambda c: None, secret_name="QUIET_KEY")
    monkeypatch.setattr(producers.clients, "plugin_client_specs", lambda: (spec,))
    _conn(monkeypatch, "tutopanda_quiet", {"conn_type": "tutopanda", "password": CONN_KEY})
    ok, message = hook_for("quiet").test_connection()
    assert not ok and "declares no probe_path" in message


def test_ui_field_behaviour() -> None:
    from airflow_provider_tutopanda.hooks import TutopandaHook

    form = TutopandaHook.get_ui_field_behaviour()
    assert form["relabeling"]["password"] == "API key"
    assert "host" not in form["hidden_fields"] and "extra" not in form["hidden_fields"]
    assert "provider" in form["placeholders"]["extra"]
