"""Record and replay real provider traffic (vcrpy), with secrets scrubbed from cassettes.

Authors with keys record once (``TUTOPANDA_RECORD=once`` or ``new_episodes``); everyone else
replays the cassette with no network and no key. Both official clients are covered: vcrpy
patches ``httpx`` (replicate-python, our downloads) and ``httpx2`` (openai 3.x).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import vcr
from vcr.record_mode import RecordMode

from producers.sdk.secrets import MASK, redact

RECORD_ENV = "TUTOPANDA_RECORD"
#: Headers never written to a cassette.
SECRET_HEADERS = (
    "authorization",
    "x-api-key",
    "api-key",
    "openai-organization",
    "openai-project",
    "cookie",
    "set-cookie",
)
#: Things that look like provider keys, scrubbed even if nobody registered them.
_KEY_PATTERNS = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|r8_[A-Za-z0-9]{8,})")


def scrub_text(text: str, extra: Iterable[str] = ()) -> str:
    """Mask registered secrets, ``extra`` values and anything shaped like a provider key."""
    for value in extra:
        if value:
            text = text.replace(value, MASK)
    return str(_KEY_PATTERNS.sub(MASK, redact(text)))


def _scrub_body(body: Any, extra: tuple[str, ...]) -> Any:
    if isinstance(body, bytes):
        try:
            return scrub_text(body.decode("utf-8"), extra).encode("utf-8")
        except UnicodeDecodeError:
            return body
    if isinstance(body, str):
        return scrub_text(body, extra)
    return body


def recorder(
    cassette_dir: str | Path,
    *,
    record_mode: str | None = None,
    secrets: Iterable[str] = (),
) -> vcr.VCR:
    """A vcrpy recorder writing scrubbed cassettes under ``cassette_dir``.

    ``record_mode`` defaults to ``$TUTOPANDA_RECORD`` or ``none`` (replay only: a request
    that is not in the cassette fails, so tests never reach a real provider by accident).
    """
    extra = tuple(s for s in secrets if s)
    mode = RecordMode(record_mode or os.environ.get(RECORD_ENV) or "none")

    def before_request(request: Any) -> Any:
        request.body = _scrub_body(request.body, extra)
        request.uri = scrub_text(request.uri, extra)
        return request

    def before_response(response: dict[str, Any]) -> dict[str, Any]:
        body = response.get("body", {})
        if "string" in body:
            body["string"] = _scrub_body(body["string"], extra)
        headers = response.get("headers", {})
        for name in list(headers):
            if name.lower() in SECRET_HEADERS:
                headers[name] = [MASK]
            else:
                headers[name] = [scrub_text(str(v), extra) for v in headers[name]]
        return response

    return vcr.VCR(
        cassette_library_dir=str(cassette_dir),
        record_mode=mode,
        filter_headers=[(name, MASK) for name in SECRET_HEADERS],
        before_record_request=before_request,
        before_record_response=before_response,
        decode_compressed_response=True,
        match_on=("method", "scheme", "host", "port", "path", "query", "body"),
        serializer="yaml",
    )
