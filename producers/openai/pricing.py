"""OpenAI text model prices (USD per million tokens), for cost estimates in diagnostics.

Prices as OpenAI publishes them on its pricing page (standard tier); a model not listed
here still runs, with an unknown cost. Edit this table when prices change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """Per-million-token prices of one model."""

    input: float
    output: float
    description: str = ""
    median_seconds: float | None = None


PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00, "Flagship reasoning model", 20.0),
    "gpt-5-mini": Price(0.25, 2.00, "Faster, cheaper GPT-5", 10.0),
    "gpt-5-nano": Price(0.05, 0.40, "Fastest, cheapest GPT-5", 6.0),
    "gpt-4.1": Price(2.00, 8.00, "Non-reasoning flagship", 8.0),
    "gpt-4.1-mini": Price(0.40, 1.60, "Non-reasoning, small", 5.0),
    "gpt-4o-mini": Price(0.15, 0.60, "Small multimodal model", 4.0),
    "o4-mini": Price(1.10, 4.40, "Small reasoning model", 12.0),
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


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token) for estimates before a call."""
    return max(1, len(text) // 4)
