"""The ``tutopanda`` command line: run producers locally and manage the model catalogue."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Annotated, Any

import typer
from opentelemetry.trace import StatusCode
from rich.table import Table

from producers import __version__
from producers.cli.console import err, fail, out, setup_logging
from producers.cli.models import models_app
from producers.cli.movie import movie_command
from producers.cli.retry import DeadlineOption, RetryPolicy
from producers.cli.values import (
    FILE_GENERAL_ATTRIBUTES,
    error_line,
    file_targets,
    open_file,
    parse_pairs,
    store_file,
)
from producers.clients import default_client_registry
from producers.registry import default_registry
from producers.sdk.artefacts import ProducerResult
from producers.sdk.attachments import attachment_from_path
from producers.sdk.definition import Prepared
from producers.sdk.documents import read_document
from producers.sdk.errors import (
    ConfigurationError,
    DeclarationError,
    ErrorCode,
    InvalidInputError,
    ProviderError,
    UnknownModelError,
)
from producers.sdk.handler import HandlerDeps
from producers.sdk.jobs import Descriptor, JobRequest, Mode
from producers.sdk.lifecycle import Job, WaitPolicy
from producers.sdk.limits import DOCUMENT_MAX_BYTES
from producers.sdk.runtime import close_clients
from producers.sdk.tracing import configure_otlp, traced_command
from producers.storage import open_store
from producers.storage.manifest import RunManifest, new_run_id

app = typer.Typer(
    name="tutopanda",
    help="Make narrated explainer movies, run generative-AI producers (OpenAI, Replicate) and manage the model catalogue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")
#: The ``service.name`` of the CLI's spans (unless ``OTEL_SERVICE_NAME`` says otherwise).
SERVICE_NAME = "tutopanda-cli"


@functools.wraps(movie_command)
def _movie_command(*args: Any, **kwargs: Any) -> None:
    # One ``tutopanda.movie`` span: the movie's job spans are its children.
    with traced_command("tutopanda.movie", {"tutopanda.mode": str(kwargs.get("mode", ""))}):
        movie_command(*args, **kwargs)


app.command("movie")(_movie_command)


def _read_config(path: Path) -> dict[str, Any]:
    data = read_document(path, what="config", max_bytes=DOCUMENT_MAX_BYTES)
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"config {path} must hold an object (a table / mapping) at the top level"
        )
    return data


@app.callback(invoke_without_command=True)
def _main(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit(0)
    # Spans go out over OTLP/HTTP when an OTLP endpoint is set (the standard OTel variables),
    # flushed when the command ends; nothing otherwise.
    flush = configure_otlp(SERVICE_NAME)
    if flush is not None:
        ctx.call_on_close(flush)


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
        Path | None,
        typer.Option("--config", help="Producer config file (JSON, TOML or YAML, at most 1 MiB)."),
    ] = None,
    attach: Annotated[
        list[Path],
        typer.Option("--attach", help="Attachment file (JSON, TOML or text, at most 256 KiB)."),
    ] = [],  # noqa: B006
    file_: Annotated[
        list[str],
        typer.Option(
            "--file",
            help="Send a local file for a file field: FIELD=PATH, e.g. image=photo.png for an "
            "image-to-video model (repeatable). The file is put in the store and its stored "
            "URI is the value; a path or file:// URI in --set or --custom is never read.",
        ),
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
    deadline: DeadlineOption = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            min=0,
            help="Refuse to send the job if its estimated cost in USD is higher, or if it has "
            "no price (see --allow-unpriced). An upper bound counts at its bound.",
        ),
    ] = None,
    allow_unpriced: Annotated[
        bool,
        typer.Option(
            "--allow-unpriced", help="With --budget: send the job even if its model has no price."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the artefacts.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log SDK events to stderr.")
    ] = False,
) -> None:
    """Run one producer job and print the artefacts it made."""
    setup_logging(verbose)
    if mode not in ("mock", "live"):
        raise fail(f"--mode must be mock or live, not {mode!r}", 2)
    try:
        registry = default_registry()
        descriptor = Descriptor.parse(model_id, environment="local")
        registry.find(descriptor)
        info = next((m for m in registry.models() if m.model_id == descriptor.model_id), None)
    except (UnknownModelError, DeclarationError) as exc:
        raise fail(str(exc), 2) from None
    run_mode: Mode = "live" if mode == "live" else "mock"
    clients = default_client_registry()
    if not clients.has(descriptor.provider, run_mode):
        raise fail(
            f"live mode is not available for provider {descriptor.provider!r}: no live "
            "adapter is installed for it; use --mode mock",
            2,
        )
    fields = info.custom_attributes if info else {}
    types = {k: v.get("type") for k, v in fields.items()}
    try:
        inputs = parse_pairs(set_, option="--set")
        custom_values = parse_pairs(custom, option="--custom", types=types)
        files = file_targets(
            file_,
            model_id=descriptor.model_id,
            general=info.general_attributes if info else (),
            custom=fields,
        )
        given_twice = sorted({f for f, _, _ in files} & (set(inputs) | set(custom_values)))
        if given_twice:
            raise InvalidInputError(f"--file {given_twice[0]} is also given in --set or --custom")
        attachments = tuple(attachment_from_path(p, owner=descriptor.model_id) for p in attach)
        config_values = _read_config(config) if config else {}
        opened = [(field, open_file(field, path), general) for field, path, general in files]
        store_obj = open_store(store)
    except ProviderError as exc:
        raise fail(error_line(exc), 2) from None
    except ConfigurationError as exc:
        raise fail(str(exc), 2) from None

    async def put_files() -> None:
        for field, handle, general in opened:
            media = "image" if field in FILE_GENERAL_ATTRIBUTES else None
            uri = await store_file(store_obj, field, handle, media=media)
            target = inputs if general else custom_values
            if fields.get(field, {}).get("type") == "array":
                target.setdefault(field, []).append(uri)
            else:
                target[field] = uri

    try:
        asyncio.run(put_files())
    except ProviderError as exc:
        raise fail(error_line(exc), 2) from None
    run_id = new_run_id()
    request = JobRequest(
        descriptor=descriptor,
        run_id=run_id,
        mode=run_mode,
        inputs=inputs,
        custom=custom_values,
        config=config_values,
        attachments=attachments,
        produces=tuple(produces),
    )
    deps = HandlerDeps(store=store_obj, clients=clients, shared_clients={})
    handler = registry.resolve(descriptor, run_mode, deps)
    manifest = RunManifest(run_id=run_id, client="cli", command="produce")
    policy = WaitPolicy(deadline=deadline)

    def on_retry(error: ProviderError, attempt: int, wait: float) -> None:
        err.print(
            f"[yellow]retry[/] {attempt}/{retries} of {descriptor.model_id} in {wait:.1f}s: "
            f"{error.code.value}: {error.reason}",
            highlight=False,
        )

    async def go() -> tuple[ProducerResult | ProviderError, str, bool]:
        refused = False
        try:
            # Everything checkable is checked before any request: a refusal is a usage error.
            try:
                async with Job(handler, request, policy=policy) as job:
                    prepared = await job.prepare()
                    check_job_budget(
                        descriptor.model_id, prepared, budget, allow_unpriced=allow_unpriced
                    )
            except ProviderError as exc:
                refused = exc.code is ErrorCode.INVALID_INPUT
                raise

            async def attempt(number: int, previous: ProviderError | None) -> ProducerResult:
                retry = request.model_copy(update={"attempt": number})
                async with Job(handler, retry, policy=policy, prepared=prepared) as job:
                    kept = previous.handle if previous is not None else None
                    return (await job.run(reuse=False, kept=kept)).result

            done = await RetryPolicy(retries=retries).run(attempt, on_retry=on_retry)
            manifest.add_result(request, done)
            outcome: ProducerResult | ProviderError = done
        except ProviderError as exc:
            outcome = exc
            manifest.add_failure(request, exc)
        finally:
            await close_clients(deps.shared_clients or {})
        return outcome, await manifest.save(store_obj), refused

    # One ``tutopanda.produce`` span: the job's tries (one span each) are its children.
    attributes = {"tutopanda.mode": run_mode, "tutopanda.run.id": run_id}
    with traced_command("tutopanda.produce", attributes) as span:
        try:
            outcome, manifest_uri, refused = asyncio.run(go())
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        if isinstance(outcome, ProviderError) and span.is_recording():
            span.set_status(StatusCode.ERROR, outcome.code.value)
            span.set_attribute("error.type", outcome.code.value)
    if isinstance(outcome, ProviderError):
        if as_json:
            out.print_json(
                data={"run_id": run_id, "manifest": manifest_uri, "error": outcome.to_dict()}
            )
        if refused:
            raise fail(error_line(outcome), 2)  # one line: nothing was requested
        raise fail(str(outcome), 1)
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
    out.print(
        f"estimated cost: {_usd(diagnostics.estimated_cost_usd, diagnostics.estimated_cost_upper_bound)}"
        + (
            "  (mock: nothing was paid)"
            if diagnostics.mocked
            else f"  cost: {_usd(diagnostics.cost_usd, diagnostics.cost_upper_bound)}"
        ),
        highlight=False,
    )
    for warning in diagnostics.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if diagnostics.ignored_inputs:
        err.print(
            f"[yellow]note:[/] {descriptor.model_id} has no field for: "
            + ", ".join(sorted(diagnostics.ignored_inputs)),
            highlight=False,
        )


def _usd(usd: float | None, upper_bound: bool) -> str:
    """``$0.0300``, ``<= $0.0390`` for an upper bound, or ``unknown``."""
    if usd is None:
        return "unknown"
    return f"{'<= ' if upper_bound else ''}${usd:.4f}"


def check_job_budget(
    model_id: str, prepared: Prepared, budget: float | None, *, allow_unpriced: bool = False
) -> None:
    """Refuse, before any request, a job over ``budget`` (None: no limit), or a job with no
    price under a budget unless ``allow_unpriced``; an upper bound counts at its bound.

    Raises:
        InvalidInputError: naming the model, its estimate and the budget.
    """
    if budget is None:
        return
    usd = prepared.estimated_cost_usd
    if usd is None:
        if not allow_unpriced:
            raise InvalidInputError(
                f"--budget ${budget:.4f}: {model_id} has no price, so the job cannot be held to "
                "the budget; nothing was sent (give the model a price, or --allow-unpriced)",
                field="budget",
            )
        return
    if usd > budget:
        raise InvalidInputError(
            f"--budget ${budget:.4f}: the estimated cost of {model_id} is "
            f"{_usd(usd, prepared.estimated_cost_upper_bound)}; nothing was sent",
            field="budget",
        )


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
        raise fail("--provider must be replicate or openai", 2)
    from producers.testing.fakes import serve_forever

    serve_forever(provider, port=port, latency=latency)


def main() -> None:
    """Console-script entry point."""
    app()
