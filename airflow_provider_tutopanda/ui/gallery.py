"""What a run made, shaped for the pages: artefacts by role and segment, failures, costs.

The run's manifest (written by ``assemble``) is read first; a run without one yet (running,
or failed before assembly) is shown from its tasks' job records (XCom ``tutopanda_job``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from producers.sdk.secrets import redact

#: Roles in the order the pages show them.
ROLES = ("script", "image_prompt", "image", "video", "narration", "music")
_KEY_RE = re.compile(r"[a-z_]+(\[\d{1,4}\])?")
#: Keys whose values a page never shows, whatever produced them.
_SECRET_KEY_RE = re.compile(
    r"(?i)^(.*[_-])?(password|passwd|secret|token|api[_-]?key|authorization|credentials?)$"
)
MASK = "***"


def scrub(value: Any) -> Any:
    """``value`` with registered secrets masked and the values of secret-named keys hidden."""
    value = redact(value)
    if isinstance(value, dict):
        return {
            k: MASK if _SECRET_KEY_RE.search(str(k)) and v else scrub(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def valid_job_key(key: str) -> bool:
    """True for a job key such as ``image[2]`` or ``music``."""
    return bool(_KEY_RE.fullmatch(key))


def job_key(record: dict[str, Any]) -> str:
    """A record's job key (``image[2]``), derived from role and segment if missing."""
    if record.get("key"):
        return str(record["key"])
    role = str(record.get("role") or "job")
    segment = record.get("segment")
    return role if segment is None else f"{role}[{segment}]"


def media_of(mime_type: str) -> str:
    """How a page shows an artefact: image, audio, video, json or text."""
    if mime_type.startswith(("image/", "audio/", "video/")):
        return mime_type.split("/", 1)[0]
    if mime_type == "application/json" or mime_type.endswith("+json"):
        return "json"
    return "text"


@dataclass
class ArtefactView:
    """One artefact of one job, with the job's diagnostics."""

    key: str
    role: str
    segment: int | None
    artefact_id: str
    mime_type: str
    media: str
    size: int
    text: str | None
    producer: str | None
    model: str | None
    payload: str
    prompt: str | None
    seconds: float | None
    estimated_cost: float | None
    cost: float | None
    reused: bool
    mocked: bool
    warnings: list[str]
    #: The estimate / the actual cost is only an upper bound (the model's hardware unknown).
    estimated_upper_bound: bool = False
    cost_upper_bound: bool = False


@dataclass
class FailureView:
    """A failed job, shown where its artefact would be."""

    key: str
    role: str
    segment: int | None
    producer: str | None
    model: str | None
    code: str
    message: str
    prompt: str | None
    attempts: int
    hint: str | None = None
    status_code: int | None = None
    provider_job_id: str | None = None
    #: The provider's own words (its error code, type, status, title...), as ``key: value``.
    raw: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class PassedOverView:
    """A model a job tried before the one that made (or last failed) it."""

    model: str
    code: str
    reason: str
    status_code: int | None


def _passed_over(record: dict[str, Any]) -> list[PassedOverView]:
    items = record.get("passed_over")
    return [
        PassedOverView(
            model=str(item.get("model_id") or "?"),
            code=str(item.get("code") or "unknown"),
            reason=str(item.get("reason") or ""),
            status_code=item.get("status_code")
            if isinstance(item.get("status_code"), int)
            else None,
        )
        for item in (scrub(items) if isinstance(items, list) else [])
        if isinstance(item, dict)
    ]


@dataclass
class JobView:
    """A job: its artefacts, or its failure."""

    key: str
    role: str
    segment: int | None
    model: str
    status: str
    reused: bool
    artefacts: list[ArtefactView] = field(default_factory=list)
    failure: FailureView | None = None
    #: The models tried before ``model`` and why each did not make the artefact.
    passed_over: list[PassedOverView] = field(default_factory=list)


@dataclass
class RunView:
    """A run's jobs, grouped for the gallery, and its totals."""

    jobs: list[JobView]
    parameters: dict[str, Any]
    outputs: dict[str, Any]
    source: str  # "manifest" or "xcom"

    def by_role(self, role: str) -> list[JobView]:
        """The jobs of one role, by segment."""
        return [j for j in self.jobs if j.role == role]

    def segments(self) -> list[int]:
        """The segment numbers that have a job."""
        return sorted({j.segment for j in self.jobs if j.segment is not None})

    def segment_jobs(self, segment: int) -> list[JobView]:
        """One segment's jobs, in role order."""
        return [j for j in self.jobs if j.segment == segment]

    def unsegmented(self) -> list[JobView]:
        """Jobs of the whole movie (script, music)."""
        return [j for j in self.jobs if j.segment is None]

    @property
    def cost(self) -> float:
        """What this run paid: its own jobs' actual costs (reused jobs cost nothing now)."""
        return sum(a.cost or 0.0 for j in self.jobs if not j.reused for a in j.artefacts[:1])

    @property
    def estimated_cost(self) -> float:
        """The sum of the jobs' estimates (made or reused)."""
        return sum(a.estimated_cost or 0.0 for j in self.jobs for a in j.artefacts[:1])

    def job(self, key: str) -> JobView | None:
        """The job with this key, or None."""
        return next((j for j in self.jobs if j.key == key), None)

    def key_of_uri(self, uri: str, records: list[dict[str, Any]]) -> str | None:
        """The key of the job whose artefact is stored at ``uri``."""
        for record in records:
            for artefact in record.get("artefacts") or []:
                if artefact.get("uri") == uri:
                    return job_key(record)
        return None


