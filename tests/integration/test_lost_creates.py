"""A create whose answer is lost is found again, never paid twice, never another job's.

Through ``ReplicateClient`` (the official client against the fake), the SDK's job path and
``tutopanda produce --mode live``: the fake's ``lost`` fault makes the prediction and drops
the answer, ``drop`` drops it before anything is made. The rule under test is in
:mod:`producers.clients.replicate_recovery`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.clients import default_client_registry
from producers.clients.base import MediaHints, MediaJob
from producers.clients.replicate import ReplicateClient
from producers.clients.replicate_recovery import may_have_reached, same_json
from producers.sdk import ErrorCode, ProviderError
from producers.testing import JobContext, fake_secret_resolver, make_job_request
from producers.testing.fakes import FAKE_TOKEN, FakeReplicate, Fault
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration

MODEL = "bytedance/seedream-4"
HINTS = MediaHints(media="image")
PROXY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"
#: Every prompt here starts with it: the session's fake may still make a prediction for an
#: earlier test's slow create after its reset, which ``made`` leaves out.
TAG = "lost-creates:"


@pytest.fixture
def fake(live_fakes: LiveFakes) -> FakeReplicate:
    replicate: FakeReplicate = live_fakes.replicate
    return replicate


@pytest.fixture
async def client(fake: FakeReplicate) -> AsyncIterator[ReplicateClient]:
    adapter = ReplicateClient(FAKE_TOKEN, base_url=fake.base_url)
    yield adapter
    await adapter.aclose()


async def create(adapter: ReplicateClient, prompt: str = "A volcano at dusk") -> MediaJob:
    return await adapter.create_job(
        model=MODEL, version=None, payload={"prompt": f"{TAG} {prompt}"}, hints=HINTS
    )


def ours(fake: FakeReplicate) -> list[str]:
    """The predictions this module's creates made, oldest first."""
    return [
        pid
        for pid in fake.prediction_ids
        if str(fake.prediction(pid)["input"].get("prompt", "")).startswith(TAG)
    ]


def inputs_of(fake: FakeReplicate) -> dict[str, Any]:
    return {pid: fake.prediction(pid)["input"] for pid in ours(fake)}


# ---- through the adapter --------------------------------------------------------------------


async def test_a_lost_create_is_found_and_adopted_not_paid_twice(
    fake: FakeReplicate, client: ReplicateClient
) -> None:
    fake.inject(Fault.lost(), route="create")
    job = await create(client)
    assert fake.count("create") == 1 and fake.statuses("create") == [None]  # never answered
    assert ours(fake) == [job.id]
    assert job.raw["recovered_create"]["after"] == "dropped"
    assert job.raw["recovered_create"]["listed"] >= 1  # what the look read
    assert fake.count("list") == 1
    # The job goes on with that prediction: it is polled, not created again.
    assert (await client.get_job(job.id)).status == "succeeded"
    assert fake.count("create") == 1


async def test_a_dropped_create_that_made_nothing_is_created_anew_once(
    fake: FakeReplicate, client: ReplicateClient
) -> None:
    fake.inject(Fault.drop(), route="create")
    with pytest.raises(ProviderError) as lost:
        await create(client)
    assert lost.value.code is ErrorCode.PROVIDER_UNAVAILABLE and lost.value.retryable
    assert "no prediction of it was listed" in lost.value.reason
    assert ours(fake) == []
    job = await create(client)  # the retry: looks once more, then creates
    assert "recovered_create" not in job.raw
    assert fake.count("create") == 2 and ours(fake) == [job.id]
    assert fake.count("list") == 2


@pytest.mark.parametrize(
    ("fault", "looks"),
    [
        (Fault.status(502, body=PROXY_PAGE), 1),
        (Fault.status(504, body="upstream timed out"), 1),
        (Fault.status(502), 0),  # Replicate's own problem+json: it made nothing
        (Fault.status(500), 0),
        (Fault.status(429, retry_after=0), 0),
        (Fault.status(422), 0),
        (Fault.malformed(), 1),  # a success answer that is no prediction
    ],
    ids=["proxy-502", "proxy-504", "replicate-502", "replicate-500", "429", "422", "unreadable"],
)
async def test_only_failures_after_which_a_prediction_may_exist_are_looked_for(
    fake: FakeReplicate, client: ReplicateClient, fault: Fault, looks: int
) -> None:
    fake.inject(fault, route="create")
    with pytest.raises(ProviderError):
        await create(client)
    assert fake.count("list") == looks
    assert fake.count("create") == 1


async def test_a_prediction_made_late_is_found_by_the_retry(fake: FakeReplicate) -> None:
    adapter = ReplicateClient(
        FAKE_TOKEN, base_url=fake.base_url, timeout=httpx.Timeout(0.4, connect=2.0)
    )
    try:
        fake.inject(Fault.slow(1.0), route="create")  # answers (and makes it) after the timeout
        with pytest.raises(ProviderError) as timed_out:
            await create(adapter)
        assert timed_out.value.code is ErrorCode.TIMEOUT
        assert ours(fake) == []  # not made yet when the adapter looked
        await asyncio.sleep(1.0)
        (made,) = ours(fake)
        job = await create(adapter)
        assert job.id == made and job.raw["recovered_create"]["after"] == "retry"
        assert fake.count("create") == 1
        assert len(ours(fake)) == 1  # one prediction paid for
    finally:
        await adapter.aclose()


