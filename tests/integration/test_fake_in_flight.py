"""The fake Replicate's ``max_in_flight``: the most predictions running at once.

The system tests read it to check that an Airflow pool bounds concurrent predictions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from producers.testing.fakes import FAKE_TOKEN, FakeReplicate, client_ssl_context

pytestmark = pytest.mark.integration

LATENCY = 0.4


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate(latency=LATENCY) as server:
        yield server


@pytest.fixture
def client(fake: FakeReplicate) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake.base_url,
        verify=client_ssl_context(),
        headers={"Authorization": f"Bearer {FAKE_TOKEN}"},
    ) as http:
        yield http


def _create(client: httpx.Client, prompt: str) -> str:
    answer = client.post(
        "/v1/models/bytedance/seedream-4/predictions", json={"input": {"prompt": prompt}}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_no_prediction_means_zero(fake: FakeReplicate) -> None:
    assert fake.max_in_flight() == 0


def test_predictions_one_after_another_count_one(fake: FakeReplicate, client: httpx.Client) -> None:
    for prompt in ("one", "two"):
        _create(client, prompt)
        time.sleep(LATENCY + 0.1)
    assert fake.max_in_flight() == 1


def test_overlapping_predictions_count_together(fake: FakeReplicate, client: httpx.Client) -> None:
    for prompt in ("one", "two", "three"):
        _create(client, prompt)
    time.sleep(LATENCY + 0.1)
    _create(client, "four")
    assert fake.max_in_flight() == 3


def test_a_canceled_prediction_stops_counting_when_canceled(
    fake: FakeReplicate, client: httpx.Client
) -> None:
    first = _create(client, "one")
    assert client.post(f"/v1/predictions/{first}/cancel").status_code == 200
    _create(client, "two")
    assert fake.max_in_flight() == 1
    fake.reset()
    assert fake.max_in_flight() == 0
