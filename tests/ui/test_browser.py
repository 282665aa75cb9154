"""The UI in real headless Chromium on a real Airflow 3 (scheduler, dag-processor, triggerer,
api-server with the plugin, PostgreSQL), the movie made live against the fake providers.

Signs in through Airflow's own ``/auth/token``, opens a run's gallery (also as the tab of the
DAG run page), and checks what a person would see: every image loaded, every audio and video
with a duration, the timeline drawn, the task-instance tab's image; then Regenerate on one
image starts a run that asks the providers for exactly one new prediction. A second run, with
``review`` on, waits for a person: its required action is answered in Airflow's own UI (the
task instance's "Required Actions" panel) with an edited narration and Approve, and that text
is what the narration job was asked to speak. Screenshots of the gallery, the catalogue and the
review form go to ``$TUTOPANDA_TEST_OUTPUTS`` (default: the test's tmp dir);
``TUTOPANDA_UPDATE_DOCS=1`` also copies them to ``docs/``.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and PostgreSQL: skipped without them,
failed instead under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producers.testing.fakes import FAKE_OPENAI_KEY, FAKE_TOKEN, FakeOpenAI, FakeReplicate, ca_path
from tests.system.harness import AirflowSystem, fresh_database, postgres_problem

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TUTOPANDA_CHROMIUM", "/usr/bin/chromium")
DAG = "tutopanda_movie"
SEGMENTS = 2
PASSWORD = "browser-test-password"
POOLS = {
    "tutopanda_replicate": {"slots": 4, "description": "test", "include_deferred": True},
    "tutopanda_openai": {"slots": 4, "description": "test", "include_deferred": True},
}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def _unavailable(problem: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser test cannot run under CI: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeReplicate, FakeOpenAI]]:
    with FakeReplicate() as replicate_fake, FakeOpenAI() as openai_fake:
        yield replicate_fake, openai_fake


@pytest.fixture(scope="module")
def airflow_system(
    tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeReplicate, FakeOpenAI]
) -> Iterator[AirflowSystem]:
    """Airflow with the plugin (its entry point), the movie DAG, a user ``admin``."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if problem := postgres_problem():
        _unavailable(problem)
    replicate_fake, openai_fake = fakes
    home = tmp_path_factory.mktemp("airflow-home")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD, "viewer": PASSWORD}))
    env = {
        "AIRFLOW_CONN_REPLICATE_DEFAULT": json.dumps(
            {"conn_type": "replicate", "password": FAKE_TOKEN, "host": replicate_fake.base_url}
        ),
        "AIRFLOW_CONN_OPENAI_DEFAULT": json.dumps(
            {"conn_type": "openai", "password": FAKE_OPENAI_KEY, "host": openai_fake.api_url}
        ),
        "SSL_CERT_FILE": str(ca_path()),
        "TUTOPANDA_STORE": str(tmp_path_factory.mktemp("store")),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "REPLICATE_API_TOKEN": "",
        "OPENAI_API_KEY": "",
    }
    with fresh_database() as url:
        system = AirflowSystem(home, url, env=env, parallelism=8, pools=POOLS)
        system.dags.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dags" / "tutopanda_movie.py", system.dags / "tutopanda_movie.py")
        with system:
            yield system


def _base(system: AirflowSystem) -> str:
    return f"http://127.0.0.1:{system.api_port}"