async def test_when_the_list_fails_the_retry_looks_before_it_creates(
    fake: FakeReplicate, client: ReplicateClient
) -> None:
    fake.inject(Fault.lost(), route="create")
    fake.inject(Fault.status(503, retry_after=0), route="list")
    with pytest.raises(ProviderError) as lost:
        await create(client)
    assert lost.value.retryable and "listing its recent predictions failed" in lost.value.reason
    (made,) = ours(fake)
    # The retry's look fails too: it does not create (that could pay twice), it asks for later.
    fake.inject(Fault.status(503, retry_after=0), route="list")
    with pytest.raises(ProviderError) as later:
        await create(client)
    assert (
        later.value.retryable and "not sent again until the list can be read" in later.value.reason
    )
    assert fake.count("create") == 1
    job = await create(client)
    assert job.id == made and fake.count("create") == 1


async def test_a_prediction_with_another_input_is_never_adopted(
    fake: FakeReplicate, client: ReplicateClient
) -> None:
    other = ReplicateClient(FAKE_TOKEN, base_url=fake.base_url)  # another process's creates
    try:
        await create(other, "A volcano at dawn")
        await create(other, "A volcano at dusk!")
    finally:
        await other.aclose()
    fake.inject(Fault.lost(), route="create")
    job = await create(client, "A volcano at dusk")
    assert inputs_of(fake)[job.id] == {"prompt": f"{TAG} A volcano at dusk"}
    assert len(ours(fake)) == 3


async def test_the_look_reads_at_most_two_pages_and_adopts_nothing_it_did_not_see_whole(
    fake: FakeReplicate, client: ReplicateClient
) -> None:
    other = ReplicateClient(FAKE_TOKEN, base_url=fake.base_url)
    try:
        for n in range(4):
            await create(other, f"filler {n}")
    finally:
        await other.aclose()
    fake.page_size = 2
    try:
        fake.inject(Fault.lost(), route="create")
        with pytest.raises(ProviderError) as lost:
            await create(client)
    finally:
        fake.page_size = 100
    assert "list too long" in lost.value.reason
    assert fake.count("list") == 2


# ---- two identical jobs at once ------------------------------------------------------------


async def test_an_identical_job_answered_first_keeps_its_prediction(
    fake: FakeReplicate, client: ReplicateClient
) -> None:
    first = await create(client)
    fake.inject(Fault.lost(), route="create")
    second = await create(client)  # lost: two identical predictions listed, one already owned
    assert second.id != first.id and "recovered_create" in second.raw
    assert sorted(ours(fake)) == sorted([first.id, second.id])


async def test_a_drop_beside_an_identical_answered_job_never_takes_its_prediction(
    fake: FakeReplicate, client: ReplicateClient
) -> None:
    first = await create(client)
    fake.inject(Fault.drop(), route="create")
    with pytest.raises(ProviderError):
        await create(client)  # made nothing; the one listed is the first job's
    second = await create(client)
    assert second.id != first.id and "recovered_create" not in second.raw


async def test_identical_jobs_lost_at_once_adopt_nothing_and_never_share(
    fake: FakeReplicate, client: ReplicateClient
) -> None:
    """Both made, neither answered: the two listed predictions cannot be told apart, so
    neither is adopted (the conservative rule); each retry creates anew. Paid once more
    each, never one prediction for two jobs."""
    fake.inject(Fault.lost(), route="create", times=2)
    tries = await asyncio.gather(create(client), create(client), return_exceptions=True)
    assert all(isinstance(t, ProviderError) for t in tries), tries
    assert all("identical one(s)" in t.reason for t in tries if isinstance(t, ProviderError))
    lost = set(ours(fake))
    assert len(lost) == 2
    retried = await asyncio.gather(create(client), create(client))
    ids = [job.id for job in retried]
    assert len(set(ids)) == 2 and not set(ids) & lost
    assert fake.count("create") == 4


async def test_a_lost_create_beside_an_identical_one_in_flight_is_not_adopted(
    fake: FakeReplicate, client: ReplicateClient
) -> None:
    """The other create's answer could name the prediction listed: not adopted."""
    fake.inject(Fault.lost(), route="create")
    fake.inject(Fault.slow(0.5), route="create")
    tries = await asyncio.gather(create(client), create(client), return_exceptions=True)
    lost = [t for t in tries if isinstance(t, ProviderError)]
    answered = [t for t in tries if isinstance(t, MediaJob)]
    assert len(lost) == 1 and len(answered) == 1
    assert "identical one(s) listed or in flight" in lost[0].reason
    retry = await create(client)
    assert retry.id != answered[0].id


# ---- the job path and the CLI -----------------------------------------------------------------


