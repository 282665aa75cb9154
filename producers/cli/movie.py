"""``tutopanda movie``: the whole pipeline on this machine, with progress and a summary."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from producers.cli.console import err, fail, out, setup_logging
from producers.cli.retry import DeadlineOption, RetryPolicy
from producers.cli.runner import CliJobRunner, JobEvents
from producers.cli.values import error_line, parse_pairs
from producers.clients import default_client_registry
from producers.pipeline.cost import BudgetExceeded, CostEstimate, check_budget, estimate
from producers.pipeline.flow import MovieOutcome, make_movie
from producers.pipeline.options import ROLES, ProducerOptions, load_options
from producers.pipeline.publish import PublishedMovie, publish_movie
from producers.pipeline.run_params import role_model_problems
from producers.pipeline.steps import JobSpec
from producers.registry import ProviderRegistry, default_registry
from producers.sdk.artefacts import ProducerResult
from producers.sdk.errors import (
    ConfigurationError,
    DeclarationError,
    ErrorCode,
    InvalidInputError,
    ProviderError,
    UnknownModelError,
)
from producers.sdk.handler import HandlerDeps
from producers.sdk.jobs import Mode
from producers.sdk.runtime import close_clients
from producers.storage import open_store
from producers.storage.destination import Destination, open_destination
from producers.storage.manifest import RunManifest, new_run_id


@dataclass
class MovieSettings:
    """What one ``tutopanda movie`` run asked for."""

    topic: str
    segments: int
    options: ProducerOptions
    mode: Mode
    run_id: str
    retries: int = 2
    deadline: float | None = None
    concurrency: Mapping[str, int] | None = None
    budget: float | None = None
    #: Let a run with a budget start although some jobs have no price (they count as nothing).
    allow_unpriced: bool = False
    refresh: bool = False
    refresh_roles: frozenset[str] = frozenset()
    quiet: bool = False
    size: tuple[int, int] = (1280, 720)
    #: Where the human layout is published (``--output``); None publishes nothing.
    publish_to: Destination | None = None


class PublishFailed(Exception):
    """The movie was made and stored, but publishing its layout failed."""


def segment_prompts(outcome: MovieOutcome) -> list[str | None]:
    """Each segment's image prompt as the run made it (None where there is none)."""
    count = len(outcome.script.segments) if outcome.script is not None else 0
    prompts: list[str | None] = []
    for index in range(count):
        result = outcome.results.get(f"image_prompt[{index}]")
        values = [a.value for a in result.artefacts] if result is not None else []
        prompts.append(next((v.strip() for v in values if isinstance(v, str)), None))
    return prompts


