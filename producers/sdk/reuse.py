"""Reuse: a job whose mapped payload was made before (same fingerprint) is not paid again."""

from __future__ import annotations

from producers.sdk.artefacts import ProducerResult
from producers.sdk.jobs import Mode
from producers.storage.base import ArtefactStore

NAMESPACE = "reuse"


def reuse_key(fingerprint: str, mode: Mode) -> str:
    """The record key: mock artefacts are never reused by a live run, nor the reverse."""
    return f"{mode}-{fingerprint}"


async def lookup(store: ArtefactStore, fingerprint: str, mode: Mode) -> ProducerResult | None:
    """The stored result of an identical job, if every one of its blobs is still there."""
    record = await store.get_record(NAMESPACE, reuse_key(fingerprint, mode))
    if record is None:
        return None
    result = ProducerResult.model_validate(record["result"])
    for artefact in result.artefacts:
        if not await store.exists(artefact.uri):
            return None
    return result


async def remember(
    store: ArtefactStore, fingerprint: str, mode: Mode, result: ProducerResult
) -> None:
    """Record a finished job's result under its fingerprint."""
    await store.put_record(
        NAMESPACE, reuse_key(fingerprint, mode), {"result": result.model_dump(mode="json")}
    )
