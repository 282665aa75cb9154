"""The published movie: a layout people open, beside the content-addressed store.

Under a destination (a directory or an ``s3://`` prefix, see
:mod:`producers.storage.destination`)::

    movie.mp4                      the movie
    timeline.svg                   the segments over time (visuals, narration, music)
    script.md                      title, and per segment the narration and image prompt
    manifest.json                  the run's manifest (its outputs name this layout)
    script.json                    every artefact of the run, named by role and segment,
    image_prompts/01-image_prompt.txt     with the extension of its stored MIME type
    images/01-image.png
    narration/01-narration.mp3
    video/01-video.mp4
    music.mp3

No name comes from model-written or provider text: only the job's role (checked against
``[a-z][a-z0-9_]*``), its segment number and the extension of its MIME type. Model-written
text goes into ``script.md`` escaped, and into ``timeline.svg`` XML-escaped. Everything but
``manifest.json`` is a function of the run's content, so a re-run with the same artefacts
rewrites the same names with the same bytes. Each file is written atomically, the movie
after its parts and the manifest last.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from producers.pipeline.steps import Script
from producers.pipeline.timeline import Timeline, timeline_svg
from producers.storage.base import ArtefactStore
from producers.storage.destination import Destination, PublishedFile
from producers.storage.layout import encode_json, is_valid_name
from producers.storage.manifest import JobRecord, RunManifest

__all__ = [
    "MOVIE_NAME",
    "PublishedMovie",
    "artefact_files",
    "extension_for",
    "markdown_text",
    "publish_movie",
    "render_location",
    "safe_segment",
    "script_markdown",
]

MOVIE_NAME = "movie.mp4"
TIMELINE_NAME = "timeline.svg"
SCRIPT_NAME = "script.md"
MANIFEST_NAME = "manifest.json"
_RESERVED = frozenset({MOVIE_NAME, TIMELINE_NAME, SCRIPT_NAME, MANIFEST_NAME})

#: Extensions by MIME type: a fixed table, not the platform's (``mimetypes`` reads
#: ``/etc/mime.types``, so two machines could name one file differently).
EXTENSIONS: Mapping[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "image/heic": "heic",
    "image/svg+xml": "svg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "audio/webm": "weba",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "video/x-matroska": "mkv",
    "text/plain": "txt",
    "text/markdown": "md",
    "application/json": "json",
    "application/pdf": "pdf",
}
#: The folder of a role's per-segment artefacts, where it is not the role's own name.
FOLDERS: Mapping[str, str] = {"image": "images", "image_prompt": "image_prompts"}
_ROLE_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: The longest rendered path segment :func:`safe_segment` keeps as it is.
MAX_PLAIN_SEGMENT = 200
_SAFE_SEGMENT_RE = re.compile(r"[^A-Za-z0-9._-]")
#: Characters a backslash keeps literal in Markdown (CommonMark, GFM) and HTML. Text never
#: starts a line in script.md (a label precedes it), so line-start markers (``-``, ``+``,
#: ``.`` after a number, ``=``) cannot start a block and stay as they are.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()<>#!|~&^$")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class PublishedMovie(BaseModel):
    """What a publish wrote and where."""

    model_config = ConfigDict(frozen=True)

    #: The destination's root: an absolute directory path or ``s3://bucket/prefix``.
    dir: str
    #: The movie: an absolute path or an ``s3://`` URI.
    movie: str
    files: tuple[PublishedFile, ...]

    def record(self) -> dict[str, Any]:
        """The manifest's ``outputs.published``: the root, the movie, each file's sha256."""
        return {
            "dir": self.dir,
            "movie": self.movie,
            "files": {f.relpath: f.sha256 for f in self.files if f.relpath != MANIFEST_NAME},
        }


def extension_for(mime_type: str) -> str:
    """The file extension (no dot) of a MIME type; ``bin`` for any type not in the table."""
    base = mime_type.split(";", 1)[0].strip().lower() if isinstance(mime_type, str) else ""
    return EXTENSIONS.get(base, "bin")


# -- names ---------------------------------------------------------------------------------


def _number(index: int, width: int) -> str:
    return str(index + 1).zfill(width)


def artefact_files(jobs: Iterable[JobRecord], mime_types: Mapping[str, str]) -> dict[str, str]:
    """The published name of every artefact of the succeeded jobs: ``{relpath: uri}``.

    A job of a segment gives ``<folder>/<NN>-<role>.<ext>`` (``NN`` from 1, at least two
    digits), a job of the whole movie ``<role>.<ext>``; a job's second artefact and later
    ones end in ``-2``, ``-3``... A job whose role is not a plain name, and an artefact whose
    URI is not in ``mime_types``, is left out. A later record of the same name wins.

    Args:
        jobs: The run's job records.
        mime_types: The stored MIME type of each artefact URI.
    """
    kept = [
        job
        for job in jobs
        if job.status == "succeeded" and job.role is not None and _ROLE_RE.fullmatch(job.role)
    ]
    segments = [job.segment for job in kept if job.segment is not None and job.segment >= 0]
    width = max(2, len(str(max(segments, default=0) + 1)))
    files: dict[str, str] = {}
    for job in kept:
        role = str(job.role)
        uris = [a.get("uri") for a in job.artefacts]
        for position, uri in enumerate(u for u in uris if isinstance(u, str) and u in mime_types):
            suffix = f"-{position + 1}" if position else ""
            ext = extension_for(mime_types[uri])
            if job.segment is not None and job.segment >= 0:
                folder = FOLDERS.get(role, role)
                relpath = f"{folder}/{_number(job.segment, width)}-{role}{suffix}.{ext}"
            else:
                relpath = f"{role}{suffix}.{ext}"
                if relpath in _RESERVED:
                    relpath = f"artefacts/{relpath}"
            files[relpath] = uri
    return files


def safe_segment(value: str) -> str:
    """One path segment from rendered text that may come from anyone (a run id).

    A name of ``[A-Za-z0-9._-]`` not starting with ``.`` and at most
    :data:`MAX_PLAIN_SEGMENT` long stays as it is. Anything else has each other character
    (``/`` and ``.`` included) replaced by ``_``, is cut to 100 characters and ends in ``~``
    and 12 hex digits of the text's SHA-256: a plain name never holds ``~``, so a cleaned
    segment cannot equal a plain one, and two different texts do not share a segment.
    """
    text = str(value)
    if is_valid_name(text) and not text.startswith(".") and len(text) <= MAX_PLAIN_SEGMENT:
        return text
    readable = _SAFE_SEGMENT_RE.sub("_", text)[:100].replace(".", "_")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{readable}~{digest}"


def _split_template(template: str) -> list[str]:
    """Split on ``/`` outside ``{{ }}``, ``{% %}`` and ``{# #}``."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    index = 0
    while index < len(template):
        pair = template[index : index + 2]
        if pair in ("{{", "{%", "{#"):
            depth += 1
            current.append(pair)
            index += 2
            continue
        if pair in ("}}", "%}", "#}") and depth:
            depth -= 1
            current.append(pair)
            index += 2
            continue
        char = template[index]
        if char == "/" and not depth:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def render_location(template: str, render: Callable[[str], Any]) -> str:
    """Render a publish location template one path segment at a time.

    The scheme and bucket (``s3://bucket``) or a leading ``/`` stay as written (the
    bucket is rendered whole); each ``/``-separated part after them that holds template
    syntax is rendered on its own and made safe with :func:`safe_segment`, so a value holding
    ``/`` or ``..`` (a run id like ``../../x``) stays one folder below the prefix. Parts with
    no template syntax are the deployment's own and stay as written; empty parts are dropped.

    Args:
        template: ``s3://bucket/movies/{{ ds }}/{{ run_id }}/`` or ``/srv/movies/{{ run_id }}``.
        render: Renders one Jinja fragment with the run's context.

    Raises:
        ValueError: A part renders to nothing where the template had an expression.
    """
    head = ""
    rest = template.strip()
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", rest)
    if match:
        netloc, _, rest = rest[match.end() :].partition("/")
        head = match.group(0) + (str(render(netloc)).strip() if "{" in netloc else netloc) + "/"
    elif rest.startswith("/"):
        head = "/"
    parts = []
    for part in _split_template(rest):
        if not part:
            continue
        if "{" not in part:
            parts.append(part)  # written by the deployment, as it is
            continue
        rendered = str(render(part))
        if not rendered:
            raise ValueError(f"the publish location part {part!r} renders to nothing")
        parts.append(safe_segment(rendered))
    return head + "/".join(parts)


# -- script.md -------------------------------------------------------------------------------


def markdown_text(value: object) -> str:
    """Model-written text as one inert line of Markdown.

    Control and bidirectional-override characters are dropped, every run of whitespace
    becomes one space, and each Markdown/HTML special character is backslash-escaped, so
    the text can make no heading, link, image, HTML tag, entity, code or emphasis.
    """
    text = "".join(
        " " if char.isspace() else char
        for char in str(value)
        if char.isspace()
        or (unicodedata.category(char) not in ("Cc", "Cs") and char not in _BIDI_CONTROLS)
    )
    text = " ".join(text.split())
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in text)


