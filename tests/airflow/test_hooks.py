"""The hooks: connections from AIRFLOW_CONN_* variables (no DB), resolvers, test_connection."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from producers.sdk.secrets import MASK, redact
from producers.testing.fakes import (
    FAKE_OPENAI_KEY,
    FAKE_TOKEN,
    FakeOpenAI,
    FakeReplicate,
    ca_path,
)

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def fake_replicate() -> Iterator[FakeReplicate]:
    with FakeReplicate() as fake:
        yield fake


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REPLICATE_API_TOKEN", "OPENAI_API_KEY", "REPLICATE_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_path()))


def _conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, value: dict | str) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", text)


def test_replicate_connection_from_a_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_tutopanda.hooks import ReplicateHook

    _conn(monkeypatch, "rep_uri", "replicate://:r8_uri_token_123@proxy.example:8443")
    hook = ReplicateHook("rep_uri")
    assert hook.replicate_conn_id == "rep_uri"
    resolver = hook.secret_resolver()
    assert resolver.require("REPLICATE_API_TOKEN") == "r8_uri_token_123"
    assert resolver.get("OPENAI_API_KEY") is None
    assert redact("token r8_uri_token_123 leaked") == f"token {MASK} leaked"
    assert hook.client_options() == {"base_url": "https://proxy.example"}


def test_replicate_connection_from_json_without_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_tutopanda.hooks import ReplicateHook

    _conn(monkeypatch, "rep_json", {"conn_type": "replicate", "password": "r8_json_token_456"})
    hook = ReplicateHook("rep_json")
    assert hook.secret_resolver().require("REPLICATE_API_TOKEN") == "r8_json_token_456"
    assert hook.client_options() == {}


@pytest.mark.parametrize(
    ("connection", "env_base"),
    [
        ({"conn_type": "replicate"}, None),
        ({"conn_type": "replicate", "host": "https://r.example/"}, "https://r.example"),
        ({"conn_type": "replicate", "host": "api.replicate.com"}, None),
        ({"conn_type": "replicate", "host": "https://API.replicate.com:443/"}, "https://x.example"),
    ],
    ids=["no-host", "host-is-the-env-base-url", "host-is-the-default", "default-spelled-out"],
)
def test_password_less_connection_falls_back_to_the_environment_for_its_own_urls(
    monkeypatch: pytest.MonkeyPatch, connection: dict, env_base: str | None
) -> None:
    from airflow_provider_tutopanda.hooks import ReplicateHook

    _conn(monkeypatch, "rep_empty", connection)
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env_token_789")
    if env_base:
        monkeypatch.setenv("REPLICATE_BASE_URL", env_base)
    hook = ReplicateHook("rep_empty")
    assert hook.secret_resolver().require("REPLICATE_API_TOKEN") == "r8_env_token_789"


HARVESTING = [
    ("replicate", {"conn_type": "replicate", "host": "https://r.example/"}, None),
    ("replicate", {"conn_type": "replicate", "host": "r.example"}, "https://other.example"),
    ("replicate", {"conn_type": "replicate", "host": "http://api.replicate.com"}, None),
    ("replicate", {"conn_type": "replicate", "host": "https://api.replicate.com:8443"}, None),
    ("openai", {"conn_type": "openai", "host": "https://gateway.example/v1"}, None),
    (
        "openai",
        {
            "conn_type": "openai",
            "extra": {"openai_client_kwargs": {"base_url": "https://kw.example/v1"}},
        },
        None,
    ),
]


@pytest.mark.parametrize(
    ("provider", "connection", "env_base"),
    HARVESTING,
    ids=["other-host", "env-base-elsewhere", "http-downgrade", "other-port", "openai", "kwargs"],
)
def test_a_connection_naming_a_host_never_gets_the_environments_key(
    monkeypatch: pytest.MonkeyPatch, provider: str, connection: dict, env_base: str | None
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for
    from producers.sdk.errors import ErrorCode, ProviderError

    hook_class_env = {"replicate": "REPLICATE", "openai": "OPENAI"}[provider]
    secret_name = {"replicate": "REPLICATE_API_TOKEN", "openai": "OPENAI_API_KEY"}[provider]
    env_key = f"env-{provider}-deployment-key-31337"
    monkeypatch.setenv(secret_name, env_key)
    if env_base:
        monkeypatch.setenv(f"{hook_class_env}_BASE_URL", env_base)
    _conn(monkeypatch, "harvest", connection)
    hook = hook_for(provider, "harvest")
    for attempt in (hook.secret_resolver, hook.api_key):
        with pytest.raises(ProviderError) as refused:
            attempt()
        error = refused.value
        assert error.code is ErrorCode.AUTH_FAILED and error.retryable is False
        assert "'harvest'" in error.reason and secret_name in error.reason
        assert "password" in error.reason and env_key not in str(error)
    ok, message = hook.test_connection()
    assert not ok and "'harvest'" in message and env_key not in message


def test_a_connection_with_its_own_key_may_name_any_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_tutopanda.hooks import hook_for

    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env_token_789")
    _conn(monkeypatch, "own", {"host": "https://r.example/", "password": "r8_own_token_123"})
    hook = hook_for("replicate", "own")
    assert hook.secret_resolver().require("REPLICATE_API_TOKEN") == "r8_own_token_123"
    assert hook.client_options() == {"base_url": "https://r.example"}


def test_missing_default_connection_means_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    from airflow_provider_tutopanda.hooks import OpenAIHook

    monkeypatch.delenv("AIRFLOW_CONN_OPENAI_DEFAULT", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-000")
    hook = OpenAIHook()
    assert hook.secret_resolver().require("OPENAI_API_KEY") == "sk-env-key-000"
    assert hook.client_options() == {}
    with pytest.raises(AirflowNotFoundException):
        OpenAIHook("no_such_conn").secret_resolver()


def test_openai_connection_in_the_official_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_tutopanda.hooks import OpenAIHook

    _conn(
        monkeypatch,
        "oa",
        {
            "conn_type": "openai",
            "password": "sk-official-layout-1",
            "host": "https://gateway.example/v1",
            "extra": {"openai_client_kwargs": {"timeout": 30}},
        },
    )
    hook = OpenAIHook("oa")
    assert hook.secret_resolver().require("OPENAI_API_KEY") == "sk-official-layout-1"
    assert redact("sk-official-layout-1") == MASK
    assert hook.client_options() == {"base_url": "https://gateway.example/v1", "timeout": 30.0}
    _conn(
        monkeypatch,
        "oa_kwargs",
        {
            "conn_type": "openai",
            "password": "sk-ignored-password",
            "host": "https://host.example/v1",
            "extra": {"openai_client_kwargs": {"base_url": "https://kw.example/v1/"}},
        },
    )
    assert OpenAIHook("oa_kwargs").client_options() == {"base_url": "https://kw.example/v1"}


def test_ui_field_behaviour() -> None:
    from airflow_provider_tutopanda.hooks import OpenAIHook, ReplicateHook

    replicate = ReplicateHook.get_ui_field_behaviour()
    assert replicate["relabeling"]["password"] == "API token"
    assert "extra" in replicate["hidden_fields"] and "host" not in replicate["hidden_fields"]
    assert OpenAIHook.get_ui_field_behaviour()["relabeling"]["password"] == "API Key"


def test_hook_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_tutopanda.hooks import OpenAIHook, ReplicateHook, TutopandaHook, hook_for

    assert isinstance(hook_for("replicate"), ReplicateHook)
    assert hook_for("replicate").conn_id == "replicate_default"
    hook = hook_for("openai", "my_openai")
    assert isinstance(hook, OpenAIHook) and hook.openai_conn_id == "my_openai"
    other = hook_for("ElevenLabs")
    assert isinstance(other, TutopandaHook)
    assert (other.provider, other.conn_id, other.tutopanda_conn_id) == (
        "elevenlabs",
        "tutopanda_elevenlabs",
        "tutopanda_elevenlabs",
    )
    assert hook_for("elevenlabs", "el_prod").conn_id == "el_prod"
    with pytest.raises(ValueError, match="needs a provider"):
        hook_for(" ")


def test_the_built_in_hooks_take_their_names_from_the_vendor_specs() -> None:
    from airflow_provider_tutopanda.hooks import OpenAIHook, ReplicateHook
    from producers.clients.spec import OPENAI_SPEC, REPLICATE_SPEC

    for hook, spec in ((OpenAIHook(), OPENAI_SPEC), (ReplicateHook(), REPLICATE_SPEC)):
        assert hook.provider == spec.provider
        assert (hook.secret_name, hook.base_url_env, hook.default_base_url) == (
            spec.secret_name,
            spec.base_url_env,
            spec.default_base_url,
        )


def test_clients_are_built_from_the_connection(
    monkeypatch: pytest.MonkeyPatch, fake_replicate: FakeReplicate, fake_openai: FakeOpenAI
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for
    from producers.clients.openai import OpenAIClient
    from producers.clients.replicate import ReplicateClient

    _conn(
        monkeypatch, "replicate_default", {"password": FAKE_TOKEN, "host": fake_replicate.base_url}
    )
    _conn(monkeypatch, "openai_default", {"password": FAKE_OPENAI_KEY, "host": fake_openai.api_url})
    replicate = hook_for("replicate")
    assert isinstance(replicate.client, ReplicateClient)
    assert replicate.client is replicate.get_conn()  # cached
    assert isinstance(hook_for("openai").client, OpenAIClient)


@pytest.mark.parametrize("provider", ["replicate", "openai"])
def test_test_connection_against_the_fakes(
    provider: str,
    monkeypatch: pytest.MonkeyPatch,
    fake_replicate: FakeReplicate,
    fake_openai: FakeOpenAI,
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for

    good, url = {
        "replicate": (FAKE_TOKEN, fake_replicate.base_url),
        "openai": (FAKE_OPENAI_KEY, fake_openai.api_url),
    }[provider]
    wrong = f"wrong-{provider}-token-4242"
    _conn(monkeypatch, "good", {"conn_type": provider, "password": good, "host": url})
    _conn(monkeypatch, "wrong", {"conn_type": provider, "password": wrong, "host": url})

    ok, message = hook_for(provider, "good").test_connection()
    assert ok, message
    assert "authenticated" in message and good not in message

    ok, message = hook_for(provider, "wrong").test_connection()
    assert not ok
    assert "401" in message and "'wrong'" in message
    assert wrong not in message and good not in message


def test_test_connection_reports_an_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_tutopanda.hooks import hook_for

    secret = "r8_unreachable_secret_1"
    _conn(monkeypatch, "down", {"password": secret, "host": "http://127.0.0.1:9"})
    ok, message = hook_for("replicate", "down").test_connection()
    assert not ok and "could not reach Replicate" in message and secret not in message


def test_test_connection_without_any_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_tutopanda.hooks import hook_for

    _conn(monkeypatch, "nokey", {"conn_type": "openai", "host": "http://127.0.0.1:9/v1"})
    ok, message = hook_for("openai", "nokey").test_connection()
    assert not ok and "OPENAI_API_KEY" in message


def test_test_connection_of_a_harvesting_connection_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, fake_replicate: FakeReplicate
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for

    fake_replicate.reset()
    monkeypatch.setenv("REPLICATE_API_TOKEN", FAKE_TOKEN)
    _conn(monkeypatch, "harvest", {"conn_type": "replicate", "host": fake_replicate.base_url})
    ok, message = hook_for("replicate", "harvest").test_connection()
    assert not ok and "auth_failed" in message and FAKE_TOKEN not in message
    assert fake_replicate.requests == []


def test_the_replicate_client_gets_the_tutopanda_output_settings(
    monkeypatch: pytest.MonkeyPatch, fake_replicate: FakeReplicate
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for
    from producers.clients.downloads import HostRule

    _conn(
        monkeypatch, "replicate_default", {"password": FAKE_TOKEN, "host": fake_replicate.base_url}
    )
    for name in ("OUTPUT_HOSTS", "MAX_OUTPUT_BYTES", "DOWNLOAD_DEADLINE"):
        monkeypatch.delenv(f"TUTOPANDA_{name}", raising=False)
    monkeypatch.setenv("AIRFLOW__TUTOPANDA__OUTPUT_HOSTS", ".cdn.example.com, files.example.org")
    monkeypatch.setenv("AIRFLOW__TUTOPANDA__MAX_OUTPUT_BYTES", "1048576")
    monkeypatch.setenv("AIRFLOW__TUTOPANDA__DOWNLOAD_DEADLINE", "60")
    hook = hook_for("replicate")
    assert hook.client_options() == {
        "base_url": fake_replicate.base_url,
        "output_hosts": ".cdn.example.com, files.example.org",
        "max_output_bytes": "1048576",
        "download_deadline": "60",
    }
    outputs = hook.client.outputs
    assert outputs.extra_hosts == (
        HostRule("cdn.example.com", True),
        HostRule("files.example.org", False),
    )
    assert (outputs.max_bytes, outputs.deadline) == (1048576, 60.0)

    # As $TUTOPANDA_STORE wins over [tutopanda] store, the variables win over the settings;
    # hosts add up.
    monkeypatch.setenv("TUTOPANDA_MAX_OUTPUT_BYTES", "2048")
    monkeypatch.setenv("TUTOPANDA_OUTPUT_HOSTS", "more.example.net")
    outputs = hook_for("replicate").client.outputs
    assert outputs.max_bytes == 2048 and outputs.deadline == 60.0
    assert [str(rule) for rule in outputs.extra_hosts] == [
        "more.example.net",
        "*.cdn.example.com",
        "files.example.org",
    ]
    assert "output_hosts" not in hook_for("openai").client_options()


def test_a_bad_output_setting_names_itself(
    monkeypatch: pytest.MonkeyPatch, fake_replicate: FakeReplicate
) -> None:
    from airflow_provider_tutopanda.hooks import hook_for
    from producers.sdk.errors import ConfigurationError

    _conn(
        monkeypatch, "replicate_default", {"password": FAKE_TOKEN, "host": fake_replicate.base_url}
    )
    monkeypatch.delenv("TUTOPANDA_MAX_OUTPUT_BYTES", raising=False)
    monkeypatch.setenv("AIRFLOW__TUTOPANDA__MAX_OUTPUT_BYTES", "4GB")
    with pytest.raises(ConfigurationError, match=r"\[tutopanda\] max_output_bytes: '4GB'"):
        hook_for("replicate").client  # noqa: B018


def test_the_output_settings_are_declared_in_the_provider_config() -> None:
    from airflow_provider_tutopanda import get_provider_info

    options = get_provider_info()["config"]["tutopanda"]["options"]
    assert {"output_hosts", "max_output_bytes", "download_deadline"} <= set(options)
    assert "TUTOPANDA_OUTPUT_HOSTS" in options["output_hosts"]["description"]
