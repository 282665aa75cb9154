"""Prices end to end through the CLI: every imported sample model is priced (or bounded) and
``produce --json`` shows it; a budget run with a job it cannot price is refused before any
request to the providers, and runs with ``--allow-unpriced``; after a live run the actual cost
comes from the provider's own figures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.registry import default_registry
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration
runner = CliRunner()

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT.parent / "shared" / "models" / "replicate-sample").glob("*.json"))
SHIPPED = ROOT / "producers" / "replicate" / "models"
UNPRICED_MODEL = "stability-ai/stable-diffusion"


def invoke(*args: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, list(args))
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        data = None
    return result.exit_code, data, result.stderr


@pytest.fixture
def models_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A deployment's own declaration folder (``TUTOPANDA_MODELS_PATH``), read afresh; its
    declarations replace the shipped ones of the same model."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("TUTOPANDA_MODELS_PATH", str(folder))
    default_registry.cache_clear()
    yield folder
    monkeypatch.delenv("TUTOPANDA_MODELS_PATH")
    default_registry.cache_clear()


@pytest.mark.skipif(not SAMPLES, reason="no shared/models/replicate-sample here")
def test_every_imported_sample_model_shows_a_positive_estimate(
    models_path: Path, tmp_path: Path
) -> None:
    code, reports, err = invoke(
        "models", "import", *map(str, SAMPLES), "--into", str(models_path), "--json"
    )
    assert code == 0, err
    assert len(reports) == len(SAMPLES)
    default_registry.cache_clear()  # the imported declarations replace the shipped ones
    for report in reports:
        assert any(line.startswith("cost: upper bound <= $") for line in report["inferred"])
        code, data, err = invoke(
            "produce",
            report["model"],
            "--set",
            "prompt=a lighthouse at dusk",
            "--store",
            str(tmp_path / "store"),
            "--json",
        )
        assert code == 0, f"{report['model']}: {err}"
        diagnostics = data["diagnostics"]
        assert diagnostics["estimated_cost_usd"] > 0, report["model"]
        assert diagnostics["estimated_cost_upper_bound"] is True, report["model"]
        assert diagnostics["cost_usd"] == 0.0  # mock mode: nothing paid
        shown = invoke("models", "show", report["model"], "--json")[1]
        assert shown["cost"]["basis"] == "upper_bound"
        assert shown["cost"]["text"].startswith("<= $")


def test_produce_text_marks_an_upper_bound_and_a_budget_refuses_it(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    result = runner.invoke(
        app, ["produce", "replicate:genmoai/mochi-1", "--set", "prompt=a fox", "--store", store]
    )
    assert result.exit_code == 0, result.stderr
    assert "estimated cost: <= $2.7019" in result.stdout
    code, _, err = invoke(
        "produce", "replicate:genmoai/mochi-1", "--set", "prompt=a fox", "--store", store,
        "--budget", "1",
    )  # fmt: skip
    assert code == 2 and "<= $2.7019" in err and "nothing was sent" in err


def _unpriced_declaration(folder: Path) -> str:
    """A deployment's copy of a shipped model with its price taken away."""
    data = json.loads((SHIPPED / f"{UNPRICED_MODEL}.json").read_text())
    data["cost"] = {"text": "unknown: nobody knows"}
    target = folder / f"{UNPRICED_MODEL}.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(data, indent=2))
    default_registry.cache_clear()
    return f"replicate:{UNPRICED_MODEL}"


def test_a_budget_run_with_an_unpriced_job_is_refused_before_any_request(
    live_fakes: LiveFakes, models_path: Path, tmp_path: Path
) -> None:
    replicate_fake, openai_fake = live_fakes
    model_id = _unpriced_declaration(models_path)
    args = [
        "movie", "--topic", "Tides", "--segments", "1", "--mode", "live",
        "--set", f"image.model={model_id}", "--store", str(tmp_path / "store"),
        "--budget", "5", "--json",
    ]  # fmt: skip
    code, data, err = invoke(*args)
    assert code == 2, err
    assert data is None
    assert f"1 job with no price (image[0]: {model_id})" in err
    assert "--allow-unpriced" in err
    # Refused while pricing: neither provider saw a single request.
    assert replicate_fake.requests == [] and openai_fake.requests == []

    code, data, err = invoke(*args, "--allow-unpriced")
    assert code == 0, err
    summary = data["summary"]
    assert summary["unpriced_jobs"] == [{"key": "image[0]", "role": "image", "model_id": model_id}]
    assert summary["estimated_cost_usd"] > 0  # the priced roles
    assert summary["cost_unknown_jobs"] == 1  # the image job ran, at a price no one knows
    image = next(a for a in data["artefacts"] if a["job"] == "image[0]")
    assert image["diagnostics"]["estimated_cost_usd"] is None
    assert image["diagnostics"]["cost_usd"] is None
    assert replicate_fake.requests and openai_fake.requests


def test_a_live_run_records_the_actual_cost_from_the_providers_figures(
    live_fakes: LiveFakes, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    # Published per-output price: the formula over the outputs actually made.
    code, data, err = invoke(
        "produce", "replicate:bytedance/seedream-4", "--set", "prompt=a fox",
        "--mode", "live", "--store", store, "--json",
    )  # fmt: skip
    assert code == 0, err
    diagnostics = data["diagnostics"]
    made = len(data["artefacts"])
    assert diagnostics["cost_usd"] == pytest.approx(0.03 * made)
    assert diagnostics["cost_upper_bound"] is False
    # An upper-bound model: its prediction's predict_time at the dearest hardware, still
    # marked as an upper bound.
    code, data, err = invoke(
        "produce", "replicate:jaaari/kokoro-82m", "--set", "prompt=hello there",
        "--mode", "live", "--store", store, "--json",
    )  # fmt: skip
    assert code == 0, err
    diagnostics = data["diagnostics"]
    seconds = diagnostics["provider_seconds"]
    assert seconds is not None
    assert diagnostics["cost_usd"] == pytest.approx(round(seconds * 0.0122, 6))
    assert diagnostics["cost_upper_bound"] is True
    assert diagnostics["estimated_cost_upper_bound"] is True
    # OpenAI: from the answer's usage tokens and the price table.
    code, data, err = invoke(
        "produce", "openai:gpt-5-mini", "--set", "prompt=Say hello",
        "--mode", "live", "--store", store, "--json",
    )  # fmt: skip
    assert code == 0, err
    diagnostics = data["diagnostics"]
    usage = diagnostics["usage"]
    expected = (usage["input_tokens"] * 0.25 + usage["output_tokens"] * 2.0) / 1_000_000
    if usage.get("cached_input_tokens"):
        expected -= usage["cached_input_tokens"] * (0.25 - 0.025) / 1_000_000
    assert diagnostics["cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert diagnostics["cost_usd"] > 0
