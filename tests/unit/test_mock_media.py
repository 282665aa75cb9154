"""Mock media generators, checked with real decoders (Pillow, ``wave``, PyAV via ``probe``)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import pytest
from PIL import Image

from producers.clients.mock_media import (
    aspect_size,
    estimate_speech_seconds,
    render_audio,
    render_image,
    render_video,
)
from producers.sdk.media import MediaInfo, probe, sniff_mime

RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "21:9": 21 / 9, "4:3": 4 / 3, "3:2": 1.5}
PROMPT = "A red panda explains the water cycle beside a misty mountain lake"


def _probe_bytes(tmp_path: Path, data: bytes, name: str) -> MediaInfo:
    path = tmp_path / name
    path.write_bytes(data)
    return probe(path)


def _ratio_matches(width: int, height: int, ratio: float, *, step: int = 1) -> bool:
    """True if ``width / height`` is ``ratio`` up to rounding the short side by ``step``."""
    if width >= height:
        return abs(width / ratio - height) <= step
    return abs(height * ratio - width) <= step


# ----- aspect_size -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"aspect_ratio": "16:9"}, (640, 360)),
        ({"aspect_ratio": "9:16"}, (360, 640)),
        ({"aspect_ratio": "1:1"}, (640, 640)),
        ({"aspect_ratio": "4:3"}, (640, 480)),
        ({"aspect_ratio": "3:2"}, (640, 427)),
        ({"aspect_ratio": "21:9"}, (640, 274)),
        ({"aspect_ratio": "21:9", "even": True}, (640, 274)),
        ({"aspect_ratio": "3:2", "even": True}, (640, 426)),
        ({"aspect_ratio": "16:9", "long_side": 320, "even": True}, (320, 180)),
        ({"aspect_ratio": None}, (640, 640)),
        ({"aspect_ratio": "match_input_image"}, (640, 640)),
        ({"aspect_ratio": "custom"}, (640, 640)),
        ({"aspect_ratio": "custom", "width": 1920, "height": 1080}, (640, 360)),
        ({"aspect_ratio": "1:1", "width": 300, "height": 200}, (300, 200)),
        ({"aspect_ratio": "16:9", "width": 1280}, (640, 360)),
        ({"aspect_ratio": None, "height": 100}, (100, 100)),
        ({"aspect_ratio": None, "width": 1001, "height": 333, "even": True}, (640, 212)),
        ({"aspect_ratio": "9:16", "width": 15, "height": 7, "even": True}, (16, 8)),
    ],
)
def test_aspect_size(kwargs: dict[str, object], expected: tuple[int, int]) -> None:
    assert aspect_size(**kwargs) == expected  # type: ignore[arg-type]


def test_aspect_size_rejects_non_positive_sizes() -> None:
    with pytest.raises(ValueError, match="width"):
        aspect_size("16:9", width=0)


# ----- images ------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "value"), RATIOS.items())
def test_png_decodes_with_the_requested_aspect(ratio: str, value: float) -> None:
    data = render_image(PROMPT, aspect_ratio=ratio)
    assert sniff_mime(data[:64]) == "image/png"
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "PNG"
        assert max(image.size) == 640
        assert _ratio_matches(*image.size, value)


@pytest.mark.parametrize(
    ("fmt", "pil_format", "mime"),
    [("jpeg", "JPEG", "image/jpeg"), ("jpg", "JPEG", "image/jpeg"), ("webp", "WEBP", "image/webp")],
)
def test_jpeg_and_webp_decode(fmt: str, pil_format: str, mime: str) -> None:
    data = render_image(PROMPT, aspect_ratio="4:3", format=fmt)
    assert sniff_mime(data[:64]) == mime
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == pil_format
        assert image.size == (640, 480)


def test_explicit_size_wins() -> None:
    with Image.open(
        io.BytesIO(render_image(PROMPT, aspect_ratio="16:9", width=200, height=300))
    ) as image:
        assert image.size == (200, 300)


def test_images_are_deterministic_and_depend_on_inputs() -> None:
    first = render_image(PROMPT, aspect_ratio="16:9")
    assert render_image(PROMPT, aspect_ratio="16:9") == first
    assert render_image(PROMPT + "!", aspect_ratio="16:9") != first
    assert render_image(PROMPT, aspect_ratio="16:9", index=1) != first
    assert render_image(PROMPT, aspect_ratio="16:9", format="webp") == render_image(
        PROMPT, aspect_ratio="16:9", format="webp"
    )


def _ink_pixels_below_label(data: bytes) -> int:
    """Count pixels that differ from the background below the top-left MOCK label."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    body = rgb.crop((0, height // 6, width, height))
    colours = body.getcolors(maxcolors=body.width * body.height) or []
    background_count = max(count for count, _ in colours)
    return body.width * body.height - background_count


