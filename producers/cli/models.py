"""``tutopanda models``: list, show and import model declarations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from producers.cli.console import err, fail, out
from producers.registry import default_registry
from producers.sdk.errors import DeclarationError, UnknownModelError
from producers.sdk.jobs import Kind

models_app = typer.Typer(help="List, show and import model declarations.", no_args_is_help=True)


@models_app.command("list")
def models_list(
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only models of this kind, e.g. text-to-image.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every model a producer serves."""
    if kind is not None and kind not in [k.value for k in Kind]:
        raise fail(f"--kind must be one of {', '.join(k.value for k in Kind)}", 2)
    try:
        models = default_registry().models(kind)
    except DeclarationError as exc:
        raise fail(str(exc), 2) from None
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
        raise fail(str(exc), 2) from None
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
    """Write model declarations from provider metadata, printing what was inferred.

    A file that cannot be imported (not JSON, over 1 MiB, nested too deeply, no input
    schema...) is one error line; the others are still written; the exit code is then 2.
    """
    from producers.replicate.catalogue import models_path_folders
    from producers.replicate.importer import import_file, write_declaration

    target = into or next(iter(models_path_folders()), Path("models"))
    reports = []
    failed = False
    for path in files:
        try:
            result = import_file(path)
            written = write_declaration(result.declaration, target)
        except DeclarationError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            failed = True
            continue
        except OSError as exc:
            err.print(
                f"[bold red]error:[/] cannot write the declaration of {path} into {target}: "
                f"{exc.strerror or exc}",
                highlight=False,
                soft_wrap=True,
            )
            failed = True
            continue
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
        raise typer.Exit(2)  # a refused file: each is one line above, the others were written
