"""The movie's timeline: which visual, narration and music play when.

Built from the real durations of the narration artefacts; the assembly turns it into an MP4.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Segment(BaseModel):
    """One segment of the movie: a visual shown while its narration plays."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    start: float = Field(ge=0)
    duration: float = Field(gt=0)
    visual_uri: str
    visual_kind: Literal["image", "video"] = "image"
    narration_uri: str
    narration_text: str = ""

    @property
    def end(self) -> float:
        """When the segment ends, in seconds from the start of the movie."""
        return self.start + self.duration


class Timeline(BaseModel):
    """The whole movie: segments back to back, a music bed under them."""

    model_config = ConfigDict(frozen=True)

    title: str
    segments: tuple[Segment, ...]
    music_uri: str | None = None
    music_volume_db: float = -18.0
    width: int = 1280
    height: int = 720
    fps: int = 24

    @property
    def duration(self) -> float:
        """Total length in seconds (the narration's)."""
        return self.segments[-1].end if self.segments else 0.0

    @model_validator(mode="after")
    def _contiguous(self) -> Timeline:
        if not self.segments:
            raise ValueError("a timeline needs at least one segment")
        position = 0.0
        for expected, segment in enumerate(self.segments):
            if segment.index != expected:
                raise ValueError(f"segment {segment.index} is out of order (expected {expected})")
            if abs(segment.start - position) > 1e-6:
                raise ValueError(
                    f"segment {segment.index} starts at {segment.start}, not {position}"
                )
            position = segment.end
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even (H.264 with yuv420p)")
        return self


class NarrationClip(BaseModel):
    """A narration artefact and its measured duration."""

    model_config = ConfigDict(frozen=True)

    uri: str
    duration: float = Field(gt=0)
    text: str = ""


class Visual(BaseModel):
    """An image or a video clip shown during a segment."""

    model_config = ConfigDict(frozen=True)

    uri: str
    kind: Literal["image", "video"] = "image"


def build_timeline(
    title: str,
    visuals: Sequence[Visual],
    narrations: Sequence[NarrationClip],
    *,
    music_uri: str | None = None,
    pause: float = 0.5,
    width: int = 1280,
    height: int = 720,
    fps: int = 24,
) -> Timeline:
    """Lay segments back to back, each as long as its narration plus a short ``pause``.

    Raises:
        ValueError: if the visuals and narrations do not pair up one to one.
    """
    if len(visuals) != len(narrations):
        raise ValueError(
            f"{len(visuals)} visuals for {len(narrations)} narrations; they pair one to one"
        )
    segments = []
    start = 0.0
    for index, (visual, narration) in enumerate(zip(visuals, narrations, strict=True)):
        duration = round(narration.duration + pause, 3)
        segments.append(
            Segment(
                index=index,
                start=round(start, 3),
                duration=duration,
                visual_uri=visual.uri,
                visual_kind=visual.kind,
                narration_uri=narration.uri,
                narration_text=narration.text,
            )
        )
        start = round(start + duration, 3)
    return Timeline(
        title=title,
        segments=tuple(segments),
        music_uri=music_uri,
        width=width,
        height=height,
        fps=fps,
    )


_SVG_LABEL_WIDTH = 110
_SVG_PLOT_WIDTH = 840
_SVG_TRACK_HEIGHT = 34
_SVG_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
_SVG_COLOURS = {"image": "#4e79a7", "video": "#59a14f", "narration": "#f28e2b", "music": "#b07aa1"}


def _svg_num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def timeline_svg(timeline: Timeline) -> str:
    """The timeline as a small SVG: a track of visuals (image or video), one of narration
    and one of music, each block labelled with its segment number, kind and duration.

    The only text from outside is the title, XML-escaped; the output depends on nothing
    but the timeline (the same timeline gives the same bytes).
    """
    from html import escape

    total = timeline.duration
    scale = _SVG_PLOT_WIDTH / total
    left, top = _SVG_LABEL_WIDTH, 40
    tracks = ["visual", "narration", "music"]
    height = top + _SVG_TRACK_HEIGHT * len(tracks) + 40
    width = left + _SVG_PLOT_WIDTH + 20
    title = escape(timeline.title, quote=True)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{title}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{title}</text>',
    ]
    for row, name in enumerate(tracks):
        y = top + row * _SVG_TRACK_HEIGHT
        parts.append(f'<text x="10" y="{y + 21}">{name}</text>')

    def block(row: int, start: float, length: float, colour: str, label: str) -> None:
        x = left + start * scale
        w = max(length * scale - 2, 1)
        y = top + row * _SVG_TRACK_HEIGHT + 4
        parts.append(
            f'<g><title>{label}</title><rect x="{_svg_num(x)}" y="{y}" width="{_svg_num(w)}" '
            f'height="{_SVG_TRACK_HEIGHT - 8}" rx="3" fill="{colour}"/>'
        )
        if w >= 7 * len(label):
            parts.append(f'<text x="{_svg_num(x + 5)}" y="{y + 17}" fill="#ffffff">{label}</text>')
        parts.append("</g>")

    for segment in timeline.segments:
        number = segment.index + 1
        seconds = f"{segment.duration:.1f} s"
        kind = segment.visual_kind
        block(0, segment.start, segment.duration, _SVG_COLOURS[kind], f"{number} {kind} {seconds}")
        block(
            1,
            segment.start,
            segment.duration,
            _SVG_COLOURS["narration"],
            f"{number} narration {seconds}",
        )
    if timeline.music_uri is not None:
        block(2, 0.0, total, _SVG_COLOURS["music"], f"music {total:.1f} s")
    step = next((s for s in _SVG_TICK_STEPS if total / s <= 12), _SVG_TICK_STEPS[-1])
    axis_y = top + _SVG_TRACK_HEIGHT * len(tracks) + 6
    parts.append(
        f'<line x1="{left}" y1="{axis_y}" x2="{left + _SVG_PLOT_WIDTH}" y2="{axis_y}" '
        'stroke="#333333"/>'
    )
    tick = 0
    while tick <= total + 1e-9:
        x = _svg_num(left + tick * scale)
        parts.append(f'<line x1="{x}" y1="{axis_y}" x2="{x}" y2="{axis_y + 5}" stroke="#333333"/>')
        parts.append(f'<text x="{x}" y="{axis_y + 18}" text-anchor="middle">{tick} s</text>')
        tick += step
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