def test_prompt_text_is_visible() -> None:
    blank = render_image("", aspect_ratio="16:9")
    worded = render_image(PROMPT, aspect_ratio="16:9")
    assert _ink_pixels_below_label(blank) == 0
    assert _ink_pixels_below_label(worded) > 2000
    # Same colour seed (prompt and index), different words: different pixels.
    with (
        Image.open(io.BytesIO(worded)) as a,
        Image.open(io.BytesIO(render_image(PROMPT.upper(), aspect_ratio="16:9"))) as b,
    ):
        assert a.convert("RGB").tobytes() != b.convert("RGB").tobytes()


def test_very_long_prompt_still_renders_quickly() -> None:
    data = render_image(" ".join(f"word{i}" for i in range(2000)), aspect_ratio="9:16")
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (360, 640)


def test_unknown_image_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="tiff"):
        render_image(PROMPT, format="tiff")


# ----- audio -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "rate", "channels"),
    [(30.0, 24000, 1), (1.2345, 24000, 1), (2.0, 44100, 2), (0.01, 16000, 1)],
)
def test_wav_duration_is_exact(tmp_path: Path, duration: float, rate: int, channels: int) -> None:
    data = render_audio(duration, text="hello", sample_rate=rate, channels=channels)
    expected_frames = round(duration * rate)
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getnframes() == expected_frames
        assert reader.getframerate() == rate
        assert reader.getnchannels() == channels
        assert reader.getsampwidth() == 2
        samples = reader.readframes(reader.getnframes())
    assert any(samples), "the mock audio must not be silence"
    info = _probe_bytes(tmp_path, data, "a.wav")
    assert info.mime_type == "audio/wav"
    assert info.duration_seconds == expected_frames / rate
    assert info.has_audio
    assert not info.has_video
    assert info.sample_rate == rate
    assert info.audio_codec == "pcm_s16le"


@pytest.mark.parametrize(("duration", "rate"), [(3.7, 24000), (12.0, 44100)])
def test_mp3_duration_within_a_tenth(tmp_path: Path, duration: float, rate: int) -> None:
    data = render_audio(duration, text="hello", format="mp3", sample_rate=rate)
    assert sniff_mime(data[:64]) == "audio/mpeg"
    info = _probe_bytes(tmp_path, data, "a.mp3")
    assert info.mime_type == "audio/mpeg"
    assert info.audio_codec == "mp3"
    assert info.sample_rate == rate
    assert info.duration_seconds is not None
    assert abs(info.duration_seconds - duration) < 0.1
    with av.open(str(tmp_path / "a.mp3")) as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    assert abs(decoded / rate - duration) < 0.1


def test_audio_is_deterministic_and_depends_on_text() -> None:
    wav = render_audio(2.0, text="one")
    assert render_audio(2.0, text="one") == wav
    assert render_audio(2.0, text="two") != wav
    mp3 = render_audio(2.0, text="one", format="mp3")
    assert render_audio(2.0, text="one", format="mp3") == mp3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"duration_seconds": 0}, "duration"),
        ({"duration_seconds": 1, "format": "ogg"}, "ogg"),
        ({"duration_seconds": 1, "channels": 3}, "channels"),
        ({"duration_seconds": 1, "format": "mp3", "sample_rate": 12345}, "sample_rate"),
    ],
)
def test_bad_audio_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        render_audio(**kwargs)  # type: ignore[arg-type]


