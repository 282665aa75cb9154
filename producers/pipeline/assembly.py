"""Assembly: turn a :class:`Timeline` into an H.264/AAC MP4 with one ffmpeg run.

:func:`ffmpeg_command` is pure (it builds the command line); :func:`assemble` resolves the
artefacts to local files, runs ffmpeg and streams the movie into the artefact store.

The filter graph, per segment::

    visual  -> scale (fit, BT.709) -> yuv420p -> pad (letterbox) -> setsar=1 -> fps
            -> tpad (freeze the last frame forever) -> trim to the segment's frames
    speech  -> 48 kHz stereo -> apad -> atrim to the segment's samples

Segment boundaries are cut on the frame and sample grids of the whole movie (segment ``i``
gets ``round(end * fps) - round(start * fps)`` frames), so rounding never accumulates and
picture and sound stay in sync. The pairs are joined by one ``concat``; the music bed is
looped with ``aloop``, trimmed, lowered, faded out and added under the narration with
``amix=normalize=0``.

Stills are decoded once and frozen with ``tpad`` rather than re-read with ``-loop 1``, and
music is looped with ``aloop`` rather than ``-stream_loop -1``: with those input loops an
undecodable image or an empty music file makes ffmpeg spin forever instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from producers.pipeline.timeline import Timeline
from producers.storage.base import CHUNK_SIZE, ArtefactStore, StoredBlob

__all__ = ["AssemblyError", "assemble", "ffmpeg_command", "store_timeline"]

#: Output audio sample rate (AAC, stereo).
SAMPLE_RATE = 48000
#: Length of the music bed's fade-out, in seconds (at most a third of the movie).
MUSIC_FADE_SECONDS = 1.5
#: Threads given to libx264. Fixed, not ``auto`` (which follows the machine's cores):
#: x264 writes its thread count into the stream, so only a fixed count gives equal bytes.
X264_THREADS = 4
_STDERR_LINES = 20
#: ffmpeg's scheduler echoes every failure once per thread; these lines say nothing new.
_NOISE = ("Task finished with error code", "Terminating thread with return code")


class AssemblyError(RuntimeError):
    """ffmpeg failed, or an input of the timeline could not be found.

    Attributes:
        command: The ffmpeg command line (empty if ffmpeg did not run).
        stderr_tail: The last lines ffmpeg wrote to stderr.
    """

    def __init__(
        self, message: str, *, command: list[str] | None = None, stderr_tail: str = ""
    ) -> None:
        super().__init__(message)
        self.command = command or []
        self.stderr_tail = stderr_tail


def _num(value: float) -> str:
    """Format seconds or decibels for ffmpeg: fixed point, no trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _path(inputs: Mapping[str, str], uri: str) -> str:
    try:
        return inputs[uri]
    except KeyError:
        raise ValueError(f"no local path given for {uri}") from None


