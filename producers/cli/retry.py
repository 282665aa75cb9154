"""The CLI's retry policy: retry what the SDK marks retryable, with backoff and jitter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import typer

from producers.sdk.errors import ProviderError

T = TypeVar("T")

#: ``--deadline`` of the commands that run jobs (``produce``, ``movie``).
DeadlineOption = Annotated[
    float | None,
    typer.Option(
        "--deadline",
        min=1,
        help="Seconds a submitted job may take before it is cancelled at the provider "
        "(default: 10x its model's usual latency, at least 15 min; 1 h if unknown).",
    ),
]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring ``retry_after``; bounded."""

    retries: int = 2
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(
        self, error: ProviderError, retry_number: int, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_delay * 5)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)

    async def run(
        self,
        attempt_fn: Callable[[int, ProviderError | None], Awaitable[T]],
        *,
        on_retry: Callable[[ProviderError, int, float], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """Call ``attempt_fn(attempt, previous_error)`` until it succeeds, fails for good, or
        retries run out. ``previous_error.handle`` lets a retry resume a submitted job."""
        attempt = 1
        previous: ProviderError | None = None
        while True:
            try:
                return await attempt_fn(attempt, previous)
            except ProviderError as error:
                previous = error
                if not error.retryable or attempt > self.retries:
                    raise
                wait = self.delay(error, attempt)
                if on_retry is not None:
                    on_retry(error, attempt, wait)
                await sleep(wait)
                attempt += 1
