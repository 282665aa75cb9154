"""The schema-driven Replicate producers: every declared model runs through them.

``replicate.media`` serves the media models; ``replicate.prompt`` the text-to-text models
(LLMs: the prompt config and answer handling of :mod:`producers.replicate.llm`). Both submit,
poll and collect the same way; outputs are read by the declared output
(:mod:`producers.replicate.outputs`).
"""

from __future__ import annotations

from collections.abc import Iterator

from producers.clients.base import MediaClient, MediaHints, MediaJob
from producers.clients.replicate import failed_prediction_error
from producers.replicate.catalogue import Catalogue
from producers.replicate.cost import actual_cost, estimate_cost
from producers.replicate.declaration import ModelDeclaration
from producers.replicate.llm import ReplicatePromptConfig, collect_text, prepare_text
from producers.replicate.mapping import map_inputs, prompt_of
from producers.replicate.outputs import media_urls
from producers.replicate.shape import media_hints
from producers.sdk.artefacts import Artefact
from producers.sdk.definition import (
    ModelInfo,
    Prepared,
    ProducerDefinition,
    Submission,
    define_producer,
)
from producers.sdk.errors import ErrorCode, ProviderError, UnknownModelError
from producers.sdk.jobs import Domain, JobHandle, JobState, JobStatus, Kind
from producers.sdk.runtime import ProducerRuntime
from producers.sdk.uploads import check_file_fields, open_file_fields

_STATES = {
    "starting": JobState.PENDING,
    "processing": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "canceled": JobState.CANCELED,
}
_MIME_BY_EXT = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "mp4": "video/mp4",
}


def model_info(declaration: ModelDeclaration, producer: str) -> ModelInfo:
    """The capability listing of one declared model."""
    props = declaration.properties
    return ModelInfo(
        model_id=declaration.model_id,
        provider=declaration.provider,
        model=declaration.model,
        kind=declaration.kind,
        domain=declaration.kind.domain,
        producer=producer,
        description=declaration.description,
        general_attributes=tuple(declaration.mapping),
        custom_attributes={
            name: {
                k: v
                for k, v in prop.items()
                if k
                in (
                    "type",
                    "enum",
                    "minimum",
                    "maximum",
                    "default",
                    "description",
                    "format",
                    "items",
                )
            }
            for name, prop in props.items()
            if name not in declaration.secret_fields
        },
        required=tuple(r for r in declaration.required if r not in declaration.secret_fields),
        cost=declaration.cost.model_dump(mode="json", exclude_none=True),
        median_seconds=declaration.median_seconds,
        source=declaration.source,
        unconfirmed=tuple(declaration.unconfirmed),
    )


def replicate_producers(
    catalogue: Catalogue | None = None, *, provider: str = "replicate"
) -> list[ProducerDefinition]:
    """The Replicate producers of ``catalogue``: ``<provider>.media`` for its media models
    and, if it declares any text-to-text model, ``<provider>.prompt`` for those (it takes
    the prompt config, :class:`~producers.replicate.llm.ReplicatePromptConfig`)."""
    models = catalogue if catalogue is not None else Catalogue.load()
    made = [replicate_producer(models, provider=provider, domain="media")]
    if models.models(domain="prompt"):
        made.append(replicate_producer(models, provider=provider, domain="prompt"))
    return made