def _token(system: AirflowSystem, user: str) -> str:
    request = urllib.request.Request(
        f"{_base(system)}/auth/token",
        data=json.dumps({"username": user, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["access_token"])


def _manifest_jobs(system: AirflowSystem, run_id: str) -> dict[str, dict[str, Any]]:
    from airflow_provider_tutopanda.movie_tasks import manifest_run_id

    store = Path(system.env["TUTOPANDA_STORE"])
    manifest = json.loads((store / "runs" / manifest_run_id(run_id) / "manifest.json").read_text())
    return {job["key"]: job for job in manifest["jobs"]}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _outputs(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TUTOPANDA_TEST_OUTPUTS") or tmp_path) / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def movie_runs(airflow_system: AirflowSystem) -> dict[str, str]:
    """Two runs made side by side: ``plain`` (no review) and ``reviewed`` (``review`` on).

    The reviewed run pays for nothing while it waits for its reviewer, so it does not disturb
    what the plain run's tests count.
    """
    system = airflow_system
    system.wait_for_dag(DAG)
    live = {"mode": "live", "segments": SEGMENTS}
    return {
        "plain": system.trigger(DAG, conf={**live, "topic": "Red pandas"}),
        "reviewed": system.trigger(DAG, conf={**live, "topic": "Snow leopards", "review": True}),
    }


def _wait_for_task_state(
    system: AirflowSystem, run_id: str, task_id: str, wanted: str, timeout: float = 180.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {t["state"] for t in system.task_instances(DAG, run_id) if t["task_id"] == task_id}
        if wanted in states:
            return
        if system.run_state(DAG, run_id) in ("success", "failed"):
            break
        time.sleep(0.5)
    raise AssertionError(f"{task_id} of {run_id} never {wanted}\n{system.diagnostics()}")


def _quiet(system: AirflowSystem, run_id: str, timeout: float = 240.0) -> None:
    """Wait until ``run_id`` asks the providers nothing: over, or waiting for its reviewer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if system.run_state(DAG, run_id) in ("success", "failed"):
            return
        tasks = system.task_instances(DAG, run_id)
        waiting = any(t["task_id"] == "review" and t["state"] == "awaiting_input" for t in tasks)
        busy = any(t["state"] in ("queued", "scheduled", "running", "deferred") for t in tasks)
        if waiting and not busy:
            return
        time.sleep(0.5)
    raise AssertionError(f"{run_id} still busy\n{system.diagnostics()}")


def _api_json(system: AirflowSystem, token: str, path: str) -> Any:
    request = urllib.request.Request(
        f"{_base(system)}/api/v2{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


MEDIA_READY = """async () => {
  const loaded = (el, ev) => new Promise((ok) => {
    if (el.readyState >= 1) return ok();
    el.addEventListener(ev, ok, { once: true });
    el.addEventListener("error", ok, { once: true });
  });
  const images = [...document.images];
  await Promise.all(images.map((i) => i.complete ? null : new Promise((ok) => {
    i.addEventListener("load", ok, { once: true }); i.addEventListener("error", ok, { once: true });
  })));
  const players = [...document.querySelectorAll("audio, video")];
  await Promise.all(players.map((p) => loaded(p, "loadedmetadata")));
  return {
    images: images.map((i) => [i.getAttribute("src"), i.naturalWidth]),
    players: players.map((p) => [p.tagName, p.getAttribute("src"), p.duration]),
    clips: document.querySelectorAll("svg.timeline g.clip").length,
  };
}"""


EDITED = "Red pandas nap in the treetops, wrapped in their own fluffy tails."


def test_a_review_edit_made_in_airflows_ui_reaches_the_narration(
    airflow_system: AirflowSystem, movie_runs: dict[str, str], browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    system = airflow_system
    run_id = movie_runs["reviewed"]
    quoted = urllib.parse.quote(run_id, safe="")
    _wait_for_task_state(system, run_id, "review", "awaiting_input")

    base = _base(system)
    token = _token(system, "admin")
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([{"name": "_token", "value": token, "url": base}])
    page = context.new_page()

    # Airflow's own UI: the review task instance's required action, a form prefilled with
    # the script's texts; a new first narration, then Approve.
    page.goto(f"{base}/dags/{DAG}/runs/{quoted}/tasks/review/required_actions")
    field = page.locator("#element_narration_1")
    field.wait_for(timeout=60_000)
    assert field.input_value().strip(), "the narration field is prefilled with the script's"
    assert page.locator("#element_image_prompt_2").input_value().strip()
    field.fill(EDITED)
    page.screenshot(path=str(_outputs(tmp_path) / "review.png"), full_page=True)
    page.get_by_role("button", name="Approve", exact=True).click()

    assert system.wait_for_run(DAG, run_id, timeout=240) == "success", system.diagnostics()

    # What the narration job was asked to speak: its record (XCom) and the run's manifest.
    entry = _api_json(
        system,
        token,
        f"/dags/{DAG}/dagRuns/{quoted}/taskInstances/narration/xcomEntries/tutopanda_job"
        "?map_index=0",
    )
    record = entry["value"] if isinstance(entry["value"], dict) else json.loads(entry["value"])
    assert record["inputs"]["prompt"] == EDITED, record
    jobs = _manifest_jobs(system, run_id)
    assert jobs["narration[0]"]["inputs"]["prompt"] == EDITED, jobs["narration[0]"]
    assert jobs["narration[1]"]["inputs"]["prompt"] != EDITED

    # Who answered, and what they changed (the review task's outcome).
    review = _api_json(
        system, token, f"/dags/{DAG}/dagRuns/{quoted}/taskInstances/review/xcomEntries/review"
    )["value"]
    review = review if isinstance(review, dict) else json.loads(review)
    assert review["reviewed"] is True and review["changed"] == ["narration[0]"], review

    # The gallery shows the spoken text, and who reviewed the script.
    page.goto(f"{base}/tutopanda/dags/{DAG}/runs/{quoted}")
    expect(page.locator("article[data-key='narration[0]']")).to_contain_text(EDITED)
    expect(page.locator("#review")).to_have_text("Reviewed by admin: changed narration[0]")
    context.close()


def test_gallery_in_chromium_and_regenerate_one_image(
    airflow_system: AirflowSystem,
    movie_runs: dict[str, str],
    fakes: tuple[FakeReplicate, FakeOpenAI],
    browser: Any,
    tmp_path: Path,
) -> None:
    replicate_fake, openai_fake = fakes
    system = airflow_system
    run_id = movie_runs["plain"]
    assert system.wait_for_run(DAG, run_id, timeout=240) == "success", system.diagnostics()

    base = _base(system)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "_token", "value": _token(system, "admin"), "url": base}])
    page = context.new_page()
    gallery = f"{base}/tutopanda/dags/{DAG}/runs/{urllib.parse.quote(run_id, safe='')}"
    outputs = _outputs(tmp_path)

    # The gallery: every image decoded, every player knows its duration, the timeline drawn.
    page.goto(gallery)
    seen = page.evaluate(MEDIA_READY)
    assert len(seen["images"]) >= SEGMENTS, seen
    assert all(width > 0 for _, width in seen["images"]), seen
    kinds = [tag for tag, _, _ in seen["players"]]
    assert kinds.count("AUDIO") >= SEGMENTS + 1 and "VIDEO" in kinds, (
        seen
    )  # narrations, music, movie
    assert all(duration and duration > 0 for _, _, duration in seen["players"]), seen
    assert seen["clips"] >= 2 * SEGMENTS + 1, seen
    page.screenshot(path=str(outputs / "gallery.png"), full_page=True)
    for secret in (FAKE_TOKEN, FAKE_OPENAI_KEY):
        assert secret not in page.content()

    # The same gallery as the tab of the DAG run page in Airflow's own UI.
    page.goto(
        f"{base}/dags/{DAG}/runs/{urllib.parse.quote(run_id, safe='')}/plugin/tutopanda-gallery"
    )
    frame = page.frame_locator("iframe[title='Movie gallery']")
    frame.locator("svg.timeline").wait_for(timeout=30_000)

    # The task-instance tab of image[0]: its image, loaded.
    page.goto(f"{gallery}/tasks/image/0")
    tab = page.evaluate(MEDIA_READY)
    assert len(tab["images"]) == 1 and tab["images"][0][1] > 0, tab

    # The catalogue, for the README.
    page.goto(f"{base}/tutopanda/catalogue")
    assert page.locator("table.models tbody tr").count() > 0
    page.screenshot(path=str(outputs / "catalogue.png"), full_page=True)

    # Regenerate image[1]: a new run through Airflow's API, one new prediction, the rest reused.
    # (The reviewed run asks the providers nothing while it waits, nor once it is over.)
    _quiet(system, movie_runs["reviewed"])
    replicate_fake.reset()
    openai_fake.reset()
    page.goto(gallery)
    page.locator("article[data-key='image[1]'] button.regenerate").click()
    link = page.locator("#regenerated-run")
    link.wait_for(timeout=30_000)
    new_run = str(link.get_attribute("data-run-id"))
    assert new_run != run_id
    assert system.wait_for_run(DAG, new_run, timeout=240) == "success", system.diagnostics()
    assert replicate_fake.count("create") == 1, "only image[1] is made again"
    assert openai_fake.count() == 0, "the script and prompts are reused"
    jobs = _manifest_jobs(system, new_run)
    assert [key for key, job in jobs.items() if not job["reused"]] == ["image[1]"], jobs
    before = _manifest_jobs(system, run_id)
    assert (
        jobs["image[0]"]["artefacts"][0]["sha256"] == before["image[0]"]["artefacts"][0]["sha256"]
    )

    # A viewer sees no Regenerate button, and Airflow's API refuses the viewer's trigger anyway.
    viewer = browser.new_context()
    viewer.add_cookies([{"name": "_token", "value": _token(system, "viewer"), "url": base}])
    viewer_page = viewer.new_page()
    viewer_page.goto(gallery)
    assert viewer_page.locator("article[data-key='image[0]']").count() == 1
    assert viewer_page.locator("button.regenerate").count() == 0
    refused = viewer_page.request.post(
        f"{base}/api/v2/dags/{DAG}/dagRuns", data={"logical_date": None, "conf": {}}
    )
    assert refused.status == 403, refused.text()
    viewer.close()

    if os.environ.get("TUTOPANDA_UPDATE_DOCS") == "1":
        for name in ("gallery.png", "catalogue.png"):
            shutil.copy(outputs / name, REPO / "docs" / f"ui-{name}")
    context.close()
