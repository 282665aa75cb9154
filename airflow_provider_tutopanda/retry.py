"""The provider's AIP-105 retry policy: a :class:`ProviderError` decides retry-after or fail-now."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import RetryDecision, RetryPolicy

if TYPE_CHECKING:
    from airflow.sdk import Context

    from producers.sdk.errors import ProviderError


def provider_error_of(exception: BaseException) -> ProviderError | None:
    """The :class:`ProviderError` behind ``exception`` (itself, its ``error``, or a cause)."""
    from producers.sdk.errors import ProviderError  # here: DAG files parse without the SDK

    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ProviderError):
            return current
        error = getattr(current, "error", None)
        if isinstance(error, ProviderError):
            return error
        current = current.__cause__ or current.__context__
    return None


class ProviderErrorRetryPolicy(RetryPolicy):
    """Retry what the SDK marks retryable, honour ``retry_after``, fail the rest at once.

    * ``rate_limited`` with a ``retry_after``: retry after that many seconds (bounded by
      ``max_retry_after``);
    * any other retryable error: the task's own retry logic (``retry_delay``, exponential
      backoff if the task asks for it);
    * a non-retryable error (safety filter, bad input, auth): fail now, skipping retries;
    * anything that is not a :class:`ProviderError`: the task's own retry logic.

    The task's ``retries`` still bounds the number of tries.
    """

    def __init__(self, max_retry_after: float = 3600.0) -> None:
        self.max_retry_after = max_retry_after

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        """Decide how the task goes on after ``exception``."""
        from producers.sdk.errors import ErrorCode

        error = provider_error_of(exception)
        if error is None:
            return RetryDecision.default()
        if not error.retryable:
            return RetryDecision.fail(reason=f"{error.code.value} is not retryable")
        if error.code is ErrorCode.RATE_LIMITED and error.retry_after is not None:
            seconds = min(max(float(error.retry_after), 0.0), self.max_retry_after)
            return RetryDecision.retry(
                delay=timedelta(seconds=seconds),
                reason=f"rate_limited: the provider asks to retry after {seconds:g}s",
            )
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        """A JSON-able form for DAG serialization."""
        return {"__type": type(self).__name__, "max_retry_after": self.max_retry_after}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> ProviderErrorRetryPolicy:
        """Rebuild the policy from :meth:`serialize`."""
        return cls(max_retry_after=float(data.get("max_retry_after", 3600.0)))


#: The policy every tutopanda operator uses unless given another.
DEFAULT_RETRY_POLICY = ProviderErrorRetryPolicy()


def retry_policy_for(provider: str) -> RetryPolicy:
    """The retry policy of a provider's producers (one policy serves every provider today)."""
    return DEFAULT_RETRY_POLICY
