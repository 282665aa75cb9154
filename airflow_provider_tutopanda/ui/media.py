"""Serving stored blobs to a browser: the stored MIME type, HTTP Range, streamed.

A blob is never read whole: a local store seeks, an S3 store either answers with a short-lived
pre-signed URL (the browser then talks to S3, Range included) or streams a ranged GetObject.
"""

from __future__ import annotations

import re

from fastapi import Response
from fastapi.responses import RedirectResponse, StreamingResponse

from producers.storage.base import ArtefactStore
from producers.storage.layout import sha256_of_blob_relpath

#: How long a pre-signed S3 URL stays valid, in seconds.
PRESIGNED_SECONDS = 300
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def blob_uri_in(store: ArtefactStore, uri: object) -> str | None:
    """``uri`` if it is a content-addressed blob of this store (``blobs/sha256/..``), else
    None: a manifest naming anything else (a path, another bucket) is never followed."""
    if not isinstance(uri, str) or not uri.startswith(store.root_uri + "/"):
        return None
    sha = sha256_of_blob_relpath(uri[len(store.root_uri) + 1 :])
    if sha is None or store.blob_uri(sha) != uri:
        return None
    return uri


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The ``(start, length)`` a ``Range`` header asks for.

    Returns None to send the whole blob (no header, a malformed one, several ranges), or
    ``"unsatisfiable"`` for a range that starts past the end.
    """
    if not header:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = min(int(last), size)
        if length == 0:
            return "unsatisfiable"
        return size - length, length
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return "unsatisfiable"
    return start, end - start + 1


async def blob_response(
    store: ArtefactStore, uri: str, range_header: str | None, *, head: bool = False
) -> Response:
    """The response for a blob: 200 whole, 206 ranged, 416 unsatisfiable, or a 307 to a
    pre-signed URL; the stored MIME type; ``Accept-Ranges: bytes``.

    Raises:
        FileNotFoundError: Nothing is stored at ``uri``.
    """
    signed = await store.presigned_url(uri, expires_in=PRESIGNED_SECONDS)
    if signed is not None:
        return RedirectResponse(signed, status_code=307, headers={"Cache-Control": "no-store"})
    described = await store.describe(uri)
    size = described.size
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=3600",
        "ETag": f'"{described.sha256}"',
        "X-Content-Type-Options": "nosniff",
    }
    wanted = parse_range(range_header, size)
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        start, length, code = 0, size, 200
    else:
        assert isinstance(wanted, tuple)
        start, length = wanted
        code = 206
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    headers["Content-Length"] = str(length)
    if head:
        return Response(status_code=code, headers=headers, media_type=described.mime_type)
    return StreamingResponse(
        store.open_range(uri, start, length),
        status_code=code,
        headers=headers,
        media_type=described.mime_type,
    )
