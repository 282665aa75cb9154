"""A media producer's blob must be its kind's media, sniffed from the bytes: an HTML page or
a JSON error where an image was promised is refused and nothing reaches the store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from producers.sdk.artefacts import ArtefactBuilder, DiagnosticsRecorder, mime_allowed
from producers.sdk.errors import ErrorCode, ProviderError
from producers.sdk.jobs import Kind
from producers.storage.memory import MemoryStore
from producers.testing.fixtures import make_job_request

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40
MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 60
GIF = b"GIF89a" + b"\x00" * 60
HTML = b"<!doctype html><html><body>169.254.169.254 says hello</body></html>"
JSON = b'{"error": "not found", "token": "abc"}'


def builder(kind: Kind) -> tuple[ArtefactBuilder, MemoryStore, DiagnosticsRecorder]:
    store = MemoryStore()
    request = make_job_request()
    recorder = DiagnosticsRecorder(request, "test")
    return (
        ArtefactBuilder(store=store, request=request, kind=kind, recorder=recorder),
        store,
        recorder,
    )


class Source:
    """A download-like stream: names its source, remembers whether it was closed."""

    source = "cdn.example.org"

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if not self._chunks:
            raise StopAsyncIteration
        return self._chunks.pop(0)

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("kind", "data", "claimed"),
    [
        (Kind.TEXT_TO_IMAGE, HTML, "image/png"),
        (Kind.TEXT_TO_IMAGE, JSON, "image/png"),
        (Kind.TEXT_TO_IMAGE, b"plain words", None),
        (Kind.TEXT_TO_IMAGE, b"\x00\x01\x02 unknown binary \xff", "image/png"),
        (Kind.TEXT_TO_IMAGE, b"", "image/png"),
        (Kind.TEXT_TO_IMAGE, WAV, "image/png"),
        (Kind.TEXT_TO_SPEECH, JSON, "audio/wav"),
        (Kind.TEXT_TO_VIDEO, HTML, "video/mp4"),
        (Kind.TEXT_TO_MUSIC, MP4, "audio/mpeg"),
        (Kind.TEXT, PNG, None),
    ],
    ids=[
        "html-as-png",
        "json-as-png",
        "text",
        "unknown-binary",
        "empty",
        "wav-for-image",
        "json-for-speech",
        "html-for-video",
        "video-for-music",
        "png-for-text",
    ],
)
async def test_a_blob_that_is_not_the_kinds_media_is_refused(
    kind: Kind, data: bytes, claimed: str | None
) -> None:
    artefacts, store, _ = builder(kind)
    with pytest.raises(ProviderError) as caught:
        await artefacts.blob("out[0]", data, mime_type=claimed)
    assert caught.value.code is ErrorCode.MALFORMED_OUTPUT and caught.value.retryable is False
    assert f"promises {kind.media}/*" in caught.value.reason
    assert "nothing was stored" in caught.value.reason
    assert store._objects == {}


@pytest.mark.parametrize(
    ("kind", "data", "claimed", "mime"),
    [
        (Kind.TEXT_TO_IMAGE, PNG, "image/jpeg", "image/png"),
        (Kind.TEXT_TO_SPEECH, WAV, None, "audio/wav"),
        (Kind.TEXT_TO_VIDEO, MP4, "video/mp4", "video/mp4"),
        (Kind.TEXT_TO_VIDEO, GIF, None, "image/gif"),
        (Kind.TEXT, JSON, None, "application/json"),
        (Kind.TEXT, b"a script", "application/json", "application/json"),
    ],
    ids=["png", "wav", "mp4", "gif-for-video", "json-text", "claimed-json-text"],
)
async def test_a_blob_of_the_kinds_media_is_stored_with_the_sniffed_type(
    kind: Kind, data: bytes, claimed: str | None, mime: str
) -> None:
    artefacts, store, _ = builder(kind)
    artefact = await artefacts.blob("out[0]", data, mime_type=claimed)
    assert artefact.mime_type == mime and artefact.size == len(data)
    assert len(store._objects) == 1


def test_mime_allowed_has_no_text_for_media_kinds() -> None:
    assert not mime_allowed(Kind.TEXT_TO_IMAGE, "text/plain")
    assert not mime_allowed(Kind.TEXT_TO_SPEECH, "application/json")
    assert mime_allowed(Kind.TEXT, "application/json")
    assert mime_allowed(Kind.IMAGE_TO_VIDEO, "image/gif")


async def test_the_refusal_names_the_source_and_closes_the_stream() -> None:
    artefacts, store, _ = builder(Kind.TEXT_TO_IMAGE)
    stream = Source(HTML[:20], HTML[20:], b"x" * 1000)
    with pytest.raises(ProviderError, match=r"image\[0\] from cdn\.example\.org is text/plain"):
        await artefacts.blob("image[0]", stream, mime_type="image/png")
    assert stream.closed
    assert store._objects == {}


async def test_a_stream_failing_midway_leaves_nothing_and_is_closed() -> None:
    artefacts, store, _ = builder(Kind.TEXT_TO_IMAGE)

    class Failing(Source):
        async def __anext__(self) -> bytes:
            chunk = await super().__anext__()
            if chunk == b"boom":
                raise ProviderError(ErrorCode.MALFORMED_OUTPUT, "over the cap", retryable=False)
            return chunk

    stream = Failing(PNG, b"\x00" * 4096, b"boom", b"\x00")
    with pytest.raises(ProviderError, match="over the cap"):
        await artefacts.blob("image[0]", stream)
    assert stream.closed
    assert store._objects == {}


async def test_a_disagreeing_claim_is_a_warning() -> None:
    artefacts, _, recorder = builder(Kind.TEXT_TO_IMAGE)
    await artefacts.blob("image[0]", PNG, mime_type="video/mp4")
    assert recorder.data.warnings == ["image[0]: provider said video/mp4, content is image/png"]
