"""What the OpenAI Responses API takes per model family, and which custom attributes it is.

A job of the prompt producer carries custom attributes of two sorts, told apart by name:

* **API options**: a custom attribute named like one of :data:`OPTIONS` (``temperature``,
  ``top_p``, ``max_output_tokens``, ``reasoning_effort``, ``verbosity``) is a parameter of
  the request. It is checked against what the job's model family takes (type, range, enum)
  and sent at its place in the Responses API (``reasoning_effort`` as ``reasoning.effort``,
  ``verbosity`` as ``text.verbosity``). One the family does not take (``temperature`` on
  gpt-5: reasoning models refuse it with a 400) is ``invalid_input``, before any request.
* **Template variables**: any other custom attribute must be used by a template of the
  config (``system_prompt``/``user_prompt``, as :func:`producers.sdk.templates.variables_of`
  finds them); one that no template uses is ``invalid_input`` too, naming it, the model's
  options and the templates' variables. Nothing is dropped without a word.

``config.reasoning_effort`` and ``config.max_output_tokens`` are defaults that a custom
attribute of the same name overrides; the value used is checked the same way. Mock mode
runs the same checks (they happen in ``prepare``).

The families, from OpenAI's API reference and model pages, as read in December 2026
(check again when a model is added; the fake server :mod:`producers.testing.fakes.openai`
refuses what this table refuses):

* ``gpt-5``, ``gpt-5-mini``, ``gpt-5-nano``: reasoning; ``reasoning.effort`` ``minimal``,
  ``low``, ``medium`` (default), ``high`` (``none`` arrived with gpt-5.1); ``text.verbosity``
  ``low``/``medium``/``high``; no ``temperature``/``top_p``; up to 128,000 output tokens.
* ``o1``, ``o3``, ``o3-mini``, ``o4-mini``: reasoning; effort ``low``/``medium``/``high``;
  verbosity ``medium`` only; no ``temperature``/``top_p``; up to 100,000 output tokens.
* ``gpt-4.1``, ``gpt-4.1-mini``, ``gpt-4.1-nano`` (32,768 output tokens) and ``gpt-4o``,
  ``gpt-4o-mini`` (16,384): ``temperature`` 0-2, ``top_p`` 0-1; no ``reasoning``;
  verbosity ``medium`` only.
* Any other model the producer serves gets its family's rules by name (``gpt-5*``, ``o1*``,
  ``o3*``, ``o4*`` reasoning; ``gpt-4*``, ``chatgpt-*`` not), with the API's whole enums
  and no output limit of ours: its own subset is not known here, the API decides.

Every family takes ``max_output_tokens`` from 16 (the API's minimum). ``seed`` and the
Chat Completions names (``max_tokens``, ``response_format``, ``stop``, ``n``...) are not
parameters of the Responses API and are refused with a hint; ``service_tier`` is real but
left out: flex and priority change the price, and :mod:`producers.openai.pricing` knows
the standard tier only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from producers.sdk.errors import InvalidInputError
from producers.sdk.schema import allowed_text

__all__ = [
    "OPTIONS",
    "Family",
    "Option",
    "check_option",
    "family_of",
    "option_schemas",
    "request_options",
    "split_custom",
]


@dataclass(frozen=True)
class Option:
    """One request option a job may set as a custom attribute.

    Attributes:
        name: The custom attribute's name.
        path: Where the Responses API takes it (``("reasoning", "effort")``).
        description: What it does, for ``models show`` and the UI catalogue.
    """

    name: str
    path: tuple[str, ...]
    description: str


#: Every option any family takes, by custom attribute name.
OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option(
            "temperature",
            ("temperature",),
            "Sampling temperature: higher is more random (non-reasoning models only)",
        ),
        Option(
            "top_p",
            ("top_p",),
            "Nucleus sampling: the probability mass of tokens considered "
            "(non-reasoning models only)",
        ),
        Option(
            "max_output_tokens",
            ("max_output_tokens",),
            "Upper bound of generated tokens, reasoning tokens included",
        ),
        Option(
            "reasoning_effort",
            ("reasoning", "effort"),
            "How much the model reasons before it answers (reasoning models only)",
        ),
        Option("verbosity", ("text", "verbosity"), "How long and detailed the answer is"),
    )
}

#: The API's smallest ``max_output_tokens``.
MIN_OUTPUT_TOKENS = 16
#: The API's whole enums, for models whose own subset is not known here.
ALL_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
ALL_VERBOSITIES = ("low", "medium", "high")

#: Names that are not Responses API parameters, and what to use instead.
_HINTS: dict[str, str] = {
    "seed": "the Responses API takes no seed",
    "max_tokens": "a Chat Completions parameter; the Responses API's is max_output_tokens",
    "max_completion_tokens": (
        "a Chat Completions parameter; the Responses API's is max_output_tokens"
    ),
    "response_format": "a Chat Completions parameter; structured output is config.json_schema",
    "reasoning.effort": "set it as reasoning_effort",
    "text.verbosity": "set it as verbosity",
    "stop": "the Responses API takes no stop sequences",
    "n": "the Responses API makes one answer per request",
    "frequency_penalty": "not a parameter of the Responses API",
    "presence_penalty": "not a parameter of the Responses API",
    "logit_bias": "not a parameter of the Responses API",
    "service_tier": "not offered: flex and priority tiers change the price (standard only)",
}


@dataclass(frozen=True)
class Family:
    """The options a family of OpenAI models takes, as JSON Schemas by option name.

    Attributes:
        name: The family's name in messages (``gpt-5``, ``o-series``).
        models: The model ids that belong to it (dated snapshots match their base).
        reasoning: True for reasoning models (they refuse ``temperature`` and ``top_p``).
        options: Option name -> its JSON Schema for this family.
    """

    name: str
    models: tuple[str, ...]
    reasoning: bool
    options: Mapping[str, Mapping[str, Any]]


def _tokens(maximum: int | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": MIN_OUTPUT_TOKENS}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _reasoning(
    name: str,
    models: tuple[str, ...],
    efforts: tuple[str, ...],
    verbosities: tuple[str, ...],
    max_tokens: int | None,
) -> Family:
    return Family(
        name,
        models,
        True,
        {
            "max_output_tokens": _tokens(max_tokens),
            "reasoning_effort": {"type": "string", "enum": list(efforts), "default": "medium"},
            "verbosity": {"type": "string", "enum": list(verbosities), "default": "medium"},
        },
    )


def _sampling(name: str, models: tuple[str, ...], max_tokens: int | None) -> Family:
    return Family(
        name,
        models,
        False,
        {
            "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 1},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1, "default": 1},
            "max_output_tokens": _tokens(max_tokens),
            "verbosity": {"type": "string", "enum": ["medium"], "default": "medium"},
        },
    )


FAMILIES: tuple[Family, ...] = (
    _reasoning(
        "gpt-5",
        ("gpt-5", "gpt-5-mini", "gpt-5-nano"),
        ("minimal", "low", "medium", "high"),
        ALL_VERBOSITIES,
        128_000,
    ),
    _reasoning(
        "o-series",
        ("o1", "o3", "o3-mini", "o4-mini"),
        ("low", "medium", "high"),
        ("medium",),
        100_000,
    ),
    _sampling("gpt-4.1", ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"), 32_768),
    _sampling("gpt-4o", ("gpt-4o", "gpt-4o-mini"), 16_384),
)
#: Models not listed above, by the prefix of their name.
OTHER_REASONING = _reasoning("reasoning (not listed)", (), ALL_EFFORTS, ALL_VERBOSITIES, None)
OTHER_SAMPLING = _sampling("non-reasoning (not listed)", (), None)
_REASONING_PREFIXES = ("gpt-5", "o1", "o3", "o4")
_DATED = re.compile(r"^(.+)-\d{4}-\d{2}-\d{2}$")


def _base(model: str) -> str:
    """``gpt-5-mini-2025-08-07`` -> ``gpt-5-mini`` (a dated snapshot's alias)."""
    dated = _DATED.match(model)
    return dated.group(1) if dated else model


def family_of(model: str) -> Family:
    """The family of ``model`` (an alias or a dated snapshot of one)."""
    base = _base(model)
    for family in FAMILIES:
        if base in family.models:
            return family
    return OTHER_REASONING if model.startswith(_REASONING_PREFIXES) else OTHER_SAMPLING


def option_schemas(model: str) -> dict[str, dict[str, Any]]:
    """The options ``model`` takes with their schemas and descriptions (for catalogues)."""
    family = family_of(model)
    return {
        name: {**schema, "description": OPTIONS[name].description}
        for name, schema in family.options.items()
    }


def _listed(model: str, family: Family) -> str:
    shown = ", ".join(f"{name} ({allowed_text(schema)})" for name, schema in family.options.items())
    return f"options of openai:{model}: {shown}"


def _fits(value: Any, schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return False
    if kind == "number" and (
        not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
    ):
        return False
    if kind == "string" and not isinstance(value, str):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "minimum" in schema and value < schema["minimum"]:
        return False
    return not ("maximum" in schema and value > schema["maximum"])


def check_option(model: str, name: str, value: Any, *, where: str = "custom attribute") -> Any:
    """Check one option's value for ``model``; return it.

    Args:
        model: The model id (without ``openai:``).
        name: The option's name (one of :data:`OPTIONS`).
        value: Its value.
        where: How to name it in messages (``custom attribute`` or ``config field``).

    Raises:
        InvalidInputError: the family does not take the option (naming the options it
            takes), or the value is of the wrong type or out of range (naming what is
            allowed).
    """
    family = family_of(model)
    schema = family.options.get(name)
    if schema is None:
        why = (
            f"{family.name} models are reasoning models; the Responses API refuses "
            "temperature and top_p for them"
            if family.reasoning and name in ("temperature", "top_p")
            else f"{family.name} models take no {OPTIONS[name].path[0]} options"
        )
        raise InvalidInputError(
            f"{where} {name!r} is not supported by openai:{model} ({why}); "
            + _listed(model, family),
            field=name,
        )
    if not _fits(value, schema):
        raise InvalidInputError(
            f"{where} {name!r} of openai:{model} must be {allowed_text(schema)}; got {value!r}",
            field=name,
        )
    return value


def split_custom(
    model: str, custom: Mapping[str, Any], used: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a job's custom attributes into API options and template variables.

    Args:
        model: The model id (without ``openai:``).
        custom: The job's custom attributes.
        used: The variables the config's templates refer to.

    Returns:
        ``(options, variables)``: the checked options by name, and the template variables.

    Raises:
        InvalidInputError: an option the model does not take or with a bad value, or a
            custom attribute that is neither an option nor used by a template; the
            message names it, the model's options and the templates' variables.
    """
    used = set(used)
    options: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    for name, value in custom.items():
        if name in OPTIONS:
            options[name] = check_option(model, name, value)
        elif name in used:
            variables[name] = value
        else:
            hint = f" ({_HINTS[name]})" if name in _HINTS else ""
            shown = ", ".join(sorted(used)) or "(none)"
            raise InvalidInputError(
                f"custom attribute {name!r} is neither an option of openai:{model}{hint} nor a "
                f"variable of the config's templates; {_listed(model, family_of(model))}; "
                f"template variables: {shown}",
                field=name,
            )
    return options, variables


def request_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Checked options placed as the Responses API nests them (``text.verbosity``)."""
    nested: dict[str, Any] = {}
    for name, value in options.items():
        *parents, leaf = OPTIONS[name].path
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested
