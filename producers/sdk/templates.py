"""Prompt templates: jinja2 in a sandbox; undefined variables are errors that name them."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from producers.sdk.errors import TemplateError

_ENV = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)


def _undefined_name(message: str) -> str:
    # jinja2 says "'topic' is undefined" or "'dict object' has no attribute 'x'".
    if "has no attribute" in message:
        return message.rsplit("attribute", 1)[-1].strip(" '\"")
    return message.split("'")[1] if "'" in message else message


@functools.lru_cache(maxsize=512)
def _compile(template: str) -> jinja2.Template:
    return _ENV.from_string(template)


def render(template: str, variables: Mapping[str, Any], *, name: str = "template") -> str:
    """Render ``template`` with ``variables``.

    Raises :class:`TemplateError` (an ``invalid_input`` error, so no request is made)
    naming the template and the undefined variable, and listing the variables available.
    """
    available = ", ".join(sorted(variables)) or "(none)"
    try:
        compiled = _compile(template)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template {name!r} has a syntax error on line {exc.lineno}: {exc.message}",
            field=name,
        ) from None
    try:
        return compiled.render(**variables)
    except jinja2.UndefinedError as exc:
        missing = _undefined_name(str(exc.message))
        raise TemplateError(
            f"template {name!r} uses the undefined variable {missing!r}; "
            f"available variables: {available}",
            field=name,
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"template {name!r} is not allowed: {exc}", field=name) from None


def variables_of(template: str) -> set[str]:
    """The top-level variables a template refers to."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(_ENV.parse(template)))


class Templates:
    """The template helper handed to producers through the runtime."""

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        self._defaults = dict(defaults or {})

    def render(self, template: str, variables: Mapping[str, Any], *, name: str = "template") -> str:
        """Render with the runtime's default variables overlaid by ``variables``."""
        return render(template, {**self._defaults, **variables}, name=name)
