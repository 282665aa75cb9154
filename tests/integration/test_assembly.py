"""Assembly with the real ffmpeg: mock media in, an MP4 checked by decoding it out."""

from __future__ import annotations

import array
import asyncio
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from producers.clients.mock_media import render_audio, render_video
from producers.pipeline.assembly import AssemblyError, assemble, store_timeline
from producers.pipeline.timeline import NarrationClip, Timeline, Visual, build_timeline
from producers.sdk.media import probe
from producers.storage.base import StoredBlob
from producers.storage.local import LocalStore

pytestmark = pytest.mark.integration

RED = (220, 40, 40)
GREEN = (40, 190, 70)
BLUE = (40, 70, 220)
NARRATIONS = (1.2, 0.8, 1.5)
WIDTH, HEIGHT = 320, 180


def _png(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Movie:
    store: LocalStore
    timeline: Timeline
    blob: StoredBlob
    path: str


async def _make(root: Path) -> Movie:
    """Red 4:3 still, a 1 s clip (in a 1.3 s segment), blue 1:1 still; 2 s of music."""
    store = LocalStore(root)
    red = await store.put_bytes(_png(RED, (640, 480)), mime_type="image/png")
    clip = render_video("a clip", duration_seconds=1.0, aspect_ratio="16:9")
    video = await store.put_bytes(clip, mime_type="video/mp4")
    blue = await store.put_bytes(_png(BLUE, (400, 400)), mime_type="image/png")
    clips = []
    for index, seconds in enumerate(NARRATIONS):
        wav = render_audio(seconds, text=f"narration {index}")
        stored = await store.put_bytes(wav, mime_type="audio/wav")
        clips.append(NarrationClip(uri=stored.uri, duration=seconds))
    music = await store.put_bytes(render_audio(2.0, text="music"), mime_type="audio/wav")
    visuals = [Visual(uri=red.uri), Visual(uri=video.uri, kind="video"), Visual(uri=blue.uri)]
    timeline = build_timeline(
        "Test", visuals, clips, music_uri=music.uri, width=WIDTH, height=HEIGHT, fps=24
    )
    blob = await assemble(timeline, store, workdir=root / "work")
    return Movie(store, timeline, blob, await store.local_path(blob.uri))


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Movie:
    return asyncio.run(_make(tmp_path_factory.mktemp("assembly")))


def _frame_at(path: str, seconds: float) -> Image.Image:
    with av.open(path) as container:
        frames = [(abs(frame.time - seconds), frame) for frame in container.decode(video=0)]
    return min(frames, key=lambda pair: pair[0])[1].to_image()


def _mean(image: Image.Image, box: tuple[int, int, int, int]) -> list[float]:
    return [float(value) for value in ImageStat.Stat(image.crop(box)).mean]


def _left_channel(path: str) -> tuple[float, array.array[float]]:
    """The first sample's time and the decoded left channel (float samples)."""
    samples: array.array[float] = array.array("f")
    start = None
    with av.open(path) as container:
        for frame in container.decode(audio=0):
            assert frame.format.name == "fltp"
            if start is None:
                assert frame.time is not None
                start = frame.time
            plane = array.array("f", bytes(frame.planes[0]))
            if sys.byteorder != "little":
                plane.byteswap()
            samples.extend(plane[: frame.samples])
    assert start is not None
    return start, samples


def _rms(samples: array.array[float], start: float, begin: float, end: float) -> float:
    window = samples[round((begin - start) * 48000) : round((end - start) * 48000)]
    return math.sqrt(sum(value * value for value in window) / len(window))


def test_streams_size_and_duration(movie: Movie) -> None:
    assert movie.timeline.duration == pytest.approx(5.0)
    assert movie.blob.mime_type == "video/mp4"
    info = probe(movie.path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert info.sample_rate == 48000
    assert info.duration_seconds == pytest.approx(movie.timeline.duration, abs=0.1)
    assert info.frame_count == 5 * 24
    with av.open(movie.path) as container:
        assert container.streams.audio[0].codec_context.channels == 2


def test_each_still_shows_its_colour_letterboxed(movie: Movie) -> None:
    red_segment, _, blue_segment = movie.timeline.segments
    red = _frame_at(movie.path, red_segment.start + red_segment.duration / 2)
    # 640x480 in 320x180: 240x180 in the middle, black bars of 40 px at each side.
    assert _mean(red, (60, 20, 260, 160)) == pytest.approx(RED, abs=8)
    assert max(_mean(red, (0, 0, 30, HEIGHT))) < 20
    assert max(_mean(red, (290, 0, WIDTH, HEIGHT))) < 20
    blue = _frame_at(movie.path, blue_segment.start + blue_segment.duration / 2)
    assert _mean(blue, (100, 20, 220, 160)) == pytest.approx(BLUE, abs=8)
    assert max(_mean(blue, (0, 0, 60, HEIGHT))) < 20


def _difference(first: Image.Image, second: Image.Image, box: tuple[int, int, int, int]) -> float:
    return sum(_mean(ImageChops.difference(first, second), box)) / 3


def test_the_clip_fills_its_segment(movie: Movie) -> None:
    clip = movie.timeline.segments[1]
    # The 1 s clip fills the frame (16:9) and is frozen on its last frame for the last
    # 0.3 s of its 1.3 s segment. Its progress bar (the bottom 5 rows) is full by then.
    frozen = [_frame_at(movie.path, clip.end - offset) for offset in (0.05, 0.25)]
    early = _frame_at(movie.path, clip.start + 0.1)
    bar = (WIDTH // 2, HEIGHT - 4, WIDTH, HEIGHT)
    assert _difference(frozen[0], frozen[1], (0, 0, WIDTH, HEIGHT)) < 2
    assert _difference(frozen[0], early, bar) > 30


def test_narration_plays_in_its_segment_over_the_looped_music(movie: Movie) -> None:
    start, left = _left_channel(movie.path)
    assert len(left) / 48000 == pytest.approx(movie.timeline.duration, abs=0.1)
    for segment, seconds in zip(movie.timeline.segments, NARRATIONS, strict=True):
        speech = _rms(left, start, segment.start + 0.05, segment.start + seconds - 0.05)
        pause = _rms(left, start, segment.start + seconds + 0.1, segment.end - 0.05)
        assert speech > 0.03, f"segment {segment.index} is silent during its narration"
        assert pause < 0.02, f"segment {segment.index} has speech in its pause"
    # The 2 s music bed loops: it is still there at 2.5-2.9 s (segment 1's pause).
    assert _rms(left, start, 2.5, 2.9) > 0.004


def test_output_is_reproducible_and_the_workdir_is_cleaned(movie: Movie) -> None:
    again = asyncio.run(assemble(movie.timeline, movie.store))
    assert again.sha256 == movie.blob.sha256
    work = movie.store.root / "work"
    assert work.is_dir()
    assert list(work.iterdir()) == []


async def test_store_timeline_round_trips(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    timeline = build_timeline(
        "T", [Visual(uri="file:///x/v")], [NarrationClip(uri="file:///x/n", duration=1.0)]
    )
    blob = await store_timeline(timeline, store)
    assert blob.mime_type == "application/json"
    assert Timeline.model_validate_json(await store.read_bytes(blob.uri)) == timeline


async def _single(store: LocalStore, visual: bytes) -> Timeline:
    image = await store.put_bytes(visual, mime_type="image/png")
    speech = await store.put_bytes(render_audio(0.5), mime_type="audio/wav")
    return build_timeline(
        "Bad",
        [Visual(uri=image.uri)],
        [NarrationClip(uri=speech.uri, duration=0.5)],
        width=WIDTH,
        height=HEIGHT,
    )


async def test_a_corrupt_image_fails_with_ffmpegs_complaint(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    timeline = await _single(store, _png(GREEN, (64, 64))[:60])  # cut inside a PNG chunk
    with pytest.raises(AssemblyError, match="Invalid data found") as caught:
        await assemble(timeline, store)
    assert "command: " in str(caught.value)
    assert "ffmpeg" in Path(caught.value.command[0]).name
    assert "Invalid data found" in caught.value.stderr_tail


async def test_a_missing_file_fails_with_ffmpegs_complaint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    timeline = await _single(store, _png(GREEN, (64, 64)))
    gone = str(tmp_path / "evicted-from-cache.png")

    async def local_path(uri: str) -> str:
        return gone if uri == timeline.segments[0].visual_uri else str(store._existing_path(uri))

    monkeypatch.setattr(store, "local_path", local_path)
    with pytest.raises(AssemblyError, match="No such file or directory") as caught:
        await assemble(timeline, store)
    assert gone in str(caught.value)


async def test_an_artefact_missing_from_the_store_fails_before_ffmpeg(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    timeline = await _single(store, _png(GREEN, (64, 64)))
    Path(await store.local_path(timeline.segments[0].visual_uri)).unlink()
    with pytest.raises(AssemblyError, match="not stored") as caught:
        await assemble(timeline, store)
    assert caught.value.command == []
