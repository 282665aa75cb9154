"""Attacks that try to make a job send a local file to a provider: a prompt (written by a
person or by a model after a prompt injection) or a file field naming ``file://`` or a path.
A file goes to a provider only for a file field and only from the job's own store."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.testing.fakes import FAKE_TOKEN
from producers.testing.plugin import LiveFakes
from tests.security.conftest import blobs_in, tree_contains

pytestmark = pytest.mark.integration
runner = CliRunner()
SEEDREAM = "replicate:bytedance/seedream-4"
SEEDANCE = "replicate:bytedance/seedance-1-lite"
#: What the process environment holds that must never leave it.
ENV_SECRET = "env-secret-value-51c7e2"


def _produce(store: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["produce", *args, "--mode", "live", "--store", str(store)])
    return result.exit_code, result.stdout, result.stderr


def _wire(fakes: LiveFakes) -> str:
    """Everything the fake Replicate received, as text (bodies decoded where base64)."""
    seen = []
    for request in fakes.replicate.requests:
        body = json.dumps(request.json) if request.json is not None else ""
        seen.append(body)
        for value in (request.json or {}).get("input", {}).values():
            if isinstance(value, str) and value.startswith("data:"):
                seen.append(base64.b64decode(value.partition(",")[2]).decode("latin-1"))
    return "\n".join(seen)


def test_a_file_uri_prompt_is_sent_as_text_never_as_the_file(
    live_fakes: LiveFakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUTOPANDA_TEST_SECRET", ENV_SECRET)
    prompt = "file:///proc/self/environ"
    code, out, err = _produce(tmp_path, SEEDREAM, "--set", f"prompt={prompt}", "--json")
    assert code == 0, err
    (create,) = [r for r in live_fakes.replicate.requests if r.route == "create"]
    assert create.json["input"]["prompt"] == prompt  # the text itself
    wire = _wire(live_fakes)
    for secret in (ENV_SECRET, FAKE_TOKEN):
        assert secret not in wire
        assert tree_contains(tmp_path, secret.encode()) == []
        assert secret not in out + err


@pytest.mark.parametrize(
    "value",
    ["file:///proc/self/environ", "/proc/self/environ", "../../etc/passwd", "s3://other/x.png"],
    ids=["file-uri", "absolute-path", "relative-path", "another-store"],
)
def test_a_file_field_naming_a_local_file_is_refused_before_any_request(
    live_fakes: LiveFakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TUTOPANDA_TEST_SECRET", ENV_SECRET)
    code, out, err = _produce(tmp_path, SEEDANCE, "--set", "prompt=p", "--set", f"image={value}")
    assert code != 0
    assert "input.image" in err and "file field" in err
    assert "Traceback" not in out + err
    assert live_fakes.replicate.count("create") == 0  # no request at all
    assert blobs_in(tmp_path) == []


def test_a_store_artefact_still_goes_to_an_image_to_video_model(
    live_fakes: LiveFakes, tmp_path: Path
) -> None:
    """The legitimate path: an artefact of the store (as the movie's video role sends its
    image) is uploaded, inline, with its MIME type."""
    code, out, err = _produce(tmp_path, SEEDREAM, "--set", "prompt=a red panda", "--json")
    assert code == 0, err
    image_uri = json.loads(out)["artefacts"][0]["uri"]
    code, out, err = _produce(
        tmp_path, SEEDANCE, "--set", "prompt=it moves", "--set", f"image={image_uri}"
    )
    assert code == 0, err
    create = [r for r in live_fakes.replicate.requests if r.route == "create"][-1]
    assert create.json["input"]["image"].startswith("data:image/")
    assert os.fspath(tmp_path) not in json.dumps(create.json)  # no local path leaves us
