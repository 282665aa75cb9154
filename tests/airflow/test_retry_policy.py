"""The provider's retry policy: what Airflow does after each kind of producer failure."""

from __future__ import annotations

from datetime import timedelta

import pytest

pytestmark = pytest.mark.airflow


def _decide(exception: BaseException):
    from airflow_provider_tutopanda.retry import ProviderErrorRetryPolicy

    return ProviderErrorRetryPolicy().evaluate(exception, try_number=1, max_tries=3)


def _error(code: str, **kwargs):
    from producers.sdk.errors import ProviderError

    return ProviderError(code, "the provider said no", provider="replicate", model="m", **kwargs)


@pytest.mark.parametrize(
    ("code", "kwargs", "action", "delay"),
    [
        ("rate_limited", {"retry_after": 7}, "retry", timedelta(seconds=7)),
        ("rate_limited", {}, "default", None),
        ("provider_unavailable", {}, "default", None),
        ("timeout", {}, "default", None),
        ("safety_blocked", {}, "fail", None),
        ("invalid_input", {}, "fail", None),
        ("provider_unavailable", {"retryable": False}, "fail", None),
    ],
    ids=[
        "rate-limited-retry-after",
        "rate-limited-no-hint",
        "unavailable",
        "timeout",
        "safety",
        "bad-input",
        "marked-not-retryable",
    ],
)
def test_provider_errors(code: str, kwargs: dict, action: str, delay: timedelta | None) -> None:
    decision = _decide(_error(code, **kwargs))
    assert decision.action.value == action
    assert decision.retry_delay == delay


def test_wrapped_in_the_operator_exception() -> None:
    from airflow_provider_tutopanda.operators import ProducerFailed

    decision = _decide(ProducerFailed(_error("safety_blocked")))
    assert decision.action.value == "fail"


def test_huge_retry_after_is_bounded() -> None:
    from airflow_provider_tutopanda.retry import ProviderErrorRetryPolicy

    policy = ProviderErrorRetryPolicy(max_retry_after=60)
    decision = policy.evaluate(_error("rate_limited", retry_after=10_000), 1, 3)
    assert decision.retry_delay == timedelta(seconds=60)


def test_other_exceptions_use_the_task_retries() -> None:
    assert _decide(ValueError("boom")).action.value == "default"


def test_policy_serializes() -> None:
    from airflow_provider_tutopanda.retry import ProviderErrorRetryPolicy

    policy = ProviderErrorRetryPolicy(max_retry_after=42)
    again = ProviderErrorRetryPolicy.deserialize(policy.serialize())
    assert again.max_retry_after == 42
