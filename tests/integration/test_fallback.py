"""Fallback models: a role's job moves to its next model when its own fails for good with a
provider-side error, never after a refused input or a safety block (CLI against the fakes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.pipeline.options import load_options
from producers.pipeline.steps import image_job
from producers.sdk.errors import ErrorCode, ProviderError
from producers.testing.fakes import Fault
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration
runner = CliRunner()
SEEDREAM = "bytedance/seedream-4"
FLUX = "black-forest-labs/flux-dev"


def movie(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    result = runner.invoke(app, ["movie", "--store", str(tmp_path), "--json", *args])
    try:
        data = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    return result.exit_code, data, result.stderr


def manifest_of(data: dict[str, Any]) -> dict[str, Any]:
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    path = Path(url2pathname(urlsplit(data["manifest"]).path))
    return json.loads(path.read_text(encoding="utf-8"))


def _version(model: str) -> str | None:
    import producers.replicate.models as shipped

    path = Path(next(iter(shipped.__path__))) / f"{model}.json"
    version = json.loads(path.read_text(encoding="utf-8")).get("version")
    return str(version) if version else None


def creates_of(live: LiveFakes, model: str) -> int:
    """Prediction creates for ``model``: by its path, or by its pinned version."""
    version = _version(model)
    return sum(
        1
        for r in live.replicate.requests
        if r.route == "create"
        and (model in r.path or (version is not None and (r.json or {}).get("version") == version))
    )


def test_a_movie_whose_image_provider_is_down_finishes_on_the_fallback_model(
    live_fakes: LiveFakes, tmp_path: Path
) -> None:
    live_fakes.replicate.inject(Fault.status(503), route="create", times=50, path_contains=SEEDREAM)
    code, data, err = movie(
        tmp_path,
        "--topic",
        "Volcanoes",
        "--segments",
        "2",
        "--mode",
        "live",
        "--retries",
        "1",
        "--set",
        f"image.fallbacks=replicate:{FLUX}",
    )
    assert code == 0, err
    assert data is not None and data["movie"]
    assert data["summary"]["fallbacks"] == 2
    # each image job: its model tried once and retried once (503 each time), then the fallback
    assert creates_of(live_fakes, SEEDREAM) == 4
    assert creates_of(live_fakes, FLUX) == 2
    assert "fallback" in err and f"trying replicate:{FLUX}" in err
    images = [a for a in data["artefacts"] if a["job"].startswith("image[")]
    assert len(images) == 2
    for artefact in images:
        (passed,) = artefact["passed_over"]
        assert passed["model_id"] == f"replicate:{SEEDREAM}"
        assert passed["code"] == "provider_unavailable" and passed["status_code"] == 503
    records = {r["key"]: r for r in manifest_of(data)["jobs"]}
    for key in ("image[0]", "image[1]"):
        record = records[key]
        assert record["status"] == "succeeded"
        assert record["model_id"] == f"replicate:{FLUX}"  # which model made the artefact
        assert [p["model_id"] for p in record["passed_over"]] == [f"replicate:{SEEDREAM}"]
        assert record["passed_over"][0]["code"] == "provider_unavailable"
    assert records["narration[0]"]["passed_over"] == []  # the role's own model made it


def test_a_safety_block_never_falls_back(live_fakes: LiveFakes, tmp_path: Path) -> None:
    live_fakes.replicate.inject(Fault.nsfw(), route="create", times=5, path_contains=SEEDREAM)
    code, data, err = movie(
        tmp_path,
        "--topic",
        "Volcanoes",
        "--segments",
        "1",
        "--mode",
        "live",
        "--set",
        f"image.fallbacks=replicate:{FLUX}",
    )
    assert code == 1, err
    assert data is not None and data["movie"] is None
    (failure,) = data["failures"]
    assert failure["code"] == "safety_blocked"
    assert creates_of(live_fakes, FLUX) == 0  # another model would be asked the same thing
    assert data["summary"]["fallbacks"] == 0


def test_every_model_failing_records_each_and_fails_with_the_last(
    live_fakes: LiveFakes, tmp_path: Path
) -> None:
    fake = live_fakes.replicate
    fake.inject(Fault.status(503), route="create", times=5, path_contains=SEEDREAM)
    # flux-dev is pinned to a version: its creates are POST /v1/predictions
    fake.inject(Fault.failed("CUDA out of memory"), route="create", path_contains="/v1/predictions")
    code, data, err = movie(
        tmp_path,
        "--topic",
        "Volcanoes",
        "--segments",
        "1",
        "--mode",
        "live",
        "--retries",
        "0",
        "--set",
        f"image.fallbacks=replicate:{FLUX}",
    )
    assert code == 1
    assert data is not None and data["movie"] is None
    (failure,) = data["failures"]
    assert failure["job"] == "image[0]", err
    assert failure["code"] == "model_failed" and failure["model"] == FLUX
    assert creates_of(live_fakes, SEEDREAM) == 1 and creates_of(live_fakes, FLUX) == 1
    record = {r["key"]: r for r in manifest_of(data)["jobs"]}["image[0]"]
    assert record["status"] == "failed"
    assert record["model_id"] == f"replicate:{FLUX}"
    assert record["error"]["code"] == "model_failed"
    assert record["error"]["provider_job_id"]  # the failed prediction, for the provider's logs
    (passed,) = record["passed_over"]
    assert passed["model_id"] == f"replicate:{SEEDREAM}" and passed["status_code"] == 503
    assert "fallback image[0]" in " ".join(err.split())


def test_fallback_codes_and_what_each_fallback_is_given() -> None:
    options = load_options(
        overrides=[
            "image.custom.size=2K",
            f'image.fallbacks=[{{"model": "replicate:{FLUX}", "custom": {{"guidance": 3}}}}, '
            '"replicate:google/nano-banana"]',
        ]
    )
    spec = image_job(options, "A volcano", 0)
    assert spec.custom == {"size": "2K"}
    for code in ("provider_unavailable", "rate_limited", "model_failed", "timeout"):
        following = spec.fallback(ProviderError(code, "down", status_code=503))
        assert following is not None and following.model_id == f"replicate:{FLUX}"
        # general inputs carry over; custom attributes belong to the model: its own only
        assert following.inputs["prompt"] == "A volcano"
        assert following.inputs["aspect_ratio"] == spec.inputs["aspect_ratio"]
        assert following.custom == {"guidance": 3}
        assert following.passed_over[0]["code"] == code
    assert spec.fallback(ProviderError(ErrorCode.QUOTA_EXCEEDED, "no credit")) is not None
    for code in ("invalid_input", "safety_blocked", "auth_failed", "malformed_output"):
        assert spec.fallback(ProviderError(code, "no")) is None
    first = spec.fallback(ProviderError("timeout", "slow"))
    assert first is not None
    second = first.fallback(ProviderError("model_failed", "oom"))
    assert second is not None and second.model_id == "replicate:google/nano-banana"
    assert second.custom == {}
    assert [p["model_id"] for p in second.passed_over] == [spec.model_id, first.model_id]
    assert second.fallback(ProviderError("timeout", "slow")) is None  # none left
    # a client that keeps the passed-over list (an Airflow task's retries) rebuilds the same job
    assert spec.moved_to(second.passed_over) == second
    assert spec.moved_to([]) == spec
    with pytest.raises(ValueError, match="passed over"):
        spec.moved_to([*second.passed_over, {"model_id": "x"}])