def ffmpeg_command(
    timeline: Timeline, inputs: Mapping[str, str], output: str, *, ffmpeg: str = "ffmpeg"
) -> list[str]:
    """Build the ffmpeg command line that renders ``timeline`` to ``output`` (no I/O).

    Inputs are, in order: each segment's visual, each segment's narration, then the music
    bed if any. Video clips get ``-t <segment duration>``; shorter clips freeze on their
    last frame.

    Args:
        timeline: The movie to render.
        inputs: A local file path for every URI the timeline names.
        output: Where ffmpeg writes the MP4.
        ffmpeg: The ffmpeg executable.

    Returns:
        The argument vector, ``ffmpeg`` first.

    Raises:
        ValueError: A URI of the timeline has no entry in ``inputs``.
    """
    w, h, fps, rate = timeline.width, timeline.height, timeline.fps, SAMPLE_RATE
    total = timeline.duration
    segments = timeline.segments
    n = len(segments)
    args = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]
    for segment in segments:
        if segment.visual_kind == "video":
            args += ["-t", _num(segment.duration)]
        args += ["-i", _path(inputs, segment.visual_uri)]
    for segment in segments:
        args += ["-i", _path(inputs, segment.narration_uri)]
    if timeline.music_uri is not None:
        args += ["-i", _path(inputs, timeline.music_uri)]

    stereo = f"aformat=sample_fmts=fltp:sample_rates={rate}:channel_layouts=stereo"
    chains = []
    for i, segment in enumerate(segments):
        frames = round(segment.end * fps) - round(segment.start * fps)
        samples = round(segment.end * rate) - round(segment.start * rate)
        chains.append(
            f"[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2"
            f":out_color_matrix=bt709:out_range=tv,format=yuv420p,"
            f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={fps},"
            f"tpad=stop=-1:stop_mode=clone,trim=end_frame={frames},setpts=N/{fps}/TB[v{i}]"
        )
        chains.append(
            f"[{n + i}:a]{stereo},apad=whole_len={samples},atrim=end_sample={samples},"
            f"asetpts=N/SR/TB[a{i}]"
        )
    pairs = "".join(f"[v{i}][a{i}]" for i in range(n))
    speech = "[narration]" if timeline.music_uri is not None else "[aout]"
    chains.append(f"{pairs}concat=n={n}:v=1:a=1[video]{speech}")
    chains.append(
        "[video]setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709[vout]"
    )
    if timeline.music_uri is not None:
        fade = min(MUSIC_FADE_SECONDS, total / 3)
        chains.append(
            f"[{2 * n}:a]aloop=loop=-1:size=2147483647,{stereo},"
            f"atrim=end_sample={round(total * rate)},asetpts=N/SR/TB,"
            f"volume={_num(timeline.music_volume_db)}dB,"
            f"afade=t=out:st={_num(total - fade)}:d={_num(fade)}[music]"
        )
        chains.append("[narration][music]amix=inputs=2:duration=first:normalize=0[aout]")

    args += ["-filter_complex", ";".join(chains), "-map", "[vout]", "-map", "[aout]"]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    args += ["-threads:v", str(X264_THREADS)]
    args += ["-c:a", "aac", "-b:a", "160k", "-ar", str(rate), "-ac", "2"]
    args += ["-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact"]
    args += ["-flags:v", "+bitexact", "-flags:a", "+bitexact"]
    args += ["-t", _num(total), "-y", output]
    return args


def _default_ffmpeg() -> str:
    import imageio_ffmpeg  # type: ignore[import-untyped]

    return str(imageio_ffmpeg.get_ffmpeg_exe())


async def _run(command: list[str]) -> None:
    """Run ffmpeg; raise :class:`AssemblyError` with its stderr tail if it fails."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await process.communicate()
    except BaseException:  # cancelled: do not leave ffmpeg running
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        text = stderr.decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if not any(n in line for n in _NOISE)]
        tail = "\n".join(lines[-_STDERR_LINES:]).strip()
        raise AssemblyError(
            f"ffmpeg exited with code {process.returncode}:\n{tail}\n"
            f"command: {shlex.join(command)}",
            command=command,
            stderr_tail=tail,
        )


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    """Read a file in :data:`CHUNK_SIZE` chunks without blocking the event loop."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
            yield chunk
    finally:
        handle.close()


async def assemble(
    timeline: Timeline,
    store: ArtefactStore,
    *,
    workdir: Path | None = None,
    ffmpeg: str | None = None,
) -> StoredBlob:
    """Render ``timeline`` to an MP4 and store it.

    Args:
        timeline: The movie to render.
        store: Holds every artefact the timeline names; receives the movie.
        workdir: Where to make the temporary directory for the output (created if
            missing; default: the system's temp dir). The temporary directory is always
            removed.
        ffmpeg: The ffmpeg executable (default: the one bundled with ``imageio-ffmpeg``).

    Returns:
        The stored movie (``video/mp4``).

    Raises:
        AssemblyError: An artefact is missing from the store, or ffmpeg failed (the message
            holds the end of ffmpeg's stderr and the command).
    """
    uris = [timeline.music_uri] if timeline.music_uri is not None else []
    uris += [uri for s in timeline.segments for uri in (s.visual_uri, s.narration_uri)]
    inputs: dict[str, str] = {}
    for uri in dict.fromkeys(uris):
        try:
            inputs[uri] = await store.local_path(uri)
        except FileNotFoundError as error:
            raise AssemblyError(f"the timeline names {uri}, which is not stored") from error
    if ffmpeg is None:
        ffmpeg = await asyncio.to_thread(_default_ffmpeg)
    if workdir is not None:
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="assembly-", dir=workdir) as folder:
        output = Path(folder) / "movie.mp4"
        await _run(ffmpeg_command(timeline, inputs, str(output), ffmpeg=ffmpeg))
        return await store.put_stream(_chunks(output), mime_type="video/mp4")


async def store_timeline(timeline: Timeline, store: ArtefactStore) -> StoredBlob:
    """Store the timeline as indented JSON (``application/json``)."""
    data = timeline.model_dump_json(indent=2).encode()
    return await store.put_bytes(data, mime_type="application/json")
