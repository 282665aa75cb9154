"""Prices from a declaration's cost: the estimate before a job runs, the actual cost after.

A declaration's :class:`~producers.replicate.declaration.CostSpec` says how its price was
found (``basis``): a ``published`` per-unit price (per run, output, second of output, input
character or token; a rate table by an input field), ``hardware`` seconds (the hardware's price
per second from :mod:`producers.replicate.hardware` times the expected seconds), or an
``upper_bound`` (the expected seconds at the most expensive public hardware). Every figure
here says whether it is an upper bound, so that no one shows it as a price.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from producers.replicate.declaration import CostBasis, ModelDeclaration
from producers.replicate.hardware import hardware_price, most_expensive
from producers.replicate.mapping import effective_input, prompt_of
from producers.replicate.shape import duration_seconds, output_count


@dataclass(frozen=True)
class Price:
    """US dollars for one job, and how sure that figure is.

    Attributes:
        usd: The amount, or None when the price is unknown.
        upper_bound: True if ``usd`` is only an upper bound (the hardware is unknown; the
            most expensive public hardware was assumed).
        basis: How it was priced (``published``, ``hardware``, ``upper_bound``), None when
            unknown.
    """

    usd: float | None
    upper_bound: bool = False
    basis: CostBasis | None = None

    @property
    def known(self) -> bool:
        """True if there is an amount (exact or an upper bound)."""
        return self.usd is not None

    def describe(self, digits: int = 4) -> str:
        """``$0.0300``, ``<= $0.0390`` for an upper bound, or ``unknown``."""
        if self.usd is None:
            return "unknown"
        return f"{'<= ' if self.upper_bound else ''}${self.usd:,.{digits}f}"


UNKNOWN = Price(None)


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _expected_seconds(declaration: ModelDeclaration) -> float | None:
    return declaration.cost.seconds or declaration.median_seconds


def _per_second(declaration: ModelDeclaration) -> float | None:
    """The price per second of compute of a hardware- or upper-bound-priced declaration."""
    cost = declaration.cost
    if cost.effective_basis == "hardware" and cost.hardware is not None:
        return hardware_price(cost.hardware)
    if cost.effective_basis == "upper_bound":
        return most_expensive().usd_per_second
    return None


def _published(
    declaration: ModelDeclaration,
    effective: Mapping[str, Any],
    *,
    outputs: int | None = None,
) -> float | None:
    """The published formula over this input (``outputs``: the number actually made)."""
    cost = declaration.cost
    rate = cost.usd
    if cost.by is not None:
        rate = cost.by.usd.get(_key(effective.get(cost.by.field)), rate)
    if rate is None:
        return None
    count = output_count(declaration, effective) if outputs is None else outputs
    if cost.per == "run":
        units = 1.0
    elif cost.per == "output":
        units = float(count)
    elif cost.per == "output_second":
        units = (duration_seconds(declaration, effective) or 0.0) * count
    else:
        # input_character and input_token: one token is counted as one character (speech
        # models bill characters as tokens; for other text it over-counts, never under).
        units = float(len(prompt_of(declaration, effective) or ""))
    return round(rate * units, 6)


def estimate_cost(declaration: ModelDeclaration, payload: Mapping[str, Any]) -> Price:
    """What ``payload`` would cost, before anything is paid.

    Returns:
        The published formula's figure; for a hardware price, the hardware's price per second
        times the expected seconds; for an upper bound, the expected seconds at the most
        expensive public hardware (``upper_bound=True``); :data:`UNKNOWN` when the
        declaration has no price.
    """
    basis = declaration.cost.effective_basis
    if basis is None:
        return UNKNOWN
    if basis == "published":
        usd = _published(declaration, effective_input(declaration, payload))
        return UNKNOWN if usd is None else Price(usd, basis=basis)
    per_second, seconds = _per_second(declaration), _expected_seconds(declaration)
    if per_second is None or seconds is None:
        return UNKNOWN
    return Price(round(per_second * seconds, 6), upper_bound=basis == "upper_bound", basis=basis)


def actual_cost(
    declaration: ModelDeclaration,
    payload: Mapping[str, Any],
    *,
    provider_seconds: float | None,
    outputs: int,
) -> Price:
    """What a finished prediction cost, from the provider's own figures.

    Args:
        declaration: The model's declaration.
        payload: The payload that was sent.
        provider_seconds: The prediction's compute time (Replicate ``metrics.predict_time``).
        outputs: How many outputs the prediction made.

    Returns:
        For a published price, the formula over the outputs actually made (per second of
        output: the requested duration of each); for a hardware price, ``provider_seconds``
        times the hardware's price; for an upper bound, ``provider_seconds`` at the most
        expensive public hardware (still ``upper_bound=True``). :data:`UNKNOWN` when the
        declaration has no price or a time-priced prediction reports no time.
    """
    basis = declaration.cost.effective_basis
    if basis is None:
        return UNKNOWN
    if basis == "published":
        usd = _published(declaration, effective_input(declaration, payload), outputs=outputs)
        return UNKNOWN if usd is None else Price(usd, basis=basis)
    per_second = _per_second(declaration)
    if per_second is None or provider_seconds is None:
        return UNKNOWN
    if not math.isfinite(provider_seconds) or provider_seconds < 0:  # the provider's figure
        return UNKNOWN
    usd = round(per_second * provider_seconds, 6)
    return Price(usd, upper_bound=basis == "upper_bound", basis=basis)
