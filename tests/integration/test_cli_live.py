"""`tutopanda produce --mode live` against the fakes: retries, resumes, failures, fake-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.sdk.lifecycle import WaitPolicy
from producers.testing.fakes import (
    FakeReplicate,
    Fault,
)
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration
runner = CliRunner()
SEEDREAM = "replicate:bytedance/seedream-4"


@pytest.fixture
def replicate_fake(live_fakes: LiveFakes) -> FakeReplicate:
    return live_fakes.replicate


def produce(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["produce", *args, "--mode", "live", "--store", str(tmp_path)])
    return result.exit_code, result.stdout, result.stderr


def test_rate_limited_create_is_retried_until_it_succeeds(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    replicate_fake.inject(Fault.status(429, retry_after=0), route="create", times=2)
    code, out, err = produce(tmp_path, SEEDREAM, "--set", "prompt=A volcano", "--json")
    assert code == 0, err
    assert replicate_fake.count("create") == 3
    assert "retry 1/2" in err and "retry 2/2" in err and "rate_limited" in err
    assert json.loads(out)["artefacts"][0]["diagnostics"]["attempt"] == 3


def test_a_few_failed_polls_are_waited_out_and_more_resume_the_same_prediction(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    tolerated = WaitPolicy().max_poll_failures
    replicate_fake.inject(Fault.status(503, retry_after=0), route="get", times=tolerated)
    code, _out, err = produce(tmp_path, SEEDREAM, "--set", "prompt=A volcano", "--json")
    assert code == 0, err
    assert "retry" not in err  # waited out inside the job: no retry of the task
    assert replicate_fake.count("create") == 1

    replicate_fake.reset()
    replicate_fake.inject(Fault.status(503, retry_after=0), route="get", times=tolerated + 1)
    code, _out, err = produce(tmp_path / "2", SEEDREAM, "--set", "prompt=A volcano", "--json")
    assert code == 0, err
    assert "retry 1/2" in err and "provider_unavailable" in err
    assert replicate_fake.count("create") == 1  # the retry resumed it: never a second payment


def test_a_truncated_download_is_retried_and_stores_one_whole_blob(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    replicate_fake.inject(Fault.truncated(), route="download")
    code, _out, err = produce(tmp_path, SEEDREAM, "--set", "prompt=A volcano", "--json")
    assert code == 0, err
    assert replicate_fake.count("create") == 1 and replicate_fake.count("download") == 2
    blobs = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file() and p.suffix != ".json"]
    assert len(blobs) == 1
    assert not any((tmp_path / "tmp").iterdir())


def test_retries_run_out(replicate_fake: FakeReplicate, tmp_path: Path) -> None:
    replicate_fake.inject(Fault.status(502), route="create", times=5)
    code, _, err = produce(tmp_path, SEEDREAM, "--set", "prompt=A volcano", "--retries", "1")
    assert code == 1
    assert replicate_fake.count("create") == 2
    assert "provider_unavailable" in err


def test_safety_block_is_never_retried_and_names_everything(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    replicate_fake.inject(Fault.nsfw(), route="create")
    code, _, err = produce(tmp_path, SEEDREAM, "--set", "prompt=A volcano at dawn")
    assert code == 1
    assert replicate_fake.count("create") == 1
    for words in (
        "replicate.media",
        "replicate:bytedance/seedream-4",
        "safety_blocked",
        "NSFW content detected",
        "A volcano at dawn",
    ):
        assert words in err, words
    assert "retry" not in err


def test_openai_structured_output_live(
    replicate_fake: FakeReplicate, live_fakes: LiveFakes, tmp_path: Path
) -> None:
    config = Path(__file__).resolve().parents[2] / "docs" / "examples" / "script.yaml"
    code, out, err = produce(
        tmp_path,
        "openai:gpt-5-mini",
        "--config",
        str(config),
        "--set",
        "prompt=Volcanoes",
        "--json",
    )
    assert code == 0, err
    ids = [a["id"] for a in json.loads(out)["artefacts"]]
    assert ids[:2] == ["script", "title"] and "narration[2]" in ids
    assert live_fakes.openai.count("responses") == 1


def test_fake_server_command_prints_its_url_and_serves(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "producers.cli", "fake-server", "--provider", "openai"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = ""
        for _ in range(20):
            line = process.stdout.readline()
            if "http://" in line:
                break
        url = line[line.index("http://") :].split()[0]
        assert (
            httpx.get(
                f"{url.rstrip('/').removesuffix('/v1')}/__fake__/health", timeout=5
            ).status_code
            == 200
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_prediction_stuck_past_its_deadline_is_cancelled_and_times_out(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    replicate_fake.configure({"latency": 600.0})
    try:
        code, _out, err = produce(
            tmp_path, SEEDREAM, "--set", "prompt=A volcano", "--deadline", "2", "--retries", "0"
        )
    finally:
        replicate_fake.configure({"latency": 0.0})
    assert code == 1
    assert "timeout" in err and "deadline of 2 s" in err
    assert replicate_fake.count("create") == 1
    assert replicate_fake.count("cancel") == 1  # nothing left running (and paying)
    (prediction_id,) = replicate_fake.prediction_ids
    assert replicate_fake.prediction(prediction_id)["status"] == "canceled"