def _text_of(artefact: dict[str, Any]) -> str | None:
    value = artefact.get("value")
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(scrub(value), indent=2, ensure_ascii=False)


def _artefact_view(record: dict[str, Any], artefact: dict[str, Any]) -> ArtefactView:
    diagnostics = artefact.get("diagnostics") or {}
    mime = str(artefact.get("mime_type") or "application/octet-stream")
    duration_ms = diagnostics.get("duration_ms")
    payload = diagnostics.get("payload")
    return ArtefactView(
        key=job_key(record),
        role=str(record.get("role") or ""),
        segment=record.get("segment"),
        artefact_id=str(artefact.get("id") or ""),
        mime_type=mime,
        media="text" if artefact.get("kind") == "inline" else media_of(mime),
        size=int(artefact.get("size") or 0),
        text=_text_of(artefact),
        producer=diagnostics.get("producer"),
        model=diagnostics.get("model") or record.get("model_id"),
        payload=json.dumps(scrub(payload), indent=2, ensure_ascii=False) if payload else "",
        prompt=diagnostics.get("prompt"),
        seconds=None if duration_ms is None else round(float(duration_ms) / 1000, 2),
        estimated_cost=diagnostics.get("estimated_cost_usd"),
        cost=diagnostics.get("cost_usd"),
        reused=bool(record.get("reused")),
        mocked=bool(diagnostics.get("mocked")),
        warnings=[str(w) for w in diagnostics.get("warnings") or []],
        estimated_upper_bound=bool(diagnostics.get("estimated_cost_upper_bound")),
        cost_upper_bound=bool(diagnostics.get("cost_upper_bound")),
    )


def _failure_view(record: dict[str, Any]) -> FailureView:
    error = scrub(record.get("error") or {})
    return FailureView(
        key=job_key(record),
        role=str(record.get("role") or ""),
        segment=record.get("segment"),
        producer=error.get("producer"),
        model=error.get("model") or record.get("model_id"),
        code=str(error.get("code") or "unknown"),
        message=str(error.get("reason") or error.get("message") or ""),
        prompt=error.get("prompt") or (record.get("inputs") or {}).get("prompt"),
        attempts=int(record.get("attempts") or 1),
        hint=None if error.get("hint") is None else str(error["hint"]),
        status_code=error.get("status_code") if isinstance(error.get("status_code"), int) else None,
        provider_job_id=None
        if error.get("provider_job_id") is None
        else str(error["provider_job_id"]),
        raw=[
            (str(key), str(value))
            for key, value in (
                error.get("raw") if isinstance(error.get("raw"), dict) else {}
            ).items()
            if isinstance(value, str | int | float) and not isinstance(value, bool)
        ],
    )


def job_view(record: dict[str, Any]) -> JobView:
    """A job record (``JobRecord`` dict) shaped for a page."""
    view = JobView(
        key=job_key(record),
        role=str(record.get("role") or ""),
        segment=record.get("segment"),
        model=str(record.get("model_id") or ""),
        status=str(record.get("status") or "succeeded"),
        reused=bool(record.get("reused")),
        passed_over=_passed_over(record),
    )
    if view.status == "failed":
        view.failure = _failure_view(record)
    else:
        view.artefacts = [_artefact_view(record, a) for a in record.get("artefacts") or []]
    return view


def run_view(
    manifest: dict[str, Any] | None,
    records: list[dict[str, Any]],
    outputs: dict[str, Any] | None = None,
) -> RunView:
    """The run as the gallery shows it: the manifest's jobs, else the XCom records."""
    if manifest is not None:
        records = [r for r in manifest.get("jobs") or [] if isinstance(r, dict)]
    order = {role: i for i, role in enumerate(ROLES)}
    jobs = sorted(
        (job_view(r) for r in records),
        key=lambda j: (order.get(j.role, 99), j.segment if j.segment is not None else -1),
    )
    return RunView(
        jobs=jobs,
        parameters=scrub(dict((manifest or {}).get("parameters") or {})),
        outputs=dict((manifest or {}).get("outputs") or outputs or {}),
        source="manifest" if manifest is not None else "xcom",
    )


def find_artefact(
    manifest: dict[str, Any] | None, records: list[dict[str, Any]], key: str, artefact_id: str
) -> dict[str, Any] | None:
    """The artefact record ``artefact_id`` of job ``key``, or None."""
    if manifest is not None:
        records = [r for r in manifest.get("jobs") or [] if isinstance(r, dict)]
    for record in records:
        if job_key(record) != key:
            continue
        for artefact in record.get("artefacts") or []:
            if isinstance(artefact, dict) and artefact.get("id") == artefact_id:
                return artefact
    return None


@dataclass
class ReviewView:
    """A reviewed run's verdict: who approved the script, and what they changed."""

    by: str
    changed: list[str]

    @property
    def summary(self) -> str:
        """``Reviewed by X: changed narration[0], image_prompt[1]`` (or ``approved as written``)."""
        what = f"changed {', '.join(self.changed)}" if self.changed else "approved as written"
        return f"Reviewed by {self.by}: {what}"


def review_view(outcome: Any) -> ReviewView | None:
    """The ``review`` task's outcome (XCom ``review``) if a person reviewed the run, else None."""
    if not isinstance(outcome, dict) or not outcome.get("reviewed"):
        return None
    changed = [str(c) for c in outcome.get("changed") or [] if valid_job_key(str(c))]
    return ReviewView(by=str(outcome.get("by") or "a reviewer"), changed=changed)
