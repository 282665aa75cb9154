"""Example: adding a provider ("Acme") with its own HTTP API, and a producer for it.

The provider half (``AcmeClient``) is written once per vendor: auth, base URL, submit,
poll, cancel, download, error mapping. The producer half maps inputs to Acme's payload.
Mock mode needs nothing from you: the SDK's generic mock answers in place of AcmeClient.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from producers.clients.base import MediaHints, MediaJob
from producers.clients.downloads import OutputPolicy
from producers.sdk import (
    Artefact,
    ErrorCode,
    JobHandle,
    JobState,
    JobStatus,
    Kind,
    Prepared,
    ProducerRuntime,
    ProviderError,
    Submission,
    define_producer,
)
from producers.sdk.runtime import ClientContext

STATUS = {"queued": "starting", "running": "processing", "done": "succeeded", "error": "failed"}


class AcmeClient:
    """The Acme transport: implements the SDK's ``MediaClient`` protocol over httpx."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.acme.example/v1",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        )
        # Output URLs are the provider's answer: untrusted. They are fetched by a client that
        # carries no token, only from Acme's own hosts, with the SDK's byte cap and deadline.
        self.outputs = OutputPolicy.from_settings(
            provider="acme", api_base_url=base_url, delivery_hosts=["files.acme.test"]
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
        return self._job(
            self._check(await self._http.post(f"/models/{model}/jobs", json=dict(payload)))
        )

    async def get_job(self, job_id: str) -> MediaJob:
        return self._job(self._check(await self._http.get(f"/jobs/{job_id}")))

    async def cancel_job(self, job_id: str) -> MediaJob:
        return self._job(self._check(await self._http.post(f"/jobs/{job_id}/cancel")))

    def download(self, url: str) -> AsyncIterator[bytes]:
        return self.outputs.open(self._downloads, url)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._downloads.aclose()


def acme_live_client(context: ClientContext) -> AcmeClient:
    """Client factory: register with ``ClientRegistry.register("acme", "live", ...)``."""
    return AcmeClient(context.secrets.require("ACME_TOKEN"), **dict(context.options))


# ---- the producer: only the mapping of inputs to Acme's payload and back -------------------


async def prepare(rt: ProducerRuntime) -> Prepared:
    prompt = rt.inputs.require("prompt")
    payload = {"text": prompt, "n": int(rt.inputs.get("count", 1)), **rt.inputs.custom}
    return Prepared(
        payload=payload,
        prompt=prompt,
        estimated_cost_usd=0.01 * payload["n"],
        artefact_ids=tuple(rt.artefacts.ids(payload["n"])),
    )


async def submit(rt: ProducerRuntime) -> Submission:
    assert rt.prepared is not None
    hints = MediaHints(
        media="image",
        count=rt.prepared.payload["n"],
        prompt=rt.prepared.prompt or "",
        aspect_ratio=rt.inputs.get("aspect_ratio"),
    )
    job = await rt.clients.acme.create_job(
        model=rt.model, version=None, payload=rt.prepared.payload, hints=hints
    )
    return Submission(provider_job_id=job.id)


async def poll(rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
    job = await rt.clients.acme.get_job(handle.provider_job_id)
    if job.status == "failed":
        raise ProviderError(ErrorCode.MODEL_FAILED, job.error or "failed", retryable=False)
    state = JobState.SUCCEEDED if job.status == "succeeded" else JobState.RUNNING
    return JobStatus(state=state, poll_after=0.0)


async def collect(rt: ProducerRuntime, handle: JobHandle) -> Sequence[Artefact]:
    job = await rt.clients.acme.get_job(handle.provider_job_id)
    ids = rt.artefacts.ids(len(job.outputs))
    return [
        await rt.artefacts.blob(i, rt.clients.acme.download(url))
        for i, url in zip(ids, job.outputs, strict=True)
    ]


async def cancel(rt: ProducerRuntime, handle: JobHandle) -> None:
    await rt.clients.acme.cancel_job(handle.provider_job_id)


ACME_IMAGES = define_producer(
    name="acme.images",
    provider="acme",
    models=["pixel-*"],
    kind=Kind.TEXT_TO_IMAGE,
    prepare=prepare,
    submit=submit,
    poll=poll,
    collect=collect,
    cancel=cancel,
)
