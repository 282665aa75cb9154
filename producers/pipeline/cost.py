"""The estimated cost of a movie, from the model declarations, before anything is paid, and
the budget that refuses a run over it or with a job it cannot price."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from producers.pipeline.options import ProducerOptions, Role
from producers.pipeline.steps import (
    JobSpec,
    Script,
    ScriptSegment,
    image_job,
    image_prompt_job,
    music_job,
    narration_job,
    script_job,
    video_job,
)
from producers.registry import ProviderRegistry
from producers.sdk.definition import Prepared
from producers.sdk.errors import InvalidInputError
from producers.sdk.handler import HandlerDeps
from producers.storage.memory import MemoryStore

#: Typical sizes used to price jobs whose inputs do not exist yet.
TYPICAL_NARRATION = " ".join(["word"] * 30)
TYPICAL_VISUAL = " ".join(["detail"] * 25)
TYPICAL_IMAGE_PROMPT = " ".join(["detail"] * 60)
TYPICAL_SEGMENT_SECONDS = 12.0

PrepareFn = Callable[[JobSpec], Awaitable[Prepared]]


class UnpricedJob(BaseModel):
    """A job of the run whose price is unknown: its key, role and model."""

    model_config = ConfigDict(frozen=True)

    key: str
    role: str
    model_id: str


def _dollars(usd: float, upper_bound: bool) -> str:
    return f"{'<= ' if upper_bound else ''}${usd:,.4f}"


class CostEstimate(BaseModel):
    """Estimated US dollars per role and in total, before anything is paid.

    Attributes:
        roles: The priced roles' estimates (all of their jobs).
        unknown: The roles with no price (one entry per role).
        upper_bound: The roles whose estimate is only an upper bound (a model whose hardware
            is unknown); they count at their bound.
        unpriced: Every job with no price, named by key and model.
    """

    model_config = ConfigDict(frozen=True)

    roles: dict[str, float] = Field(default_factory=dict)
    unknown: tuple[str, ...] = ()
    upper_bound: tuple[str, ...] = ()
    unpriced: tuple[UnpricedJob, ...] = ()

    @property
    def total(self) -> float:
        """The sum of the priced roles (upper bounds at their bound; unpriced jobs left out)."""
        return round(sum(self.roles.values()), 6)

    @property
    def total_is_upper_bound(self) -> bool:
        """True if the total is only an upper bound (some role's price is)."""
        return bool(self.upper_bound)

    def unpriced_text(self) -> str:
        """``1 job with no price (image[0]: replicate:x/y)``, or ``""`` if every job is
        priced; jobs are grouped by model."""
        if not self.unpriced:
            return ""
        by_model: dict[str, list[str]] = {}
        for job in self.unpriced:
            by_model.setdefault(job.model_id, []).append(job.key)
        listed = "; ".join(f"{', '.join(keys)}: {model}" for model, keys in by_model.items())
        count = len(self.unpriced)
        return f"{count} job{'' if count == 1 else 's'} with no price ({listed})"

    def total_text(self) -> str:
        """The total for people: ``$0.0499``, ``<= $0.0499`` when it is an upper bound, and
        ``+ 1 job with no price (image[0]: replicate:x/y)`` when some jobs have none."""
        text = _dollars(self.total, self.total_is_upper_bound)
        return f"{text} + {self.unpriced_text()}" if self.unpriced else text

    def describe(self) -> str:
        """One line per role, for people."""
        models = {job.role: job.model_id for job in self.unpriced}
        lines = [
            f"  {role:<13} {_dollars(usd, role in self.upper_bound)}"
            + (
                "  (upper bound: the model's hardware is unknown)"
                if role in self.upper_bound
                else ""
            )
            for role, usd in self.roles.items()
        ]
        lines += [f"  {role:<13} no price ({models.get(role, '?')})" for role in self.unknown]
        lines.append(f"  {'total':<13} {self.total_text()}")
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        """A JSON-able summary (``--json``, manifests, XCom): total, whether it is an upper
        bound, the roles, and the unpriced jobs."""
        return {
            "estimated_cost_usd": self.total,
            "estimated_cost_upper_bound": self.total_is_upper_bound,
            "roles": dict(self.roles),
            "upper_bound_roles": list(self.upper_bound),
            "unpriced_jobs": [job.model_dump(mode="json") for job in self.unpriced],
        }


class BudgetExceeded(Exception):
    """The run was refused before anything was paid: its estimate is over the budget."""

    def __init__(self, cost: CostEstimate, budget: float, message: str | None = None) -> None:
        super().__init__(
            message
            or (
                f"the estimated cost {cost.total_text()} is over the budget ${budget:,.4f}; "
                f"nothing was run\n{cost.describe()}"
            )
        )
        self.cost = cost
        self.budget = budget


class UnpricedJobs(BudgetExceeded):
    """The run has a budget and some of its jobs have no price, so nothing can hold it to the
    budget; it was refused before anything was paid (unless unpriced jobs are allowed)."""

    def __init__(
        self, cost: CostEstimate, budget: float, *, allow_hint: str = "--allow-unpriced"
    ) -> None:
        super().__init__(
            cost,
            budget,
            f"the run has a budget of ${budget:,.4f} but {cost.unpriced_text()}: it cannot "
            "be held to the budget; nothing was run. Give the model a price (a 'cost' in its "
            f"declaration) or allow unpriced jobs ({allow_hint})\n" + cost.describe(),
        )
        self.jobs = cost.unpriced


def check_budget(
    cost: CostEstimate,
    budget: float | None,
    *,
    allow_unpriced: bool = False,
    allow_hint: str = "--allow-unpriced",
) -> None:
    """Refuse a run, before anything runs, whose estimate is over ``budget`` (None: no
    limit) or, with a budget, that has a job with no price (unless ``allow_unpriced``: those
    jobs then count as nothing). Upper bounds count at their bound. ``allow_hint`` is how
    the refusal tells this client's user to allow unpriced jobs (a CLI flag, a DAG param).

    Raises:
        BudgetExceeded: the estimate is over the budget.
        UnpricedJobs: (a :class:`BudgetExceeded`) a job has no price and they are not allowed.
    """
    if budget is None:
        return
    if cost.total > budget:
        raise BudgetExceeded(cost, budget)
    if cost.unpriced and not allow_unpriced:
        raise UnpricedJobs(cost, budget, allow_hint=allow_hint)


def mock_prepare(registry: ProviderRegistry, *, environment: str = "local") -> PrepareFn:
    """A ``prepare`` for :func:`estimate` that needs no key and no network: the mock handler
    maps and validates the same payload as the live one (pricing needs nothing more)."""
    deps = HandlerDeps(store=MemoryStore())

    async def prepare(spec: JobSpec) -> Prepared:
        request = spec.request(mode="mock", environment=environment)
        return await registry.resolve(request.descriptor, "mock", deps).prepare(request)

    return prepare


async def estimate(
    options: ProducerOptions, topic: str, segments: int, prepare: PrepareFn
) -> CostEstimate:
    """Price every job of the movie with ``prepare`` (no provider call), using typical
    sizes for the inputs that earlier jobs will write."""
    placeholder = Script(
        title=topic,
        segments=tuple(
            ScriptSegment(narration=TYPICAL_NARRATION, visual_description=TYPICAL_VISUAL)
            for _ in range(segments)
        ),
    )
    jobs: list[tuple[Role, JobSpec, int]] = [
        ("script", script_job(options, topic, segments), 1),
        ("image_prompt", image_prompt_job(options, topic, placeholder, 0), segments),
        ("image", image_job(options, TYPICAL_IMAGE_PROMPT, 0), segments),
        ("narration", narration_job(options, TYPICAL_NARRATION, 0), segments),
        ("music", music_job(options, topic, topic, TYPICAL_SEGMENT_SECONDS * segments), 1),
    ]
    if options.video.enabled:
        jobs.append(
            (
                "video",
                video_job(
                    options,
                    TYPICAL_IMAGE_PROMPT,
                    "https://example.invalid/i.png",
                    TYPICAL_SEGMENT_SECONDS,
                    0,
                ),
                segments,
            )
        )
    roles: dict[str, float] = {}
    unknown: list[str] = []
    bounded: list[str] = []
    unpriced: list[UnpricedJob] = []
    for role, spec, count in jobs:
        keys = [spec.key] if count == 1 else [f"{role}[{i}]" for i in range(count)]
        # The role's model, then each fallback (validated now too: a fallback that would
        # refuse its inputs is found before anything is paid, not after an outage). The
        # role counts at its dearest model: a fallback runs only when the model before it
        # failed, but a failed prediction may have been paid for.
        priced: list[tuple[float, bool]] = []
        missing: list[str] = []
        for position in range(len(spec.fallbacks) + 1):
            current = spec.moved_to([{}] * position)
            try:
                prepared = await prepare(current)
            except InvalidInputError as exc:
                # Name the role: its options (or a run's params) set what its model refused.
                what = role if position == 0 else f"{role} fallback"
                raise InvalidInputError(
                    f"{what} ({current.model_id}): {exc.reason}",
                    field=role if exc.field is None else f"{role}.{exc.field}",
                ) from None
            if prepared.estimated_cost_usd is None:
                missing.append(current.model_id)
            else:
                priced.append((prepared.estimated_cost_usd, prepared.estimated_cost_upper_bound))
        if missing:
            unknown.append(role)
            unpriced += [
                UnpricedJob(key=key, role=role, model_id=model_id)
                for model_id in missing
                for key in keys
            ]
        if priced:
            usd, bound = max(priced)
            roles[role] = round(usd * count, 6)
            if bound:
                bounded.append(role)
    return CostEstimate(
        roles=roles, unknown=tuple(unknown), upper_bound=tuple(bounded), unpriced=tuple(unpriced)
    )
