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
