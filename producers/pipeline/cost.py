"""The estimated cost of a movie, from the model declarations, before anything is paid."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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


class CostEstimate(BaseModel):
    """Estimated US dollars per role and in total; roles with an unknown price are listed."""

    model_config = ConfigDict(frozen=True)

    roles: dict[str, float] = Field(default_factory=dict)
    unknown: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        """The sum of the known roles."""
        return round(sum(self.roles.values()), 6)

    def describe(self) -> str:
        """One line per role, for people."""
        lines = [f"  {role:<13} ${usd:,.4f}" for role, usd in self.roles.items()]
        lines += [f"  {role:<13} unknown price" for role in self.unknown]
        lines.append(f"  {'total':<13} ${self.total:,.4f}" + (" + unknown" if self.unknown else ""))
        return "\n".join(lines)


class BudgetExceeded(Exception):
    """The estimate is over the budget; nothing was paid."""

    def __init__(self, cost: CostEstimate, budget: float) -> None:
        super().__init__(
            f"the estimated cost ${cost.total:,.4f} is over the budget ${budget:,.4f}; "
            f"nothing was run\n{cost.describe()}"
        )
        self.cost = cost
        self.budget = budget


def check_budget(cost: CostEstimate, budget: float | None) -> None:
    """Refuse a movie whose estimate is over ``budget`` (None: no limit), before anything runs.

    Raises:
        BudgetExceeded: the estimate is over the budget.
    """
    if budget is not None and cost.total > budget:
        raise BudgetExceeded(cost, budget)


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
    for role, spec, count in jobs:
        try:
            prepared = await prepare(spec)
        except InvalidInputError as exc:
            # Name the role: its options (or a run's params) set what its model refused.
            raise InvalidInputError(
                f"{role} ({spec.model_id}): {exc.reason}",
                field=role if exc.field is None else f"{role}.{exc.field}",
            ) from None
        if prepared.estimated_cost_usd is None:
            unknown.append(role)
        else:
            roles[role] = round(prepared.estimated_cost_usd * count, 6)
    return CostEstimate(roles=roles, unknown=tuple(unknown))
