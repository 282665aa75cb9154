"""Deterministic media generators for the mock transport.

Every generator returns real, decodable media (PNG/JPEG/WebP through Pillow, WAV through
``wave``, MP3 and H.264/AAC MP4 through PyAV) and is byte-identical for identical
arguments: colours and tones come from SHA-256 of the inputs, encoders run single-threaded
with bit-exact muxer flags, and no timestamps are written. Sizes are small so a test
suite can make dozens of them quickly.
"""

from __future__ import annotations

import array
import colorsys
import functools
import hashlib
import io
import math
import os
import re
import sys
import tempfile
import wave
from collections.abc import Iterator
from fractions import Fraction

import av
from PIL import Image, ImageDraw, ImageFont

from producers.clients.base import estimate_speech_seconds

__all__ = [
    "aspect_size",
    "estimate_speech_seconds",
    "render_audio",
    "render_image",
    "render_video",
]

_RATIO_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:/xX]\s*(\d+(?:\.\d+)?)\s*$")
_IMAGE_FORMATS = {
    "png": "PNG",
    "image/png": "PNG",
    "jpeg": "JPEG",
    "jpg": "JPEG",
    "image/jpeg": "JPEG",
    "webp": "WEBP",
    "image/webp": "WEBP",
}
_AUDIO_FORMATS = {
    "wav": "wav",
    "wave": "wav",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "mp3": "mp3",
    "mpeg": "mp3",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}
#: Sample rates libmp3lame accepts (MPEG-1, MPEG-2 and MPEG-2.5 Layer III).
_MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
#: Sample rates the native AAC encoder accepts.
_AAC_RATE = 24000
#: A minor pentatonic over two octaves; the tone pattern picks notes from it.
_SCALE_HZ = (220.0, 261.63, 293.66, 329.63, 392.0, 440.0, 523.25, 587.33, 659.25, 783.99)
_NOTES_PER_CYCLE = 4
_NOTE_SECONDS = 0.25
_AMPLITUDE = 0.12  # about -18 dBFS: quiet but clearly not silence
_MOCK_LABEL = "MOCK"


def _parse_ratio(aspect_ratio: str | None) -> tuple[float, float] | None:
    """Parse ``"16:9"`` (also ``"16/9"``, ``"16x9"``, ``"2.39:1"``) or return None."""
    if not aspect_ratio:
        return None
    match = _RATIO_RE.match(aspect_ratio)
    if match is None:
        return None
    w, h = float(match.group(1)), float(match.group(2))
    if w <= 0 or h <= 0:
        return None
    return w, h


def _round_dim(value: float, *, even: bool) -> int:
    """Round half up to an integer (an even one if asked), never below 1 (or 2)."""
    if even:
        return max(2, 2 * math.floor(value / 2 + 0.5))
    return max(1, math.floor(value + 0.5))


def aspect_size(
    aspect_ratio: str | None,
    *,
    long_side: int = 640,
    width: int | None = None,
    height: int | None = None,
    even: bool = False,
) -> tuple[int, int]:
    """Compute the pixel size of a mock image or video.

    The longer side is ``long_side`` and the shorter one follows the ratio, rounded:
    ``"16:9"`` gives (640, 360), ``"9:16"`` (360, 640), ``"1:1"`` (640, 640). A ratio the
    function does not understand (None, ``"match_input_image"``, ``"custom"``) means 1:1.

    An explicit ``width`` and ``height`` win over the ratio; they are scaled down
    proportionally if their longer side exceeds ``long_side`` (never scaled up). With only
    one of them given, the other follows the ratio.

    Args:
        aspect_ratio: A ``"W:H"`` string, or None.
        long_side: The longest side allowed, in pixels.
        width: An explicit width, if the request named one.
        height: An explicit height, if the request named one.
        even: Round both sides to even numbers (needed for yuv420p video).

    Returns:
        ``(width, height)`` in pixels.

    Raises:
        ValueError: If ``long_side``, ``width`` or ``height`` is not positive.
    """
    if long_side <= 0:
        raise ValueError(f"long_side must be positive, got {long_side}")
    for name, value in (("width", width), ("height", height)):
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    ratio = _parse_ratio(aspect_ratio) or (1.0, 1.0)
    w: float
    h: float
    if width is not None and height is not None:
        w, h = float(width), float(height)
    elif width is not None:
        w, h = float(width), width * ratio[1] / ratio[0]
    elif height is not None:
        w, h = height * ratio[0] / ratio[1], float(height)
    else:
        w, h = ratio
        scale = long_side / max(w, h)
        return _round_dim(w * scale, even=even), _round_dim(h * scale, even=even)
    if max(w, h) > long_side:
        scale = long_side / max(w, h)
        w, h = w * scale, h * scale
    return _round_dim(w, even=even), _round_dim(h, even=even)


def _digest(*parts: object) -> bytes:
    """Return SHA-256 over the ``repr`` of the parts (stable across processes)."""
    return hashlib.sha256(repr(parts).encode("utf-8")).digest()


def _background(prompt: str, index: int) -> tuple[int, int, int]:
    """Return a soft background colour derived from the prompt and index."""
    digest = _digest("background", prompt, index)
    hue = int.from_bytes(digest[:2], "big") / 65535
    saturation = 0.30 + digest[2] / 255 * 0.30
    value = 0.78 + digest[3] / 255 * 0.15
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def _ink(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Return black or white, whichever reads better on ``background``."""
    r, g, b = background
    luminance = 0.299 * r + 0.587 * g + 0.114 * b
    return (20, 20, 20) if luminance > 140 else (245, 245, 245)


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Return Pillow's built-in scalable font at ``size`` pixels (cached)."""
    return ImageFont.load_default(size=size)


def _text_width(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> float:
    """Measure the advance width of ``text`` in ``font``."""
    return float(font.getlength(text))


def _wrap(
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    max_width: float,
    max_lines: int,
) -> list[str]:
    """Greedily word-wrap ``text`` to lines no wider than ``max_width`` pixels.

    Words wider than a line are broken between characters. Stops after ``max_lines + 1``
    lines (enough to know the text does not fit). Line widths are the sum of cached word
    widths, which ignores kerning across spaces; callers leave a small margin.
    """
    space = _text_width(font, " ")
    widths: dict[str, float] = {}
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line: list[str] = []
        line_width = 0.0
        for word in paragraph.split():
            if word not in widths:
                widths[word] = _text_width(font, word)
            word_width = widths[word]
            extra = word_width + (space if line else 0.0)
            if line_width + extra <= max_width:
                line.append(word)
                line_width += extra
                continue
            if line:
                lines.append(" ".join(line))
            line, line_width = [], 0.0
            while word_width > max_width and len(word) > 1:
                cut = max(1, int(len(word) * max_width / word_width))
                while cut > 1 and _text_width(font, word[:cut]) > max_width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
                word_width = _text_width(font, word)
            line, line_width = [word], word_width
            if len(lines) > max_lines:
                return lines
        if line:
            lines.append(" ".join(line))
        if len(lines) > max_lines:
            return lines
    return lines


def _fit_text(
    text: str, box_width: int, box_height: int, *, max_size: int, min_size: int
) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, list[str], int]:
    """Choose the largest font size at which ``text`` fits the box; truncate at the smallest.

    Returns:
        The font, the wrapped lines and the line height in pixels.
    """
    max_width = box_width * 0.97
    # Start near the size at which the text's area fills the box, not at the largest size.
    estimate = math.sqrt(box_width * box_height / (max(1, len(text)) * 0.7))
    size = max(min_size, min(max_size, int(estimate * 1.15)))
    while True:
        font = _font(size)
        line_height = round(size * 1.25)
        max_lines = max(1, box_height // line_height)
        lines = _wrap(text, font, max_width, max_lines)
        if len(lines) <= max_lines or size <= min_size:
            break
        size = max(min_size, min(size - 1, int(size * 0.9)))
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and _text_width(font, last + "…") > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    return font, lines, line_height


def _draw_label(
    draw: ImageDraw.ImageDraw, text: str, size: tuple[int, int], ink: tuple[int, int, int]
) -> int:
    """Draw a small boxed label in the top-left corner; return its bottom edge."""
    width, height = size
    font_size = max(8, min(width, height) // 20)
    font = _font(font_size)
    pad = max(2, font_size // 4)
    margin = max(2, min(width, height) // 40)
    text_width = _text_width(font, text)
    box = (margin, margin, margin + text_width + 2 * pad, margin + font_size + 2 * pad)
    draw.rectangle(box, outline=ink, width=max(1, font_size // 10))
    draw.text((margin + pad, margin + pad), text, font=font, fill=ink)
    return int(box[3])


def _prompt_card(
    prompt: str, size: tuple[int, int], *, index: int, label: str, reserve_bottom: int = 0
) -> Image.Image:
    """Draw the background, the MOCK label and the word-wrapped prompt."""
    width, height = size
    background = _background(prompt, index)
    ink = _ink(background)
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    top = _draw_label(draw, label, size, ink)
    margin = max(4, min(width, height) // 16)
    box_top = max(top + margin // 2, margin)
    box_width = width - 2 * margin
    box_height = height - box_top - margin - reserve_bottom
    text = " ".join(prompt.split())
    if text and box_width > 4 and box_height > 4:
        font, lines, line_height = _fit_text(
            text,
            box_width,
            box_height,
            max_size=max(8, min(width, height) // 9),
            min_size=max(6, min(width, height) // 40),
        )
        y = box_top + (box_height - len(lines) * line_height) // 2
        for line in lines:
            x = (width - _text_width(font, line)) / 2
            draw.text((x, y), line, font=font, fill=ink)
            y += line_height
    return image


def _normalise(value: str, table: dict[str, str], what: str) -> str:
    """Look a format name up case-insensitively or raise ValueError listing the choices."""
    key = value.strip().lower().lstrip(".")
    try:
        return table[key]
    except KeyError:
        choices = ", ".join(sorted({k for k in table if "/" not in k}))
        raise ValueError(f"unsupported {what} format {value!r}; use one of {choices}") from None


def render_image(
    prompt: str,
    *,
    aspect_ratio: str | None = None,
    width: int | None = None,
    height: int | None = None,
    format: str = "png",
    index: int = 0,
) -> bytes:
    """Render a mock image showing the prompt.

    The size comes from ``aspect_size(aspect_ratio, width=width, height=height)`` (long
    side 640). The background colour is derived from a hash of ``(prompt, index)``; the
    prompt is drawn word-wrapped (shrunk, then truncated with an ellipsis, if long) under a
    small ``MOCK`` label (``MOCK #n`` for ``index`` n > 0).

    Args:
        prompt: The text to show.
        aspect_ratio: A ``"W:H"`` ratio; unknown values mean 1:1.
        width: An explicit width in pixels.
        height: An explicit height in pixels.
        format: ``"png"``, ``"jpeg"`` (or ``"jpg"``) or ``"webp"``; MIME types work too.
        index: Which of several outputs of one request this is (changes the colour).

    Returns:
        The encoded image bytes.

    Raises:
        ValueError: If the format is unsupported or a dimension is not positive.
    """
    pil_format = _normalise(format, _IMAGE_FORMATS, "image")
    size = aspect_size(aspect_ratio, width=width, height=height)
    label = _MOCK_LABEL if index == 0 else f"{_MOCK_LABEL} #{index}"
    image = _prompt_card(prompt, size, index=index, label=label)
    out = io.BytesIO()
    if pil_format == "PNG":
        image.save(out, format="PNG", optimize=False, compress_level=6)
    elif pil_format == "JPEG":
        image.save(out, format="JPEG", quality=85)
    else:
        image.save(out, format="WEBP", quality=80, method=2)
    return out.getvalue()


def _tone_cycle(text: str, sample_rate: int) -> array.array[int]:
    """Return one cycle of the quiet note pattern for ``text`` as mono 16-bit samples."""
    digest = _digest("tone", text)
    note_samples = max(1, round(sample_rate * _NOTE_SECONDS))
    ramp = max(1, min(note_samples // 2, round(sample_rate * 0.012)))
    peak = _AMPLITUDE * 32767
    samples: array.array[int] = array.array("h")
    for note in range(_NOTES_PER_CYCLE):
        freq = _SCALE_HZ[digest[note] % len(_SCALE_HZ)]
        step = 2 * math.pi * freq / sample_rate
        for i in range(note_samples):
            envelope = 1.0
            if i < ramp:
                envelope = 0.5 - 0.5 * math.cos(math.pi * i / ramp)
            elif i >= note_samples - ramp:
                envelope = 0.5 - 0.5 * math.cos(math.pi * (note_samples - 1 - i) / ramp)
            samples.append(round(peak * envelope * math.sin(step * i)))
    return samples


def _pcm(text: str, n_samples: int, sample_rate: int, channels: int) -> bytes:
    """Return ``n_samples`` frames of little-endian 16-bit PCM of the tone pattern."""
    cycle = _tone_cycle(text, sample_rate)
    if channels > 1:
        cycle = array.array("h", (value for value in cycle for _ in range(channels)))
    if sys.byteorder != "little":
        cycle.byteswap()
    raw = cycle.tobytes()
    frame_bytes = 2 * channels
    total = n_samples * frame_bytes
    repeats, rest = divmod(total, len(raw))
    return raw * repeats + raw[:rest]


def _check_audio_args(duration_seconds: float, sample_rate: int, channels: int) -> None:
    """Raise ValueError for a non-positive duration or rate, or an unsupported channel count."""
    if not math.isfinite(duration_seconds) or duration_seconds <= 0:
        raise ValueError(f"duration_seconds must be positive, got {duration_seconds}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")


def _audio_frames(
    pcm: bytes, sample_rate: int, channels: int, chunk: int = 4096
) -> Iterator[av.AudioFrame]:
    """Cut interleaved s16 PCM into PyAV audio frames with running timestamps."""
    layout = "mono" if channels == 1 else "stereo"
    frame_bytes = 2 * channels
    total = len(pcm) // frame_bytes
    position = 0
    while position < total:
        count = min(chunk, total - position)
        frame = av.AudioFrame(format="s16", layout=layout, samples=count)
        frame.planes[0].update(pcm[position * frame_bytes : (position + count) * frame_bytes])
        frame.sample_rate = sample_rate
        frame.time_base = Fraction(1, sample_rate)
        frame.pts = position
        position += count
        yield frame


def render_audio(
    duration_seconds: float,
    *,
    text: str = "",
    format: str = "wav",
    sample_rate: int = 24000,
    channels: int = 1,
) -> bytes:
    """Render mock audio: a quiet, repeating pattern of sine notes chosen by ``text``.

    WAV is 16-bit PCM with exactly ``round(duration_seconds * sample_rate)`` frames. MP3 is
    encoded by libmp3lame with a LAME/Xing header, so decoders trim the encoder delay and
    report the duration to within a few milliseconds.

    Args:
        duration_seconds: How long the audio lasts; must be positive.
        text: Picks the notes (for a TTS mock, the text spoken).
        format: ``"wav"`` or ``"mp3"``; MIME types work too.
        sample_rate: Samples per second; MP3 needs one of 8000, 11025, 12000, 16000,
            22050, 24000, 32000, 44100 or 48000.
        channels: 1 (mono) or 2 (stereo, the same signal twice).

    Returns:
        The encoded audio bytes.

    Raises:
        ValueError: For an unsupported format, rate or channel count, or a non-positive
            duration.
    """
    kind = _normalise(format, _AUDIO_FORMATS, "audio")
    _check_audio_args(duration_seconds, sample_rate, channels)
    n_samples = max(1, round(duration_seconds * sample_rate))
    pcm = _pcm(text, n_samples, sample_rate, channels)
    if kind == "wav":
        out = io.BytesIO()
        with wave.open(out, "wb") as writer:
            writer.setnchannels(channels)
            writer.setsampwidth(2)
            writer.setframerate(sample_rate)
            writer.writeframes(pcm)
        return out.getvalue()
    if sample_rate not in _MP3_RATES:
        rates = ", ".join(str(rate) for rate in sorted(_MP3_RATES))
        raise ValueError(f"MP3 cannot use sample_rate {sample_rate}; use one of {rates}")
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp3", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libmp3lame", rate=sample_rate)
        stream.layout = "mono" if channels == 1 else "stereo"
        stream.bit_rate = 48000 * channels
        stream.codec_context.options = {"compression_level": "9"}  # fastest LAME quality
        stream.codec_context.thread_count = 1
        for frame in _audio_frames(pcm, sample_rate, channels):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def render_video(
    prompt: str,
    *,
    duration_seconds: float,
    aspect_ratio: str | None = None,
    width: int | None = None,
    height: int | None = None,
    fps: int = 8,
    long_side: int = 320,
    with_audio: bool = False,
) -> bytes:
    """Render a mock MP4: the prompt card with a frame counter and a moving progress bar.

    The video is H.264 (libx264, ultrafast preset, constrained baseline, yuv420p, one
    thread) with ``round(duration_seconds * fps)`` frames (at least one), even dimensions
    from ``aspect_size(..., long_side=long_side, even=True)`` and the ``moov`` box first
    (``+faststart``). ``with_audio`` adds a mono 24 kHz AAC track of the same duration
    carrying the tone pattern of ``render_audio`` for the prompt.

    Args:
        prompt: The text to show.
        duration_seconds: How long the video lasts; must be positive.
        aspect_ratio: A ``"W:H"`` ratio; unknown values mean 1:1.
        width: An explicit width in pixels.
        height: An explicit height in pixels.
        fps: Frames per second; must be positive.
        long_side: The longest side allowed, in pixels.
        with_audio: Add an AAC audio track.

    Returns:
        The MP4 bytes.

    Raises:
        ValueError: For a non-positive duration, fps or dimension.
    """
    if not math.isfinite(duration_seconds) or duration_seconds <= 0:
        raise ValueError(f"duration_seconds must be positive, got {duration_seconds}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    size = aspect_size(aspect_ratio, long_side=long_side, width=width, height=height, even=True)
    n_frames = max(1, round(duration_seconds * fps))
    pcm = b""
    if with_audio:
        n_samples = round(n_frames * _AAC_RATE / fps)
        pcm = _pcm(prompt, n_samples, _AAC_RATE, 1)
    with tempfile.TemporaryDirectory(prefix="mock-video-") as folder:
        path = os.path.join(folder, "mock.mp4")
        _write_video(path, prompt, size, n_frames, fps, pcm)
        with open(path, "rb") as handle:
            return handle.read()


def _write_video(
    path: str, prompt: str, size: tuple[int, int], n_frames: int, fps: int, pcm: bytes
) -> None:
    """Encode the frames (and the PCM, if any) into an MP4 at ``path``."""
    width, height = size
    bar_height = max(2, height // 36)
    counter_size = max(8, min(width, height) // 14)
    reserve = bar_height + counter_size + max(4, height // 30)
    card = _prompt_card(prompt, size, index=0, label=_MOCK_LABEL, reserve_bottom=reserve)
    ink = _ink(_background(prompt, 0))
    counter_font = _font(counter_size)
    time_base = Fraction(1, fps)
    options = {"movflags": "+faststart", "fflags": "+bitexact"}
    with av.open(path, mode="w", format="mp4", options=options) as container:
        video = container.add_stream(
            "libx264", rate=fps, options={"preset": "ultrafast", "crf": "30"}
        )
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = time_base
        video.codec_context.thread_count = 1
        audio = None
        audio_frames: Iterator[av.AudioFrame] = iter(())
        if pcm:
            audio = container.add_stream("aac", rate=_AAC_RATE)
            audio.layout = "mono"
            audio.bit_rate = 48000
            audio_frames = _audio_frames(pcm, _AAC_RATE, 1, chunk=_AAC_RATE // fps or 1)
        for number in range(n_frames):
            image = card.copy()
            draw = ImageDraw.Draw(image)
            progress = (number + 1) / n_frames
            draw.rectangle((0, height - bar_height, round(width * progress), height), fill=ink)
            counter = f"{number + 1}/{n_frames}  {number / fps:.2f}s"
            text_x = (width - _text_width(counter_font, counter)) / 2
            text_y = height - bar_height - counter_size - max(2, height // 60)
            draw.text((text_x, text_y), counter, font=counter_font, fill=ink)
            rgba = image.convert("RGBA").tobytes()
            frame = av.VideoFrame.from_bytes(rgba, width, height, format="rgba")
            frame.pts = number
            frame.time_base = time_base
            container.mux(video.encode(frame))
            if audio is not None:
                # Interleave: one chunk of audio per video frame keeps the muxer's queue short.
                chunk = next(audio_frames, None)
                if chunk is not None:
                    container.mux(audio.encode(chunk))
        container.mux(video.encode(None))
        if audio is not None:
            for chunk in audio_frames:
                container.mux(audio.encode(chunk))
            container.mux(audio.encode(None))
