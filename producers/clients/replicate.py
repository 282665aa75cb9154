"""Replicate: what every Replicate model shares: the live adapter and the error mapping."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from producers.clients.base import (
    MediaHints,
    MediaJob,
    code_for_status,
    retry_after_seconds,
    ssl_context,
)
from producers.clients.downloads import CheckedDownload, OutputPolicy
from producers.clients.replicate_recovery import (
    MAX_PAGES,
    CreateLedger,
    Target,
    Why,
    created_after,
    is_candidate,
    may_have_reached,
    request_key,
)
from producers.clients.spec import REPLICATE_DEFAULT_BASE_URL
from producers.sdk.errors import ConfigurationError, ErrorCode, ProviderError
from producers.sdk.secrets import redact, register_secret
from producers.sdk.uploads import LocalFile

PROVIDER = "replicate"
#: Defined once, with the token's secret and the base-URL variable, in the client spec.
DEFAULT_BASE_URL = REPLICATE_DEFAULT_BASE_URL
#: Where Replicate serves prediction outputs: ``replicate.delivery`` and its subdomains.
DELIVERY_HOSTS = (".replicate.delivery",)
_SAFETY_WORDS = ("nsfw", "safety", "sensitive", "content policy", "flagged", "moderation")
DOCS_HINT = "https://replicate.com/docs/topics/predictions/lifecycle"
BILLING_URL = "https://replicate.com/account/billing"
STATUS_PAGE = "https://www.replicatestatus.com"
#: The variable of the inline/upload threshold (bytes; the ``inline_max_bytes`` option wins).
INLINE_MAX_BYTES_ENV = "TUTOPANDA_REPLICATE_INLINE_MAX_BYTES"
#: Replicate's own advice: data URIs for files up to 256 KB, its files API above.
DEFAULT_INLINE_MAX_BYTES = 256 * 1024
#: An uploaded file is used again only while it stays valid at least this much longer
#: (a prediction may wait in Replicate's queue before it fetches its inputs).
UPLOAD_REUSE_MARGIN = 3600.0
#: Words of an error's title or detail that say the account is out of credit or past its
#: spend limit (Replicate answers 402 ``Insufficient credit``).
_BILLING_WORDS = ("insufficient credit", "spend limit", "out of credit", "payment required")
#: The statuses a prediction may have that a :class:`MediaJob` carries.
_JOB_STATUSES = frozenset({"starting", "processing", "succeeded", "failed", "canceled"})
_FIELD_LINE = re.compile(r"^\s*-\s*([^:\s][^:]*?)\s*:", re.MULTILINE)


def failed_prediction_error(error_text: str | None, *, prediction_id: str | None) -> ProviderError:
    """Map a prediction that ended ``failed`` to ``safety_blocked`` or ``model_failed``."""
    text = (error_text or "the prediction failed without an error message").strip()
    lowered = text.lower()
    if any(word in lowered for word in _SAFETY_WORDS):
        return ProviderError(
            ErrorCode.SAFETY_BLOCKED,
            text,
            retryable=False,
            caused_by_user=True,
            provider=PROVIDER,
            provider_job_id=prediction_id,
            hint="the provider's safety filter refused the prompt; change the prompt",
        )
    return ProviderError(
        ErrorCode.MODEL_FAILED,
        text,
        retryable=False,
        caused_by_user=False,
        provider=PROVIDER,
        provider_job_id=prediction_id,
        hint=DOCS_HINT,
    )


def aborted_prediction_error(prediction_id: str, error_text: str | None = None) -> ProviderError:
    """A prediction that ended ``aborted``: it ended before it started (e.g. its deadline
    passed while it was queued), so it never ran and nothing was billed.

    ``timeout``, retryable, with the prediction's id; a retry runs a new prediction (there is
    nothing to resume: the error carries no handle).
    """
    said = f" ({error_text.strip()})" if error_text and error_text.strip() else ""
    return ProviderError(
        ErrorCode.TIMEOUT,
        f"prediction {prediction_id} was aborted before it started (it ended without running, "
        f"e.g. its deadline passed while it was queued; nothing was billed){said}",
        retryable=True,
        caused_by_user=False,
        provider=PROVIDER,
        provider_job_id=prediction_id,
        raw={"type": "aborted", "detail": error_text or None},
        hint="Replicate could not start the model in time (busy or cold); run the job again, "
        "later, or with a fallback model",
    )


def data_removed_error(prediction_id: str) -> ProviderError:
    """A prediction that succeeded but whose output data Replicate removed (``data_removed``):
    ``not_found``, retryable (a retry runs, and pays for, a new prediction)."""
    return ProviderError(
        ErrorCode.NOT_FOUND,
        f"prediction {prediction_id} succeeded, but Replicate removed its output data before "
        "it was collected (outputs of API predictions are kept for about an hour)",
        retryable=True,
        caused_by_user=False,
        provider=PROVIDER,
        provider_job_id=prediction_id,
        raw={"type": "data_removed"},
        hint="collect a prediction's outputs within an hour; a retry runs the prediction again "
        "(and is billed again)",
    )


def _text(value: Any) -> str | None:
    """A scalar of an error body as text (None for missing, empty or non-scalar values)."""
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip()
    return text or None


def refused_fields(detail: str | None, body: Mapping[str, Any] | None = None) -> list[str]:
    """The input fields a 422 answer names (``- input.size: ...`` lines, ``invalid_fields``),
    ``input.`` dropped, in order, each once."""
    names: list[str] = []
    invalid = (body or {}).get("invalid_fields")
    if isinstance(invalid, list):
        names += [str(f["field"]) for f in invalid if isinstance(f, Mapping) and f.get("field")]
    names += _FIELD_LINE.findall(detail or "")
    shown: list[str] = []
    for name in names:
        name = name.strip().removeprefix("input.")
        if name and name not in shown:
            shown.append(name[:80])
    return shown


def _hint(
    status: int, code: ErrorCode, detail: str | None, path: str | None, fields: list[str]
) -> str:
    """What to check, in a few words, for an HTTP error answer."""
    path = path or ""
    if code is ErrorCode.QUOTA_EXCEEDED:
        return (
            f"add credit or raise the spend limit at {BILLING_URL}; retrying cannot help until then"
        )
    if status == 401:
        return "check the Replicate API token (REPLICATE_API_TOKEN, or the Airflow connection's password)"
    if status == 403:
        return "the token's account may not use this model or resource; check the token and the model's access"
    if status == 404:
        if path.startswith("/v1/predictions/"):
            return "the prediction is gone or belongs to another account; check the token"
        if path.startswith("/v1/files"):
            return "the uploaded file is gone (expired or deleted); run the job again"
        if path.startswith("/v1/deployments/"):
            return "check the deployment name (owner/name) and that the token's account owns it"
        return "check the model id (owner/name) and version in the model's declaration"
    if status == 409:
        return "the request conflicts with the resource's current state (e.g. it already finished)"
    if status == 413:
        return f"the request is too large: send big files through the files API (lower {INLINE_MAX_BYTES_ENV})"
    if status in (400, 422) and path.startswith("/v1/files"):
        return "Replicate refused the upload's form (an SDK bug: report it)"
    if status in (400, 422):
        if fields == ["version"] or (detail or "").lower().startswith("invalid version"):
            return (
                "check the model version in the model's declaration and that the token may use it"
            )
        inputs = [f for f in fields if f not in ("(root)", "version")]
        if inputs:
            return f"the model refused the input {', '.join(inputs)}: check the value against the model's schema (tutopanda models show)"
        if "(root)" in fields:
            return "the request body has a field Replicate does not accept (an SDK bug: report it)"
        return "the model refused the input: check the values against the model's schema (tutopanda models show)"
    if status == 429:
        return "Replicate throttled the requests; wait and retry, or run fewer jobs at once"
    if status >= 500:
        return f"Replicate is failing or overloaded; retry later ({STATUS_PAGE})"
    return DOCS_HINT


def http_error(
    status: int,
    body: Mapping[str, Any] | None,
    *,
    retry_after: float | None = None,
    method: str | None = None,
    path: str | None = None,
) -> ProviderError:
    """Map an HTTP error answer (problem details: ``{"title", "detail", "status"}``) to a
    ProviderError with a hint; ``raw`` keeps the status, title, detail, type, method and path.

    402, or a 403/429 whose words say the account is out of credit or past its spend limit,
    is ``quota_exceeded`` (never retryable).
    """
    body = body if isinstance(body, Mapping) else {}
    title, detail, kind = (
        _text(body.get("title")),
        _text(body.get("detail")),
        _text(body.get("type")),
    )
    reason = detail or title or f"HTTP {status}"
    words = f"{title or ''} {detail or ''}".lower()
    code = ErrorCode.INVALID_INPUT if status == 413 else code_for_status(status)
    retryable: bool | None = None
    if status == 402 or (status in (403, 429) and any(w in words for w in _BILLING_WORDS)):
        code, retryable = ErrorCode.QUOTA_EXCEEDED, False
    fields = refused_fields(detail, body) if status in (400, 422) else []
    raw = {"status": status, "title": title, "detail": detail, "type": kind}
    raw |= {"method": method, "path": path}
    return ProviderError(
        code,
        reason,
        retryable=retryable,
        status_code=status,
        retry_after=retry_after if code is ErrorCode.RATE_LIMITED else None,
        provider=PROVIDER,
        raw={k: v for k, v in raw.items() if v is not None},
        caused_by_user=code in (ErrorCode.INVALID_INPUT, ErrorCode.AUTH_FAILED),
        hint=_hint(status, code, detail, path, fields),
    )


def error_from_exception(exc: BaseException, *, retry_after: float | None = None) -> ProviderError:
    """Map an exception raised by the ``replicate`` package (or httpx) to ProviderError.

    ``ReplicateError`` keeps no response headers, so a 429's ``Retry-After`` must be read
    by the caller (an httpx response hook) and passed as ``retry_after``. The live adapter's
    transport raises mapped errors for every 4xx/5xx answer itself (with the request's
    method and path), so a ``ReplicateError`` reaches this only from other callers.
    """
    from replicate.exceptions import ModelError, ReplicateError

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ModelError):
        prediction = exc.prediction
        return failed_prediction_error(
            getattr(prediction, "error", None), prediction_id=getattr(prediction, "id", None)
        )
    if isinstance(exc, ReplicateError):
        body = {"title": exc.title, "detail": exc.detail, "type": exc.type}
        return http_error(exc.status or 0, body, retry_after=retry_after)
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(
            ErrorCode.TIMEOUT, f"Replicate timed out: {type(exc).__name__}", provider=PROVIDER
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        return ProviderError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            f"the connection to Replicate broke: {exc}",
            provider=PROVIDER,
        )
    if isinstance(exc, httpx.TransportError):
        return ProviderError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            redact(f"could not reach Replicate: {exc}"),
            provider=PROVIDER,
        )
    if isinstance(exc, json.JSONDecodeError):
        return ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            f"Replicate answered with a body that is not JSON ({exc.msg})",
            provider=PROVIDER,
            retryable=True,
        )
    if _is_validation_error(exc):
        # The official client's models (e.g. a File) refused the answer's shape.
        return ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            f"Replicate answered with a body of an unexpected shape ({type(exc).__name__})",
            provider=PROVIDER,
            retryable=True,
        )
    return ProviderError(
        ErrorCode.UNKNOWN,
        redact(f"{type(exc).__name__}: {exc}"),
        provider=PROVIDER,
        retryable=False,
        raw={"type": type(exc).__name__},
    )


def _is_validation_error(exc: BaseException) -> bool:
    import pydantic
    from pydantic import v1 as pydantic_v1

    return isinstance(exc, pydantic.ValidationError | pydantic_v1.ValidationError)


# ---- the live adapter -----------------------------------------------------------------------

API_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=10.0)
#: API requests one client sends at once (more wait their turn, in order).
MAX_IN_FLIGHT = 16
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0, pool=10.0)


class SurfacingTransport(httpx.AsyncBaseTransport):
    """Turns every error answer (4xx, 5xx) into a mapped :class:`ProviderError` at the transport.

    replicate-python wraps every transport it is given in its own ``RetryTransport``, which
    silently retries GET-like requests on 429/503/504 up to ten times, sleeping any
    ``Retry-After`` uncapped; and its ``ReplicateError`` keeps no response headers nor the
    request. Raising here, below that wrapper, does both jobs with public API only: the
    wrapper never sees a status it would retry (so every request the SDK makes is one
    request on the wire), ``Retry-After`` is read from the real response, and the error's
    ``raw`` names the request's method and path. Retrying is left to the clients.

    It also restores the timeout on prediction creates and file uploads: replicate-python
    1.0.7 passes ``timeout=None`` to httpx for a create without ``wait`` and for every upload,
    which disables every timeout, so a request that never answers would hang forever.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        timeout: httpx.Timeout = API_TIMEOUT,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport(verify=ssl_context())
        self._timeout = timeout.as_dict()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; raise a mapped error for every 4xx and 5xx answer."""
        self.requests += 1
        current = request.extensions.get("timeout") or {}
        if all(value is None for value in current.values()):
            request.extensions["timeout"] = dict(self._timeout)
        # One client may serve hundreds of waiting jobs (an Airflow triggerer): requests wait
        # their turn here, not in httpcore's pool, whose queue costs grow with its square.
        async with self._in_flight:
            response = await self._inner.handle_async_request(request)
        if response.status_code < 400:
            return response
        try:
            raw = await response.aread()
        finally:
            await response.aclose()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {
                "detail": raw[:500].decode("utf-8", "replace") or f"HTTP {response.status_code}"
            }
        error = http_error(
            response.status_code,
            body if isinstance(body, dict) else {"detail": str(body)},
            retry_after=retry_after_seconds(dict(response.headers)),
            method=request.method,
            path=request.url.path,
        )
        # Whether Replicate itself answered (problem+json) or a proxy in front of it: a
        # proxy's 5xx on a create says nothing of whether the prediction was made.
        kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind and isinstance(error.raw, dict):
            error.raw["content_type"] = kind[:100]
        raise error

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def _inline(value: LocalFile, data: bytes) -> str:
    """A :class:`LocalFile`'s bytes as a ``data:`` URI with its stored MIME type."""
    return f"data:{value.mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def _is_url(value: Any) -> bool:
    """True for a string that is an absolute URL with a host, or a ``data:`` URI."""
    if not isinstance(value, str) or len(value) > 1_000_000:
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme.lower() == "data")


