"""The producer half: only the mapping of inputs to Acme's payload, and of its answer back.

Two definitions share the steps. ``acme.images`` serves every environment and asks Acme's
``interactive`` queue (an answer in seconds, for someone waiting at the CLI);
``acme.images.airflow`` is declared for the ``airflow`` environment, so Airflow jobs get it:
they wait in a trigger without holding a worker, so they use the ``batch`` queue (half the
price, minutes instead of seconds) and poll gently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence

from producers.clients.base import MediaHints
from producers.sdk import (
    Artefact,
    ErrorCode,
    InvalidInputError,
    JobHandle,
    JobState,
    JobStatus,
    Kind,
    ModelInfo,
    Prepared,
    ProducerRuntime,
    ProviderError,
    Submission,
    define_producer,
)

#: USD per image, by queue.
PRICES = {"interactive": 0.01, "batch": 0.005}
#: The models Acme serves, for ``tutopanda models list`` (the producers take any ``pixel-*``).
MODELS = {
    "pixel-1": "Acme Pixel 1: fast illustrations",
    "pixel-2": "Acme Pixel 2: detailed illustrations",
}
STYLES = ["flat", "watercolour", "ink"]


def prepare_for(queue: str) -> Callable[[ProducerRuntime], Awaitable[Prepared]]:
    """The ``prepare`` step of the producer that sends jobs to ``queue``."""

    async def prepare(rt: ProducerRuntime) -> Prepared:
        prompt = rt.inputs.require("prompt")
        count = int(rt.inputs.get("count", 1))
        style = rt.inputs.custom.get("style", "flat")
        if style not in STYLES:
            raise InvalidInputError(
                f"style {style!r} is not one of {', '.join(STYLES)}", field="style"
            )
        payload = {"text": prompt, "n": count, "style": style, "queue": queue}
        if rt.inputs.get("aspect_ratio"):
            payload["aspect_ratio"] = rt.inputs.get("aspect_ratio")
        return Prepared(
            payload=payload,
            prompt=prompt,
            estimated_cost_usd=PRICES[queue] * count,
            artefact_ids=tuple(rt.artefacts.ids(count)),
        )

    return prepare


async def submit(rt: ProducerRuntime) -> Submission:
    """Send the prepared payload; what comes back identifies the job at Acme."""
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
    """Where the job is; a failed job is a ``model_failed`` error."""
    job = await rt.clients.acme.get_job(str(handle.provider_job_id))
    if job.status == "failed":
        raise ProviderError(ErrorCode.MODEL_FAILED, job.error or "failed", retryable=False)
    state = JobState.SUCCEEDED if job.status == "succeeded" else JobState.RUNNING
    return JobStatus(state=state, provider_status=job.status)


async def collect(rt: ProducerRuntime, handle: JobHandle) -> Sequence[Artefact]:
    """Stream each output into the store (the SDK checks its type and size)."""
    job = await rt.clients.acme.get_job(str(handle.provider_job_id))
    ids = rt.artefacts.ids(len(job.outputs))
    return [
        await rt.artefacts.blob(i, rt.clients.acme.download(url))
        for i, url in zip(ids, job.outputs, strict=True)
    ]


async def cancel(rt: ProducerRuntime, handle: JobHandle) -> None:
    """Cancel the job at Acme (a killed task, a job past its deadline)."""
    await rt.clients.acme.cancel_job(str(handle.provider_job_id))


def catalogue() -> Iterator[ModelInfo]:
    """What ``tutopanda models list``, the UI and the DAGs' model params show."""
    for model, description in MODELS.items():
        yield ModelInfo(
            model_id=f"acme:{model}",
            provider="acme",
            model=model,
            kind=Kind.TEXT_TO_IMAGE,
            domain="media",
            producer="acme.images",
            description=description,
            general_attributes=("prompt", "count", "aspect_ratio"),
            custom_attributes={"style": {"type": "string", "enum": STYLES, "default": "flat"}},
            required=("prompt",),
            cost={"text": "$0.01 per image", "per": "output", "usd": PRICES["interactive"]},
            median_seconds=8.0,
        )


ACME_IMAGES = define_producer(
    name="acme.images",
    provider="acme",
    models=["pixel-*"],
    kind=Kind.TEXT_TO_IMAGE,
    prepare=prepare_for("interactive"),
    submit=submit,
    poll=poll,
    collect=collect,
    cancel=cancel,
    catalogue=catalogue,
    description="Acme images, interactive queue",
)

ACME_IMAGES_AIRFLOW = define_producer(
    name="acme.images.airflow",
    provider="acme",
    models=["pixel-*"],
    kind=Kind.TEXT_TO_IMAGE,
    environments=["airflow"],
    prepare=prepare_for("batch"),
    submit=submit,
    poll=poll,
    collect=collect,
    cancel=cancel,
    poll_interval=10.0,
    description="Acme images, batch queue (Airflow jobs wait in a trigger)",
)

PRODUCERS = (ACME_IMAGES, ACME_IMAGES_AIRFLOW)
