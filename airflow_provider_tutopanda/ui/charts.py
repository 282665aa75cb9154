"""Small SVG pictures drawn on the server: the movie's timeline and the cost chart."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

_COLOURS = {"image": "#6aa2d8", "video": "#4f7fc0", "narration": "#7cc47f", "music": "#e0a84f"}


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its label, value and an optional link."""

    label: str
    value: float
    href: str | None = None


def timeline_svg(
    timeline: dict[str, Any], key_of: Callable[[str], str | None], width: int = 960
) -> str:
    """The timeline (``producers.pipeline.timeline.Timeline`` as JSON) as three tracks:
    the visual of each segment, its narration, and the music under the whole movie."""
    segments = timeline.get("segments") or []
    total = max(
        float(timeline.get("duration") or 0), *(s["start"] + s["duration"] for s in segments), 0.001
    )
    left, track, gap = 90, 34, 8
    scale = (width - left - 10) / total
    rows = [("visual", 10), ("narration", 10 + track + gap), ("music", 10 + 2 * (track + gap))]
    height = 10 + 3 * (track + gap) + 22
    parts = [
        f'<svg class="timeline" role="img" aria-label="Movie timeline" '
        f'viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">'
    ]
    for name, y in rows:
        parts.append(f'<text x="4" y="{y + 22}" class="track-label">{name}</text>')

    def block(
        kind: str, y: int, start: float, duration: float, label: str, key: str | None
    ) -> None:
        x = left + start * scale
        w = max(duration * scale - 2, 2)
        title = escape(f"{label}: {start:.1f}s to {start + duration:.1f}s")
        parts.append(
            f'<g class="clip clip-{kind}" data-key="{escape(key or "")}" data-start="{start:.3f}" '
            f'data-duration="{duration:.3f}"><title>{title}</title>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{track}" rx="4" '
            f'fill="{_COLOURS[kind]}"/>'
            f'<text x="{x + 6:.1f}" y="{y + 22}" class="clip-label">{escape(label[:40])}</text></g>'
        )

    for segment in segments:
        start, duration = float(segment["start"]), float(segment["duration"])
        kind = "video" if segment.get("visual_kind") == "video" else "image"
        visual_key = key_of(segment.get("visual_uri", ""))
        block(
            kind,
            rows[0][1],
            start,
            duration,
            visual_key or f"{kind} {segment['index']}",
            visual_key,
        )
        narration_key = key_of(segment.get("narration_uri", ""))
        text = segment.get("narration_text") or narration_key or f"narration {segment['index']}"
        block("narration", rows[1][1], start, duration, text, narration_key)
    if timeline.get("music_uri"):
        block("music", rows[2][1], 0.0, total, "music", key_of(timeline["music_uri"]))
    for tick in range(0, int(total) + 1, max(1, int(total // 10) or 1)):
        x = left + tick * scale
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" class="tick">{tick}s</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart_svg(title: str, bars: Sequence[Bar], width: int = 640, height: int = 180) -> str:
    """A bar chart of US dollar amounts (runs or days), newest on the right."""
    top = max((b.value for b in bars), default=0.0) or 1.0
    left, bottom = 60, 30
    inner_w, inner_h = width - left - 10, height - bottom - 20
    step = inner_w / max(len(bars), 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="14" class="chart-title">{escape(title)}</text>',
        f'<text x="4" y="{20 + 10}" class="tick">${top:,.4f}</text>',
        f'<text x="4" y="{height - bottom}" class="tick">$0</text>',
    ]
    for i, bar in enumerate(bars):
        h = inner_h * (bar.value / top)
        x = left + i * step + 2
        y = 20 + inner_h - h
        rect = (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 4, 1):.1f}" height="{max(h, 1):.1f}" '
            f'fill="#5b8def"><title>{escape(bar.label)}: ${bar.value:,.4f}</title></rect>'
        )
        if bar.href:
            rect = f'<a href="{escape(bar.href)}" target="_top">{rect}</a>'
        parts.append(rect)
        if len(bars) <= 12:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 12}" class="tick">{escape(bar.label[-10:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
