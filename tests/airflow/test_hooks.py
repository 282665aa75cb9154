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


def test_password_less_connection_falls_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_tutopanda.hooks import ReplicateHook

    _conn(monkeypatch, "rep_empty", {"conn_type": "replicate", "host": "https://r.example/"})
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env_token_789")
    hook = ReplicateHook("rep_empty")
    assert hook.secret_resolver().require("REPLICATE_API_TOKEN") == "r8_env_token_789"
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
    from airflow_provider_tutopanda.hooks import OpenAIHook, ReplicateHook, hook_for

    assert isinstance(hook_for("replicate"), ReplicateHook)
    assert hook_for("replicate").conn_id == "replicate_default"
    hook = hook_for("openai", "my_openai")
    assert isinstance(hook, OpenAIHook) and hook.openai_conn_id == "my_openai"
    with pytest.raises(ValueError, match="no tutopanda hook for provider 'elevenlabs'"):
        hook_for("elevenlabs")


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
