"""`tutopanda movie`: the whole pipeline, in mock mode and live against the fakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.sdk.media import probe
from producers.testing.fakes import (
    FAKE_OPENAI_KEY,
    FAKE_TOKEN,
    FakeOpenAI,
    FakeReplicate,
    Fault,
    ca_path,
)
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration
runner = CliRunner()


def movie(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    result = runner.invoke(app, ["movie", "--store", str(tmp_path), "--json", *args])
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        data = None
    return result.exit_code, data, result.stderr


def path_of(uri: str) -> Path:
    return Path(url2pathname(urlsplit(uri).path))


def test_mock_movie_is_a_real_mp4_as_long_as_the_narration(tmp_path: Path) -> None:
    code, data, err = movie(tmp_path, "--topic", "How volcanoes work", "--segments", "3")
    assert code == 0, err
    assert data is not None
    info = probe(path_of(data["movie"]))
    assert info.has_video and info.has_audio
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    timeline = json.loads(path_of(data["timeline"]).read_text())
    narrations = {a["id"]: a for a in data["artefacts"] if a["id"].startswith("narration[")}
    images = {a["id"]: a for a in data["artefacts"] if a["id"].startswith("image[")}
    assert len(timeline["segments"]) == 3
    total = 0.0
    for index, segment in enumerate(timeline["segments"]):
        assert (
            segment["visual_uri"] == images[f"image[{index}]"]["uri"]
        )  # one image per segment, in order
        assert segment["narration_uri"] == narrations[f"narration[{index}]"]["uri"]
        narration_seconds = probe(path_of(segment["narration_uri"])).duration_seconds
        assert narration_seconds is not None
        assert segment["duration"] == pytest.approx(narration_seconds + 0.5, abs=0.01)
        total += segment["duration"]
    assert info.duration_seconds == pytest.approx(total, abs=0.15)
    assert data["summary"]["failed"] == 0 and data["summary"]["done"] == 1 + 3 * 3 + 1


def test_second_identical_run_reuses_everything(tmp_path: Path) -> None:
    code, first, err = movie(tmp_path, "--topic", "Tides", "--segments", "2")
    assert code == 0, err
    code, second, err = movie(tmp_path, "--topic", "Tides", "--segments", "2")
    assert code == 0, err
    assert first is not None and second is not None
    assert second["summary"]["done"] == 0
    assert second["summary"]["reused"] == first["summary"]["done"]
    assert second["movie"] == first["movie"]  # same bytes, same content address
    code, third, err = movie(
        tmp_path, "--topic", "Tides", "--segments", "2", "--refresh-role", "image"
    )
    assert code == 0, err
    assert third is not None
    assert (
        third["summary"]["done"] == 2 and third["summary"]["reused"] == first["summary"]["done"] - 2
    )


def test_budget_refuses_before_anything_runs(tmp_path: Path) -> None:
    code, _, err = movie(tmp_path, "--topic", "Tides", "--segments", "3", "--budget", "0.05")
    assert code == 2
    assert "over the budget $0.0500" in err and "image" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.fixture
def live(live_fakes: LiveFakes) -> LiveFakes:
    return live_fakes


def test_live_movie_survives_429_and_5xx_and_reuses_on_rerun(
    live: LiveFakes, tmp_path: Path
) -> None:
    replicate_fake, openai_fake = live
    replicate_fake.inject(Fault.status(429, retry_after=0), route="create", times=2)
    # A failed poll is waited out inside the job (no retry of it), up to the tolerated count.
    replicate_fake.inject(Fault.status(503, retry_after=0), route="get")
    openai_fake.inject(Fault.status(500), route="responses")
    # Three faults that fail a job: one job may meet all of them, so allow it three retries.
    code, data, err = movie(
        tmp_path, "--topic", "Volcanoes", "--segments", "2", "--mode", "live", "--retries", "3"
    )
    assert code == 0, err
    assert data is not None and data["movie"]
    assert err.count("retry") >= 3 and "rate_limited" in err and "provider_unavailable" in err
    assert data["summary"]["retries"] >= 3
    assert 503 in replicate_fake.statuses("get")
    replicate_fake.reset()
    openai_fake.reset()
    code, again, err = movie(tmp_path, "--topic", "Volcanoes", "--segments", "2", "--mode", "live")
    assert code == 0, err
    assert replicate_fake.requests == [] and openai_fake.requests == []  # zero provider requests
    assert again is not None and again["summary"]["done"] == 0


def test_live_safety_block_on_one_image_finishes_the_rest(live: LiveFakes, tmp_path: Path) -> None:
    replicate_fake, _ = live
    replicate_fake.inject(Fault.nsfw(), route="create", path_contains="bytedance/seedream-4")
    code, data, err = movie(
        tmp_path,
        "--topic",
        "Volcanoes",
        "--segments",
        "2",
        "--mode",
        "live",
        "--concurrency",
        "replicate=1",
    )
    assert code == 1
    assert data is not None and data["movie"] is None
    (failure,) = data["failures"]
    assert failure["code"] == "safety_blocked" and failure["prompt"]
    assert failure["model"] and failure["producer"] == "replicate.media"
    assert (
        "safety_blocked" in err and "NSFW content detected" in err and failure["prompt"][:20] in err
    )
    done_roles = {a["job"].split("[")[0] for a in data["artefacts"]}
    assert {"script", "image_prompt", "narration", "music"} <= done_roles


def test_ctrl_c_cancels_in_flight_predictions_at_the_provider(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    with FakeReplicate(latency=30.0) as replicate_fake, FakeOpenAI() as openai_fake:
        env = {
            **os.environ,
            "SSL_CERT_FILE": str(ca_path()),
            "REPLICATE_BASE_URL": replicate_fake.base_url,
            "REPLICATE_API_TOKEN": FAKE_TOKEN,
            "OPENAI_BASE_URL": openai_fake.api_url,
            "OPENAI_API_KEY": FAKE_OPENAI_KEY,
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "producers.cli",
                "movie",
                "--topic",
                "Tides",
                "--segments",
                "2",
                "--mode",
                "live",
                "--store",
                str(tmp_path),
                "--json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while replicate_fake.count("create") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert replicate_fake.count("create") >= 2, "no prediction was started"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert "interrupted" in err
        assert replicate_fake.count("cancel") == replicate_fake.count("create")
