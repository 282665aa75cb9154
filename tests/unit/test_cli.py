"""The CLI: produce, models list/show/import; exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.cli.retry import RetryPolicy
from producers.sdk import ErrorCode, ProviderError

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "models"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_produce_json_lists_artefacts(tmp_path: Path) -> None:
    code, out, err = run(
        "produce",
        "replicate:bytedance/seedream-4",
        "--set",
        "prompt=A volcano",
        "--set",
        "aspect_ratio=16:9",
        "--set",
        "count=2",
        "--store",
        str(tmp_path),
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert [a["id"] for a in data["artefacts"]] == ["image[0]", "image[1]"]
    for artefact in data["artefacts"]:
        assert set(artefact) >= {"id", "mime_type", "uri", "size", "sha256", "diagnostics"}
        assert artefact["mime_type"].startswith("image/")
        assert artefact["diagnostics"]["mocked"] is True
        assert artefact["uri"].startswith(f"file://{tmp_path.resolve()}")
    assert data["artefacts"][0]["diagnostics"]["payload"]["max_images"] == 2


def test_produce_uses_tutopanda_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUTOPANDA_STORE", str(tmp_path / "env-store"))
    code, out, err = run("produce", "openai:gpt-5-mini", "--set", "prompt=lava", "--json")
    assert code == 0, err
    assert json.loads(out)["artefacts"][0]["uri"].startswith(
        f"file://{(tmp_path / 'env-store').resolve()}"
    )


def test_invalid_custom_value_fails_with_the_field_and_allowed_values(tmp_path: Path) -> None:
    code, _, err = run(
        "produce",
        "replicate:minimax/speech-02-hd",
        "--set",
        "prompt=Magma rises.",
        "--custom",
        "emotion=calm",
        "--store",
        str(tmp_path),
    )
    assert code == 2  # refused before any request: a usage error, in one line
    assert len(err.strip().splitlines()) == 1
    assert "invalid_input" in err and "emotion" in err and "'calm'" in err and "'neutral'" in err
    assert "Magma rises." in err  # the prompt is named
    assert "replicate:minimax/speech-02-hd" in err


def test_unknown_model_and_bad_pairs_are_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("produce", "replicate:bytedance/seedream-5", "--store", str(tmp_path))
    assert code == 2 and "did you mean" in err and "seedream-4" in err
    code, _, err = run("produce", "replicate:bytedance/seedream-4", "--set", "no-equals-sign")
    assert code == 2 and "KEY=VALUE" in err


def test_config_file_and_attachment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        "user_prompt = \"In the tone of {{ attachments['tone.txt'] }}: {{ prompt }}\"\n"
    )
    tone = tmp_path / "tone.txt"
    tone.write_text("a pirate")
    code, out, err = run(
        "produce",
        "openai:gpt-5-mini",
        "--config",
        str(config),
        "--attach",
        str(tone),
        "--set",
        "prompt=volcanoes",
        "--store",
        str(tmp_path / "s"),
        "--json",
    )
    assert code == 0, err
    payload = json.loads(out)["artefacts"][0]["diagnostics"]["payload"]
    assert payload["input"] == "In the tone of a pirate: volcanoes"
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    code, _, err = run(
        "produce",
        "openai:gpt-5-mini",
        "--config",
        str(bad),
        "--set",
        "prompt=x",
        "--store",
        str(tmp_path / "s2"),
    )
    assert code == 2 and "not valid JSON" in err


def test_models_list_and_show() -> None:
    code, out, _ = run("models", "list", "--kind", "text-to-speech", "--json")
    assert code == 0
    models = json.loads(out)
    assert models and all(m["kind"] == "text-to-speech" for m in models)
    assert "replicate:minimax/speech-02-hd" in {m["model_id"] for m in models}
    code, out, _ = run("models", "show", "replicate:bytedance/seedream-4", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["kind"] == "text-to-image" and "aspect_ratio" in info["general_attributes"]
    code, _, err = run("models", "list", "--kind", "smell")
    assert code == 2 and "text-to-image" in err


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/models is not beside the checkout")
def test_models_import_writes_a_usable_declaration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(
        "models",
        "import",
        str(SHARED / "replicate-sample" / "jaaari__kokoro-82m.json"),
        "--into",
        str(tmp_path),
        "--json",
    )
    assert code == 0, err
    (report,) = json.loads(out)
    assert report["kind"] == "text-to-speech"
    written = Path(report["written"])
    assert written == tmp_path / "jaaari" / "kokoro-82m.json" and written.is_file()
    code, _, err = run("models", "import", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json does not exist" in err


async def test_retry_policy_retries_only_retryable_errors_and_honours_retry_after() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    attempts: list[int] = []

    async def flaky(attempt: int, previous: ProviderError | None) -> str:
        attempts.append(attempt)
        if attempt < 3:
            raise ProviderError(ErrorCode.RATE_LIMITED, "slow", retry_after=4.0)
        return "ok"

    assert await RetryPolicy(retries=2).run(flaky, sleep=sleep) == "ok"
    assert attempts == [1, 2, 3] and waits == [4.0, 4.0]

    async def bad(attempt: int, previous: ProviderError | None) -> str:
        attempts.append(attempt)
        raise ProviderError(ErrorCode.SAFETY_BLOCKED, "NSFW")

    attempts.clear()
    with pytest.raises(ProviderError):
        await RetryPolicy(retries=5).run(bad, sleep=sleep)
    assert attempts == [1]

    async def down(attempt: int, previous: ProviderError | None) -> str:
        attempts.append(attempt)
        raise ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, "502")

    attempts.clear()
    waits.clear()
    with pytest.raises(ProviderError):
        await RetryPolicy(retries=2, base_delay=1.0).run(down, sleep=sleep)
    assert attempts == [1, 2, 3]
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0  # exponential backoff with jitter


def test_produce_writes_a_run_manifest_for_success_and_failure(tmp_path: Path) -> None:
    from producers.storage import LocalStore

    code, out, _ = run(
        "produce",
        "replicate:bytedance/seedream-4",
        "--set",
        "prompt=A volcano",
        "--store",
        str(tmp_path),
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    code, out, _ = run(
        "produce",
        "replicate:minimax/speech-02-hd",
        "--set",
        "prompt=Magma.",
        "--custom",
        "emotion=calm",
        "--store",
        str(tmp_path),
        "--json",
    )
    assert code == 2  # refused before any request; the run still has its manifest
    failed = json.loads(out)
    assert failed["error"]["code"] == "invalid_input"
    store = LocalStore(tmp_path)
    import asyncio

    runs = asyncio.run(store.list_runs())
    assert sorted(runs) == sorted([data["run_id"], failed["run_id"]])
    ok = asyncio.run(store.read_manifest(data["run_id"]))
    assert ok is not None
    (job,) = ok["jobs"]
    assert job["status"] == "succeeded" and job["model_id"] == "replicate:bytedance/seedream-4"
    assert job["artefacts"][0]["sha256"] == data["artefacts"][0]["sha256"]
    bad = asyncio.run(store.read_manifest(failed["run_id"]))
    assert bad is not None
    assert (
        bad["jobs"][0]["status"] == "failed" and bad["jobs"][0]["error"]["code"] == "invalid_input"
    )


def test_live_mode_without_a_token_names_the_missing_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.setenv(
        "REPLICATE_BASE_URL", "http://127.0.0.1:9"
    )  # nothing listens: no request may go out
    code, _, err = run(
        "produce",
        "replicate:bytedance/seedream-4",
        "--mode",
        "live",
        "--set",
        "prompt=x",
        "--store",
        str(tmp_path),
        "--retries",
        "0",
    )
    assert code == 1
    assert "auth_failed" in err and "REPLICATE_API_TOKEN" in err
