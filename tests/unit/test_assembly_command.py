"""The assembly's ffmpeg command line, built without running anything."""

from __future__ import annotations

import pytest

from producers.pipeline.assembly import ffmpeg_command
from producers.pipeline.timeline import NarrationClip, Timeline, Visual, build_timeline

INPUTS = {
    "file:///s/red": "/media/red.png",
    "file:///s/blue": "/media/blue.jpg",
    "file:///s/clip": "/media/clip.mp4",
    "file:///s/n0": "/media/n0.wav",
    "file:///s/n1": "/media/n1.wav",
    "file:///s/n2": "/media/n2.mp3",
    "file:///s/music": "/media/music.wav",
}


def _timeline(music: bool = True) -> Timeline:
    """Segments of 1.7 s (image), 1.3 s (image) and 2.0 s (video): 5.0 s in all."""
    return build_timeline(
        "Volcanoes",
        [
            Visual(uri="file:///s/red"),
            Visual(uri="file:///s/blue"),
            Visual(uri="file:///s/clip", kind="video"),
        ],
        [
            NarrationClip(uri="file:///s/n0", duration=1.2),
            NarrationClip(uri="file:///s/n1", duration=0.8),
            NarrationClip(uri="file:///s/n2", duration=1.5),
        ],
        music_uri="file:///s/music" if music else None,
        width=320,
        height=180,
        fps=24,
    )


def _inputs(command: list[str]) -> list[tuple[list[str], str]]:
    """Each ``-i`` path with the input options just before it."""
    found: list[tuple[list[str], str]] = []
    options: list[str] = []
    tokens = iter(command[1 : command.index("-filter_complex")])
    for token in tokens:
        if token == "-i":
            found.append((options, next(tokens)))
            options = []
        elif token == "-loglevel":
            next(tokens)  # a global option, like the flags below
        elif token not in ("-hide_banner", "-nostdin", "-nostats"):
            options = [*options, token, next(tokens)]
    return found


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_inputs_come_in_order_and_clips_are_cut_to_their_segment() -> None:
    command = ffmpeg_command(_timeline(), INPUTS, "/out/movie.mp4", ffmpeg="/bin/ffmpeg")
    assert command[0] == "/bin/ffmpeg"
    assert _inputs(command) == [
        ([], "/media/red.png"),  # stills are decoded once and frozen by tpad
        ([], "/media/blue.jpg"),
        (["-t", "2"], "/media/clip.mp4"),
        ([], "/media/n0.wav"),
        ([], "/media/n1.wav"),
        ([], "/media/n2.mp3"),
        ([], "/media/music.wav"),
    ]
    assert "-loop" not in command
    assert "-stream_loop" not in command


def test_filter_graph_cuts_each_segment_on_the_frame_and_sample_grid() -> None:
    graph = _option(ffmpeg_command(_timeline(), INPUTS, "/out/movie.mp4"), "-filter_complex")
    # 0-1.7 s, 1.7-3.0 s, 3.0-5.0 s at 24 fps (40.8 -> 41, 72, 120) and 48 kHz.
    for index, frames, samples in ((0, 41, 81600), (1, 31, 62400), (2, 48, 96000)):
        assert f"[{index}:v]scale=320:180:force_original_aspect_ratio=decrease" in graph
        assert f"trim=end_frame={frames},setpts=N/24/TB[v{index}]" in graph
        assert f"[{3 + index}:a]aformat=" in graph
        assert f"apad=whole_len={samples},atrim=end_sample={samples}," in graph
    assert 41 + 31 + 48 == 5 * 24
    assert graph.count("pad=320:180:(ow-iw)/2:(oh-ih)/2") == 3
    assert graph.count("setsar=1,fps=24,tpad=stop=-1:stop_mode=clone") == 3
    assert "[v0][a0][v1][a1][v2][a2]concat=n=3:v=1:a=1[video][narration]" in graph
    assert "sample_rates=48000:channel_layouts=stereo" in graph


def test_music_is_looped_trimmed_lowered_faded_and_mixed_under_the_narration() -> None:
    graph = _option(ffmpeg_command(_timeline(), INPUTS, "/out/movie.mp4"), "-filter_complex")
    music = next(chain for chain in graph.split(";") if chain.startswith("[6:a]"))
    assert "aloop=loop=-1" in music
    assert "atrim=end_sample=240000" in music
    assert "volume=-18dB" in music
    assert "afade=t=out:st=3.5:d=1.5[music]" in music
    assert graph.endswith("[narration][music]amix=inputs=2:duration=first:normalize=0[aout]")


def test_output_is_h264_aac_with_the_total_duration_and_bitexact_flags() -> None:
    command = ffmpeg_command(_timeline(), INPUTS, "/out/movie.mp4")
    assert command[-4:] == ["-t", "5", "-y", "/out/movie.mp4"]
    assert _option(command, "-map") == "[vout]"
    assert command[command.index("-map") + 2 : command.index("-map") + 4] == ["-map", "[aout]"]
    expected = {
        "-c:v": "libx264",
        "-preset": "veryfast",
        "-pix_fmt": "yuv420p",
        "-c:a": "aac",
        "-ar": "48000",
        "-ac": "2",
        "-movflags": "+faststart",
        "-map_metadata": "-1",
        "-fflags": "+bitexact",
        "-flags:v": "+bitexact",
        "-flags:a": "+bitexact",
    }
    assert {name: _option(command, name) for name in expected} == expected
    assert _option(command, "-threads:v").isdigit()  # fixed, so bytes do not vary by machine


def test_without_music_the_narration_is_the_soundtrack() -> None:
    command = ffmpeg_command(_timeline(music=False), INPUTS, "/out/movie.mp4")
    graph = _option(command, "-filter_complex")
    assert [path for _, path in _inputs(command)][-1] == "/media/n2.mp3"
    assert len(_inputs(command)) == 6
    assert "amix" not in graph
    assert "aloop" not in graph
    assert "volume=" not in graph
    assert "concat=n=3:v=1:a=1[video][aout]" in graph


def test_music_volume_and_size_follow_the_timeline() -> None:
    timeline = _timeline().model_copy(
        update={"music_volume_db": -24.5, "width": 1280, "height": 720, "fps": 30}
    )
    graph = _option(ffmpeg_command(timeline, INPUTS, "/o.mp4"), "-filter_complex")
    assert "volume=-24.5dB" in graph
    assert graph.count("scale=1280:720:") == 3
    assert graph.count("pad=1280:720:") == 3
    assert "trim=end_frame=51,setpts=N/30/TB[v0]" in graph  # 1.7 s at 30 fps


def test_the_command_is_pure_and_needs_every_input() -> None:
    first = ffmpeg_command(_timeline(), INPUTS, "/o.mp4")
    assert first == ffmpeg_command(_timeline(), INPUTS, "/o.mp4")
    missing = {uri: path for uri, path in INPUTS.items() if uri != "file:///s/n1"}
    with pytest.raises(ValueError, match="file:///s/n1"):
        ffmpeg_command(_timeline(), missing, "/o.mp4")
