"""Testing utilities shipped for producer authors (also a pytest plugin)."""

from producers.testing.fixtures import (
    FAKE_TOKEN,
    JobContext,
    assert_artefact,
    fake_secret_resolver,
    make_job_request,
)

__all__ = [
    "FAKE_TOKEN",
    "JobContext",
    "assert_artefact",
    "fake_secret_resolver",
    "make_job_request",
]
