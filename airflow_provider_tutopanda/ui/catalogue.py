"""The model catalogue: every declared model, from the registry ``tutopanda models list`` reads."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelRow:
    """One model as the catalogue page lists it."""

    model_id: str
    kind: str
    producer: str
    inputs: str
    required: str
    cost: str
    declared_seconds: float | None
    observed_seconds: float | None
    observed_jobs: int


def cost_text(cost: dict[str, Any]) -> str:
    """A declaration's cost in words (as the CLI prints it)."""
    if cost.get("text"):
        return str(cost["text"]).strip()
    if "input_usd_per_million" in cost:
        return (
            f"${cost.get('input_usd_per_million')}/M in, "
            f"${cost.get('output_usd_per_million')}/M out"
        )
    return "unknown"


def observed_latencies(manifests: Iterable[dict[str, Any]]) -> dict[str, list[float]]:
    """``{model_id: [seconds...]}`` of live jobs made (not reused, not mocked) in these runs."""
    seen: dict[str, list[float]] = {}
    for manifest in manifests:
        for job in manifest.get("jobs") or []:
            if not isinstance(job, dict) or job.get("reused") or job.get("status") != "succeeded":
                continue
            artefacts = job.get("artefacts") or []
            diagnostics = (artefacts[0].get("diagnostics") or {}) if artefacts else {}
            if diagnostics.get("mocked") or diagnostics.get("duration_ms") is None:
                continue
            seen.setdefault(str(job.get("model_id")), []).append(
                float(diagnostics["duration_ms"]) / 1000
            )
    return seen


def catalogue(kind: str | None, manifests: Iterable[dict[str, Any]]) -> list[ModelRow]:
    """Every declared model (of ``kind`` if given), with median latency seen in recent runs.

    Raises:
        ValueError: ``kind`` is not a known kind.
    """
    from producers.registry import default_registry

    observed = observed_latencies(manifests)
    rows = []
    for info in default_registry().models(kind):
        seconds = observed.get(info.model_id, [])
        rows.append(
            ModelRow(
                model_id=info.model_id,
                kind=info.kind.value,
                producer=info.producer,
                inputs=", ".join(info.general_attributes),
                required=", ".join(info.required),
                cost=cost_text(info.cost),
                declared_seconds=info.median_seconds,
                observed_seconds=round(statistics.median(seconds), 2) if seconds else None,
                observed_jobs=len(seconds),
            )
        )
    return rows


def kinds() -> list[str]:
    """Every model kind, for the filter."""
    from producers.sdk.jobs import Kind

    return [k.value for k in Kind]
