"""Published movies: the CLI's human layout, its names and bytes, atomic writes, S3 (moto)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from markdown_it import MarkdownIt
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from producers.cli.app import app
from producers.pipeline.publish import (
    extension_for,
    markdown_text,
    render_location,
    safe_segment,
    script_markdown,
)
from producers.pipeline.steps import Script, ScriptSegment
from producers.pipeline.timeline import Segment, Timeline, timeline_svg
from producers.sdk.media import probe
from producers.storage.destination import (
    LocalDestination,
    S3Destination,
    check_relpath,
    open_destination,
)

pytestmark = pytest.mark.integration
runner = CliRunner()

LAYOUT = {"movie.mp4", "timeline.svg", "script.md", "manifest.json", "script.json"}
MEDIA_DIRS = {"images": "image", "narration": "narration", "video": "video"}


def movie(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["movie", *args])
    return result.exit_code, result.stdout, result.stderr


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its relative path (hidden temp files included)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# -- the CLI's layout ------------------------------------------------------------------------


def test_cli_publishes_the_layout_and_prints_the_movie_last(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = movie(
        "--topic", "Why is the sky blue?", "--segments", "2", "--set", "video.enabled=true",
        "--store", str(tmp_path / "store"), "--output", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    last = stdout.strip().splitlines()[-1]
    assert last == str(out.resolve() / "movie.mp4")
    files = files_of(out)
    assert set(files) >= LAYOUT
    expected = {
        "images/01-image", "images/02-image", "narration/01-narration", "narration/02-narration",
        "video/01-video", "video/02-video", "music",
        "image_prompts/01-image_prompt", "image_prompts/02-image_prompt",
    }  # fmt: skip
    stems = {name.rsplit(".", 1)[0] for name in files} - {n.rsplit(".", 1)[0] for n in LAYOUT}
    assert stems == expected
    assert not [name for name in files if "/." in f"/{name}"], "no temp file is left"
    for name in files:
        folder = name.split("/", 1)[0] if "/" in name else None
        if folder in MEDIA_DIRS or name.startswith("music.") or name == "movie.mp4":
            # the extension is the one of the file's real content (decoded, not guessed)
            info = probe(out / name)
            assert name.endswith("." + extension_for(info.mime_type)), (name, info.mime_type)
    movie_info = probe(out / "movie.mp4")
    assert movie_info.has_video and movie_info.has_audio and movie_info.duration_seconds
    manifest = json.loads(files["manifest.json"])
    published = manifest["outputs"]["published"]
    assert published["movie"] == last and published["dir"] == str(out.resolve())
    assert set(published["files"]) == set(files) - {"manifest.json"}
    import hashlib

    for name, sha in published["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == sha, name
    stored = json.loads(
        (tmp_path / "store" / "runs" / manifest["run_id"] / "manifest.json").read_text()
    )
    assert stored == manifest, "the published manifest is the run's manifest"
    assert "<svg" in files["timeline.svg"].decode() and "2 video" in files["timeline.svg"].decode()


def test_a_rerun_rewrites_the_same_names_with_the_same_bytes(tmp_path: Path) -> None:
    store, first, second = tmp_path / "store", tmp_path / "first", tmp_path / "second"
    args = ["--topic", "Tides", "--segments", "2", "--store", str(store)]
    assert movie(*args, "--output", str(first))[0] == 0
    before = files_of(first)
    code, stdout, stderr = movie(*args, "--output", str(first), "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["summary"]["reused"] > 0 and data["summary"]["done"] == 0
    assert data["published"] == {
        "dir": str(first.resolve()),
        "movie": str(first.resolve() / "movie.mp4"),
    }
    after = files_of(first)
    assert set(after) == set(before)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"manifest.json"}, "only the manifest (its run id, times) differs"
    assert movie(*args, "--output", str(second))[0] == 0
    elsewhere = files_of(second)
    assert {n for n in elsewhere if elsewhere[n] != before[n]} == {"manifest.json"}


def test_a_smaller_movie_published_over_a_larger_one_leaves_no_stale_file(
    tmp_path: Path,
) -> None:
    out, store = tmp_path / "out", tmp_path / "store"
    (tmp_path / "keep").mkdir()
    assert (
        movie("--topic", "Tides", "--segments", "2", "--store", str(store), "--output", str(out))[0]
        == 0
    )
    assert (out / "images" / "02-image.png").is_file()
    mine = out / "images" / "notes.txt"
    mine.write_text("a file of the user's, never listed by a publish")
    # A manifest edited to list names outside the layout's own: they are never deleted.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["outputs"]["published"]["files"].update(
        {"../keep": "x", "images/notes.txt": "x", "/etc/passwd": "x"}
    )
    (out / "manifest.json").write_text(json.dumps(manifest))
    code, _, stderr = movie(
        "--topic", "Moss", "--segments", "1", "--store", str(store), "--output", str(out)
    )
    assert code == 0, stderr
    names = set(files_of(out))
    assert "images/01-image.png" in names and "images/02-image.png" not in names
    assert (
        "narration/02-narration.wav" not in names
        and "image_prompts/02-image_prompt.txt" not in names
    )
    assert mine.is_file() and (tmp_path / "keep").is_dir()
    listed = json.loads((out / "manifest.json").read_text())["outputs"]["published"]["files"]
    assert set(listed) == names - {"manifest.json", "images/notes.txt"}


def test_the_default_output_is_movies_and_the_run_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUTOPANDA_MOVIES_DIR")
    code, stdout, stderr = movie("--topic", "Moss", "--segments", "1", "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    expected = tmp_path.resolve() / "movies" / data["run_id"]
    assert data["published"]["dir"] == str(expected)
    assert Path(data["published"]["movie"]) == expected / "movie.mp4"
    assert probe(expected / "movie.mp4").has_video
    # $TUTOPANDA_MOVIES_DIR keeps every run's folder in one place
    monkeypatch.setenv("TUTOPANDA_MOVIES_DIR", str(tmp_path / "all"))
    code, stdout, stderr = movie("--topic", "Moss", "--segments", "1", "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["published"]["dir"] == str((tmp_path / "all").resolve() / data["run_id"])


def test_a_publish_that_fails_says_where_and_keeps_the_movie_in_the_store(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output directory should be")
    code, _, stderr = movie(
        "--topic", "Moss", "--segments", "1", "--store", str(tmp_path / "store"),
        "--output", str(blocked / "movie"),
    )  # fmt: skip
    assert code == 1
    assert f"publishing to {blocked / 'movie'} failed" in stderr
    assert "the movie is in the store at file://" in stderr
    assert blocked.read_text().startswith("a file"), "nothing was written over it"


def test_hostile_script_text_is_inert_in_script_md_and_timeline_svg(tmp_path: Path) -> None:
    hostile = (
        "<script>alert(1)</script> [click](javascript:alert(1)) ![x](http://evil/x.png) "
        "`code` **bold** _em_ <b>tag</b> &amp; ~~gone~~ | a | b |\n\n# Injected heading\n"
        "<!-- hidden --> \u202eevil\u0007 http://evil.example/x"
    )
    script = Script(
        title=hostile, segments=(ScriptSegment(narration=hostile, visual_description=hostile),)
    )
    timeline = Timeline(
        title=hostile,
        segments=(Segment(index=0, start=0, duration=2.5, visual_uri="u", narration_uri="n"),),
    )
    markdown = script_markdown(script, [hostile], timeline, {"images/01-image.png": "u"})
    html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)
    for bad in ("<script", "<a href=\"javascript", "<img", "<b>", "<code>", "<em>", "<!--",
                "<table", "<s>", "<del>", "\u202e", "\u0007"):  # fmt: skip
        assert bad not in html, bad
    assert html.count("<h1>") == 1 and "<h1>Injected" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, "the text is shown, as text"
    # the only links are the layout's own
    assert 'href="images/01-image.png"' in html and 'href="movie.mp4"' in html
    assert "evil" not in "".join(part.split('"')[1] for part in html.split("href=")[1:])
    svg = timeline_svg(timeline)
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert markdown_text("a\nb\r\n\tc") == "a b c"


# -- names and locations --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime", "ext"),
    [
        ("image/png", "png"),
        ("image/jpeg", "jpg"),
        ("image/webp", "webp"),
        ("audio/mpeg", "mp3"),
        ("audio/wav", "wav"),
        ("audio/x-wav", "wav"),
        ("video/mp4", "mp4"),
        ("text/plain; charset=utf-8", "txt"),
        ("application/json", "json"),
        ("application/x-unknown", "bin"),
        ("", "bin"),
    ],
    ids=lambda value: str(value) or "empty",
)
def test_extensions_come_from_a_fixed_table(mime: str, ext: str) -> None:
    assert extension_for(mime) == ext


@pytest.mark.parametrize(
    "relpath",
    ["../x", "a/../b", "/abs", "a//b", ".hidden", "a/.part", "a b", "", "a/", "é"],
    ids=[
        "dotdot",
        "inner-dotdot",
        "absolute",
        "empty-segment",
        "hidden",
        "hidden-inner",
        "space",
        "empty",
        "trailing-slash",
        "non-ascii",
    ],
)
def test_paths_that_could_leave_the_root_are_refused(relpath: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid published path"):
        check_relpath(relpath)
    destination = LocalDestination(tmp_path / "dest")
    with pytest.raises(ValueError, match="invalid published path"):
        asyncio.run(destination.put_bytes(relpath, b"x", mime_type="text/plain"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "dest").exists()


CONTEXT = {"ds": "2026-12-03", "dag_id": "tutopanda_movie"}


def render_with(run_id: str) -> Any:
    from jinja2 import Environment, StrictUndefined

    env = Environment(undefined=StrictUndefined)
    return lambda part: env.from_string(part).render({**CONTEXT, "run_id": run_id})


@pytest.mark.parametrize(
    ("template", "run_id", "expected"),
    [
        ("s3://b/movies/{{ ds }}/{{ run_id }}/", "scheduled-1", "s3://b/movies/2026-12-03/scheduled-1"),
        ("/srv/m/{{ dag_id }}/{{ run_id }}", "r.1_x-y", "/srv/m/tutopanda_movie/r.1_x-y"),
        ("file:///srv/m/{{ run_id }}", "r1", "file:///srv/m/r1"),
        ("movies/{{ run_id }}", "r1", "movies/r1"),
        ("/srv/My Movies/{{ run_id }}", "r1", "/srv/My Movies/r1"),
        ("s3://b/{{ ds | replace('-', '/') }}", "r1", "s3://b/2026_12_03~"),
    ],
    ids=["s3", "absolute", "file-uri", "relative", "literal-kept", "slash-inside-an-expression"],
)  # fmt: skip
def test_templates_render_segment_by_segment(template: str, run_id: str, expected: str) -> None:
    assert render_location(template, render_with(run_id)).startswith(expected)


@pytest.mark.parametrize(
    "run_id",
    ["../../x", "..", ".", "a/../../b", "manual__2026-12-03T14:00:00+00:00", "x\x00y", "~"],
    ids=["dotdot-path", "dotdot", "dot", "inner-dotdot", "airflow-manual", "nul", "tilde"],
)
def test_a_hostile_run_id_stays_one_folder_below_the_prefix(run_id: str) -> None:
    location = render_location("s3://b/movies/{{ ds }}/{{ run_id }}/", render_with(run_id))
    prefix = "s3://b/movies/2026-12-03/"
    assert location.startswith(prefix)
    last = location.removeprefix(prefix)
    check_relpath(last)  # one plain folder name: no '/', no '..'
    assert last == safe_segment(run_id)
    local = render_location("/srv/movies/{{ run_id }}", render_with(run_id))
    assert Path(local).resolve().parent == Path("/srv/movies").resolve()


def test_cleaned_segments_never_collide_with_plain_ones_or_each_other() -> None:
    names = ["a:b", "a_b", "a/b", "a?b", "a_b~" + "0" * 12, "..", "__", ".x", "_x", "a" * 300]
    cleaned = [safe_segment(name) for name in names]
    assert len(set(cleaned)) == len(names)
    assert safe_segment("a_b") == "a_b" and "~" in safe_segment("a:b")
    for cleaned_name in cleaned:
        check_relpath(cleaned_name)  # every one is a valid published folder name
        assert len(cleaned_name) <= 200


def test_an_empty_rendered_part_is_refused() -> None:
    with pytest.raises(ValueError, match="renders to nothing"):
        render_location("/srv/{{ run_id }}/x", render_with(""))


# -- atomic writes ----------------------------------------------------------------------------


async def failing_after(first: bytes) -> AsyncIterator[bytes]:
    yield first
    raise ConnectionResetError("the source dropped mid-copy")


@pytest.mark.parametrize("old", [b"the old movie", None], ids=["replacing", "new"])
def test_a_failed_copy_leaves_the_old_file_or_none(tmp_path: Path, old: bytes | None) -> None:
    destination = LocalDestination(tmp_path)
    if old is not None:
        (tmp_path / "movie.mp4").write_bytes(old)
    with pytest.raises(ConnectionResetError):
        asyncio.run(
            destination.put_stream("movie.mp4", failing_after(b"x" * 4096), mime_type="video/mp4")
        )
    assert files_of(tmp_path) == ({"movie.mp4": old} if old is not None else {})


def test_a_process_killed_mid_write_leaves_no_partial_movie(tmp_path: Path) -> None:
    (tmp_path / "movie.mp4").write_bytes(b"the old movie")
    script = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from producers.storage.destination import LocalDestination

        async def chunks():
            for _ in range(4):
                yield b"n" * 1024 * 1024
            print("writing", flush=True)
            while True:
                time.sleep(0.05)
                yield b"n"

        asyncio.run(LocalDestination({str(tmp_path)!r}).put_stream(
            "movie.mp4", chunks(), mime_type="video/mp4"))
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "writing"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert (tmp_path / "movie.mp4").read_bytes() == b"the old movie"
    leftovers = set(files_of(tmp_path)) - {"movie.mp4"}
    assert len(leftovers) == 1 and next(iter(leftovers)).startswith(".movie.mp4.")
    assert (tmp_path / next(iter(leftovers))).stat().st_size >= 4 * 1024 * 1024


# -- S3 (moto) ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3")
    bucket = f"movies-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def keys(client: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_cli_publishes_to_s3_with_content_types(tmp_path: Path, s3_env: Any) -> None:
    client, bucket = s3_env
    code, stdout, stderr = movie(
        "--topic", "Moss", "--segments", "1", "--store", str(tmp_path / "store"),
        "--output", f"s3://{bucket}/published/moss",
    )  # fmt: skip
    assert code == 0, stderr
    assert stdout.strip().splitlines()[-1] == f"s3://{bucket}/published/moss/movie.mp4"
    found = keys(client, bucket)
    assert all(key.startswith("published/moss/") for key in found)
    names = {key.removeprefix("published/moss/") for key in found}
    assert LAYOUT | {"images/01-image.png", "narration/01-narration.wav"} <= names
    head = client.head_object(Bucket=bucket, Key="published/moss/movie.mp4")
    assert head["ContentType"] == "video/mp4" and len(head["Metadata"]["sha256"]) == 64
    assert client.head_object(Bucket=bucket, Key="published/moss/timeline.svg")["ContentType"] == (
        "image/svg+xml"
    )
    local = tmp_path / "movie.mp4"
    client.download_file(bucket, "published/moss/movie.mp4", str(local))
    assert probe(local).has_video and probe(local).has_audio


def test_s3_objects_are_one_upload_each_and_not_resent_when_equal(s3_env: Any) -> None:
    client, bucket = s3_env
    puts: list[str] = []
    client.meta.events.register(
        "before-call.s3.PutObject", lambda params, **_: puts.append(params["url_path"])
    )
    destination = open_destination(f"s3://{bucket}/p", s3_client=client)
    assert isinstance(destination, S3Destination)
    first = asyncio.run(destination.put_bytes("a/b.txt", b"hello", mime_type="text/plain"))
    again = asyncio.run(destination.put_bytes("a/b.txt", b"hello", mime_type="text/plain"))
    assert first == again and len(puts) == 1, "the same bytes are not sent twice"
    asyncio.run(destination.put_bytes("a/b.txt", b"changed", mime_type="text/plain"))
    assert len(puts) == 2
    assert asyncio.run(destination.read_bytes("a/b.txt")) == b"changed"
    with pytest.raises(ConnectionResetError):
        asyncio.run(
            destination.put_stream("a/new.mp4", failing_after(b"x" * 100), mime_type="video/mp4")
        )
    with pytest.raises(ConnectionResetError):
        asyncio.run(destination.put_stream("a/b.txt", failing_after(b"x"), mime_type="text/plain"))
    assert keys(client, bucket) == ["p/a/b.txt"], "a failed source sends nothing"
    assert asyncio.run(destination.read_bytes("a/b.txt")) == b"changed"
