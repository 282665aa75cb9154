"""``sniff_mime`` over real files made by Pillow, ``wave`` and PyAV, plus text and junk.

Also checks that ``probe`` refuses files it cannot decode.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import pytest
from PIL import Image

from producers.sdk.media import probe, sniff_mime

SNIFF = 64


def _image(fmt: str, **options: object) -> Callable[[], bytes]:
    """Return a builder of a small image in Pillow format ``fmt``."""

    def build() -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (16, 12), (10, 120, 200)).save(out, format=fmt, **options)
        return out.getvalue()

    return build


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\x00\x01" * 800)
    return out.getvalue()


def _audio(container_format: str, codec: str, rate: int) -> Callable[[], bytes]:
    """Return a builder of 0.1 s of audio in ``container_format`` via PyAV."""

    def build() -> bytes:
        out = io.BytesIO()
        with av.open(out, mode="w", format=container_format) as container:
            stream = cast("av.AudioStream", container.add_stream(codec, rate=rate))
            stream.layout = "mono"
            samples = rate // 10
            frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
            frame.planes[0].update(bytes(2 * samples))
            frame.sample_rate = rate
            frame.time_base = Fraction(1, rate)
            frame.pts = 0
            container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return out.getvalue()

    return build


def _video(container_format: str, codec: str) -> Callable[[], bytes]:
    """Return a builder of two tiny video frames in ``container_format`` via PyAV."""

    def build() -> bytes:
        out = io.BytesIO()
        with av.open(out, mode="w", format=container_format) as container:
            stream = cast("av.VideoStream", container.add_stream(codec, rate=4))
            stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
            for pts in range(2):
                rgba = bytes([200, 40, 40, 255]) * (32 * 16)
                frame = av.VideoFrame.from_bytes(rgba, 32, 16, format="rgba")
                frame.pts = pts
                frame.time_base = Fraction(1, 4)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return out.getvalue()

    return build


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data


CASES: list[tuple[str, Callable[[], bytes], str | None]] = [
    ("png", _image("PNG"), "image/png"),
    ("jpeg", _image("JPEG"), "image/jpeg"),
    ("webp", _image("WEBP"), "image/webp"),
    ("gif", _image("GIF"), "image/gif"),
    ("wav", _wav, "audio/wav"),
    ("mp3-id3", _audio("mp3", "libmp3lame", 24000), "audio/mpeg"),
    ("mp3-frame-sync", _const(b"\xff\xfb\x90\x64" + bytes(60)), "audio/mpeg"),
    ("mp3-mpeg2-sync", _const(b"\xff\xf3\x64\xc4" + bytes(60)), "audio/mpeg"),
    ("flac", _audio("flac", "flac", 8000), "audio/flac"),
    ("ogg-opus", _audio("ogg", "libopus", 48000), "audio/ogg"),
    ("adts-aac", _audio("adts", "aac", 24000), "audio/aac"),
    ("m4a", _audio("ipod", "aac", 24000), "audio/mp4"),
    ("mp4", _video("mp4", "libx264"), "video/mp4"),
    ("mov", _video("mov", "libx264"), "video/quicktime"),
    ("webm", _video("webm", "libvpx"), "video/webm"),
    ("json-object", _const(b'  \n{"title": "x", "segments": []}'), "application/json"),
    ("json-array", _const(b"[1, 2, 3]"), "application/json"),
    ("json-bom", _const(b'\xef\xbb\xbf{"a": 1}'), "application/json"),
    ("text", _const(b"Once upon a time there was a panda."), "text/plain"),
    ("text-utf8", _const("Ünïcödé text — with dashes".encode()), "text/plain"),
    ("text-cut-multibyte", _const(("é" * 40).encode()[:SNIFF]), "text/plain"),
    ("text-cut-mid-char", _const(("é" * 40).encode()[: SNIFF - 1]), "text/plain"),
    ("unknown-binary", _const(bytes(range(256))), None),
    ("nul-bytes", _const(b"abc\x00\x00def"), None),
    ("invalid-utf8", _const(b"\xc3\x28 nope"), None),
    ("ff-not-mpeg", _const(b"\xff\xe0\xf0\x0c" + bytes(8)), None),
    ("empty", _const(b""), None),
]


@pytest.mark.parametrize(
    ("data", "expected"), [(b, e) for _, b, e in CASES], ids=[c[0] for c in CASES]
)
def test_sniff_mime(data: Callable[[], bytes], expected: str | None) -> None:
    assert sniff_mime(data()[:SNIFF]) == expected


def test_sniff_needs_only_the_first_bytes() -> None:
    png = _image("PNG")()
    assert sniff_mime(png[:8]) == "image/png"
    assert sniff_mime(_wav()[:12]) == "audio/wav"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        bytes(range(256)),
        b"\x89PNG\r\n\x1a\n" + bytes(40),
        b"\x00\x00\x00\x20ftypisom" + bytes(40),
    ],
    ids=["empty", "junk", "truncated-png", "truncated-mp4"],
)
def test_probe_rejects_undecodable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"broken\.bin"):
        probe(path)


def test_probe_reports_text_without_media_facts(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text('{"title": "A panda"}')
    info = probe(path)
    assert info.mime_type == "application/json"
    assert not info.has_audio
    assert not info.has_video
    assert info.duration_seconds is None


def test_probe_audio_only_mp4_is_audio(tmp_path: Path) -> None:
    path = tmp_path / "voice.m4a"
    path.write_bytes(_audio("ipod", "aac", 24000)())
    info = probe(path)
    assert info.mime_type == "audio/mp4"
    assert info.has_audio
    assert not info.has_video
    assert info.audio_codec == "aac"