async def test_the_job_records_the_recovery_by_ids_only(
    fake: FakeReplicate, caplog: pytest.LogCaptureFixture
) -> None:
    context = JobContext(
        clients=default_client_registry(),
        secrets=fake_secret_resolver({"REPLICATE_API_TOKEN": FAKE_TOKEN}),
    )
    request = make_job_request(
        f"replicate:{MODEL}", mode="live", inputs={"prompt": f"{TAG} A secret garden of glass"}
    )
    deps = context.deps()
    deps.poll_interval = 0.01
    handler = context.registry.resolve(request.descriptor, "live", deps)
    fake.inject(Fault.lost(), route="create")
    with caplog.at_level(logging.INFO):
        result = await handler.run(request)
    (made,) = ours(fake)
    assert fake.count("create") == 1 and fake.count("download") == 1
    assert result.diagnostics.provider_job_id == made
    assert result.diagnostics.extra["recovered_create"] == {
        "provider_job_id": made,
        "after": "dropped",
    }
    events = [r for r in caplog.records if getattr(r, "event", "").endswith("create_recovered")]
    assert len(events) == 1
    fields = events[0].fields  # type: ignore[attr-defined]
    assert fields["provider_job_id"] == made and fields["after"] == "dropped"
    assert "secret garden" not in events[0].getMessage()


def test_the_cli_recovers_a_lost_create_and_retries_a_dropped_one(
    fake: FakeReplicate, tmp_path: Path
) -> None:
    runner = CliRunner()

    def produce(store: Path) -> Any:
        return runner.invoke(
            app,
            [
                "produce", f"replicate:{MODEL}", "--set", f"prompt={TAG} A volcano", "--json",
                "--mode", "live", "--store", str(store),
            ],
        )  # fmt: skip

    fake.inject(Fault.lost(), route="create")
    done = produce(tmp_path / "lost")
    assert done.exit_code == 0, done.stderr
    assert "retry" not in done.stderr
    (made,) = ours(fake)
    diagnostics = json.loads(done.stdout)["diagnostics"]
    assert diagnostics["provider_job_id"] == made
    assert diagnostics["extra"]["recovered_create"]["provider_job_id"] == made
    assert fake.count("create") == 1

    fake.reset()
    fake.inject(Fault.drop(), route="create")
    done = produce(tmp_path / "dropped")
    assert done.exit_code == 0, done.stderr
    assert "retry 1/" in done.stderr
    assert fake.count("create") == 2 and len(ours(fake)) == 1


# ---- what counts as "may have reached", and equal inputs ------------------------------------


@pytest.mark.parametrize(
    ("exc", "why"),
    [
        (httpx.ReadTimeout("read"), "timeout"),
        (httpx.RemoteProtocolError("disconnected"), "dropped"),
        (httpx.ReadError("reset"), "dropped"),
        (httpx.ConnectError("refused"), None),
        (httpx.ConnectTimeout("connect"), None),
        (httpx.PoolTimeout("pool"), None),
    ],
    ids=["read-timeout", "disconnected", "reset", "connect-error", "connect-timeout", "pool"],
)
def test_a_connection_never_made_is_not_looked_for(exc: BaseException, why: str | None) -> None:
    assert may_have_reached(exc) == why


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"n": 1}, {"n": 1.0}, True),
        ({"n": True}, {"n": 1}, False),
        ({"a": [1, "x"]}, {"a": [1, "x"]}, True),
        ({"a": [1, "x"]}, {"a": ["x", 1]}, False),
        ({"a": None}, {}, False),
        ({"a": "1"}, {"a": 1}, False),
    ],
    ids=["int-float", "bool-int", "list", "order", "missing", "str-int"],
)
def test_inputs_are_equal_as_json(a: Any, b: Any, equal: bool) -> None:
    assert same_json(a, b) is equal


def test_a_live_movie_with_lost_creates_pays_one_prediction_per_job(
    live_fakes: LiveFakes, tmp_path: Path
) -> None:
    """The movie's jobs share one adapter: three lost creates are adopted, a dropped one is
    created anew by its retry, and every prediction made belongs to exactly one job."""
    replicate = live_fakes.replicate
    replicate.inject(Fault.lost(), route="create", times=3)
    replicate.inject(Fault.drop(), route="create")
    done = CliRunner().invoke(
        app,
        [
            "movie", "--topic", "Volcanoes", "--segments", "2", "--mode", "live", "--json",
            "--store", str(tmp_path / "store"), "--output", str(tmp_path / "out"),
        ],
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["movie"]
    made = replicate.prediction_ids
    assert replicate.statuses("create").count(None) == 4  # 3 lost + 1 dropped answers
    assert replicate.count("create") == len(made) + 1  # only the dropped one was sent again
    jobs = {
        a["diagnostics"]["provider_job_id"]
        for a in json.loads(done.stdout)["artefacts"]
        if a["diagnostics"].get("provider") == "replicate"
    }
    assert jobs == set(made)  # each prediction is one job's, none paid for nothing
