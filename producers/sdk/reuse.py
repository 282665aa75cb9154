"""What a job leaves in the store for later, so nothing is paid twice.

- Reuse: a job whose mapped payload was made before (same fingerprint, same mode) takes the
  stored result instead of running again.
- Submissions: a job submitted by one process and waited for by another (an Airflow trigger
  that submits) records its handle, so a process that takes it over (a restarted trigger, a
  retried task) resumes that job instead of submitting a second one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from producers.sdk.artefacts import ProducerResult
from producers.sdk.jobs import JobHandle, Mode
from producers.storage.base import ArtefactStore

NAMESPACE = "reuse"
SUBMITTED = "submitted"


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


def submission_key(job_id: str, fingerprint: str, mode: Mode) -> str:
    """The record key of a job's submission: its id (hashed: ids hold any character), its
    fingerprint (another payload is another job) and its mode."""
    ident = hashlib.sha256(job_id.encode("utf-8")).hexdigest()[:32]
    return f"{mode}-{ident}-{fingerprint[:32]}"


async def kept_submission(
    store: ArtefactStore, job_id: str, fingerprint: str, mode: Mode
) -> JobHandle | None:
    """The handle a process recorded for this job, if it is still kept."""
    record = await store.get_record(SUBMITTED, submission_key(job_id, fingerprint, mode))
    kept: Any = record.get("handle") if record is not None else None
    return None if kept is None else JobHandle.model_validate(kept)


async def keep_submission(
    store: ArtefactStore, job_id: str, fingerprint: str, mode: Mode, handle: JobHandle | None
) -> None:
    """Record (or, with None, forget) the handle of this job's submission."""
    await store.put_record(
        SUBMITTED,
        submission_key(job_id, fingerprint, mode),
        {"handle": None if handle is None else handle.model_dump(mode="json")},
    )