def output_urls(output: Any) -> tuple[str, ...]:
    """The output's URLs when it is a URL or a list of URLs; ``()`` for any other shape (text,
    a list of tokens, an object, None): the producer interprets those from the value."""
    items = output if isinstance(output, list) else [output]
    if not items or not all(_is_url(item) for item in items):
        return ()
    return tuple(items)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def job_from_json(data: Any) -> MediaJob:
    """A prediction's JSON (untrusted) as a :class:`MediaJob`, validated here rather than by
    replicate-python's ``Prediction`` model (1.0.7 refuses the ``aborted`` status).

    Raises:
        ProviderError: ``timeout`` (retryable) for an ``aborted`` prediction;
            ``malformed_output`` for an answer without an id or a status, ``unknown`` for a
            status this adapter does not know.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not data["id"]:
        raise ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            "Replicate answered with a prediction that has no id",
            retryable=True,
            provider=PROVIDER,
        )
    prediction_id = str(data["id"])[:100]
    status = data.get("status")
    error = None if data.get("error") is None else str(data.get("error"))
    if status == "aborted":
        raise aborted_prediction_error(prediction_id, error)
    if not isinstance(status, str) or status not in _JOB_STATUSES:
        shown = repr(status)[:60]
        raise ProviderError(
            ErrorCode.UNKNOWN,
            f"prediction {prediction_id} has a status this adapter does not know: {shown}",
            retryable=False,
            provider=PROVIDER,
            provider_job_id=prediction_id,
            raw={"type": "unknown_status", "detail": shown},
        )
    output = data.get("output")
    metrics = data.get("metrics")
    urls = data.get("urls")
    return MediaJob(
        id=prediction_id,
        status=status,  # one of _JOB_STATUSES, checked above
        outputs=output_urls(output),
        value=output,
        data_removed=data.get("data_removed") is True,
        error=error,
        provider_seconds=_number(metrics.get("predict_time"))
        if isinstance(metrics, Mapping)
        else None,
        raw={
            "status": status,
            "urls": {str(k): v for k, v in urls.items() if isinstance(v, str)}
            if isinstance(urls, Mapping)
            else {},
        },
    )


def _create_error(exc: BaseException, model: str) -> ProviderError:
    """A failed create's exception as a mapped error, its hint naming ``model``."""
    if not isinstance(exc, ProviderError):
        return error_from_exception(exc)
    if exc.status_code == 404:
        exc.hint = f"check the model id ({model}) and version in the model's declaration"
    elif exc.hint and exc.hint.endswith("(tutopanda models show)"):
        exc.hint = exc.hint[: -len("show)")] + f"show replicate:{model})"
    return exc.with_context(provider=PROVIDER)


