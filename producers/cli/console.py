"""The CLI's consoles and its way of failing: messages to stderr, results to stdout."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr; return the exit to raise (2: usage, 1: failure)."""
    text = escape(message)  # the message may quote a prompt or a provider: never markup
    err.print(f"[bold red]error:[/] {text}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def setup_logging(verbose: bool) -> None:
    """SDK events to stderr: warnings only, or everything with ``--verbose``."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
    )
