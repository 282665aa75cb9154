"""Media facts the SDK needs: what a blob of bytes is, and what a media file holds.

``sniff_mime`` names a format from its first bytes (no decoding). ``probe`` opens a file
with real decoders (Pillow for images, the ``wave`` module for PCM WAV, PyAV for other
audio and video) and reports size, duration, codecs and frame count.
"""

from __future__ import annotations

import codecs
import os
import wave
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["MediaInfo", "probe", "sniff_mime"]

#: How many leading bytes ``sniff_mime`` looks at; pass at least this many.
SNIFF_BYTES = 64

_MPEG_AUDIO_LAYERS = {0b01, 0b10, 0b11}  # Layer III, II, I; 0b00 is reserved (ADTS uses it)
_TEXT_CONTROL_OK = frozenset(b"\t\n\r\f\x1b")
#: PyAV's ``av.time_base`` (FFmpeg's AV_TIME_BASE): container durations are in microseconds.
_AV_TIME_BASE = 1_000_000
_WAV_CODECS = {1: "pcm_u8", 2: "pcm_s16le", 3: "pcm_s24le", 4: "pcm_s32le"}


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """Return True if ``head`` starts with a plausible MPEG audio frame header."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11  # 0b01 is reserved
    layer = (head[1] >> 1) & 0b11
    bitrate_index = head[2] >> 4
    sample_rate_index = (head[2] >> 2) & 0b11
    return (
        version != 0b01
        and layer in _MPEG_AUDIO_LAYERS
        and bitrate_index != 0b1111
        and sample_rate_index != 0b11
    )


def _is_adts_aac(head: bytes) -> bool:
    """Return True if ``head`` starts with an ADTS (raw AAC) frame header."""
    return len(head) >= 4 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def _sniff_text(head: bytes) -> str | None:
    """Return a text MIME type if ``head`` is UTF-8 text (a cut-off last character is fine)."""
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    if any(ord(ch) < 0x20 and ord(ch) not in _TEXT_CONTROL_OK for ch in text):
        return None
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        return "application/json"
    return "text/plain"


def _sniff_ftyp(brand: bytes) -> str:
    """Return the MIME type of an ISO base media file from its major brand."""
    if brand in (b"M4A ", b"M4B ", b"M4P "):
        return "audio/mp4"
    if brand == b"qt  ":
        return "video/quicktime"
    if brand in (b"avif", b"avis"):
        return "image/avif"
    if brand in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"):
        return "image/heic"
    return "video/mp4"


def sniff_mime(head: bytes) -> str | None:
    """Name the format of a blob from its first bytes (magic numbers), without decoding.

    Args:
        head: The first bytes of the blob; 64 are enough (``SNIFF_BYTES``), fewer work for
            most formats.

    Returns:
        A MIME type such as ``"image/png"``, ``"audio/wav"``, ``"video/mp4"``,
        ``"application/json"`` (first non-space character ``{`` or ``[``) or
        ``"text/plain"`` (any other UTF-8 text), or None for an unknown binary or no bytes.
    """
    if not head:
        return None
    result: str | None = None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        result = "image/png"
    elif head.startswith(b"\xff\xd8\xff"):
        result = "image/jpeg"
    elif head.startswith((b"GIF87a", b"GIF89a")):
        result = "image/gif"
    elif head.startswith(b"RIFF") and len(head) >= 12:
        result = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(
            head[8:12]
        )
    elif head.startswith(b"fLaC"):
        result = "audio/flac"
    elif head.startswith(b"OggS"):
        result = "audio/ogg"
    elif head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        result = "audio/mpeg"
    elif _is_adts_aac(head):
        result = "audio/aac"
    elif len(head) >= 12 and head[4:8] == b"ftyp":
        result = _sniff_ftyp(head[8:12])
    elif head.startswith(b"\x1a\x45\xdf\xa3"):
        result = "video/webm"
    elif head.startswith((b"II*\x00", b"MM\x00*")):
        result = "image/tiff"
    elif head.startswith(b"%PDF-"):
        result = "application/pdf"
    if result is None:
        result = _sniff_text(head)
    return result


@dataclass(frozen=True)
class MediaInfo:
    """What ``probe`` found in a media file.

    Attributes:
        mime_type: The sniffed MIME type (corrected to ``audio/...`` for an audio-only MP4,
            WebM or Matroska file), or None if the bytes had no known signature.
        width: Image or video width in pixels, or None for audio.
        height: Image or video height in pixels, or None for audio.
        duration_seconds: Length of the audio or video, or None for still images.
        has_video: Whether the file holds a video stream (an image is not a video).
        has_audio: Whether the file holds an audio stream.
        video_codec: Codec name of the first video stream, such as ``"h264"``.
        audio_codec: Codec name of the first audio stream, such as ``"aac"``, ``"mp3"``
            or ``"pcm_s16le"``.
        sample_rate: Sample rate of the first audio stream in Hz.
        frame_count: Frames in the first video stream, or in an image (1 for a still).
    """

    mime_type: str | None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    has_video: bool = False
    has_audio: bool = False
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    frame_count: int | None = None


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Open a media file with real decoders and report what it holds.

    Images are opened and decoded with Pillow; PCM WAV files are read with the ``wave``
    module (duration is exactly frames / sample rate); all other audio and video go through
    PyAV, which demuxes every packet (for the frame count) and decodes the first frame of
    each stream. Text and JSON files give a ``MediaInfo`` with only ``mime_type`` set.

    Args:
        path: The file to probe.

    Returns:
        The facts found.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is empty or cannot be decoded as an image, audio or video.
    """
    fspath = os.fspath(path)
    with open(fspath, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        raise ValueError(f"cannot probe {fspath!r}: the file is empty")
    mime = sniff_mime(head)
    if mime in ("text/plain", "application/json", "application/pdf"):
        return MediaInfo(mime_type=mime)
    if mime is not None and mime.startswith("image/"):
        return _probe_image(fspath, mime)
    if mime == "audio/wav":
        info = _probe_wave(fspath)
        if info is not None:
            return info
    return _probe_av(fspath, mime)


def _probe_image(path: str, mime: str) -> MediaInfo:
    """Decode an image with Pillow and report its size and frame count."""
    # Imported here: sniffing (every artefact) must not pay for the decoders.
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            width, height = image.size
            frames = int(getattr(image, "n_frames", 1))
            pil_mime = Image.MIME.get(image.format or "")
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise ValueError(f"cannot decode image {path!r} ({mime}): {exc}") from exc
    return MediaInfo(
        mime_type=pil_mime or mime,
        width=width,
        height=height,
        frame_count=frames,
    )


def _probe_wave(path: str) -> MediaInfo | None:
    """Read a PCM WAV header exactly, or return None if ``wave`` cannot read it."""
    try:
        with wave.open(path, "rb") as reader:
            frames = reader.getnframes()
            rate = reader.getframerate()
            width = reader.getsampwidth()
    except (wave.Error, EOFError):
        return None
    if rate <= 0:
        raise ValueError(f"cannot decode WAV {path!r}: sample rate {rate}")
    return MediaInfo(
        mime_type="audio/wav",
        duration_seconds=frames / rate,
        has_audio=True,
        audio_codec=_WAV_CODECS.get(width, f"pcm_{width * 8}bit"),
        sample_rate=rate,
    )


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    """Convert a stream timestamp to seconds, or None if unknown."""
    if value is None or time_base is None or value <= 0:
        return None
    return float(value * time_base)


def _codec_name(stream: Any) -> str:
    """Return the canonical codec name of a PyAV stream (``mp3``, not ``mp3float``)."""
    context = stream.codec_context
    codec = getattr(context, "codec", None)
    name = getattr(codec, "canonical_name", None) or context.name
    return str(name)


def _probe_av(path: str, mime: str | None) -> MediaInfo:
    """Demux and partly decode an audio or video file with PyAV."""
    import av

    try:
        with av.open(path) as container:
            return _inspect_container(container, path, mime)
    except av.FFmpegError as exc:
        raise ValueError(f"cannot decode media {path!r} ({mime or 'unknown type'}): {exc}") from exc


def _inspect_container(container: Any, path: str, mime: str | None) -> MediaInfo:
    """Collect ``MediaInfo`` from an open PyAV input container."""
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise ValueError(
            f"cannot decode media {path!r} ({mime or 'unknown type'}): no audio or video stream"
        )

    frame_count = _demux(container, video, audio, path)

    durations = [
        d
        for d in (_seconds(s.duration, s.time_base) for s in (video, audio) if s is not None)
        if d is not None
    ]
    duration: float | None = None
    if container.duration is not None and container.duration > 0:
        duration = float(Fraction(container.duration, _AV_TIME_BASE))
    elif durations:
        duration = max(durations)

    width = height = None
    if video is not None:
        width = int(video.codec_context.width) or None
        height = int(video.codec_context.height) or None

    return MediaInfo(
        mime_type=_fix_mime(mime, container.format.name, has_video=video is not None),
        width=width,
        height=height,
        duration_seconds=duration,
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=_codec_name(video) if video is not None else None,
        audio_codec=_codec_name(audio) if audio is not None else None,
        sample_rate=(int(audio.codec_context.sample_rate) or None) if audio is not None else None,
        frame_count=frame_count,
    )


def _demux(container: Any, video: Any, audio: Any, path: str) -> int | None:
    """Decode the first frame of each stream and count video frames, in one pass.

    A broken bitstream fails here rather than downstream. The demuxing stops early when the
    container already knows the video frame count and every stream has decoded a frame.
    """
    streams = [s for s in (video, audio) if s is not None]
    known = int(video.frames or 0) if video is not None else 0
    need_count = video is not None and known <= 0
    pending = {stream.index for stream in streams}
    counted = 0
    for packet in container.demux(*streams):
        stream = packet.stream
        if packet.size <= 0:
            continue
        if stream is video:
            counted += 1
        if stream.index in pending and packet.decode():
            pending.discard(stream.index)
        if not pending and not need_count:
            break
    for stream in streams:
        if stream.index in pending and stream.codec_context.decode(None):
            pending.discard(stream.index)
    if pending:
        kinds = ", ".join(s.type for s in streams if s.index in pending)
        raise ValueError(f"cannot decode media {path!r}: no decodable frame in the {kinds} stream")
    if video is None:
        return None
    return known if known > 0 else counted


_FORMAT_MIMES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "matroska,webm": "video/webm",
    "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4",
    "avi": "video/x-msvideo",
}


def _fix_mime(mime: str | None, format_name: str, *, has_video: bool) -> str | None:
    """Fill in a MIME type from the demuxer name and correct audio-only or video-in-ogg."""
    if mime is None:
        mime = _FORMAT_MIMES.get(format_name)
    if mime is None:
        return None
    if not has_video and mime in ("video/mp4", "video/webm", "video/quicktime"):
        return "audio/mp4" if mime != "video/webm" else "audio/webm"
    if has_video and mime == "audio/ogg":
        return "video/ogg"
    return mime
