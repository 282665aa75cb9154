"""The ``tutopanda`` command line: run producers locally and manage the model catalogue."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from producers import __version__
from producers.cli.retry import RetryPolicy
from producers.cli.values import parse_pairs
from producers.clients import default_client_registry
from producers.registry import default_registry
from producers.sdk.artefacts import ProducerResult
from producers.sdk.attachments import attachment_from_path
from producers.sdk.errors import (
    ConfigurationError,
    DeclarationError,
    ProviderError,
    UnknownModelError,
)
from producers.sdk.handler import HandlerDeps
from producers.sdk.jobs import Descriptor, JobRequest, Kind, Mode
from producers.storage import open_store
from producers.storage.manifest import RunManifest, new_run_id

app = typer.Typer(
    name="tutopanda",
    help="Run generative-AI producers (OpenAI, Replicate) and manage the model catalogue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List, show and import model declarations.", no_args_is_help=True)
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
    )


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read config {path}: {exc.strerror}", 2) from None
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise _fail(
            f"config {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}", 2
        ) from None
    if not isinstance(data, dict):
        raise _fail(f"config {path} must hold an object (a table / mapping) at the top level", 2)
    return data


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit(0)


@app.command()
def produce(
    model_id: Annotated[
        str, typer.Argument(help="provider:model, e.g. replicate:bytedance/seedream-4")
    ],
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="General attribute KEY=VALUE (prompt, aspect_ratio, count, seed, duration_seconds, voice, language, image, negative_prompt).",
        ),
    ] = [],  # noqa: B006
    custom: Annotated[
        list[str], typer.Option("--custom", help="Model-specific field KEY=VALUE, passed through.")
    ] = [],  # noqa: B006
    config: Annotated[
        Path | None, typer.Option("--config", help="Producer config file (JSON, TOML or YAML).")
    ] = None,
    attach: Annotated[
        list[Path], typer.Option("--attach", help="Attachment file (JSON, TOML or text).")
    ] = [],  # noqa: B006
    produces: Annotated[
        list[str], typer.Option("--artefact", help="Artefact id to produce (repeatable).")
    ] = [],  # noqa: B006
    mode: Annotated[
        str, typer.Option("--mode", help="mock (no keys, no network) or live.")
    ] = "mock",
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Directory or s3://bucket/prefix (default: $TUTOPANDA_STORE, else ./tutopanda-store).",
        ),
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Retries of retryable errors.")
    ] = 2,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the artefacts.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log SDK events to stderr.")
    ] = False,
) -> None:
    """Run one producer job and print the artefacts it made."""
    _setup_logging(verbose)
    if mode not in ("mock", "live"):
        raise _fail(f"--mode must be mock or live, not {mode!r}", 2)
    registry = default_registry()
    try:
        descriptor = Descriptor.parse(model_id, environment="local")
        registry.find(descriptor)
        info = next((m for m in registry.models() if m.model_id == descriptor.model_id), None)
    except (UnknownModelError, DeclarationError) as exc:
        raise _fail(str(exc), 2) from None
    run_mode: Mode = "live" if mode == "live" else "mock"
    clients = default_client_registry()
    if not clients.has(descriptor.provider, run_mode):
        raise _fail(
            f"live mode is not available for provider {descriptor.provider!r}: no live "
            "adapter is installed for it; use --mode mock",
            2,
        )
    types = {k: v.get("type") for k, v in (info.custom_attributes if info else {}).items()}
    try:
        inputs = parse_pairs(set_, option="--set")
        custom_values = parse_pairs(custom, option="--custom", types=types)
        attachments = tuple(attachment_from_path(p) for p in attach)
        store_obj = open_store(store)
    except ProviderError as exc:
        raise _fail(str(exc), 2) from None
    except ConfigurationError as exc:
        raise _fail(str(exc), 2) from None
    run_id = new_run_id()
    request = JobRequest(
        descriptor=descriptor,
        run_id=run_id,
        mode=run_mode,
        inputs=inputs,
        custom=custom_values,
        config=_read_config(config) if config else {},
        attachments=attachments,
        produces=tuple(produces),
    )
    handler = registry.resolve(descriptor, run_mode, HandlerDeps(store=store_obj, clients=clients))
    manifest = RunManifest(run_id=run_id, client="cli", command="produce")

    def on_retry(error: ProviderError, attempt: int, wait: float) -> None:
        err.print(
            f"[yellow]retry[/] {attempt}/{retries} of {descriptor.model_id} in {wait:.1f}s: "
            f"{error.code.value}: {error.reason}",
            highlight=False,
        )

    async def attempt(number: int, previous: ProviderError | None) -> ProducerResult:
        resume = previous.handle if previous is not None else None
        return await handler.run(request.model_copy(update={"attempt": number}), resume=resume)

    async def go() -> tuple[ProducerResult | ProviderError, str]:
        try:
            done = await RetryPolicy(retries=retries).run(attempt, on_retry=on_retry)
            manifest.add_result(request, done)
            outcome: ProducerResult | ProviderError = done
        except ProviderError as exc:
            outcome = exc
            manifest.add_failure(request, exc)
        return outcome, await manifest.save(store_obj)

    try:
        outcome, manifest_uri = asyncio.run(go())
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None
    if isinstance(outcome, ProviderError):
        if as_json:
            out.print_json(
                data={"run_id": run_id, "manifest": manifest_uri, "error": outcome.to_dict()}
            )
        raise _fail(str(outcome), 1)
    result = outcome
    if as_json:
        out.print_json(
            data={
                "run_id": run_id,
                "manifest": manifest_uri,
                "artefacts": [a.record() for a in result.artefacts],
                "diagnostics": result.diagnostics.model_dump(mode="json"),
            }
        )
        return
    table = Table(title=f"{descriptor.model_id} ({run_mode})")
    for column in ("artefact", "type", "size"):
        table.add_column(column, no_wrap=True)
    table.add_column("uri", overflow="fold")
    for artefact in result.artefacts:
        table.add_row(artefact.id, artefact.mime_type, f"{artefact.size:,}", artefact.uri)
    out.print(table)
    out.print(f"run {run_id}: manifest {manifest_uri}", highlight=False)
    diagnostics = result.diagnostics
    cost = diagnostics.estimated_cost_usd
    out.print(
        f"estimated cost: {'unknown' if cost is None else f'${cost:.4f}'}"
        + ("  (mock: nothing was paid)" if diagnostics.mocked else "")
    )
    for warning in diagnostics.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if diagnostics.ignored_inputs:
        err.print(
            f"[yellow]note:[/] {descriptor.model_id} has no field for: "
            + ", ".join(sorted(diagnostics.ignored_inputs)),
            highlight=False,
        )


@app.command()
def movie(
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
            "--budget", min=0, help="Refuse to start if the estimated cost in USD is higher."
        ),
    ] = None,
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
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Quiet; print one JSON object with the movie and every artefact."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log SDK events to stderr.")
    ] = False,
) -> None:
    """Make a narrated explainer movie from a topic: script, prompts, images, narration,
    music, (video), then an MP4."""
    from producers.cli import movie as movie_cli
    from producers.pipeline.options import ROLES, load_options

    _setup_logging(verbose)
    if mode not in ("mock", "live"):
        raise _fail(f"--mode must be mock or live, not {mode!r}", 2)
    bad_roles = sorted(set(refresh_role) - set(ROLES))
    if bad_roles:
        raise _fail(
            f"--refresh-role: unknown role(s) {', '.join(bad_roles)}; roles: {', '.join(ROLES)}", 2
        )
    try:
        limits = {k: int(v) for k, v in parse_pairs(concurrency, option="--concurrency").items()}
    except (TypeError, ValueError):
        raise _fail("--concurrency takes PROVIDER=N with N a whole number", 2) from None
    if any(v < 1 for v in limits.values()):
        raise _fail("--concurrency must be at least 1", 2)
    try:
        options = load_options(options_file, set_)
        registry = default_registry()
        for role in ROLES:
            registry.find(options.role(role).descriptor)
        store_obj = open_store(store)
    except (ProviderError, UnknownModelError, DeclarationError, ConfigurationError) as exc:
        raise _fail(str(exc), 2) from None
    run_mode: Mode = "live" if mode == "live" else "mock"
    settings = movie_cli.MovieSettings(
        topic=topic,
        segments=segments,
        options=options,
        mode=run_mode,
        run_id=new_run_id("movie"),
        retries=retries,
        concurrency=limits,
        budget=budget,
        refresh=refresh,
        refresh_roles=frozenset(refresh_role),
        quiet=as_json,
    )
    deps = HandlerDeps(store=store_obj, clients=default_client_registry(), shared_clients={})
    console = err if not as_json else Console(stderr=True, quiet=True)
    try:
        outcome, runner, cost, _manifest = movie_cli.run(settings, registry, deps, console)
    except movie_cli.BudgetExceeded as exc:
        raise _fail(str(exc), 2) from None
    except ProviderError as exc:
        raise _fail(str(exc), 1) from None
    except KeyboardInterrupt:
        raise _fail(
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
                "summary": {
                    "done": runner.counts["done"],
                    "reused": runner.counts["reused"],
                    "failed": len(outcome.failures),
                    "skipped": len(outcome.skipped),
                    "retries": runner.counts["retries"],
                    "estimated_cost_usd": cost.total,
                    "cost_usd": movie_cli.paid(outcome, runner),
                },
                "artefacts": [
                    {**a.record(), "job": key}
                    for key, r in outcome.results.items()
                    for a in r.artefacts
                ],
                "failures": [{"job": key, **e.to_dict()} for key, e in outcome.failures.items()],
                "skipped": outcome.skipped,
            }
        )
    else:
        err.print(f"estimated cost before the run:\n{cost.describe()}", highlight=False)
        out.print(movie_cli.summary_table(outcome, runner, cost))
        if outcome.movie is not None:
            path = outcome.movie.uri
            out.print(f"[bold green]movie:[/] {path}", highlight=False, soft_wrap=True)
            if outcome.timeline_blob is not None:
                out.print(f"timeline: {outcome.timeline_blob.uri}", highlight=False, soft_wrap=True)
        out.print(
            f"run {settings.run_id}: manifest {manifest_uri}", highlight=False, soft_wrap=True
        )
    if not outcome.ok:
        for line in movie_cli.failure_lines(outcome):
            err.print(f"[red]failed[/] {line}", highlight=False)
        raise typer.Exit(1)


@models_app.command("list")
def models_list(
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only models of this kind, e.g. text-to-image.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every model a producer serves."""
    if kind is not None and kind not in [k.value for k in Kind]:
        raise _fail(f"--kind must be one of {', '.join(k.value for k in Kind)}", 2)
    try:
        models = default_registry().models(kind)
    except DeclarationError as exc:
        raise _fail(str(exc), 2) from None
    if as_json:
        out.print_json(data=[m.model_dump(mode="json") for m in models])
        return
    table = Table(title=f"{len(models)} models")
    for column in ("model", "kind", "general attributes", "cost", "median s"):
        table.add_column(column)
    for m in models:
        cost = m.cost.get("text") or (
            f"${m.cost.get('input_usd_per_million')}/M in, ${m.cost.get('output_usd_per_million')}/M out"
            if "input_usd_per_million" in m.cost
            else "unknown"
        )
        table.add_row(
            m.model_id,
            m.kind.value,
            ", ".join(m.general_attributes),
            str(cost).strip(),
            "" if m.median_seconds is None else f"{m.median_seconds:g}",
        )
    out.print(table)


