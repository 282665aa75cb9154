"""``tutopanda movie``: the whole pipeline on this machine, with progress and a summary."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from producers.cli.retry import RetryPolicy
from producers.cli.runner import CliJobRunner, JobEvents
from producers.pipeline.cost import CostEstimate, estimate
from producers.pipeline.flow import MovieOutcome, make_movie
from producers.pipeline.options import ROLES, ProducerOptions
from producers.pipeline.steps import JobSpec
from producers.registry import ProviderRegistry
from producers.sdk.artefacts import ProducerResult
from producers.sdk.errors import ProviderError
from producers.sdk.handler import HandlerDeps
from producers.sdk.jobs import Mode
from producers.sdk.runtime import close_clients
from producers.storage.manifest import RunManifest


@dataclass
class MovieSettings:
    """What one ``tutopanda movie`` run asked for."""

    topic: str
    segments: int
    options: ProducerOptions
    mode: Mode
    run_id: str
    retries: int = 2
    concurrency: Mapping[str, int] | None = None
    budget: float | None = None
    refresh: bool = False
    refresh_roles: frozenset[str] = frozenset()
    quiet: bool = False
    size: tuple[int, int] = (1280, 720)


class BudgetExceeded(Exception):
    """The estimate is over the budget; nothing was paid."""

    def __init__(self, cost: CostEstimate, budget: float) -> None:
        super().__init__(
            f"the estimated cost ${cost.total:,.4f} is over the budget ${budget:,.4f}; "
            f"nothing was run\n{cost.describe()}"
        )
        self.cost = cost


def _progress(console: Console, settings: MovieSettings) -> tuple[Progress, dict[str, Any]]:
    progress = Progress(
        TextColumn("{task.description:<13}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        disable=settings.quiet,
        transient=False,
    )
    per_segment = {"image_prompt", "image", "narration", "video"}
    tasks: dict[str, Any] = {}
    for role in ROLES:
        if role == "video" and not settings.options.video.enabled:
            continue
        total = settings.segments if role in per_segment else 1
        tasks[role] = progress.add_task(role, total=total, note="")
    tasks["assembly"] = progress.add_task("assembly", total=1, note="")
    return progress, tasks


async def run_movie(
    settings: MovieSettings,
    registry: ProviderRegistry,
    deps: HandlerDeps,
    console: Console,
) -> tuple[MovieOutcome, CliJobRunner, CostEstimate, RunManifest]:
    """Estimate, check the budget, run the pipeline, write the manifest."""
    progress, tasks = _progress(console, settings)
    manifest = RunManifest(
        run_id=settings.run_id,
        client="cli",
        command="movie",
        parameters={
            "topic": settings.topic,
            "segments": settings.segments,
            "mode": settings.mode,
            "options": settings.options.model_dump(mode="json"),
        },
    )

    def done(spec: JobSpec, result: ProducerResult, reused: bool) -> None:
        progress.advance(tasks[spec.role])
        if reused:
            progress.update(tasks[spec.role], note="reused")
        manifest.add_result(
            spec.request(mode=settings.mode, run_id=settings.run_id), result, reused=reused
        )

    def retry(spec: JobSpec, error: ProviderError, attempt: int, wait: float) -> None:
        # Retries are logged in every mode (with --json too): stderr, never stdout.
        log = progress.console if not settings.quiet else Console(stderr=True)
        log.print(
            f"[yellow]retry[/] {attempt}/{settings.retries} {spec.key} ({spec.model_id}) in "
            f"{wait:.1f}s: {error.code.value}: {error.reason}",
            highlight=False,
        )

    def fail(spec: JobSpec, error: ProviderError) -> None:
        progress.update(tasks[spec.role], note="[red]failed[/]")
        manifest.add_failure(spec.request(mode=settings.mode, run_id=settings.run_id), error)

    runner = CliJobRunner(
        registry=registry,
        deps=deps,
        mode=settings.mode,
        run_id=settings.run_id,
        retry=RetryPolicy(retries=settings.retries),
        concurrency=dict(settings.concurrency or {}),
        refresh=settings.refresh,
        refresh_roles=settings.refresh_roles,
        events=JobEvents(on_done=done, on_retry=retry, on_fail=fail),
    )
    cost = await estimate(settings.options, settings.topic, settings.segments, runner.prepare)
    if settings.budget is not None and cost.total > settings.budget:
        raise BudgetExceeded(cost, settings.budget)
    try:
        with progress:
            outcome = await make_movie(
                settings.topic,
                settings.segments,
                settings.options,
                runner,
                deps.store,
                size=settings.size,
            )
            if outcome.movie is not None:
                progress.advance(tasks["assembly"])
    finally:
        if deps.shared_clients is not None:
            await close_clients(deps.shared_clients)
    if outcome.movie is not None:
        manifest.outputs["movie"] = outcome.movie.uri
    if outcome.timeline_blob is not None:
        manifest.outputs["timeline"] = outcome.timeline_blob.uri
    manifest.outputs["estimated_cost_usd"] = cost.total
    manifest.outputs["cost_usd"] = paid(outcome, runner)
    await manifest.save(deps.store)
    return outcome, runner, cost, manifest


def paid(outcome: MovieOutcome, runner: CliJobRunner) -> float:
    """What this run paid: the actual cost of every job that was not reused."""
    return round(sum(r.diagnostics.cost_usd or 0.0 for r in outcome.results.values()), 6)


def summary_table(outcome: MovieOutcome, runner: CliJobRunner, cost: CostEstimate) -> Table:
    """Done, reused, failed, skipped and cost, for people."""
    table = Table(title="summary", show_header=False)
    table.add_row("done", str(runner.counts["done"]))
    table.add_row("reused", str(runner.counts["reused"]))
    table.add_row("failed", str(len(outcome.failures)))
    table.add_row("skipped", str(len(outcome.skipped)))
    table.add_row("retries", str(runner.counts["retries"]))
    table.add_row("estimated cost", f"${cost.total:,.4f}" + (" + unknown" if cost.unknown else ""))
    table.add_row("paid", f"${paid(outcome, runner):,.4f}")
    return table


def failure_lines(outcome: MovieOutcome) -> list[str]:
    """One block per failure: producer, model, code, the provider's message, the prompt."""
    lines = []
    for key, error in outcome.failures.items():
        lines.append(f"{key}: {error}")
    for key, because in outcome.skipped.items():
        lines.append(f"{key}: skipped because {because} failed")
    return lines


def run(
    settings: MovieSettings, registry: ProviderRegistry, deps: HandlerDeps, console: Console
) -> Any:
    """Run the movie on a fresh event loop (Ctrl-C cancels jobs at the provider)."""
    return asyncio.run(run_movie(settings, registry, deps, console))
