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


async def test_a_budget_prices_and_validates_the_fallbacks_too() -> None:
    from producers.pipeline.cost import estimate, mock_prepare
    from producers.registry import default_registry
    from producers.sdk.errors import InvalidInputError

    prepare = mock_prepare(default_registry())
    plain = await estimate(load_options(), "Tides", 2, prepare)
    # a dearer fallback raises the role to its price: it may run after a paid failure
    dearer = await estimate(
        load_options(overrides=["image.fallbacks=replicate:genmoai/mochi-1"]), "Tides", 2, prepare
    )
    assert dearer.roles["image"] > plain.roles["image"]
    assert "image" in dearer.upper_bound  # mochi-1's price is an upper bound
    assert dearer.roles["narration"] == plain.roles["narration"]
    # a fallback that would refuse its inputs is found before anything is paid
    with pytest.raises(InvalidInputError, match=r"image fallback \(replicate:black-forest"):
        await estimate(
            load_options(
                overrides=[
                    f'image.fallbacks=[{{"model": "replicate:{FLUX}", '
                    '"custom": {"no_such_field": 1}}]'
                ]
            ),
            "Tides",
            1,
            prepare,
        )


async def test_an_unpriced_fallback_is_an_unpriced_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import producers.replicate.models as shipped
    from producers.pipeline.cost import UnpricedJobs, check_budget, estimate, mock_prepare
    from producers.registry import default_registry

    data = json.loads((Path(next(iter(shipped.__path__))) / f"{FLUX}.json").read_text())
    data["cost"] = {"text": "unknown"}
    (tmp_path / "black-forest-labs").mkdir()
    (tmp_path / f"{FLUX}.json").write_text(json.dumps(data))
    monkeypatch.setenv("TUTOPANDA_MODELS_PATH", str(tmp_path))
    default_registry.cache_clear()
    try:
        options = load_options(overrides=[f"image.fallbacks=replicate:{FLUX}"])
        cost = await estimate(options, "Tides", 2, mock_prepare(default_registry()))
    finally:
        monkeypatch.delenv("TUTOPANDA_MODELS_PATH")
        default_registry.cache_clear()
    assert {(j.key, j.model_id) for j in cost.unpriced} == {
        ("image[0]", f"replicate:{FLUX}"),
        ("image[1]", f"replicate:{FLUX}"),
    }
    assert cost.roles["image"] > 0  # the role's own model still has its price
    with pytest.raises(UnpricedJobs):
        check_budget(cost, 100.0)
    check_budget(cost, 100.0, allow_unpriced=True)
