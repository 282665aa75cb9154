"""Artefacts: what producers make, stored, checksummed, with diagnostics."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from producers.sdk.errors import ErrorCode, InvalidInputError, ProviderError
from producers.sdk.jobs import JobRequest, Kind
from producers.sdk.media import sniff_mime
from producers.sdk.schema import validate_instance
from producers.sdk.secrets import redact
from producers.storage.base import ArtefactStore

_TEXT_MIME = ("text/plain", "application/json")
_SNIFF_BYTES = 64


class Diagnostics(BaseModel):
    """What happened in a job, attached to every artefact it made (no secrets, ever)."""

    model_config = ConfigDict(extra="forbid")

    producer: str | None = None
    provider: str | None = None
    model: str | None = None
    mode: str | None = None
    mocked: bool = False
    attempt: int | None = None
    job_id: str | None = None
    provider_job_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: float | None = None
    provider_seconds: float | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    estimated_cost_usd: float | None = None
    #: True if ``estimated_cost_usd`` is only an upper bound (the model's hardware is unknown).
    estimated_cost_upper_bound: bool = False
    #: What the job cost, from the provider's own figures (0 in mock mode; None: unknown).
    cost_usd: float | None = None
    #: True if ``cost_usd`` is only an upper bound (time at the dearest public hardware).
    cost_upper_bound: bool = False
    payload: dict[str, Any] | None = None
    prompt: str | None = None
    fingerprint: str | None = None
    warnings: list[str] = Field(default_factory=list)
    ignored_inputs: dict[str, Any] = Field(default_factory=dict)
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


class Artefact(BaseModel):
    """One thing a job made: inline text/JSON or a blob, stored and checksummed."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["inline", "blob"]
    mime_type: str
    uri: str
    size: int
    sha256: str
    value: Any = None
    diagnostics: Diagnostics = Field(default_factory=Diagnostics)

    def record(self) -> dict[str, Any]:
        """A small JSON-able record (what XCom and ``--json`` carry); blobs stay in the store."""
        return self.model_dump(mode="json")


class ProducerResult(BaseModel):
    """The artefacts of one job and the job's diagnostics."""

    model_config = ConfigDict(frozen=True)

    artefacts: tuple[Artefact, ...]
    diagnostics: Diagnostics

    def get(self, artefact_id: str) -> Artefact:
        """The artefact with this id."""
        for artefact in self.artefacts:
            if artefact.id == artefact_id:
                return artefact
        raise KeyError(f"no artefact {artefact_id!r}; have {[a.id for a in self.artefacts]}")


def mime_allowed(kind: Kind, mime_type: str) -> bool:
    """True if a producer of ``kind`` may emit a blob of ``mime_type``.

    A prompt producer's blobs are text or JSON; a media producer's are its own media only
    (an image producer's are ``image/*``; a video producer may also answer with an animated
    GIF). Text a media producer wants to keep is an inline artefact (``text``/``json``),
    never a blob: a provider that sends back an HTML page or a JSON error where an image
    was promised has not made the image.
    """
    if kind is Kind.TEXT:
        return mime_type in _TEXT_MIME
    if kind.media == "video" and mime_type == "image/gif":
        return True  # some video models answer with animated GIFs
    return mime_type.startswith(kind.media + "/")


class DiagnosticsRecorder:
    """The mutable diagnostics of a running job; artefacts get a snapshot at the end."""

    def __init__(self, request: JobRequest, producer: str) -> None:
        self.data = Diagnostics(
            producer=producer,
            provider=request.descriptor.provider,
            model=request.descriptor.model,
            mode=request.mode,
            mocked=request.mode == "mock",
            attempt=request.attempt,
            job_id=request.job_id,
            started_at=time.time(),
        )

    def set(self, **fields: Any) -> None:
        """Set diagnostics fields; values are redacted on the way in."""
        for key, value in fields.items():
            setattr(self.data, key, redact(value))

    def warn(self, message: str) -> None:
        """Add a warning a person should see (e.g. a value that was adjusted)."""
        self.data.warnings.append(redact(message))

    def add_usage(self, usage: Mapping[str, Any]) -> None:
        """Merge token/unit usage counters."""
        self.data.usage.update(redact(dict(usage)))

    def finish(self) -> Diagnostics:
        """Stamp the end time and return a copy."""
        now = time.time()
        self.data.finished_at = now
        if self.data.mocked:
            self.data.cost_usd = 0.0
            self.data.cost_upper_bound = False
        if self.data.started_at is not None:
            self.data.duration_ms = round((now - self.data.started_at) * 1000, 3)
        return self.data.model_copy(deep=True)


async def _close(chunks: AsyncIterable[bytes]) -> None:
    """Close a stream that will not be read to its end (releases its connection)."""
    aclose = getattr(chunks, "aclose", None)
    if callable(aclose):
        await aclose()


async def _peek(chunks: AsyncIterable[bytes], size: int) -> tuple[bytes, AsyncIterator[bytes]]:
    iterator = aiter(chunks)
    head = b""
    buffered: list[bytes] = []
    while len(head) < size:
        try:
            chunk = await anext(iterator)
        except StopAsyncIteration:
            break
        buffered.append(chunk)
        head += chunk

    async def chained() -> AsyncIterator[bytes]:
        for chunk in buffered:
            yield chunk
        async for chunk in iterator:
            yield chunk

    return head[:size], chained()


