"""Attacks through a provider's answer: output URLs that name another host, redirect to one,
come over plain http, never end, or are not the media the model makes.

Each plays the attack end to end (``tutopanda produce --mode live`` against the fake
Replicate over HTTPS) and asserts the refusal (``malformed_output``, one clear line, never
retried: one prediction) and that nothing reached the store, the logs, or the other host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.testing.fakes import FAKE_TOKEN, FakeReplicate, Fault
from producers.testing.plugin import LiveFakes
from tests.security.conftest import OTHER_HOST_SECRET, OtherHost, blobs_in, tree_contains

pytestmark = pytest.mark.integration

SEEDREAM = "replicate:bytedance/seedream-4"
runner = CliRunner()


@pytest.fixture
def fake(live_fakes: LiveFakes) -> Iterator[FakeReplicate]:
    """The session's fake Replicate, reset, with its download size restored afterwards."""
    replicate: FakeReplicate = live_fakes.replicate
    yield replicate
    replicate.big_output_bytes = None
    replicate.reset()


def produce(store: Path, prompt: str = "x") -> tuple[int, str]:
    """One live image job through the CLI; its exit code and everything it printed."""
    result = runner.invoke(
        app,
        ["produce", SEEDREAM, "--mode", "live", "--store", str(store), "--set", f"prompt={prompt}"],
    )
    return result.exit_code, result.stdout + result.stderr


def assert_refused_and_nothing_leaked(
    code: int,
    printed: str,
    store: Path,
    caplog: pytest.LogCaptureFixture,
    fake: FakeReplicate,
    other: OtherHost | None,
    *words: str,
) -> None:
    """The job failed with one malformed_output line naming ``words``; nothing leaked."""
    assert code == 1, printed
    assert "malformed_output" in printed and "Traceback" not in printed
    for word in words:
        assert word in printed, word
    assert fake.count("create") == 1  # not retried: one prediction, paid once
    assert "retry" not in printed
    assert blobs_in(store) == []
    assert not any(p.is_file() for p in (store / "tmp").rglob("*"))  # no partial blob either
    secret = OTHER_HOST_SECRET.decode()
    for needle in (secret, FAKE_TOKEN):
        assert needle not in caplog.text and needle not in printed
        assert tree_contains(store, needle.encode()) == []
    if other is not None:
        assert other.connections == []


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def test_an_output_on_another_host_is_never_fetched(
    fake: FakeReplicate, other_host: OtherHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(Fault.output(f"{other_host.https_url}/latest/meta-data/iam.png"), route="create")
    code, printed = produce(tmp_path)
    assert_refused_and_nothing_leaked(
        code, printed, tmp_path, caplog, fake, other_host, "127.0.0.2", "IP address"
    )
    assert "meta-data" not in printed  # the host is named, never the path


def test_a_redirect_to_another_host_is_not_followed(
    fake: FakeReplicate, other_host: OtherHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(Fault.redirect(f"{other_host.https_url}/latest/meta-data/"), route="download")
    code, printed = produce(tmp_path)
    assert_refused_and_nothing_leaked(
        code, printed, tmp_path, caplog, fake, other_host, "127.0.0.2", "redirect 1"
    )
    assert fake.count("download") == 1  # the redirecting answer, and nothing after it


def test_a_plain_http_output_is_refused_when_the_api_is_https(
    fake: FakeReplicate, other_host: OtherHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject(Fault.output(f"{other_host.http_url}/out-0.png"), route="create")
    code, printed = produce(tmp_path)
    assert_refused_and_nothing_leaked(
        code, printed, tmp_path, caplog, fake, other_host, "plain http", "https only"
    )


def test_a_body_over_the_cap_is_refused_and_not_stored(
    fake: FakeReplicate,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUTOPANDA_MAX_OUTPUT_BYTES", str(1024 * 1024))
    fake.big_output_bytes = 8 * 1024 * 1024
    code, printed = produce(tmp_path)
    assert_refused_and_nothing_leaked(
        code,
        printed,
        tmp_path,
        caplog,
        fake,
        None,
        "over the cap of 1 MiB",
        "TUTOPANDA_MAX_OUTPUT_BYTES (Airflow: [tutopanda] max_output_bytes)",
    )
    assert fake.count("download") == 1


def test_a_trickling_body_ends_at_the_deadline(
    fake: FakeReplicate,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUTOPANDA_DOWNLOAD_DEADLINE", "2")
    fake.inject(Fault.trickle(0.5), route="download")
    started = time.monotonic()
    code, printed = produce(tmp_path)
    elapsed = time.monotonic() - started
    assert_refused_and_nothing_leaked(
        code,
        printed,
        tmp_path,
        caplog,
        fake,
        None,
        "deadline of 2 s",
        "TUTOPANDA_DOWNLOAD_DEADLINE (Airflow: [tutopanda] download_deadline)",
    )
    assert 2.0 <= elapsed < 10.0


@pytest.mark.parametrize(
    "body",
    [
        f"<!doctype html><html><body>{OTHER_HOST_SECRET.decode()}</body></html>",
        f'{{"error": "{OTHER_HOST_SECRET.decode()}"}}',
    ],
    ids=["html", "json"],
)
def test_a_body_that_is_not_an_image_is_refused_for_an_image_model(
    fake: FakeReplicate, tmp_path: Path, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    fake.inject(Fault.malformed(body), route="download")
    code, printed = produce(tmp_path)
    assert_refused_and_nothing_leaked(
        code, printed, tmp_path, caplog, fake, None, "promises image/*", "127.0.0.1"
    )


def test_a_refusal_quoting_a_prompt_full_of_markup_is_printed_as_it_is(
    fake: FakeReplicate, other_host: OtherHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model-written prompt is quoted in the error line: as text, never as console markup."""
    fake.inject(Fault.output(f"{other_host.https_url}/x.png"), route="create")
    prompt = "a [/] fox [bold red]in red[/bold red] [link=https://evil.example]here[/link]"
    code, printed = produce(tmp_path, prompt)
    assert_refused_and_nothing_leaked(code, printed, tmp_path, caplog, fake, other_host, prompt)


def test_a_host_the_deployment_allows_is_fetched(
    fake: FakeReplicate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: a host the deployment lists (``localhost`` here: the fake under another
    name) is downloaded, and a redirect within the fake's own host is followed."""
    elsewhere = Fault.output(f"https://localhost:{fake.port}/files/p/out-0.png")
    fake.inject(elsewhere, route="create")
    code, printed = produce(tmp_path)
    assert code == 1 and "from localhost" in printed
    assert "TUTOPANDA_OUTPUT_HOSTS (Airflow: [tutopanda] output_hosts)" in printed
    assert fake.count("download") == 0

    fake.reset()
    fake.inject(elsewhere, route="create")
    monkeypatch.setenv("TUTOPANDA_OUTPUT_HOSTS", "localhost")
    code, printed = produce(tmp_path / "allowed")
    assert code == 1 and fake.count("download") == 1  # allowed: fetched (the fake 404s it)
    assert "not_found" in printed

    fake.reset()
    fake.inject(Fault.redirect("out-0.png"), route="download")  # relative: the same file
    code, printed = produce(tmp_path / "redirected")
    assert code == 0, printed
    assert fake.count("download") == 2  # a same-host redirect is followed
    assert len([p for p in blobs_in(tmp_path / "redirected") if p.suffix != ".json"]) == 1
