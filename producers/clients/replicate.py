"""Replicate: what every Replicate model shares: the live adapter and the error mapping."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from producers.clients.base import (
    MediaHints,
    MediaJob,
    code_for_status,
    retry_after_seconds,
    ssl_context,
)
from producers.clients.downloads import CheckedDownload, OutputPolicy
from producers.clients.spec import REPLICATE_DEFAULT_BASE_URL
from producers.sdk.errors import ErrorCode, ProviderError
from producers.sdk.secrets import redact, register_secret
from producers.sdk.uploads import LocalFile

PROVIDER = "replicate"
#: Defined once, with the token's secret and the base-URL variable, in the client spec.
DEFAULT_BASE_URL = REPLICATE_DEFAULT_BASE_URL
#: Where Replicate serves prediction outputs: ``replicate.delivery`` and its subdomains.
DELIVERY_HOSTS = (".replicate.delivery",)
_SAFETY_WORDS = ("nsfw", "safety", "sensitive", "content policy", "flagged", "moderation")
DOCS_HINT = "https://replicate.com/docs/topics/predictions/lifecycle"


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


def http_error(
    status: int, body: Mapping[str, Any] | None, *, retry_after: float | None = None
) -> ProviderError:
    """Map an HTTP error answer (``{"title", "detail", "status"}``) to a ProviderError."""
    body = body or {}
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    code = code_for_status(status)
    return ProviderError(
        code,
        detail,
        status_code=status,
        retry_after=retry_after,
        provider=PROVIDER,
        raw=dict(body),
        caused_by_user=code in (ErrorCode.INVALID_INPUT, ErrorCode.AUTH_FAILED),
    )


def error_from_exception(exc: BaseException, *, retry_after: float | None = None) -> ProviderError:
    """Map an exception raised by the ``replicate`` package (or httpx) to ProviderError.

    ``ReplicateError`` keeps no response headers, so a 429's ``Retry-After`` must be read
    by the caller (an httpx response hook) and passed as ``retry_after``.
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
        body = {"title": exc.title, "detail": exc.detail}
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
    return ProviderError(
        ErrorCode.UNKNOWN,
        redact(f"{type(exc).__name__}: {exc}"),
        provider=PROVIDER,
        retryable=False,
        raw=type(exc).__name__,
    )


# ---- the live adapter -----------------------------------------------------------------------

#: Statuses our transport turns into errors before replicate-python's RetryTransport sees them.
_SURFACED_STATUSES = frozenset({429, 500, 502, 503, 504})
API_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=10.0)
#: API requests one client sends at once (more wait their turn, in order).
MAX_IN_FLIGHT = 16
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0, pool=10.0)


class SurfacingTransport(httpx.AsyncBaseTransport):
    """Turns throttling and server errors into :class:`ProviderError` at the transport.

    replicate-python wraps every transport it is given in its own ``RetryTransport``, which
    silently retries GET-like requests on 429/503/504 up to ten times, sleeping any
    ``Retry-After`` uncapped; and its ``ReplicateError`` keeps no response headers. Raising
    here, below that wrapper, does both jobs with public API only: the wrapper never sees a
    status it would retry (so every request the SDK makes is one request on the wire), and
    ``Retry-After`` is read from the real response. Retrying is left to the clients.

    It also restores the timeout on prediction creates: replicate-python 1.0.7 passes
    ``timeout=None`` to httpx for a create without ``wait``, which disables every timeout,
    so a create that never answers would hang forever.
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
        """Send ``request``; raise a mapped error for 429 and 5xx answers."""
        self.requests += 1
        current = request.extensions.get("timeout") or {}
        if all(value is None for value in current.values()):
            request.extensions["timeout"] = dict(self._timeout)
        # One client may serve hundreds of waiting jobs (an Airflow triggerer): requests wait
        # their turn here, not in httpcore's pool, whose queue costs grow with its square.
        async with self._in_flight:
            response = await self._inner.handle_async_request(request)
        if response.status_code not in _SURFACED_STATUSES:
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
        )
        error.raw = {"method": request.method, "path": request.url.path, **(error.raw or {})}
        raise error

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def _inline(value: Any) -> Any:
    """A :class:`LocalFile` (or a list of them) as a ``data:`` URI; anything else as is."""
    if isinstance(value, LocalFile):
        data = base64.b64encode(value.path.read_bytes()).decode("ascii")
        return f"data:{value.mime_type};base64,{data}"
    if isinstance(value, list):
        return [_inline(item) for item in value]
    return value


class ReplicateClient:
    """The live Replicate adapter, over the official ``replicate`` package.

    Implements :class:`producers.clients.base.MediaClient`: create (by model, or by pinned
    version), get, cancel, and streamed download of outputs. Local files in the payload
    (:class:`~producers.sdk.uploads.LocalFile` values: the producer turns store blobs of file
    fields into them) are sent inline as data URIs with their stored MIME type, so a create is
    always exactly one request. A string is never read as a file.
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

        Raises:
            ConfigurationError: An output setting has a bad value.
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

    @staticmethod
    def _job(prediction: Any) -> MediaJob:
        output = prediction.output
        items = output if isinstance(output, list) else [] if output is None else [output]
        if not all(isinstance(item, str) for item in items):
            # Named by type only: the value is the provider's and may carry a signed URL.
            shapes = sorted({type(item).__name__ for item in items})
            raise ProviderError(
                ErrorCode.MALFORMED_OUTPUT,
                f"prediction {prediction.id} has an output that is not a URL or a list of "
                f"URLs (it holds {', '.join(shapes)})",
                retryable=False,
                provider=PROVIDER,
                provider_job_id=prediction.id,
            )
        outputs: tuple[str, ...] = tuple(items)
        metrics = prediction.metrics or {}
        return MediaJob(
            id=prediction.id,
            status=prediction.status,
            outputs=outputs,
            error=None if prediction.error is None else str(prediction.error),
            provider_seconds=metrics.get("predict_time"),
            raw={"status": prediction.status, "urls": prediction.urls or {}},
        )

    async def create_job(
        self,
        *,
        model: str,
        version: str | None,
        payload: Mapping[str, Any],
        hints: MediaHints,
    ) -> MediaJob:
        """Create a prediction; one POST."""
        body = {k: _inline(v) for k, v in payload.items()}
        extra: dict[str, Any] = {"file_encoding_strategy": "base64"}
        if self._wait:
            extra["wait"] = self._wait
        try:
            if version:
                prediction = await self._client.predictions.async_create(
                    version=version, input=body, **extra
                )
            else:
                prediction = await self._client.models.predictions.async_create(
                    model=model, input=body, **extra
                )
        except Exception as exc:  # the adapter boundary: every failure leaves mapped
            raise error_from_exception(exc) from exc
        return self._job(prediction)

    async def get_job(self, job_id: str) -> MediaJob:
        """The prediction's current state; one GET."""
        try:
            return self._job(await self._client.predictions.async_get(job_id))
        except ProviderError as exc:
            raise exc.with_context(provider=PROVIDER) from None
        except Exception as exc:
            raise error_from_exception(exc) from exc

    async def cancel_job(self, job_id: str) -> MediaJob:
        """Cancel the prediction; one POST."""
        try:
            return self._job(await self._client.predictions.async_cancel(job_id))
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
