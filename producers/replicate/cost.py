"""Cost estimates from a declaration's cost formula, before anything is paid."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from producers.replicate.declaration import ModelDeclaration
from producers.replicate.mapping import effective_input, prompt_of
from producers.replicate.shape import duration_seconds, output_count


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def estimate_cost(declaration: ModelDeclaration, payload: Mapping[str, Any]) -> float | None:
    """US dollars this payload would cost, or None if the price is unknown."""
    cost = declaration.cost
    effective = effective_input(declaration, payload)
    rate = cost.usd
    if cost.by is not None:
        rate = cost.by.usd.get(_key(effective.get(cost.by.field)), rate)
    if rate is None:
        return None
    count = output_count(declaration, effective)
    if cost.per == "run":
        units = 1.0
    elif cost.per == "output":
        units = float(count)
    elif cost.per == "output_second":
        units = (duration_seconds(declaration, effective) or 0.0) * count
    else:
        units = float(len(prompt_of(declaration, effective) or ""))
    return round(rate * units, 6)