@dataclass(frozen=True)
class _Lookup:
    """What one look for a lost create found: ``adopted`` (the listed prediction,
    ``item``), ``none``, ``ambiguous`` or ``list too long``; ``candidates`` and ``listed``
    are counts."""

    outcome: str
    item: Mapping[str, Any] | None
    candidates: int
    listed: int


def _recovered(item: Mapping[str, Any], why: str, listed: int) -> MediaJob:
    """The adopted prediction ``item`` (listed JSON, untrusted) as a :class:`MediaJob`
    marked ``raw["recovered_create"]``; it raises as a create's answer would (``aborted``,
    output data removed)."""
    job = _checked(job_from_json(item))
    note = {"after": why, "listed": listed}
    return job.model_copy(update={"raw": {**job.raw, "recovered_create": note}})


def _checked(job: MediaJob) -> MediaJob:
    """``job``, unless it succeeded with its output data removed (a clear error, never an
    empty result)."""
    if job.status == "succeeded" and job.data_removed:
        raise data_removed_error(job.id)
    return job


def read_inline_max_bytes(
    value: int | str | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """The inline/upload threshold: ``value``, else ``$TUTOPANDA_REPLICATE_INLINE_MAX_BYTES``,
    else 256 KiB; a whole number of bytes, 0 or more.

    Raises:
        ConfigurationError: The setting is not a whole number of bytes.
    """
    env = os.environ if environ is None else environ
    setting = "[tutopanda] inline_max_bytes"
    if value is None and env.get(INLINE_MAX_BYTES_ENV, "").strip():
        value, setting = env[INLINE_MAX_BYTES_ENV], INLINE_MAX_BYTES_ENV
    if value is None:
        return DEFAULT_INLINE_MAX_BYTES
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if isinstance(value, bool) or number < 0:
        raise ConfigurationError(f"{setting}: {value!r} is not a whole number of bytes (0 or more)")
    return number


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Upload:
    """A file uploaded with Replicate's files API, kept for reuse while it is valid.

    Attributes:
        id: The file's id.
        url: Its ``urls.get`` URL (what a prediction's input names).
        sha256: The content's digest (the reuse key).
        size: Its size in bytes.
        expires_at: When Replicate deletes it (Unix time; None: not said).
    """

    id: str
    url: str
    sha256: str
    size: int
    expires_at: float | None

    def valid(self, now: float | None = None) -> bool:
        """True while the file stays valid for at least :data:`UPLOAD_REUSE_MARGIN` seconds."""
        if self.expires_at is None:
            return True
        return self.expires_at - (time.time() if now is None else now) > UPLOAD_REUSE_MARGIN


class ReplicateClient:
    """The live Replicate adapter, over the official ``replicate`` package.

    Implements :class:`producers.clients.base.MediaClient`: create (by model, or by pinned
    version), get, cancel, and streamed download of outputs. Requests go through the official
    client's own request path (its base URL, token and transport); the prediction JSON is
    validated here (:func:`job_from_json`), since replicate-python 1.0.7's ``Prediction``
    refuses statuses newer than it (``aborted``).

    Local files in the payload (:class:`~producers.sdk.uploads.LocalFile` values: the
    producer turns store blobs of file fields into them) up to ``inline_max_bytes`` are sent
    inline as data URIs with their stored MIME type; larger ones are uploaded first with
    Replicate's files API (``POST /v1/files``, the official ``files.async_create``) and the
    input names the file's URL. One blob (by sha256) is uploaded once per client while its
    file stays valid. An upload that fails raises before any prediction is created, so
    nothing is paid. A string is never read as a file.
    """

    def __init__(
        self,
        api_token: str,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        download_transport: httpx.AsyncBaseTransport | None = None,
        wait_seconds: int | None = None,
        output_hosts: str | Sequence[str] | None = None,
        max_output_bytes: int | str | None = None,
        download_deadline: float | str | None = None,
        inline_max_bytes: int | str | None = None,
    ) -> None:
        """Build the adapter.

        Args:
            api_token: The Replicate API token (registered for redaction).
            base_url: The API base URL (default ``$REPLICATE_BASE_URL``, else Replicate's).
            timeout: Timeouts of API requests.
            transport: The httpx transport of API requests (tests, proxies).
            download_transport: The httpx transport of output downloads.
            wait_seconds: ``Prefer: wait`` seconds on create (None: no wait).
            output_hosts: Hosts outputs may come from besides Replicate's delivery hosts
                (comma-separated; ``.example.com`` includes subdomains), added to
                ``$TUTOPANDA_OUTPUT_HOSTS``.
            max_output_bytes: The byte cap of one output (default
                ``$TUTOPANDA_MAX_OUTPUT_BYTES``, else 4 GiB).
            download_deadline: Seconds one download may take (default
                ``$TUTOPANDA_DOWNLOAD_DEADLINE``, else 30 minutes).
            inline_max_bytes: The largest local file sent inline as a data URI; larger ones
                go through the files API (default ``$TUTOPANDA_REPLICATE_INLINE_MAX_BYTES``,
                else 256 KiB).

        Raises:
            ConfigurationError: An output or upload setting has a bad value.
        """
        from replicate.client import Client

        register_secret(api_token)
        api_base_url = base_url or os.environ.get("REPLICATE_BASE_URL") or DEFAULT_BASE_URL
        self.outputs = OutputPolicy.from_settings(
            provider=PROVIDER,
            api_base_url=api_base_url,
            delivery_hosts=DELIVERY_HOSTS,
            output_hosts=output_hosts,
            max_output_bytes=max_output_bytes,
            download_deadline=download_deadline,
        )
        self.inline_max_bytes = read_inline_max_bytes(inline_max_bytes)
        self.transport = SurfacingTransport(transport, timeout=timeout or API_TIMEOUT)
        self._client = Client(
            api_token=api_token,
            base_url=api_base_url,
            timeout=timeout or API_TIMEOUT,
            transport=self.transport,
        )
        # Redirects are followed by CheckedDownload, each hop checked against the policy.
        self._downloads = httpx.AsyncClient(
            timeout=DOWNLOAD_TIMEOUT,
            follow_redirects=False,
            transport=download_transport,
            verify=ssl_context(),
        )
        self._wait = wait_seconds
        self._api_base = urlsplit(api_base_url)
        #: This client's creates: predictions owned, creates in flight, lost creates.
        self.ledger = CreateLedger()
        #: Files uploaded by this client, by the sha256 of their content.
        self.uploads: dict[str, Upload] = {}
        self._upload_locks: dict[tuple[int, str], asyncio.Lock] = {}

    # -- inputs -------------------------------------------------------------------------------

    async def _file_value(self, value: Any) -> Any:
        """A payload value with its local files inline (small) or uploaded (large)."""
        if isinstance(value, LocalFile):
            size = value.path.stat().st_size
            if size > self.inline_max_bytes:
                return (await self.upload(value)).url
            return _inline(value, await asyncio.to_thread(value.path.read_bytes))
        if isinstance(value, list):
            return [await self._file_value(item) for item in value]
        return value

    async def upload(self, file: LocalFile) -> Upload:
        """Upload ``file`` with the files API (once per content while the upload is valid).

        Raises:
            ProviderError: The upload failed (a 5xx, a 429, a broken connection: retryable;
                nothing was paid, no prediction exists).
        """
        digest = await asyncio.to_thread(_sha256, file.path)
        key = (id(asyncio.get_running_loop()), digest)
        lock = self._upload_locks.setdefault(key, asyncio.Lock())
        async with lock:
            kept = self.uploads.get(digest)
            if kept is not None and kept.valid():
                return kept
            size = file.path.stat().st_size
            try:
                with file.path.open("rb") as handle:
                    created = await self._client.files.async_create(
                        handle, filename=file.path.name, content_type=file.mime_type
                    )
            except Exception as exc:  # the adapter boundary: every failure leaves mapped
                error = error_from_exception(exc)
                error.reason = (
                    f"the upload of an input file ({size} bytes) failed; no prediction was "
                    f"created: {error.reason}"
                )
                error.provider = error.provider or PROVIDER
                raise error from exc
            url = created.urls.get("get") if isinstance(created.urls, Mapping) else None
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
                raise ProviderError(
                    ErrorCode.MALFORMED_OUTPUT,
                    f"Replicate answered an upload (file {created.id}) without an http(s) urls.get",
                    retryable=True,
                    provider=PROVIDER,
                )
            upload = Upload(
                id=str(created.id),
                url=str(url),
                sha256=digest,
                size=size,
                expires_at=_timestamp(created.expires_at),
            )
            self.uploads[digest] = upload
            return upload

    # -- predictions --------------------------------------------------------------------------

    @staticmethod
    def _job(prediction: Any) -> MediaJob:
        """A prediction's JSON (or an object with its fields) as a :class:`MediaJob`."""
        if not isinstance(prediction, Mapping):
            fields = ("id", "status", "output", "error", "metrics", "urls", "data_removed")
            prediction = {name: getattr(prediction, name, None) for name in fields}
        return job_from_json(prediction)

    async def create_job(
        self,
        *,
        model: str,
        version: str | None,
        payload: Mapping[str, Any],
        hints: MediaHints,
    ) -> MediaJob:
        """Create a prediction: its large local files uploaded first (each at most once),
        then one POST; a create whose answer is lost is looked for before paying twice.

        If the POST fails in a way that may have made a prediction (the connection broke or
        timed out after sending, a proxy's 5xx, an unreadable success), the token's recent
        predictions are listed once and the one this create made is adopted (its
        :class:`MediaJob` ``raw`` carries ``recovered_create``); if it cannot be told apart
        (none, or several identical), the error is raised and a later create of the same
        request (the retry) looks once more before sending. The rule, and its one limit, are
        in :mod:`producers.clients.replicate_recovery`.

        Raises:
            ProviderError: The create failed (and its prediction, if any, was not found), or
                a retry's look for a lost create could not list the predictions (retryable:
                it is not sent again until the list is read).
        """
        body = {key: await self._file_value(value) for key, value in payload.items()}
        request: dict[str, Any] = {"input": body}
        if version:
            path = "/v1/predictions"
            request["version"] = version
        else:
            owner, _, name = model.partition("/")
            path = f"/v1/models/{quote(owner, safe='')}/{quote(name, safe='')}/predictions"
        extra: dict[str, Any] = {}
        if self._wait:
            extra["headers"] = {"Prefer": f"wait={int(self._wait)}"}
            extra["timeout"] = httpx.Timeout(5.0, read=float(self._wait) + 0.5)
        key, target = request_key(path, request), Target.of(model, version, body)
        lost_at = self.ledger.lost_at(key)
        if lost_at is not None:
            found = await self._look_again(key, target, lost_at)
            if found is not None:
                return found
        sent_at = time.time()
        self.ledger.sending(key)
        try:
            response = await self._client._async_request("POST", path, json=request, **extra)
            job = job_from_json(response.json())
        except Exception as exc:  # the adapter boundary: every failure leaves mapped
            self.ledger.answered(key)
            error = _create_error(exc, model)
            why = may_have_reached(exc)
            if why is None:
                raise error from (None if isinstance(exc, ProviderError) else exc)
            return await self._recover(key, target, sent_at, why, error)
        self.ledger.answered(key)
        self.ledger.own(job.id)
        return _checked(job)

    async def _recover(
        self, key: str, target: Target, sent_at: float, why: Why, error: ProviderError
    ) -> MediaJob:
        """The prediction of a create that failed with ``error`` after sending, or ``error``
        (its reason telling what the look found; no input value is ever named)."""
        try:
            lookup = await self._find(key, target, sent_at)
        except ProviderError as failed:
            self.ledger.lose(key, sent_at)
            error.reason += (
                f"; the create may have reached Replicate ({why}) and listing its recent "
                f"predictions failed too ({failed.code.value}): the retry looks again first"
            )
            raise error from None
        if lookup.item is not None:
            self.ledger.found(key)
            return _recovered(lookup.item, why, lookup.listed)
        if lookup.outcome == "ambiguous":
            self.ledger.found(key)
            error.reason += (
                f"; the create may have reached Replicate ({why}), but its prediction cannot "
                f"be told from {lookup.candidates - 1} identical one(s) listed or in flight "
                "(identical jobs at once): none adopted, the retry creates anew"
            )
        else:
            self.ledger.lose(key, sent_at)
            error.reason += (
                f"; the create may have reached Replicate ({why}); no prediction of it was "
                f"listed ({lookup.outcome}): the retry looks once more, then creates anew"
            )
        raise error from None

    async def _look_again(self, key: str, target: Target, lost_at: float) -> MediaJob | None:
        """Before sending a create whose earlier try lost its answer: its prediction, if it
        shows up now; None to send the create."""
        try:
            lookup = await self._find(key, target, lost_at)
        except ProviderError as failed:
            if not failed.retryable:  # the list is refused for good: create anew
                self.ledger.found(key)
                return None
            raise ProviderError(
                failed.code,
                "an earlier create of this request lost its answer, and listing the recent "
                f"predictions to find it failed ({failed.reason}); it is not sent again until "
                "the list can be read",
                retryable=True,
                retry_after=failed.retry_after,
                status_code=failed.status_code,
                provider=PROVIDER,
                raw=failed.raw,
                hint=failed.hint,
            ) from None
        self.ledger.found(key)
        if lookup.item is None:
            return None
        return _recovered(lookup.item, "retry", lookup.listed)

    async def _find(self, key: str, target: Target, since: float) -> _Lookup:
        """List the predictions created since ``since`` (at most :data:`MAX_PAGES` pages) and
        pick the one ``target``'s create made, by the rule of
        :mod:`~producers.clients.replicate_recovery`."""
        url = f"/v1/predictions?{urlencode({'created_after': created_after(since)})}"
        candidates: dict[str, Mapping[str, Any]] = {}
        listed, whole = 0, False
        try:
            for _ in range(MAX_PAGES):
                response = await self._client._async_request("GET", url)
                page = response.json()
                results = page.get("results") if isinstance(page, Mapping) else None
                if not isinstance(results, list):
                    raise ProviderError(
                        ErrorCode.MALFORMED_OUTPUT,
                        "Replicate answered the prediction list without a results array",
                        retryable=True,
                        provider=PROVIDER,
                    )
                listed += len(results)
                for item in results:
                    if is_candidate(item, target, since) and not self.ledger.owned(item["id"]):
                        candidates[str(item["id"])] = item
                following = page.get("next")
                if not following:
                    whole = True
                    break
                next_url = self._same_api(following)
                if next_url is None:
                    break
                url = next_url
        except ProviderError as exc:
            raise exc.with_context(provider=PROVIDER) from None
        except Exception as exc:
            raise error_from_exception(exc) from exc
        if len(candidates) > 1:
            return _Lookup("ambiguous", None, len(candidates), listed)
        if candidates and self.ledger.in_flight(key):
            # Another create of the same request awaits its answer: it may name this one.
            return _Lookup("ambiguous", None, len(candidates) + 1, listed)
        if not candidates:
            return _Lookup("none" if whole else "list too long", None, 0, listed)
        if not whole:
            return _Lookup("list too long", None, 1, listed)
        (item,) = candidates.values()
        self.ledger.own(str(item["id"]))
        return _Lookup("adopted", item, 1, listed)

    def _same_api(self, url: Any) -> str | None:
        """``url`` (a list's ``next``, untrusted) if it is the list on the API's own scheme
        and host (the token is sent with it), else None."""
        if not isinstance(url, str):
            return None
        parts = urlsplit(url)
        base = self._api_base
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            return None
        if not parts.path.rstrip("/").endswith("/v1/predictions"):
            return None
        return url

    async def get_job(self, job_id: str) -> MediaJob:
        """The prediction's current state; one GET.

        Raises:
            ProviderError: ``timeout`` (retryable, no handle) if it was aborted before it
                started; ``not_found`` (retryable) if it succeeded but its output data was
                removed; the mapped HTTP error otherwise.
        """
        try:
            response = await self._client._async_request(
                "GET", f"/v1/predictions/{quote(job_id, safe='')}"
            )
            return _checked(job_from_json(response.json()))
        except ProviderError as exc:
            raise exc.with_context(provider=PROVIDER) from None
        except Exception as exc:
            raise error_from_exception(exc) from exc

    async def cancel_job(self, job_id: str) -> MediaJob:
        """Cancel the prediction; one POST."""
        try:
            response = await self._client._async_request(
                "POST", f"/v1/predictions/{quote(job_id, safe='')}/cancel"
            )
            return job_from_json(response.json())
        except ProviderError as exc:
            raise exc.with_context(provider=PROVIDER) from None
        except Exception as exc:
            raise error_from_exception(exc) from exc

    def download(self, url: str) -> CheckedDownload:
        """Stream an output file under the adapter's output policy (:attr:`outputs`).

        Only https URLs on Replicate's delivery hosts, the API host or a host the deployment
        allows are fetched, every redirect checked first, within a byte cap and a deadline;
        a refused output is ``malformed_output`` (not retryable) and no connection is made
        to its host. A short or broken body raises a retryable error.
        """
        return self.outputs.open(self._downloads, url, map_error=error_from_exception)

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        await self._downloads.aclose()
        await self.transport.aclose()