#: The names :func:`artefact_files` and :func:`publish_movie` write.
_PUBLISHED_RE = re.compile(
    r"(?:[a-z][a-z0-9_]{0,39}/[0-9]{2,}-[a-z][a-z0-9_]{0,39}(?:-[0-9]+)?"
    r"|(?:artefacts/)?[a-z][a-z0-9_]{0,39}(?:-[0-9]+)?)\.[a-z0-9]{1,5}"
)
_NUMBERED_RE = re.compile(r"[^/]+/0*([0-9]+)-[^/]+")


def _segment_of(relpath: str) -> int | None:
    match = _NUMBERED_RE.fullmatch(relpath)
    return int(match.group(1)) - 1 if match else None


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


def script_markdown(
    script: Script,
    prompts: Sequence[str | None],
    timeline: Timeline,
    files: Mapping[str, str] | None = None,
) -> str:
    """``script.md``: the title, then per segment its time, narration, image prompt and
    visual description, and links to its published files (``files``: relpath -> uri)."""
    names = sorted(files or {})
    lines = [f"# {markdown_text(script.title) or 'Untitled'}", ""]
    lines += [
        f"[{MOVIE_NAME}]({MOVIE_NAME}), {_seconds(timeline.duration)}, "
        f"{len(timeline.segments)} segments ([timeline]({TIMELINE_NAME}))",
        "",
    ]
    for index, written in enumerate(script.segments):
        segment = timeline.segments[index] if index < len(timeline.segments) else None
        when = f" ({_seconds(segment.start)} to {_seconds(segment.end)})" if segment else ""
        lines += [f"## Segment {index + 1}{when}", ""]
        lines += [f"**Narration:** {markdown_text(written.narration)}", ""]
        prompt = prompts[index] if index < len(prompts) else None
        if prompt:
            lines += [f"**Image prompt:** {markdown_text(prompt)}", ""]
        if written.visual_description:
            lines += [f"**Visual description:** {markdown_text(written.visual_description)}", ""]
        own = [name for name in names if _segment_of(name) == index]
        if own:
            lines += ["Files: " + ", ".join(f"[{name}]({name})" for name in own), ""]
    whole = [name for name in names if "/" not in name]
    if whole:
        lines += ["## Whole movie", "", "Files: " + ", ".join(f"[{n}]({n})" for n in whole), ""]
    return "\n".join(lines)


