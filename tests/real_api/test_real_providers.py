"""The real APIs, opt-in (see conftest.py): one cheap OpenAI response, one cheap Replicate
prediction and one cancel, through the same code as every live run (the CLI, the SDK, the
adapters over the official clients). Each asserts what the fakes are built to imitate: the
answer's shape, the provider's own cost figures, and the status a cancel leaves."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from producers.cli.app import app

runner = CliRunner()
#: The cheapest models we declare that answer quickly.
OPENAI_MODEL = "openai:gpt-5-mini"
REPLICATE_LLM = "replicate:meta/meta-llama-3-8b-instruct"
REPLICATE_IMAGE = "black-forest-labs/flux-dev"


def produce(tmp_path: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(
        app, ["produce", *args, "--mode", "live", "--store", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_one_cheap_openai_response(openai_key: str, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"reasoning_effort": "minimal", "max_output_tokens": 200, "output": "text"})
    )
    data = produce(
        tmp_path, OPENAI_MODEL, "--set", "prompt=Answer with one word: the colour of snow.",
        "--config", str(config),
    )  # fmt: skip
    (artefact,) = data["artefacts"]
    assert "white" in str(artefact["value"]).lower()
    diagnostics = artefact["diagnostics"]
    assert diagnostics["usage"]["output_tokens"] > 0
    assert openai_key not in json.dumps(data)


def test_one_cheap_replicate_prediction(replicate_token: str, tmp_path: Path) -> None:
    data = produce(
        tmp_path, REPLICATE_LLM, "--set", "prompt=Say the word yes and nothing else.",
        "--custom", "max_tokens=8",
    )  # fmt: skip
    (artefact,) = data["artefacts"]
    assert str(artefact["value"]).strip()
    assert artefact["diagnostics"].get("provider_seconds") is not None  # metrics.predict_time
    assert replicate_token not in json.dumps(data)


def test_one_cancel(replicate_token: str) -> None:
    from producers.clients.base import MediaHints
    from producers.clients.replicate import ReplicateClient

    async def create_and_cancel() -> tuple[str, str]:
        client = ReplicateClient(replicate_token)
        try:
            job = await client.create_job(
                model=REPLICATE_IMAGE,
                version=None,
                payload={"prompt": "a lighthouse at dusk", "num_inference_steps": 28},
                hints=MediaHints(),
            )
            canceled = await client.cancel_job(job.id)
            for _ in range(30):
                if canceled.status in ("canceled", "succeeded", "failed"):
                    break
                await asyncio.sleep(1)
                canceled = await client.get_job(job.id)
            return job.id, canceled.status
        finally:
            await client.aclose()

    job_id, status = asyncio.run(create_and_cancel())
    assert job_id
    # a prediction that finished before the cancel arrived stays succeeded
    assert status in ("canceled", "succeeded"), status


@pytest.mark.parametrize("bad", ["sk-not-a-real-key-0000000000000000"])
def test_a_bad_key_is_auth_failed_with_the_providers_words(
    openai_key: str, bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", bad)
    result = runner.invoke(
        app,
        ["produce", OPENAI_MODEL, "--set", "prompt=hi", "--mode", "live",
         "--store", str(tmp_path), "--json", "--retries", "0"],
    )  # fmt: skip
    assert result.exit_code != 0
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "auth_failed" and error["status_code"] == 401
    assert error["raw"]["code"] == "invalid_api_key"
    assert bad not in result.stdout + result.stderr
