"""The provider half, written once per vendor: Acme's API over httpx, and its ClientSpec.

``AcmeClient`` implements the SDK's ``MediaClient`` protocol (create, get, cancel, download)
and maps Acme's errors to ``ProviderError``. ``ACME_CLIENT`` tells tutopanda how to build it
and where its key and base URL come from; mock mode needs nothing from here (the SDK's
generic mock answers in its place).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from producers.clients.base import MediaHints, MediaJob
from producers.clients.downloads import OutputPolicy
from producers.clients.spec import ClientSpec
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.runtime import ClientContext

DEFAULT_BASE_URL = "https://api.acme.example/v1"
#: Where Acme serves job outputs (besides the API host itself).
DELIVERY_HOSTS = ("files.acme.example",)
#: Acme's job states, in the SDK's words.
STATUS = {"queued": "starting", "running": "processing", "done": "succeeded", "error": "failed"}


class AcmeClient:
    """The Acme transport: implements the SDK's ``MediaClient`` protocol over httpx."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}"},
        )
        # Output URLs are the provider's answer: untrusted. They are fetched by a client that
        # carries no key, only from Acme's own hosts, with the SDK's byte cap and deadline.
        self.outputs = OutputPolicy.from_settings(
            provider="acme", api_base_url=base_url, delivery_hosts=DELIVERY_HOSTS
        )
        self._downloads = httpx.AsyncClient(transport=transport, follow_redirects=False)

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 429:
            raise ProviderError(
                ErrorCode.RATE_LIMITED,
                "Acme rate limit",
                status_code=429,
                retry_after=float(response.headers.get("retry-after", 1)),
            )
        if response.status_code in (401, 403):
            raise ProviderError(
                ErrorCode.AUTH_FAILED, "Acme refused the key", status_code=response.status_code
            )
        if response.status_code >= 500:
            raise ProviderError(
                ErrorCode.PROVIDER_UNAVAILABLE, response.text, status_code=response.status_code
            )
        if response.status_code >= 400:
            raise ProviderError(
                ErrorCode.INVALID_INPUT,
                response.json().get("message", response.text),
                status_code=response.status_code,
            )
        body: dict[str, Any] = response.json()
        return body

    def _job(self, body: Mapping[str, Any]) -> MediaJob:
        return MediaJob(
            id=body["id"],
            status=STATUS[body["state"]],  # type: ignore[arg-type]
            outputs=tuple(body.get("files", [])),
            error=body.get("error"),
        )

    async def create_job(
        self, *, model: str, version: str | None, payload: Mapping[str, Any], hints: MediaHints
    ) -> MediaJob:
        """Submit a job for ``model``."""
        response = await self._http.post(f"/models/{model}/jobs", json=dict(payload))
        return self._job(self._check(response))

    async def get_job(self, job_id: str) -> MediaJob:
        """The job's state and, once done, its output URLs."""
        return self._job(self._check(await self._http.get(f"/jobs/{job_id}")))

    async def cancel_job(self, job_id: str) -> MediaJob:
        """Cancel the job at Acme."""
        return self._job(self._check(await self._http.post(f"/jobs/{job_id}/cancel")))

    def download(self, url: str) -> AsyncIterator[bytes]:
        """Stream one output under the output policy (checked before any connection)."""
        return self.outputs.open(self._downloads, url)

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        await self._http.aclose()
        await self._downloads.aclose()


def acme_live_client(context: ClientContext) -> AcmeClient:
    """Build the live client: the key from the secret resolver (``ACME_API_KEY`` in the
    environment, a connection's password in Airflow), the base URL from the client's options
    (a connection's host), else ``ACME_BASE_URL``, else Acme's own."""
    return AcmeClient(ACME_CLIENT.api_key(context), **ACME_CLIENT.options(context))


ACME_CLIENT = ClientSpec(
    provider="acme",
    live_factory=acme_live_client,
    secret_name="ACME_API_KEY",
    base_url_env="ACME_BASE_URL",
    default_base_url=DEFAULT_BASE_URL,
    description="Acme image API",
    probe_path="/account",
)
