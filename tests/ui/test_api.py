"""The UI's API through FastAPI's test client: every page, media with Range, every refusal.

Authentication is Airflow's own (the simple auth manager, real JWTs); the runs come from a
fake source instead of the metadata DB, the artefacts from a real local store.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.fixtures import DAG, RUN, SECRETS, FakeRuns, StoredRun, stored_run

pytestmark = pytest.mark.airflow

AUTH_ENV = {
    "AIRFLOW__CORE__AUTH_MANAGER": (
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    ),
    "AIRFLOW__API_AUTH__JWT_SECRET": "test-only-jwt-secret-" + "0123456789abcdef" * 4,
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
}


@pytest.fixture(scope="module")
def auth_manager() -> Iterator[Any]:
    """Airflow's simple auth manager, initialised as the api-server does."""
    saved = {k: os.environ.get(k) for k in AUTH_ENV}
    os.environ.update(AUTH_ENV)
    from airflow.api_fastapi.app import init_auth_manager, purge_cached_app
    from airflow.models.revoked_token import RevokedToken

    # Revocation is looked up in the metadata DB, which these tests do not have.
    original = RevokedToken.is_revoked
    RevokedToken.is_revoked = classmethod(lambda cls, jti, session=None: False)  # type: ignore[method-assign]
    try:
        yield init_auth_manager()
    finally:
        RevokedToken.is_revoked = original  # type: ignore[method-assign]
        purge_cached_app()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def tokens(auth_manager: Any) -> dict[str, str]:
    """JWTs for an admin, a viewer (may read, may not trigger) and a user with no role."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return {
        name: auth_manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
        for name, role in (("admin", "admin"), ("viewer", "viewer"), ("outsider", None))
    }


@pytest.fixture
def stored(tmp_path: Path) -> StoredRun:
    from producers.storage import LocalStore

    return asyncio.run(stored_run(LocalStore(tmp_path / "store")))


#: The review task's outcome (XCom ``review``): who approved the script, what they changed.
REVIEW = {"reviewed": True, "by": "admin <b>", "changed": ["narration[0]", "image_prompt[1]"]}


@pytest.fixture
def client(stored: StoredRun, auth_manager: Any) -> Any:
    from fastapi.testclient import TestClient

    from airflow_provider_tutopanda.ui.app import UI, create_app
    from airflow_provider_tutopanda.ui.runs import RunInfo

    runs = FakeRuns(
        {
            (DAG, RUN): RunInfo(DAG, RUN, "success", conf={"topic": "Red pandas"}),
            # The same run id in the other movie DAG: its manifest id is the same, but the
            # manifest says it is tutopanda_movie's, so nothing of it may show there.
            ("tutopanda_daily_movie", RUN): RunInfo("tutopanda_daily_movie", RUN, "success"),
            ("another_dag", RUN): RunInfo("another_dag", RUN, "success"),
        },
        values={(DAG, RUN, "review", "review"): REVIEW},
    )
    return TestClient(create_app(UI(runs=runs, store=lambda: stored.store)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


GALLERY = f"/dags/{DAG}/runs/{RUN}"
IMAGE = f"{GALLERY}/media/image%5B0%5D/image"


# -- pages -------------------------------------------------------------------------------------


def test_gallery_shows_every_artefact_failure_cost_and_timeline(client: Any, tokens: dict) -> None:
    page = client.get(GALLERY, headers=bearer(tokens["admin"]))

    assert page.status_code == 200, page.text
    html = page.text
    assert (
        'src="/dags/tutopanda_movie/runs/manual__2026-01-02T03%3A04%3A05%2B00%3A00/movie"' in html
    )
    assert "<img src=" in html and "/media/image%5B0%5D/image" in html
    assert "<audio controls" in html
    assert "replicate-media" in html and "bytedance/seedream-4" in html
    assert "estimated $0.0300" in html and ">mock<" in html
    assert "estimated &le; $0.0421" in html and ">upper bound<" in html  # hardware unknown
    assert "safety_blocked" in html and "flagged by the provider" in html
    assert "a scary red panda" in html
    # the provider's own words, its job id and what to check, escaped
    assert "provider job pred-7f3a" in html and "What to check" in html
    assert "NSFW &lt;script&gt;alert(1)&lt;/script&gt; detected" in html
    assert "<script>alert(1)" not in html
    # the image made by a fallback model says which model failed and why
    assert "made by the fallback model" in html and "replicate:google/nano-banana" in html
    assert "provider_unavailable" in html and "(HTTP 503)" in html
    assert 'class="timeline"' in html and 'data-key="image[0]"' in html
    assert html.count('class="regenerate"') == 4  # one per job, the failed one too


def test_gallery_shows_who_reviewed_the_script_and_what_they_changed(
    client: Any, tokens: dict
) -> None:
    page = client.get(GALLERY, headers=bearer(tokens["admin"])).text
    assert "Reviewed by admin &lt;b&gt;: changed narration[0], image_prompt[1]" in page


def test_an_unreviewed_run_shows_no_review(client: Any, tokens: dict) -> None:
    from airflow_provider_tutopanda.ui.gallery import review_view

    assert review_view({"reviewed": False, "by": None, "changed": []}) is None
    assert review_view(None) is None
    assert review_view({"reviewed": True, "by": "ann", "changed": []}).summary == (
        "Reviewed by ann: approved as written"
    )
    # Only tutopanda_movie's run was reviewed, not the daily DAG's run of the same id.
    page = client.get(
        "/dags/tutopanda_daily_movie/runs/" + RUN, headers=bearer(tokens["admin"])
    ).text
    assert 'class="review"' not in page


def test_the_session_cookie_of_the_airflow_ui_is_accepted(client: Any, tokens: dict) -> None:
    client.cookies.set("_token", tokens["viewer"])
    assert client.get(GALLERY).status_code == 200


def test_a_viewer_sees_no_regenerate_button(client: Any, tokens: dict) -> None:
    page = client.get(GALLERY, headers=bearer(tokens["viewer"]))

    assert page.status_code == 200
    assert "regenerate" not in page.text.lower()


def test_task_instance_tab_shows_what_the_task_made(client: Any, tokens: dict) -> None:
    page = client.get(f"{GALLERY}/tasks/image/0", headers=bearer(tokens["admin"]))

    assert page.status_code == 200
    assert "/media/image%5B0%5D/image" in page.text and "<img" in page.text
    assert "safety_blocked" not in page.text  # that was image[1]


def test_task_instance_tab_of_an_unmapped_task(client: Any, tokens: dict) -> None:
    # The Airflow UI leaves {MAP_INDEX} as it is for an unmapped task instance.
    page = client.get(f"{GALLERY}/tasks/script/%7BMAP_INDEX%7D", headers=bearer(tokens["admin"]))

    assert page.status_code == 200
    assert "Red pandas" in page.text  # the script, shown as text


def test_overview_lists_runs_with_cost_charts(client: Any, tokens: dict) -> None:
    page = client.get("/", headers=bearer(tokens["viewer"]))

    assert page.status_code == 200
    assert "Cost per run" in page.text and "Cost per day" in page.text
    assert RUN in page.text


@pytest.mark.parametrize("kind", ["", "text-to-image"], ids=["all", "filtered"])
def test_catalogue_lists_the_registry(client: Any, tokens: dict, kind: str) -> None:
    from producers.registry import default_registry

    page = client.get("/catalogue", params={"kind": kind}, headers=bearer(tokens["viewer"]))

    assert page.status_code == 200
    expected = default_registry().models(kind or None)
    assert page.text.count("<tr data-kind=") == len(expected) > 0
    assert all(m.model_id in page.text for m in expected)
    if kind:
        assert "text-to-speech</td>" not in page.text


def test_run_json(client: Any, tokens: dict) -> None:
    answer = client.get(f"/api{GALLERY}", headers=bearer(tokens["viewer"]))

    assert answer.status_code == 200
    jobs = {j["key"]: j for j in answer.json()["jobs"]}
    assert jobs["image[1]"]["error"] == "safety_blocked"
    assert jobs["image[0]"]["artefacts"] == ["image"]


# -- media -------------------------------------------------------------------------------------


def test_media_whole_with_the_stored_mime_type(
    client: Any, tokens: dict, stored: StoredRun
) -> None:
    answer = client.get(IMAGE, headers=bearer(tokens["viewer"]))

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.content.startswith(b"\x89PNG")
    assert int(answer.headers["content-length"]) == stored.image["artefacts"][0]["size"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, 10239),
        ("bytes=-10", 10230, 10239),
        ("bytes=10000-99999", 10000, 10239),
    ],
    ids=["first-100", "open-ended", "suffix", "cut-to-end"],
)
def test_movie_range_requests(
    client: Any, tokens: dict, stored: StoredRun, header: str, start: int, end: int
) -> None:
    answer = client.get(f"{GALLERY}/movie", headers={**bearer(tokens["viewer"]), "Range": header})

    assert answer.status_code == 206
    assert answer.headers["content-range"] == f"bytes {start}-{end}/{len(stored.movie_bytes)}"
    assert answer.headers["content-type"] == "video/mp4"
    assert answer.content == stored.movie_bytes[start : end + 1]


def test_unsatisfiable_range(client: Any, tokens: dict) -> None:
    answer = client.get(
        f"{GALLERY}/movie", headers={**bearer(tokens["viewer"]), "Range": "bytes=999999-"}
    )

    assert answer.status_code == 416
    assert answer.headers["content-range"] == "bytes */10240"


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/catalogue", GALLERY, f"{GALLERY}/tasks/image/0", IMAGE, f"{GALLERY}/movie"],
)
def test_no_login_is_refused(client: Any, path: str) -> None:
    answer = client.get(path)

    assert answer.status_code == 401
    assert "PNG" not in answer.text and "<img" not in answer.text


def test_a_bad_token_is_refused(client: Any) -> None:
    assert client.get(GALLERY, headers=bearer("not-a-jwt")).status_code == 403


@pytest.mark.parametrize("path", [GALLERY, f"{GALLERY}/tasks/image/0", IMAGE, f"{GALLERY}/movie"])
def test_no_dag_access_is_refused(client: Any, tokens: dict, path: str) -> None:
    answer = client.get(path, headers=bearer(tokens["outsider"]))

    assert answer.status_code == 403
    assert "bytedance" not in answer.text


@pytest.mark.parametrize(
    "path",
    [
        f"/dags/{DAG}/runs/no-such-run",
        f"/dags/{DAG}/runs/no-such-run/media/image%5B0%5D/image",
        f"{GALLERY}/media/image%5B7%5D/image",
        f"{GALLERY}/media/image%5B0%5D/no-such-artefact",
        f"{GALLERY}/media/image%5B1%5D/image",  # the failed job made nothing
        f"/dags/another_dag/runs/{RUN}",
        f"/dags/tutopanda_daily_movie/runs/{RUN}/media/image%5B0%5D/image",
        f"/dags/tutopanda_daily_movie/runs/{RUN}/movie",
        f"{GALLERY}/media/..%2F..%2F..%2Fetc%2Fpasswd/x",
        f"{GALLERY}/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd/image",
        f"{GALLERY}/media/image%5B0%5D/..%2F..%2Fmanifest.json",
        f"/dags/{DAG}/runs/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/dags/{DAG}/runs/%2e%2e%2f%2e%2e%2f/movie",
        f"/dags/{DAG}/runs/{RUN}/../../../../etc/passwd",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
    ],
    ids=[
        "unknown-run",
        "unknown-run-media",
        "unknown-job",
        "unknown-artefact",
        "failed-job",
        "not-a-tutopanda-dag",
        "other-dags-run-media",
        "other-dags-run-movie",
        "dotdot-in-key",
        "encoded-dotdot-in-key",
        "dotdot-in-artefact",
        "dotdot-in-run",
        "encoded-dotdot-in-run",
        "raw-dotdot",
        "static-dotdot",
        "static-encoded-dotdot",
    ],
)
def test_what_does_not_exist_is_404_and_reads_nothing(client: Any, tokens: dict, path: str) -> None:
    answer = client.get(path, headers=bearer(tokens["admin"]))

    assert answer.status_code == 404, (path, answer.status_code, answer.text[:300])
    assert "root:" not in answer.text and "create_app" not in answer.text
    assert "PNG" not in answer.text


def test_a_manifest_naming_a_file_outside_the_store_is_not_followed(
    client: Any, tokens: dict, stored: StoredRun
) -> None:
    manifest = stored.manifest
    manifest["jobs"][1]["artefacts"][0]["uri"] = "file:///etc/passwd"
    asyncio.run(stored.store.write_manifest(manifest["run_id"], manifest))

    answer = client.get(IMAGE, headers=bearer(tokens["admin"]))

    assert answer.status_code == 404
    assert "root:" not in answer.text


def test_no_secret_in_any_response(client: Any, tokens: dict) -> None:
    paths = ["/", "/catalogue", GALLERY, f"{GALLERY}/tasks/image/0", f"/api{GALLERY}"]
    for path in paths:
        for who in ("admin", "viewer", "outsider"):
            answer = client.get(path, headers=bearer(tokens[who]))
            for secret in (*SECRETS, tokens[who], AUTH_ENV["AIRFLOW__API_AUTH__JWT_SECRET"]):
                assert secret not in answer.text, (path, who)
                assert all(secret not in v for v in answer.headers.values()), (path, who)
