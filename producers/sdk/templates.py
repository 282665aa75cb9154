"""Prompt templates: jinja2 in a sandbox, with bounded size; undefined variables name them.

Templates come only from trusted places: a deployment's options files and settings, DAG
authors, the CLI's own user (``--config``, ``--options``). What a triggering user, a reviewer
or a model wrote is a *variable* of a template, never a template (ARCHITECTURE.md, "Trust
boundaries"). Still, one line of a template could ask for gigabytes (``{{ 'x' * 500000000 }}``)
and a variable could be large, so rendering is bounded here:

- the source: at most :data:`~producers.sdk.limits.TEMPLATE_MAX_SOURCE_CHARS` characters;
- the output: streamed with ``generate()`` and stopped once over
  :data:`~producers.sdk.limits.TEMPLATE_MAX_OUTPUT_CHARS` characters;
- every value computed inside: the operators that can make a value large (``*``, ``**``,
  ``+``, ``%`` and ``~``), method calls and filters that pad, repeat or join (``center``,
  ``ljust``, ``indent``, ``format``, ``wordwrap``, ``replace``, ``join``, ``batch``, ...) are
  checked *before* they compute (a string, list or the digits of a number may not exceed the
  output limit, an integer may not exceed :data:`~producers.sdk.limits.TEMPLATE_MAX_INT_BITS`
  bits), lazy sequences are counted while they are consumed, and every other result is
  checked after; values are never mutated (an immutable sandbox);
- every other failure (a syntax error, an undefined variable, a division by zero, a
  recursion too deep) is a :class:`TemplateError` (``invalid_input``) naming the template.

Not bounded: CPU time. Nested loops (``range`` gives at most 100 000 items, but loops nest),
sorting and recursive macros can take a long time; a recursive macro can also hold up to
its recursion depth times the value limit in memory while it runs. This is why templates
must come from trusted places only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2

from producers.sdk.errors import TemplateError
from producers.sdk.limits import TEMPLATE_MAX_OUTPUT_CHARS, TEMPLATE_MAX_SOURCE_CHARS
from producers.sdk.sandbox import BoundedEnvironment, TooLarge

__all__ = ["Templates", "render", "variables_of"]

_ENV = BoundedEnvironment()


def _undefined_name(message: str) -> str:
    # jinja2 says "'topic' is undefined" or "'dict object' has no attribute 'x'".
    if "has no attribute" in message:
        return message.rsplit("attribute", 1)[-1].strip(" '\"")
    return message.split("'")[1] if "'" in message else message


@functools.lru_cache(maxsize=512)
def _compile(template: str) -> jinja2.Template:
    return _ENV.from_string(template)


def _check_source(template: str, name: str) -> None:
    if len(template) > TEMPLATE_MAX_SOURCE_CHARS:
        raise TemplateError(
            f"template {name!r} is {len(template):,} characters; "
            f"the limit is {TEMPLATE_MAX_SOURCE_CHARS:,}",
            field=name,
        )


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 300 else text[:297] + "..."


def render(
    template: str,
    variables: Mapping[str, Any],
    *,
    name: str = "template",
    max_chars: int = TEMPLATE_MAX_OUTPUT_CHARS,
) -> str:
    """Render ``template`` with ``variables``, bounded as the module docstring says.

    Args:
        template: The template's source (from a trusted place only).
        variables: Its variables (untrusted text is fine here).
        name: The template's name in messages (``user_prompt``).
        max_chars: The output limit; values computed inside keep the module's limit.

    Raises:
        TemplateError: an ``invalid_input`` error (so no request is made) naming the
            template and what went wrong: the undefined variable (with the variables
            available), the syntax error's line, the limit a value or the output would
            exceed, or the error the template raised.
    """
    _check_source(template, name)
    available = ", ".join(sorted(variables)) or "(none)"
    try:
        compiled = _compile(template)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template {name!r} has a syntax error on line {exc.lineno}: {exc.message}",
            field=name,
        ) from None
    except (RecursionError, MemoryError, SyntaxError, TooLarge) as exc:
        raise TemplateError(
            f"template {name!r} cannot be compiled: {_one_line(str(exc) or type(exc).__name__)}",
            field=name,
        ) from None
    pieces: list[str] = []
    size = 0
    try:
        for piece in compiled.generate(**variables):
            size += len(piece)
            if size > max_chars:
                raise TooLarge(f"its output would be longer than {max_chars:,} characters")
            pieces.append(piece)
    except jinja2.UndefinedError as exc:
        missing = _undefined_name(str(exc.message))
        raise TemplateError(
            f"template {name!r} uses the undefined variable {missing!r}; "
            f"available variables: {available}",
            field=name,
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"template {name!r} is not allowed: {exc}", field=name) from None
    except TooLarge as exc:
        raise TemplateError(f"template {name!r} is refused: {exc}", field=name) from None
    except Exception as exc:  # a boundary: whatever the template raised becomes one line
        raise TemplateError(
            f"template {name!r} failed: {type(exc).__name__}: {_one_line(str(exc))}",
            field=name,
        ) from None
    return "".join(pieces)


def variables_of(template: str) -> set[str]:
    """The top-level variables a template refers to."""
    return set(_variables_of(template))


@functools.lru_cache(maxsize=512)
def _variables_of(template: str) -> frozenset[str]:
    # Parsed once per template text: every job of a role asks for the same templates.
    from jinja2 import meta

    _check_source(template, "template")
    return frozenset(meta.find_undeclared_variables(_ENV.parse(template)))


class Templates:
    """The template helper handed to producers through the runtime."""

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        self._defaults = dict(defaults or {})

    def render(self, template: str, variables: Mapping[str, Any], *, name: str = "template") -> str:
        """Render with the runtime's default variables overlaid by ``variables``."""
        return render(template, {**self._defaults, **variables}, name=name)
