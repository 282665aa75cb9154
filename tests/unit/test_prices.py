"""Prices: the hardware table, how a declaration's price was found (published, hardware-seconds,
upper bound), the estimate before a job and the actual cost after it, the importer's price, the
movie's estimate and its budget, and OpenAI's cost from the answer's usage."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from producers.openai import pricing
from producers.pipeline.cost import (
    BudgetExceeded,
    CostEstimate,
    UnpricedJob,
    UnpricedJobs,
    check_budget,
)
from producers.replicate.cost import UNKNOWN, Price, actual_cost, estimate_cost
from producers.replicate.declaration import (
    ModelDeclaration,
    load_declaration,
    parse_declaration,
)
from producers.replicate.hardware import HARDWARE, find_hardware, hardware_price, most_expensive
from producers.replicate.importer import import_file, import_metadata
from producers.sdk.errors import DeclarationError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "producers" / "replicate" / "models"
SHIPPED_FILES = sorted(SHIPPED.glob("*/*.json"))
# The public Replicate metadata samples beside the repository (as tests/unit/test_importer.py).
SAMPLES = sorted((ROOT.parent / "shared" / "models" / "replicate-sample").glob("*.json"))
FLUX = SHIPPED / "black-forest-labs" / "flux-dev.json"
DEAREST = 0.0122  # 8x Nvidia H100 on Replicate's pricing page


def with_cost(cost: dict[str, Any], **fields: Any) -> ModelDeclaration:
    """flux-dev (a multi-output image model, median 3.2 s) with another cost."""
    data = json.loads(FLUX.read_text())
    data["cost"] = cost
    data.update(fields)
    return parse_declaration(data, source="test")


# -- the hardware table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sku"),
    [
        ("gpu-l40s", "gpu-l40s"),
        ("nvidia-l40s", "gpu-l40s"),
        ("Nvidia L40S GPU", "gpu-l40s"),
        ("2x Nvidia L40S GPU", "gpu-2x-l40s"),
        ("nvidia-t4", "gpu-t4"),
        ("Nvidia A100 (80GB) GPU", "gpu-a100-large"),
        ("2x Nvidia A100 (80GB) GPU", "gpu-a100-large-2x"),
        ("Nvidia A40 (Large) GPU", "gpu-a40-large"),
        ("Nvidia A40 GPU", "gpu-a40-small"),
        ("8x Nvidia H100 GPU", "gpu-h100-8x"),
        ("cpu", "cpu"),
    ],
    ids=lambda value: str(value),
)
def test_hardware_names_people_write_find_replicates_sku(name: str, sku: str) -> None:
    found = find_hardware(name)
    assert found is not None and found.sku == sku


@pytest.mark.parametrize("name", ["tpu-v5", "a100-40gb", "", "gpu-l40s-16x"])
def test_hardware_not_in_the_table_has_no_price(name: str) -> None:
    assert find_hardware(name) is None and hardware_price(name) is None


def test_the_dearest_public_hardware_bounds_every_other() -> None:
    dearest = most_expensive()
    assert dearest.sku == "gpu-h100-8x" and dearest.usd_per_second == pytest.approx(DEAREST)
    assert all(hw.usd_per_second <= dearest.usd_per_second for hw in HARDWARE.values())
    assert hardware_price("gpu-l40s") == pytest.approx(0.000975)


# -- the declaration's cost ----------------------------------------------------------------

BAD_COSTS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("published-without-rate", {"basis": "published"}, {}, "needs 'usd' or 'by'"),
    ("hardware-without-name", {"basis": "hardware"}, {}, "needs 'hardware'"),
    (
        "unknown-hardware",
        {"basis": "hardware", "hardware": "tpu-v5"},
        {},
        "not in the hardware price table",
    ),
    (
        "hardware-with-a-rate",
        {"basis": "hardware", "hardware": "gpu-t4", "usd": 0.01},
        {},
        "set no 'usd' or 'by'",
    ),
    ("bound-with-a-rate", {"basis": "upper_bound", "usd": 0.01}, {}, "set no 'usd' or 'by'"),
    ("hardware-without-basis", {"hardware": "gpu-t4", "usd": 0.01}, {}, "only for basis"),
    (
        "bound-without-seconds",
        {"basis": "upper_bound"},
        {"median_seconds": None},
        "needs the expected seconds",
    ),
    ("negative-seconds", {"basis": "upper_bound", "seconds": -3}, {}, "greater than 0"),
    ("negative-rate", {"basis": "published", "usd": -1}, {}, "greater than or equal to 0"),
]


@pytest.mark.parametrize(
    ("cost", "fields", "message"),
    [case[1:] for case in BAD_COSTS],
    ids=[case[0] for case in BAD_COSTS],
)
def test_a_cost_that_cannot_price_is_refused_naming_why(
    cost: dict[str, Any], fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(DeclarationError, match="cost") as caught:
        with_cost(cost, **fields)
    assert message in str(caught.value)


ESTIMATES: list[tuple[str, dict[str, Any], dict[str, Any], float | None, bool]] = [
    # id, cost, payload, usd, upper bound
    ("published-per-output", {"per": "output", "usd": 0.025}, {"num_outputs": 3}, 0.075, False),
    ("legacy-no-basis", {"per": "run", "usd": 0.2}, {}, 0.2, False),
    (
        "hardware-x-median",
        {"basis": "hardware", "hardware": "nvidia-l40s"},
        {},
        0.000975 * 3.2,
        False,
    ),
    (
        "hardware-x-its-seconds",
        {"basis": "hardware", "hardware": "gpu-a100-large", "seconds": 10},
        {},
        0.014,
        False,
    ),
    ("upper-bound", {"basis": "upper_bound", "seconds": 5}, {}, 5 * DEAREST, True),
    ("upper-bound-x-median", {"basis": "upper_bound"}, {}, 3.2 * DEAREST, True),
    ("unknown", {}, {}, None, False),
]


@pytest.mark.parametrize(
    ("cost", "payload", "usd", "bound"),
    [case[1:] for case in ESTIMATES],
    ids=[case[0] for case in ESTIMATES],
)
def test_estimate_follows_how_the_price_was_found(
    cost: dict[str, Any], payload: dict[str, Any], usd: float | None, bound: bool
) -> None:
    price = estimate_cost(with_cost(cost), {"prompt": "a fox", **payload})
    if usd is None:
        assert price == UNKNOWN and not price.known and price.describe() == "unknown"
        return
    assert price.usd == pytest.approx(usd)
    assert price.upper_bound is bound
    assert price.describe().startswith("<= $" if bound else "$")


def test_actual_cost_from_the_providers_seconds_and_the_outputs_made() -> None:
    hardware = with_cost({"basis": "hardware", "hardware": "gpu-t4"})
    paid = actual_cost(hardware, {"prompt": "x"}, provider_seconds=40.0, outputs=1)
    assert paid.usd == pytest.approx(40 * 0.000225) and not paid.upper_bound
    bounded = with_cost({"basis": "upper_bound", "seconds": 5})
    paid = actual_cost(bounded, {"prompt": "x"}, provider_seconds=2.5, outputs=1)
    assert paid.usd == pytest.approx(2.5 * DEAREST) and paid.upper_bound
    # A published per-output price counts the outputs made, not the ones asked for.
    per_output = with_cost({"basis": "published", "per": "output", "usd": 0.025})
    paid = actual_cost(per_output, {"num_outputs": 4}, provider_seconds=None, outputs=2)
    assert paid.usd == pytest.approx(0.05) and paid.basis == "published"
    # A time-priced prediction that reports no (or a nonsensical) time has no actual cost.
    for seconds in (None, math.nan, math.inf, -1.0):
        assert actual_cost(hardware, {}, provider_seconds=seconds, outputs=1) == UNKNOWN


def test_price_describe_marks_upper_bounds() -> None:
    assert Price(0.42, upper_bound=True).describe() == "<= $0.4200"
    assert Price(0.03).describe(digits=3) == "$0.030"


# -- every model has a price ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path", SHIPPED_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in SHIPPED_FILES]
)
def test_every_shipped_declaration_has_a_price(path: Path) -> None:
    declaration = load_declaration(path)
    cost = declaration.cost
    assert cost.known, f"{declaration.model} has no price"
    assert cost.text, "the cost text says where the price came from"
    assert cost.text.startswith("<= $") == cost.upper_bound
    if "prompt" in declaration.mapping:
        field = declaration.mapping["prompt"].field
        assert field is not None
        price = estimate_cost(declaration, {field: "a red fox in the snow"})
        assert price.usd is not None and price.usd > 0
        assert price.upper_bound is cost.upper_bound


@pytest.mark.skipif(not SAMPLES, reason="no shared/models/replicate-sample here")
@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_model_imports_with_a_price_or_an_upper_bound(path: Path) -> None:
    result = import_file(path)
    cost = result.declaration.cost
    assert cost.known
    predict = json.loads(path.read_text())["default_example"]["metrics"]["predict_time"]
    # The samples publish no price and no hardware: an upper bound from the example's time.
    assert cost.basis == "upper_bound" and cost.seconds == pytest.approx(predict, abs=1e-3)
    assert cost.text is not None and cost.text.startswith("<= $")
    assert any(line.startswith("cost: upper bound <= $") for line in result.inferred)


SYNTHETIC: dict[str, Any] = {
    "model": "acme-labs/tone-maker",
    "category": "Image Models",
    "description": "Makes an image from a prompt",
    "input_schema": {
        "type": "object",
        "properties": {"prompt": {"type": "string", "description": "What to draw"}},
        "required": ["prompt"],
    },
}


def _import(**extra: Any) -> Any:
    return import_metadata({**copy.deepcopy(SYNTHETIC), **extra}, source="synthetic")


def test_importer_prices_by_the_named_hardware() -> None:
    result = _import(hardware="Nvidia L40S GPU", median_seconds=8.0)
    cost = result.declaration.cost
    assert (cost.basis, cost.hardware) == ("hardware", "gpu-l40s")
    assert estimate_cost(result.declaration, {"prompt": "x"}).usd == pytest.approx(8 * 0.000975)
    assert cost.text is not None and "hardware-seconds" in cost.text
    result = _import(hardware={"sku": "gpu-t4"}, median_seconds=2.0)
    assert result.declaration.cost.hardware == "gpu-t4"


def test_importer_bounds_unknown_hardware_by_the_examples_time() -> None:
    example = {"metrics": {"predict_time": 7.5}, "output": "https://x.invalid/a.png"}
    result = _import(hardware="tpu-v5", default_example=example)
    cost = result.declaration.cost
    assert cost.basis == "upper_bound" and cost.seconds == pytest.approx(7.5)
    assert any("'tpu-v5' is not in the hardware price table" in n for n in result.not_inferred)
    assert estimate_cost(result.declaration, {"prompt": "x"}) == Price(
        round(7.5 * DEAREST, 6), upper_bound=True, basis="upper_bound"
    )


def test_importer_prefers_the_published_price() -> None:
    example = {"metrics": {"predict_time": 7.5}}
    result = _import(cost="$0.02 per output image", hardware="gpu-t4", default_example=example)
    assert (result.declaration.cost.basis, result.declaration.cost.usd) == ("published", 0.02)


@pytest.mark.parametrize(
    "example",
    [
        None,
        {"metrics": {}},
        {"metrics": {"predict_time": "fast"}},
        {"metrics": {"predict_time": -2}},
    ],
    ids=["none", "no-time", "text", "negative"],
)
def test_importer_says_when_the_cost_is_unknown(example: Any) -> None:
    extra = {} if example is None else {"default_example": example}
    result = _import(cost="?", **extra)
    cost = result.declaration.cost
    assert not cost.known and cost.text is not None and cost.text.startswith("unknown:")
    assert any(line.startswith("cost: UNKNOWN") for line in result.not_inferred)
    assert estimate_cost(result.declaration, {"prompt": "x"}) == UNKNOWN


# -- the movie's estimate and the budget ----------------------------------------------------

UNPRICED = UnpricedJob(key="image[0]", role="image", model_id="replicate:x/y")


def test_the_estimate_names_the_jobs_it_cannot_price() -> None:
    cost = CostEstimate(
        roles={"script": 0.0299, "music": 0.02}, unknown=("image",), unpriced=(UNPRICED,)
    )
    assert cost.total_text() == "$0.0499 + 1 job with no price (image[0]: replicate:x/y)"
    assert "no price (replicate:x/y)" in cost.describe()
    three = CostEstimate(
        roles={"script": 0.01},
        unknown=("image",),
        unpriced=tuple(
            UnpricedJob(key=f"image[{i}]", role="image", model_id="replicate:x/y") for i in range(3)
        ),
    )
    assert (
        three.unpriced_text()
        == "3 jobs with no price (image[0], image[1], image[2]: replicate:x/y)"
    )
    record = three.record()
    assert record["unpriced_jobs"][2] == {
        "key": "image[2]",
        "role": "image",
        "model_id": "replicate:x/y",
    }


def test_a_budget_refuses_unpriced_jobs_unless_allowed() -> None:
    cost = CostEstimate(roles={"script": 0.0499}, unknown=("image",), unpriced=(UNPRICED,))
    with pytest.raises(UnpricedJobs) as caught:
        check_budget(cost, 0.05)
    assert "image[0]: replicate:x/y" in str(caught.value) and "--allow-unpriced" in str(
        caught.value
    )
    assert caught.value.jobs == (UNPRICED,)
    assert isinstance(caught.value, BudgetExceeded)  # callers that catch it still refuse
    with pytest.raises(UnpricedJobs, match=r"allow unpriced jobs \(the allow_unpriced param\)"):
        check_budget(cost, 0.05, allow_hint="the allow_unpriced param")
    check_budget(cost, 0.05, allow_unpriced=True)
    check_budget(cost, None)  # no budget, nothing to hold it to
    with pytest.raises(BudgetExceeded, match="over the budget"):
        check_budget(cost, 0.04, allow_unpriced=True)


def test_upper_bounds_count_at_their_bound() -> None:
    cost = CostEstimate(roles={"image": 0.039, "script": 0.01}, upper_bound=("image",))
    assert cost.total_is_upper_bound and cost.total_text() == "<= $0.0490"
    assert "<= $0.0390" in cost.describe()
    with pytest.raises(BudgetExceeded, match=r"<= \$0\.0490 is over the budget \$0\.0400"):
        check_budget(cost, 0.04)
    check_budget(cost, 0.05)


# -- OpenAI: the cost from the answer's usage -------------------------------------------------


def test_openai_cost_from_usage_bills_cached_input_at_its_price() -> None:
    usage = {"input_tokens": 10_000, "output_tokens": 2_000, "cached_input_tokens": 8_000}
    expected = (2_000 * 0.25 + 8_000 * 0.025 + 2_000 * 2.00) / 1_000_000
    assert pricing.usage_cost("gpt-5-mini-2025-08-07", usage) == pytest.approx(expected)
    uncached = {"input_tokens": 10_000, "output_tokens": 2_000}
    assert pricing.usage_cost("gpt-5-mini", uncached) == pricing.cost("gpt-5-mini", 10_000, 2_000)
    # More cached tokens than input tokens (an untrusted answer) never makes a negative input.
    odd = {"input_tokens": 100_000, "output_tokens": 0, "cached_input_tokens": 10**9}
    assert pricing.usage_cost("gpt-5-mini", odd) == pytest.approx(100_000 * 0.025 / 1_000_000)


@pytest.mark.parametrize(
    ("model", "usage"),
    [
        ("gpt-unknown-9", {"input_tokens": 1, "output_tokens": 1}),
        ("gpt-5-mini", {}),
        ("gpt-5-mini", {"input_tokens": -5, "output_tokens": 1}),
        ("gpt-5-mini", {"input_tokens": "10", "output_tokens": 1}),
        ("gpt-5-mini", {"input_tokens": True, "output_tokens": 1}),
    ],
    ids=["unknown-model", "no-usage", "negative", "text", "bool"],
)
def test_openai_cost_is_unknown_without_a_price_or_usable_usage(
    model: str, usage: dict[str, Any]
) -> None:
    assert pricing.usage_cost(model, usage) is None
