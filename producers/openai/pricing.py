"""OpenAI text model prices (USD per million tokens): the estimate before a call and the
actual cost after it, from the answer's ``usage``.

Prices as OpenAI publishes them on its pricing page (https://platform.openai.com/docs/pricing,
standard tier: input, cached input, output); a model not listed here still runs, with an
unknown cost (and a run with a budget refuses it unless unpriced jobs are allowed). Edit this
table when prices change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Price:
    """Per-million-token prices of one model (``cached_input``: input tokens served from the
    prompt cache; None: billed as input)."""

    input: float
    output: float
    description: str = ""
    median_seconds: float | None = None
    cached_input: float | None = None


PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00, "Flagship reasoning model", 20.0, cached_input=0.125),
    "gpt-5-mini": Price(0.25, 2.00, "Faster, cheaper GPT-5", 10.0, cached_input=0.025),
    "gpt-5-nano": Price(0.05, 0.40, "Fastest, cheapest GPT-5", 6.0, cached_input=0.005),
    "gpt-4.1": Price(2.00, 8.00, "Non-reasoning flagship", 8.0, cached_input=0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, "Non-reasoning, small", 5.0, cached_input=0.10),
    "gpt-4o-mini": Price(0.15, 0.60, "Small multimodal model", 4.0, cached_input=0.075),
    "o4-mini": Price(1.10, 4.40, "Small reasoning model", 12.0, cached_input=0.275),
}

#: Tokens assumed for an answer when no ``max_output_tokens`` bounds it (estimates only).
DEFAULT_OUTPUT_TOKENS = 2000


def price_for(model: str) -> Price | None:
    """The price of ``model``; dated snapshots (``gpt-5-mini-2025-08-07``) match their base."""
    if model in PRICES:
        return PRICES[model]
    for name in sorted(PRICES, key=len, reverse=True):
        if model.startswith(name + "-"):
            return PRICES[name]
    return None


def cost(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """USD for a call with these token counts, or None if the model's price is unknown."""
    price = price_for(model)
    if price is None:
        return None
    return round((input_tokens * price.input + output_tokens * price.output) / 1_000_000, 6)


def _tokens(value: Any) -> int | None:
    """A token count from an answer (untrusted): a non-negative whole number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def usage_cost(model: str, usage: Mapping[str, Any]) -> float | None:
    """What one call cost, from the answer's own figures.

    Args:
        model: The model the answer names (a dated snapshot matches its base).
        usage: The answer's token counts: ``input_tokens``, ``output_tokens`` (reasoning
            tokens included, as OpenAI counts them) and ``cached_input_tokens`` (the part of
            the input served from the prompt cache, billed at the cached price).

    Returns:
        US dollars, or None when the model's price is unknown or the answer carries no
        usable token counts.
    """
    price = price_for(model)
    if price is None:
        return None
    input_tokens = _tokens(usage.get("input_tokens"))
    output_tokens = _tokens(usage.get("output_tokens"))
    if input_tokens is None or output_tokens is None:
        return None
    cached = min(_tokens(usage.get("cached_input_tokens")) or 0, input_tokens)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    usd = (
        (input_tokens - cached) * price.input + cached * cached_rate + output_tokens * price.output
    ) / 1_000_000
    return round(usd, 6)


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token) for estimates before a call."""
    return max(1, len(text) // 4)