def replicate_producer(
    catalogue: Catalogue | None = None,
    *,
    provider: str = "replicate",
    domain: Domain | None = None,
) -> ProducerDefinition:
    """The schema-driven producer for the models in ``catalogue``.

    Args:
        catalogue: The declarations (default: :meth:`Catalogue.load`).
        provider: The provider name of its model ids.
        domain: ``media``: only the media models (``<provider>.media``); ``prompt``: only
            the text-to-text models (``<provider>.prompt``, its config checked as a
            :class:`~producers.replicate.llm.ReplicatePromptConfig` before any request);
            None: every model (``<provider>.media``; a text model's config is checked when
            its job is prepared).
    """
    models = catalogue if catalogue is not None else Catalogue.load()
    name = f"{provider}.{domain or 'media'}"

    def declaration(model: str) -> ModelDeclaration:
        found = models.get(model)
        if found is None:
            raise UnknownModelError(f"no declaration for {provider}:{model}")
        return found

    def client(rt: ProducerRuntime) -> MediaClient:
        adapter: MediaClient = rt.clients.get(rt.descriptor.provider)
        return adapter

    def hints(rt: ProducerRuntime) -> MediaHints:
        assert rt.prepared is not None
        return MediaHints.model_validate(rt.prepared.state["hints"])

    async def prepare(rt: ProducerRuntime) -> Prepared:
        decl = declaration(rt.model)
        prompt: str | None
        if decl.kind is Kind.TEXT:
            text = prepare_text(rt, decl)
            mapped, shape, prompt, ids = text.mapped, text.hints, text.prompt, text.artefact_ids
        else:
            mapped = map_inputs(decl, rt.inputs.general, rt.inputs.custom, secrets=rt.secrets)
            for warning in mapped.warnings:
                rt.diagnostics.warn(warning)
            rt.diagnostics.set(ignored_inputs=mapped.ignored)
            shape = media_hints(decl, mapped.payload)
            prompt, ids = prompt_of(decl, mapped.payload), tuple(rt.artefacts.ids(shape.count))
        check_file_fields(mapped.payload, decl.file_fields, rt.store, model_id=decl.model_id)
        price = estimate_cost(decl, mapped.payload)
        return Prepared(
            payload=mapped.payload,
            redacted_payload=mapped.redacted(),
            prompt=prompt,
            estimated_cost_usd=price.usd,
            estimated_cost_upper_bound=price.upper_bound,
            artefact_ids=ids,
            state={"hints": shape.model_dump(mode="json")},
            expected_seconds=decl.median_seconds,
        )

    async def submit(rt: ProducerRuntime) -> Submission:
        assert rt.prepared is not None
        decl = declaration(rt.model)
        # Checked in prepare: only blobs of this store become files to upload.
        payload = await open_file_fields(rt.prepared.payload, decl.file_fields, rt.store)
        job = await client(rt).create_job(
            model=decl.model, version=decl.version, payload=payload, hints=hints(rt)
        )
        rt.scratch["job"] = job
        state: dict[str, object] = {"status": job.status}
        recovered = job.raw.get("recovered_create")
        if isinstance(recovered, dict):
            # The create's answer was lost and the prediction it made was found and adopted:
            # recorded as a fact and ids only (never the input).
            after = str(recovered.get("after"))
            state["recovered_create"] = after
            rt.diagnostics.data.extra["recovered_create"] = {
                "provider_job_id": job.id,
                "after": after,
            }
            rt.logger.event(
                "invoke.create_recovered",
                job_id=rt.request.job_id,
                provider_job_id=job.id,
                after=after,
                listed=recovered.get("listed"),
            )
        return Submission(provider_job_id=job.id, state=state)

    async def poll(rt: ProducerRuntime, handle: JobHandle) -> JobStatus:
        job = await client(rt).get_job(str(handle.provider_job_id))
        rt.scratch["job"] = job
        if job.status == "failed":
            raise failed_prediction_error(job.error, prediction_id=job.id)
        return JobStatus(state=_STATES[job.status], provider_status=job.status, detail=job.error)

    async def collect(rt: ProducerRuntime, handle: JobHandle) -> list[Artefact]:
        job: MediaJob | None = rt.scratch.get("job")
        if job is None or job.id != handle.provider_job_id or job.status != "succeeded":
            job = await client(rt).get_job(str(handle.provider_job_id))
        if job.status != "succeeded":
            raise ProviderError(
                ErrorCode.UNKNOWN,
                f"cannot collect prediction {job.id}: it is {job.status}",
                retryable=job.status in ("starting", "processing"),
            )
        decl = declaration(rt.model)
        rt.diagnostics.set(provider_seconds=job.provider_seconds)
        artefacts = []
        if decl.kind is Kind.TEXT:
            artefacts = await collect_text(rt, decl, job)
        else:
            urls = media_urls(job, decl.output)
            ids = rt.artefacts.ids(len(urls))
            for index, (artefact_id, url) in enumerate(zip(ids, urls, strict=True)):
                ext = url.rsplit(".", 1)[-1].split("?", 1)[0].lower() if "." in url else ""
                artefacts.append(
                    await rt.artefacts.blob(
                        artefact_id,
                        client(rt).download(url),
                        mime_type=_MIME_BY_EXT.get(ext),
                        output_index=index,
                    )
                )
        paid = actual_cost(
            decl,
            rt.prepared.payload if rt.prepared is not None else {},
            provider_seconds=job.provider_seconds,
            outputs=len(artefacts),
        )
        rt.diagnostics.set(cost_usd=paid.usd, cost_upper_bound=paid.upper_bound)
        return artefacts

    async def cancel(rt: ProducerRuntime, handle: JobHandle) -> None:
        if handle.provider_job_id:
            await client(rt).cancel_job(handle.provider_job_id)

    def kind(model: str) -> Kind:
        return declaration(model).kind

    def listing() -> Iterator[ModelInfo]:
        return (
            model_info(decl, name)
            for decl in models
            if domain is None or decl.kind.domain == domain
        )

    served = models.models(domain=domain)
    if domain == "prompt" and not served:
        raise ValueError(f"{name}: the catalogue declares no text-to-text model")
    return define_producer(
        name=name,
        provider=provider,
        models=served or ["*"],
        domain=domain or "media",
        config_schema=ReplicatePromptConfig if domain == "prompt" else None,
        kind=kind,
        prepare=prepare,
        submit=submit,
        poll=poll,
        collect=collect,
        cancel=cancel,
        catalogue=listing,
        poll_interval=2.0,
        description=(
            "LLM prompt producer for the declared Replicate text-to-text models"
            if domain == "prompt"
            else "Schema-driven producer for every declared Replicate model"
        ),
    )