# -- publishing ------------------------------------------------------------------------------


async def _earlier_files(destination: Destination) -> set[str]:
    """The files the ``manifest.json`` already at ``destination`` lists as published there.

    Only names this module could have written count (anything else in that file, which
    anyone with write access to the destination could have edited, is ignored); an
    unreadable manifest lists nothing.
    """
    data = await destination.read_bytes(MANIFEST_NAME)
    try:
        document = json.loads(data) if data else {}
        listed = document["outputs"]["published"]["files"]
    except (ValueError, TypeError, KeyError):
        return set()
    if not isinstance(listed, dict):
        return set()
    return {name for name in listed if isinstance(name, str) and _PUBLISHED_RE.fullmatch(name)}


async def publish_movie(
    destination: Destination,
    store: ArtefactStore,
    manifest: RunManifest,
    *,
    script: Script,
    prompts: Sequence[str | None],
    timeline: Timeline,
    movie_uri: str,
) -> PublishedMovie:
    """Publish the run's human layout to ``destination``, then record it in the manifest.

    Writes every artefact of ``manifest.jobs`` (streamed from ``store``), ``script.md``,
    ``timeline.svg``, ``movie.mp4``; removes the files an earlier publish here listed in its
    ``manifest.json`` that this one does not write (a re-run with fewer segments leaves no
    stale image); then sets ``manifest.outputs["published"]``, saves the manifest to the
    store and writes it as ``manifest.json`` (last: its presence means the rest is there).

    Args:
        destination: Where to publish.
        store: The store the artefacts and the movie are in.
        manifest: The run's manifest, with its job records.
        script: The script the movie was made from (as approved, where it was reviewed).
        prompts: The image prompt of each segment (None where there is none).
        timeline: The movie's timeline.
        movie_uri: The movie's URI in ``store``.

    Returns:
        What was written.
    """
    mime_types: dict[str, str] = {}
    for job in manifest.jobs:
        for artefact in job.artefacts:
            uri = artefact.get("uri")
            if job.status == "succeeded" and isinstance(uri, str) and uri not in mime_types:
                mime_types[uri] = (await store.describe(uri)).mime_type
    files = artefact_files(manifest.jobs, mime_types)
    earlier = await _earlier_files(destination)
    written: list[PublishedFile] = []
    for relpath, uri in files.items():
        written.append(
            await destination.put_stream(relpath, store.open(uri), mime_type=mime_types[uri])
        )
    markdown = script_markdown(script, prompts, timeline, files)
    written.append(
        await destination.put_bytes(
            SCRIPT_NAME, markdown.encode("utf-8"), mime_type="text/markdown; charset=utf-8"
        )
    )
    written.append(
        await destination.put_bytes(
            TIMELINE_NAME, timeline_svg(timeline).encode("utf-8"), mime_type="image/svg+xml"
        )
    )
    written.append(
        await destination.put_stream(MOVIE_NAME, store.open(movie_uri), mime_type="video/mp4")
    )
    for stale in sorted(earlier - {f.relpath for f in written} - {MANIFEST_NAME}):
        await destination.delete(stale)
    published = PublishedMovie(
        dir=destination.root, movie=destination.location(MOVIE_NAME), files=tuple(written)
    )
    manifest.outputs["published"] = published.record()
    await manifest.save(store)
    document = manifest.model_dump(mode="json")
    final = await destination.put_bytes(
        MANIFEST_NAME, encode_json(document), mime_type="application/json"
    )
    return published.model_copy(update={"files": (*written, final)})