class ArtefactBuilder:
    """Builds artefacts for one job: checks ids and MIME types, stores bytes in the store."""

    def __init__(
        self,
        *,
        store: ArtefactStore,
        request: JobRequest,
        kind: Kind,
        recorder: DiagnosticsRecorder,
    ) -> None:
        self._store = store
        self._request = request
        self._kind = kind
        self._recorder = recorder

    def ids(self, count: int, *, prefix: str | None = None) -> list[str]:
        """The artefact ids for ``count`` outputs: the request's ``produces`` if given,
        else ``<prefix>[i]`` (prefix defaults to the kind's media, e.g. ``image[0]``)."""
        if self._request.produces:
            if len(self._request.produces) < count:
                raise InvalidInputError(
                    f"the job produces {count} artefacts but only "
                    f"{len(self._request.produces)} ids were given: "
                    f"{', '.join(self._request.produces)}"
                )
            return list(self._request.produces[:count])
        prefix = prefix or self._kind.media
        return [f"{prefix}[{i}]" for i in range(count)]

    def expect(self, artefact_id: str) -> str:
        """Check that the job is meant to produce ``artefact_id``; returns it."""
        if self._request.produces and artefact_id not in self._request.produces:
            raise InvalidInputError(
                f"artefact {artefact_id!r} is not one this job produces; "
                f"expected: {', '.join(self._request.produces)}",
                field="produces",
            )
        return artefact_id

    def _malformed(self, reason: str) -> ProviderError:
        return ProviderError(ErrorCode.MALFORMED_OUTPUT, reason, retryable=False)

    async def text(self, artefact_id: str, text: str, **extra: Any) -> Artefact:
        """An inline text artefact."""
        self.expect(artefact_id)
        stored = await self._store.put_bytes(text.encode("utf-8"), mime_type="text/plain")
        return self._make(artefact_id, "inline", stored.uri, "text/plain", stored, text, extra)

    async def json(
        self,
        artefact_id: str,
        value: Any,
        *,
        schema: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> Artefact:
        """An inline JSON artefact, validated against ``schema`` if one is given."""
        self.expect(artefact_id)
        if schema is not None:
            try:
                validate_instance(value, schema, where=artefact_id)
            except InvalidInputError as exc:
                raise self._malformed(
                    f"the answer does not match its schema: {exc.reason}"
                ) from None
        data = json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")
        stored = await self._store.put_bytes(data, mime_type="application/json")
        return self._make(
            artefact_id, "inline", stored.uri, "application/json", stored, value, extra
        )

    async def blob(
        self,
        artefact_id: str,
        data: bytes | AsyncIterable[bytes],
        *,
        mime_type: str | None = None,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        **extra: Any,
    ) -> Artefact:
        """A blob artefact, streamed to the store; its MIME type is sniffed and checked.

        The sniffed type is what counts: a media producer's blob must be sniffed as its
        kind's media (``mime_type``, what the provider claims, only adds a warning when it
        disagrees), so an HTML page, a JSON error or an unknown binary where an image was
        promised is a ``malformed_output`` error and nothing is stored. A prompt producer's
        blob is text or JSON (``mime_type`` may refine ``text/plain``). If ``data`` names
        its ``source`` (a :class:`~producers.clients.downloads.CheckedDownload` does), the
        error names it too. A refused or failing stream is closed.
        """
        self.expect(artefact_id)
        chunks: AsyncIterable[bytes]
        if isinstance(data, bytes):
            payload = data

            async def single() -> AsyncIterator[bytes]:
                yield payload

            chunks = single()
        else:
            chunks = data
        try:
            head, stream = await _peek(chunks, _SNIFF_BYTES)
            mime = self._checked_mime(artefact_id, sniff_mime(head), mime_type, data)
            stored = await self._store.put_stream(
                stream,
                mime_type=mime,
                expected_size=expected_size,
                expected_sha256=expected_sha256,
            )
        except BaseException:
            await _close(chunks)
            raise
        return self._make(artefact_id, "blob", stored.uri, mime, stored, None, extra)

    def _checked_mime(
        self, artefact_id: str, sniffed: str | None, claimed: str | None, data: object
    ) -> str:
        """The blob's MIME type, or a ``malformed_output`` error if the kind forbids it."""
        if self._kind is Kind.TEXT:
            if sniffed and sniffed != "text/plain":
                mime = sniffed
            else:
                mime = claimed or sniffed or "application/octet-stream"
        else:
            mime = sniffed or "an unknown format"
        if sniffed and claimed and sniffed.split("/")[0] != claimed.split("/")[0]:
            self._recorder.warn(f"{artefact_id}: provider said {claimed}, content is {sniffed}")
        if not mime_allowed(self._kind, mime):
            source = getattr(data, "source", None)
            origin = f" from {source}" if isinstance(source, str) and source else ""
            raise self._malformed(
                f"{artefact_id}{origin} is {mime}, but a {self._kind.value} producer promises "
                f"{self._kind.media}/*; nothing was stored"
            )
        return mime

    def _make(
        self,
        artefact_id: str,
        kind: Literal["inline", "blob"],
        uri: str,
        mime: str,
        stored: Any,
        value: Any,
        extra: Mapping[str, Any],
    ) -> Artefact:
        diagnostics = Diagnostics(extra=redact(dict(extra)))
        return Artefact(
            id=artefact_id,
            kind=kind,
            mime_type=mime,
            uri=uri,
            size=stored.size,
            sha256=stored.sha256,
            value=value,
            diagnostics=diagnostics,
        )
