"""Topics of scheduled movies: a topics file, one topic a line, and which one a day gets."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from producers.sdk.documents import read_text
from producers.sdk.limits import DOCUMENT_MAX_BYTES

_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})\s*:\s*(.+)")


def read_topics(path: Path) -> list[tuple[str | None, str]]:
    """The topics file: one topic a line, optionally ``YYYY-MM-DD: topic``; ``#`` comments.

    Returns ``(date or None, topic)`` pairs in file order.

    Raises:
        InvalidInputError: the file cannot be read (missing, a folder, too large, not UTF-8).
        ValueError: the file holds no topic.
    """
    topics: list[tuple[str | None, str]] = []
    for raw in read_text(path, what="topics file", max_bytes=DOCUMENT_MAX_BYTES).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        dated = _DATED.fullmatch(line)
        if dated:
            topics.append((dated.group(1), dated.group(2).strip()))
        else:
            topics.append((None, line))
    if not topics:
        raise ValueError(f"{path} has no topic (one a line, '#' for comments)")
    return topics


def topic_for_date(path: Path, day: str) -> str:
    """The topic of ``day`` (``YYYY-MM-DD``): its dated line if there is one, else the undated
    lines in turn, one a day (the same day always gets the same topic: backfills are stable)."""
    topics = read_topics(path)
    for when, topic in topics:
        if when == day:
            return topic
    undated = [topic for when, topic in topics if when is None]
    if not undated:
        raise ValueError(f"{path} has no line for {day} and no undated topic")
    return undated[date.fromisoformat(day).toordinal() % len(undated)]