async def publish(
    settings: MovieSettings, outcome: MovieOutcome, store: Any, manifest: RunManifest
) -> PublishedMovie | None:
    """Publish the made movie's layout to ``settings.publish_to`` (None when nothing to do).

    Raises:
        PublishFailed: Writing the layout failed (the message says where and why).
    """
    destination = settings.publish_to
    if destination is None or outcome.movie is None or outcome.timeline is None:
        return None
    if outcome.script is None:
        return None
    try:
        return await publish_movie(
            destination,
            store,
            manifest,
            script=outcome.script,
            prompts=segment_prompts(outcome),
            timeline=outcome.timeline,
            movie_uri=outcome.movie.uri,
        )
    except Exception as error:
        # A boundary: a full disk, a missing bucket, refused credentials all end the same way.
        raise PublishFailed(
            f"publishing to {destination.root} failed: {type(error).__name__}: {error}; "
            f"the movie is in the store at {outcome.movie.uri}"
        ) from error


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
) -> tuple[MovieOutcome, CliJobRunner, CostEstimate, RunManifest, PublishedMovie | None]:
    """Estimate, check the budget, run the pipeline, write the manifest, then publish the
    movie's layout (when made and ``settings.publish_to`` is set)."""
    from opentelemetry import trace

    # the ``tutopanda.movie`` span (a no-op when tracing is off) names the run
    trace.get_current_span().set_attribute("tutopanda.run.id", settings.run_id)
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

    # What the jobs run here paid, beyond the sum: an upper bound, or jobs with no price.
    paid_notes: dict[str, Any] = {"upper_bound": False, "unknown": 0}

    def done(spec: JobSpec, result: ProducerResult, reused: bool) -> None:
        if not reused:
            paid_notes["upper_bound"] |= result.diagnostics.cost_upper_bound
            paid_notes["unknown"] += result.diagnostics.cost_usd is None
        progress.advance(tasks[spec.role])
        if reused:
            progress.update(tasks[spec.role], note="reused")
        manifest.add_result(
            spec.request(mode=settings.mode, run_id=settings.run_id),
            result,
            reused=reused,
            key=spec.key,
            role=spec.role,
            segment=spec.index,
            passed_over=list(spec.passed_over),
        )

    def fallback(spec: JobSpec, error: ProviderError, following: JobSpec) -> None:
        log = progress.console if not settings.quiet else Console(stderr=True)
        log.print(
            f"[yellow]fallback[/] {spec.key}: {spec.model_id} failed ({error.code.value}: "
            f"{error.reason}); trying {following.model_id}",
            highlight=False,
            soft_wrap=True,
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
        manifest.add_failure(
            spec.request(mode=settings.mode, run_id=settings.run_id),
            error,
            key=spec.key,
            role=spec.role,
            segment=spec.index,
            passed_over=list(spec.passed_over),
        )

    runner = CliJobRunner(
        registry=registry,
        deps=deps,
        mode=settings.mode,
        run_id=settings.run_id,
        retry=RetryPolicy(retries=settings.retries),
        deadline=settings.deadline,
        concurrency=dict(settings.concurrency or {}),
        refresh=settings.refresh,
        refresh_roles=settings.refresh_roles,
        events=JobEvents(on_done=done, on_retry=retry, on_fail=fail, on_fallback=fallback),
    )
    cost = await estimate(settings.options, settings.topic, settings.segments, runner.prepare)
    check_budget(cost, settings.budget, allow_unpriced=settings.allow_unpriced)
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
    manifest.outputs["estimated_cost_upper_bound"] = cost.total_is_upper_bound
    manifest.outputs["unpriced_jobs"] = [job.model_dump(mode="json") for job in cost.unpriced]
    manifest.outputs["cost_usd"] = runner.paid_usd
    manifest.outputs["cost_upper_bound"] = paid_notes["upper_bound"]
    manifest.outputs["cost_unknown_jobs"] = paid_notes["unknown"]
    await manifest.save(deps.store)
    published = await publish(settings, outcome, deps.store, manifest)
    return outcome, runner, cost, manifest, published


def paid_text(runner: CliJobRunner, manifest: RunManifest | None = None) -> str:
    """What the jobs run here paid, from the providers' figures: ``$0.0420``, ``<= $0.0420``
    when some job's cost is only an upper bound, ``+ 1 job with no price`` when some job's
    cost is unknown (``manifest``: the run's, which keeps those notes)."""
    notes = manifest.outputs if manifest is not None else {}
    text = f"{'<= ' if notes.get('cost_upper_bound') else ''}${runner.paid_usd:,.4f}"
    unknown = int(notes.get("cost_unknown_jobs") or 0)
    if unknown:
        text += f" + {unknown} job{'' if unknown == 1 else 's'} with no price"
    return text


def summary_table(
    outcome: MovieOutcome,
    runner: CliJobRunner,
    cost: CostEstimate,
    manifest: RunManifest | None = None,
) -> Table:
    """Done, reused, failed, skipped and cost, for people."""
    table = Table(title="summary", show_header=False)
    table.add_row("done", str(runner.counts["done"]))
    table.add_row("reused", str(runner.counts["reused"]))
    table.add_row("failed", str(len(outcome.failures)))
    table.add_row("skipped", str(len(outcome.skipped)))
    table.add_row("retries", str(runner.counts["retries"]))
    if runner.counts["fallbacks"]:
        table.add_row("fallbacks", str(runner.counts["fallbacks"]))
    table.add_row("estimated cost", cost.total_text())
    table.add_row("paid", paid_text(runner, manifest))
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


def check_role_kinds(options: ProducerOptions, registry: ProviderRegistry) -> None:
    """Refuse a role filled by a model of the wrong kind (a text model for the images), its
    own or a fallback, before anything runs, instead of failing at assembly after paying for
    the rest.

    Raises:
        InvalidInputError: naming the role, the model, its kind and the kinds allowed.
    """
    for role, position, problem in role_model_problems(
        options, registry.models(), only_listed=False
    ):
        where = f"{role}.model" if position == 0 else f"{role}.fallbacks"
        raise InvalidInputError(f"{where}: {problem}", field=where)


def movie_command(
    topic: Annotated[str, typer.Option("--topic", help="What the movie explains.")],
    segments: Annotated[
        int, typer.Option("--segments", min=1, max=50, help="Number of segments.")
    ] = 3,
    options_file: Annotated[
        list[Path],
        typer.Option(
            "--options", help="Producer options file (YAML or TOML), over the defaults; repeatable."
        ),
    ] = [],  # noqa: B006
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="Override ROLE.KEY=VALUE, e.g. image.model=replicate:google/nano-banana or video.enabled=true.",
        ),
    ] = [],  # noqa: B006
    mode: Annotated[
        str, typer.Option("--mode", help="mock (no keys, no network) or live.")
    ] = "mock",
    concurrency: Annotated[
        list[str],
        typer.Option(
            "--concurrency", help="PROVIDER=N jobs in flight (default replicate=8, openai=4)."
        ),
    ] = [],  # noqa: B006
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Directory or s3://bucket/prefix (default: $TUTOPANDA_STORE, else ./tutopanda-store).",
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            min=0,
            help="Refuse to start if the estimated cost in USD is higher, or if a job has no "
            "price (see --allow-unpriced). Upper bounds count at their bound.",
        ),
    ] = None,
    allow_unpriced: Annotated[
        bool,
        typer.Option(
            "--allow-unpriced",
            help="With --budget: start even if some jobs have no price (they count as $0).",
        ),
    ] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh", help="Generate everything anew instead of reusing stored artefacts."
        ),
    ] = False,
    refresh_role: Annotated[
        list[str], typer.Option("--refresh-role", help="Generate this role anew (repeatable).")
    ] = [],  # noqa: B006
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Retries of retryable errors per job.")
    ] = 2,
    deadline: DeadlineOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Quiet; print one JSON object with the movie and every artefact."
        ),
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            help="Where to publish the movie: movie.mp4, timeline.svg, script.md, manifest.json "
            "and every artefact by name; a directory or s3://bucket/prefix "
            "(default: $TUTOPANDA_MOVIES_DIR/<run id>/, else ./movies/<run id>/).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log SDK events to stderr.")
    ] = False,
) -> None:
    """Make a narrated explainer movie from a topic.

    Script, image prompts, images, narration, music and (optionally) video clips, then an
    MP4 with its timeline, all in the store; a second identical run reuses everything.
    """
    setup_logging(verbose)
    if mode not in ("mock", "live"):
        raise fail(f"--mode must be mock or live, not {mode!r}", 2)
    bad_roles = sorted(set(refresh_role) - set(ROLES))
    if bad_roles:
        raise fail(
            f"--refresh-role: unknown role(s) {', '.join(bad_roles)}; roles: {', '.join(ROLES)}", 2
        )
    try:
        limits = parse_pairs(concurrency, option="--concurrency")
    except ProviderError as exc:
        raise fail(error_line(exc), 2) from None
    for provider, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise fail(
                f"--concurrency {provider}={value!r}: give PROVIDER=N with N a whole number "
                "from 1 to 1000",
                2,
            )
    try:
        options = load_options(options_file, set_)
        registry = default_registry()
        for role in ROLES:
            registry.find(options.role(role).descriptor)
        check_role_kinds(options, registry)
        store_obj = open_store(store)
        run_id = new_run_id("movie")
        movies = os.environ.get("TUTOPANDA_MOVIES_DIR") or "movies"
        destination = open_destination(output or str(Path(movies) / run_id))
    except (ProviderError, UnknownModelError, DeclarationError, ConfigurationError) as exc:
        raise fail(error_line(exc), 2) from None
    run_mode: Mode = "live" if mode == "live" else "mock"
    settings = MovieSettings(
        topic=topic,
        segments=segments,
        options=options,
        mode=run_mode,
        run_id=run_id,
        retries=retries,
        deadline=deadline,
        concurrency=limits,
        budget=budget,
        allow_unpriced=allow_unpriced,
        refresh=refresh,
        refresh_roles=frozenset(refresh_role),
        quiet=as_json,
        publish_to=destination,
    )
    deps = HandlerDeps(store=store_obj, clients=default_client_registry(), shared_clients={})
    console = err if not as_json else Console(stderr=True, quiet=True)
    try:
        outcome, runner, cost, manifest, published = run(settings, registry, deps, console)
    except BudgetExceeded as exc:
        raise fail(str(exc), 2) from None
    except PublishFailed as exc:
        raise fail(str(exc), 1) from None
    except ProviderError as exc:
        # Raised while pricing, before any job: invalid input is a usage error, in one line.
        if exc.code is ErrorCode.INVALID_INPUT:
            raise fail(error_line(exc), 2) from None
        raise fail(str(exc), 1) from None
    except KeyboardInterrupt:
        raise fail(
            "interrupted: in-flight predictions were canceled at the provider", 130
        ) from None
    manifest_uri = f"{store_obj.root_uri}/runs/{settings.run_id}/manifest.json"
    if as_json:
        out.print_json(
            data={
                "run_id": settings.run_id,
                "movie": outcome.movie.uri if outcome.movie else None,
                "timeline": outcome.timeline_blob.uri if outcome.timeline_blob else None,
                "manifest": manifest_uri,
                "published": (
                    {"dir": published.dir, "movie": published.movie} if published else None
                ),
                "summary": {
                    "done": runner.counts["done"],
                    "reused": runner.counts["reused"],
                    "failed": len(outcome.failures),
                    "skipped": len(outcome.skipped),
                    "retries": runner.counts["retries"],
                    "fallbacks": runner.counts["fallbacks"],
                    "estimated_cost_usd": cost.total,
                    "estimated_cost_upper_bound": cost.total_is_upper_bound,
                    "unpriced_jobs": [job.model_dump(mode="json") for job in cost.unpriced],
                    "cost_usd": runner.paid_usd,
                    "cost_upper_bound": manifest.outputs.get("cost_upper_bound", False),
                    "cost_unknown_jobs": manifest.outputs.get("cost_unknown_jobs", 0),
                },
                "artefacts": [
                    {**a.record(), "job": key, "passed_over": runner.passed_over.get(key, [])}
                    for key, r in outcome.results.items()
                    for a in r.artefacts
                ],
                "failures": [{"job": key, **e.to_dict()} for key, e in outcome.failures.items()],
                "skipped": outcome.skipped,
            }
        )
    else:
        err.print(f"estimated cost before the run:\n{cost.describe()}", highlight=False)
        out.print(summary_table(outcome, runner, cost, manifest))
        if outcome.movie is not None:
            path = outcome.movie.uri
            out.print(f"[bold green]movie:[/] {path}", highlight=False, soft_wrap=True)
            if outcome.timeline_blob is not None:
                out.print(f"timeline: {outcome.timeline_blob.uri}", highlight=False, soft_wrap=True)
        out.print(
            f"run {settings.run_id}: manifest {manifest_uri}", highlight=False, soft_wrap=True
        )
        if published is not None:
            out.print(f"published: {published.dir}", highlight=False, soft_wrap=True)
            # The last line: the movie alone, for a player or a script (`| tail -1`).
            out.print(published.movie, highlight=False, soft_wrap=True, markup=False)
    if not outcome.ok:
        for line in failure_lines(outcome):
            err.print(f"[red]failed[/] {line}", highlight=False)
        raise typer.Exit(1)
