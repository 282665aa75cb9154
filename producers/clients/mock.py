"""The generic mock transport: deterministic answers of the promised kind, for any provider.

It is stateless: everything needed to answer a poll or a download is encoded in the job id
and the output URLs, so a job submitted in one process can be collected in another (as an
Airflow trigger does).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from producers.clients.base import MediaHints, MediaJob, TextRequest, TextResult
from producers.sdk.errors import ErrorCode, ProviderError
from producers.storage.base import CHUNK_SIZE

_PREFIX = "mock-"
_EXTENSIONS = {
    "jpeg": "jpg",
    "jpg": "jpg",
    "png": "png",
    "webp": "webp",
    "wav": "wav",
    "mp3": "mp3",
    "mp4": "mp4",
}
_DEFAULT_FORMAT = {"image": "png", "audio": "wav", "video": "mp4"}
#: Mock prompts are cut here: the picture only needs to show which prompt it is.
_PROMPT_CHARS = 400


def _encode(data: Mapping[str, Any]) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(zlib.decompress(base64.urlsafe_b64decode(padded)))
    except (ValueError, zlib.error) as exc:
        raise ProviderError(ErrorCode.NOT_FOUND, f"unknown mock job {token[:16]}...") from exc
    if not isinstance(data, dict):
        raise ProviderError(ErrorCode.NOT_FOUND, "unknown mock job")
    return data


def media_format(hints: MediaHints) -> str:
    """The file format the mock answers with for ``hints``."""
    fmt = (hints.format or "").lower()
    for token, ext in _EXTENSIONS.items():
        if token in fmt:
            return ext
    return _DEFAULT_FORMAT.get(hints.media, "txt")


def text_tokens(text: str) -> list[str]:
    """``text`` cut the way a streaming LLM sends it (each word with the whitespace before
    it); ``"".join(text_tokens(text)) == text``."""
    return re.findall(r"\s*\S+|\s+$", text) if text else []


def answer_text(hints: MediaHints) -> str:
    """A text model's deterministic answer for ``hints``: JSON valid against
    ``hints.json_schema`` if there is one, else a few words from the prompt.

    Raises:
        ValueError: no finite answer satisfies the schema.
    """
    from producers.clients.mock_json import instance_for, text_for

    if hints.json_schema is not None:
        value = instance_for(hints.json_schema, seed_text=hints.prompt)
        return json.dumps(value, ensure_ascii=False)
    return text_for(hints.prompt)


def render(hints: MediaHints, index: int) -> bytes:
    """The bytes of output ``index`` for ``hints`` (deterministic)."""
    # Imported here: a process that only submits (an Airflow task deferring) never renders.
    from producers.clients.mock_media import render_audio, render_image, render_video

    fmt = media_format(hints)
    if hints.media == "image":
        return render_image(
            hints.prompt,
            aspect_ratio=hints.aspect_ratio,
            width=hints.width,
            height=hints.height,
            format="jpeg" if fmt == "jpg" else fmt,
            index=index,
        )
    if hints.media == "audio":
        return render_audio(hints.duration_seconds or 5.0, text=hints.prompt, format=fmt)
    return render_video(
        hints.prompt,
        duration_seconds=hints.duration_seconds or 5.0,
        aspect_ratio=hints.aspect_ratio,
        width=hints.width,
        height=hints.height,
        with_audio=hints.with_audio,
    )


def unanswerable(exc: ValueError) -> ProviderError:
    """The mock's error for an output schema no finite answer satisfies (``invalid_input``)."""
    reason = str(exc)
    return ProviderError(
        ErrorCode.INVALID_INPUT,
        "the output schema cannot be answered: "
        + (reason if len(reason) <= 300 else reason[:297] + "..."),
        retryable=False,
        caused_by_user=True,
    )


class MockClient:
    """A provider adapter that answers locally: media jobs and text generation.

    Implements :class:`producers.clients.base.MediaClient` and
    :class:`producers.clients.base.TextClient`. ``requests`` counts calls so tests can
    assert that nothing was sent.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.requests: list[str] = []

    async def create_job(
        self,
        *,
        model: str,
        version: str | None,
        payload: Mapping[str, Any],
        hints: MediaHints,
    ) -> MediaJob:
        """Accept a job; it succeeds on the first poll."""
        self.requests.append("create")
        compact = hints.model_copy(update={"prompt": hints.prompt[:_PROMPT_CHARS]})
        token = _encode({"model": model, "hints": compact.model_dump(mode="json")})
        return MediaJob(id=_PREFIX + token, status="starting")

    async def get_job(self, job_id: str) -> MediaJob:
        """The job, finished, with one output URL per expected output."""
        self.requests.append("get")
        data = _decode(job_id.removeprefix(_PREFIX))
        hints = MediaHints.model_validate(data["hints"])
        digest = hashlib.sha256(job_id.encode()).hexdigest()[:8]
        raw = {"mock": True, "model": data.get("model"), "digest": digest}
        if hints.media == "text":  # an LLM: a list of tokens, as Replicate sends them
            try:
                text = answer_text(hints)
            except ValueError as exc:  # a schema no finite answer satisfies
                raise unanswerable(exc) from None
            return MediaJob(
                id=job_id,
                status="succeeded",
                value=text_tokens(text),
                provider_seconds=0.0,
                raw=raw,
            )
        ext = media_format(hints)
        outputs = tuple(
            f"mock://{self.provider}/{job_id}/out-{i}.{ext}" for i in range(max(1, hints.count))
        )
        return MediaJob(
            id=job_id, status="succeeded", outputs=outputs, provider_seconds=0.0, raw=raw
        )

    async def cancel_job(self, job_id: str) -> MediaJob:
        """Cancel (a mock job is already finished; it reports canceled)."""
        self.requests.append("cancel")
        return MediaJob(id=job_id, status="canceled")

    async def download(self, url: str) -> AsyncIterator[bytes]:
        """Generate the output at ``url`` and stream it in chunks."""
        self.requests.append("download")
        _, _, rest = url.partition(f"mock://{self.provider}/")
        job_id, _, name = rest.partition("/")
        data = _decode(job_id.removeprefix(_PREFIX))
        index = int(name.split("-", 1)[1].split(".", 1)[0])
        blob = render(MediaHints.model_validate(data["hints"]), index)
        for start in range(0, len(blob), CHUNK_SIZE):
            yield blob[start : start + CHUNK_SIZE]

    async def generate(self, request: TextRequest) -> TextResult:
        """Answer with schema-valid JSON (structured output) or plain text."""
        self.requests.append("generate")
        from producers.clients.mock_json import instance_for, text_for

        if request.json_schema is not None:
            try:
                value = instance_for(request.json_schema, seed_text=request.input)
            except ValueError as exc:  # a schema no finite answer satisfies
                raise unanswerable(exc) from None
            text = json.dumps(value, ensure_ascii=False)
        else:
            text = text_for(request.input)
        prompt_tokens = len(((request.instructions or "") + " " + request.input).split())
        usage = {
            "input_tokens": prompt_tokens,
            "output_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        }
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        return TextResult(
            text=text, model=request.model, response_id=f"resp_mock_{digest}", usage=usage
        )

    async def aclose(self) -> None:
        """Nothing to release."""