def test_estimate_speech_seconds() -> None:
    assert estimate_speech_seconds("") == 1.0
    assert estimate_speech_seconds("one two") == 1.0
    assert estimate_speech_seconds(" ".join(["word"] * 150)) == 60.0
    assert estimate_speech_seconds(" ".join(["word"] * 30), words_per_minute=120) == 15.0


# ----- video -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_16_9() -> bytes:
    return render_video(PROMPT, duration_seconds=2.3, aspect_ratio="16:9")


@pytest.fixture(scope="module")
def clip_with_audio() -> bytes:
    return render_video(PROMPT, duration_seconds=3.0, aspect_ratio="9:16", with_audio=True)


def test_mp4_video_stream(tmp_path: Path, clip_16_9: bytes) -> None:
    assert sniff_mime(clip_16_9[:64]) == "video/mp4"
    info = _probe_bytes(tmp_path, clip_16_9, "v.mp4")
    assert info.mime_type == "video/mp4"
    assert info.has_video
    assert not info.has_audio
    assert info.video_codec == "h264"
    assert (info.width, info.height) == (320, 180)
    assert info.frame_count == round(2.3 * 8)
    assert info.duration_seconds is not None
    assert abs(info.duration_seconds - 2.3) <= 1 / 8


@pytest.mark.parametrize(("ratio", "value"), RATIOS.items())
def test_mp4_dimensions_are_even_and_keep_the_aspect(
    tmp_path: Path, ratio: str, value: float
) -> None:
    info = _probe_bytes(
        tmp_path, render_video("x", duration_seconds=0.25, aspect_ratio=ratio), "v.mp4"
    )
    assert info.width is not None
    assert info.height is not None
    assert info.width % 2 == 0
    assert info.height % 2 == 0
    assert max(info.width, info.height) == 320
    assert _ratio_matches(info.width, info.height, value, step=2)
    assert info.frame_count == 2


def test_mp4_frames_change_over_time(tmp_path: Path, clip_16_9: bytes) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(clip_16_9)
    with av.open(str(path)) as container:
        frames = [bytes(frame.to_rgb().planes[0]) for frame in container.decode(video=0)]
    assert len(frames) == round(2.3 * 8)
    assert frames[0] != frames[-1]
    assert len(set(frames)) > len(frames) // 2


def test_mp4_with_audio_has_an_aac_track(tmp_path: Path, clip_with_audio: bytes) -> None:
    info = _probe_bytes(tmp_path, clip_with_audio, "va.mp4")
    assert info.has_video
    assert info.has_audio
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    assert (info.width, info.height) == (180, 320)
    assert info.duration_seconds is not None
    assert abs(info.duration_seconds - 3.0) <= 1 / 8
    with av.open(str(tmp_path / "va.mp4")) as container:
        audio = container.streams.audio[0]
        assert audio.duration is not None
        assert audio.time_base is not None
        assert abs(float(audio.duration * audio.time_base) - 3.0) < 0.1


def test_mp4_is_deterministic(clip_16_9: bytes, clip_with_audio: bytes) -> None:
    assert render_video(PROMPT, duration_seconds=2.3, aspect_ratio="16:9") == clip_16_9
    assert (
        render_video(PROMPT, duration_seconds=3.0, aspect_ratio="9:16", with_audio=True)
        == clip_with_audio
    )
    assert render_video(PROMPT + "?", duration_seconds=2.3, aspect_ratio="16:9") != clip_16_9


def test_mp4_explicit_size_and_minimum_one_frame(tmp_path: Path) -> None:
    info = _probe_bytes(
        tmp_path, render_video("tiny", duration_seconds=0.01, width=101, height=51), "v.mp4"
    )
    assert (info.width, info.height) == (102, 52)
    assert info.frame_count == 1


def test_bad_video_arguments() -> None:
    with pytest.raises(ValueError, match="duration"):
        render_video(PROMPT, duration_seconds=-1)
    with pytest.raises(ValueError, match="fps"):
        render_video(PROMPT, duration_seconds=1, fps=0)