@models_app.command("show")
def models_show(
    model_id: Annotated[str, typer.Argument(help="provider:model")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one model: kind, attributes, cost, latency."""
    try:
        info = default_registry().describe(model_id)
    except (UnknownModelError, DeclarationError) as exc:
        raise _fail(str(exc), 2) from None
    if as_json:
        out.print_json(data=info.model_dump(mode="json"))
        return
    out.print(f"[bold]{info.model_id}[/]  {info.kind.value}  (producer {info.producer})")
    if info.description:
        out.print(info.description, highlight=False)
    out.print(f"general attributes: {', '.join(info.general_attributes) or '(none)'}")
    out.print(f"required: {', '.join(info.required) or '(none)'}")
    out.print(f"cost: {json.dumps(info.cost)}")
    out.print(f"median seconds: {info.median_seconds}")
    if info.unconfirmed:
        out.print(f"unconfirmed: {', '.join(info.unconfirmed)}")
    table = Table(title="fields (custom attributes)")
    for column in ("field", "type", "allowed", "default"):
        table.add_column(column)
    from producers.sdk.schema import allowed_text

    for name, prop in info.custom_attributes.items():
        kind = prop.get("type")
        table.add_row(
            name,
            kind if isinstance(kind, str) else "/".join(kind or []),
            allowed_text(prop),
            json.dumps(prop.get("default")) if "default" in prop else "",
        )
    out.print(table)


@models_app.command("import")
def models_import(
    files: Annotated[list[Path], typer.Argument(help="Provider metadata files (JSON).")],
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            help="Folder to write declarations to (default: the first TUTOPANDA_MODELS_PATH folder, else ./models).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write model declarations from provider metadata, printing what was inferred."""
    from producers.replicate.catalogue import search_path
    from producers.replicate.importer import import_file, write_declaration

    target = into or (search_path()[1] if len(search_path()) > 1 else Path("models"))
    reports = []
    failed = False
    for path in files:
        try:
            result = import_file(path)
        except DeclarationError as exc:
            err.print(f"[red]{path}[/]: {exc}", highlight=False)
            failed = True
            continue
        written = write_declaration(result.declaration, target)
        reports.append(
            {
                "file": str(path),
                "written": str(written),
                "model": result.declaration.model_id,
                "kind": result.declaration.kind.value,
                "inferred": result.inferred,
                "not_inferred": result.not_inferred,
            }
        )
        if not as_json:
            out.print(f"[bold]{result.declaration.model_id}[/] -> {written}")
            for line in result.inferred:
                out.print(f"  [green]inferred[/] {line}", highlight=False)
            for line in result.not_inferred:
                out.print(f"  [yellow]not inferred[/] {line}", highlight=False)
    if as_json:
        out.print_json(data=reports)
    if failed:
        raise typer.Exit(1)


@app.command("fake-server")
def fake_server(
    provider: Annotated[str, typer.Option("--provider", help="replicate or openai.")],
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port).")] = 0,
    latency: Annotated[
        float, typer.Option("--latency", help="Seconds a fake prediction takes.")
    ] = 0.0,
) -> None:
    """Run a local fake provider server (real wire protocol) in the foreground.

    It prints its base URL and the environment to point the live mode at it; try the live
    path without keys: `tutopanda produce ... --mode live`. Ctrl-C stops it.
    """
    if provider not in ("replicate", "openai"):
        raise _fail("--provider must be replicate or openai", 2)
    from producers.testing.fakes import serve_forever

    serve_forever(provider, port=port, latency=latency)


def main() -> None:
    """Console-script entry point."""
    app()
