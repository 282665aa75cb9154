"""What the real Responses API accepts in ``POST /v1/responses``, for the fake OpenAI server.

The fake refuses what the real API refuses, with its 400 body (``{"error": {"message",
"type", "param", "code"}}``) and its wording:

* a parameter the API does not have: ``Unknown parameter: 'seed'.`` (``unknown_parameter``);
  the parameters are those of the official client's ``ResponseCreateParams`` (the client is
  generated from OpenAI's published API description) plus ``stream``;
* ``temperature``/``top_p`` on a reasoning model (gpt-5 family, o-series), ``reasoning``
  on the others: ``Unsupported parameter: ... is not supported with this model.``;
* a value the API knows but the model does not take (``minimal`` effort on o4-mini, ``low``
  verbosity on gpt-4.1): ``Unsupported value: ... does not support ... with this model.``;
* a value the API does not know, a wrong type, a number out of range.

These facts are written here, apart from the producer's own table
(:mod:`producers.openai.options`), so that a test through the official client against the
fake catches a mistake in that table instead of repeating it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openai.types.responses.response_create_params import ResponseCreateParamsBase

__all__ = ["KNOWN_PARAMETERS", "ModelFacts", "RequestError", "check_parameters", "facts_for"]

#: Every top-level parameter of ``POST /v1/responses``.
KNOWN_PARAMETERS: frozenset[str] = frozenset(ResponseCreateParamsBase.__annotations__) | {"stream"}
#: The API's smallest ``max_output_tokens``.
MIN_OUTPUT_TOKENS = 16
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_VERBOSITIES = ("low", "medium", "high")


class RequestError(Exception):
    """An error answer decided while reading a request."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message, "type": type, "param": param, "code": code}


@dataclass(frozen=True)
class ModelFacts:
    """What one model takes.

    Attributes:
        reasoning: True for reasoning models (no ``temperature``/``top_p``).
        efforts: The ``reasoning.effort`` values it takes (empty: no ``reasoning``).
        verbosities: The ``text.verbosity`` values it takes.
        max_output_tokens: Its output token limit (None: not known here).
    """

    reasoning: bool
    efforts: tuple[str, ...]
    verbosities: tuple[str, ...]
    max_output_tokens: int | None


_GPT5 = ModelFacts(True, ("minimal", "low", "medium", "high"), _VERBOSITIES, 128_000)
_O_SERIES = ModelFacts(True, ("low", "medium", "high"), ("medium",), 100_000)
_FACTS: dict[str, ModelFacts] = {
    "gpt-5": _GPT5,
    "gpt-5-mini": _GPT5,
    "gpt-5-nano": _GPT5,
    "o1": _O_SERIES,
    "o3": _O_SERIES,
    "o3-mini": _O_SERIES,
    "o4-mini": _O_SERIES,
    "gpt-4.1": ModelFacts(False, (), ("medium",), 32_768),
    "gpt-4.1-mini": ModelFacts(False, (), ("medium",), 32_768),
    "gpt-4.1-nano": ModelFacts(False, (), ("medium",), 32_768),
    "gpt-4o": ModelFacts(False, (), ("medium",), 16_384),
    "gpt-4o-mini": ModelFacts(False, (), ("medium",), 16_384),
}


def is_reasoning(model: str) -> bool:
    """True for a reasoning model's id (gpt-5 family, o-series)."""
    return model.startswith(("gpt-5", "o1", "o3", "o4"))


def facts_for(alias: str) -> ModelFacts:
    """What the model ``alias`` takes; a model not listed gets the API's whole enums."""
    if alias in _FACTS:
        return _FACTS[alias]
    if is_reasoning(alias):
        return ModelFacts(True, _EFFORTS, _VERBOSITIES, None)
    return ModelFacts(False, (), _VERBOSITIES, None)


def _quoted(values: Sequence[str]) -> str:
    shown = [f"'{v}'" for v in values]
    if len(shown) <= 2:
        return " and ".join(shown)
    return ", ".join(shown[:-1]) + ", and " + shown[-1]


def _unsupported_parameter(param: str) -> RequestError:
    return RequestError(
        400,
        f"Unsupported parameter: '{param}' is not supported with this model.",
        param=param,
        code="unsupported_parameter",
    )


def _choice(param: str, value: Any, known: Sequence[str], taken: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in known:
        raise RequestError(
            400,
            f"Invalid value: '{value}'. Supported values are: {_quoted(known)}.",
            param=param,
            code="invalid_value",
        )
    if value not in taken:
        raise RequestError(
            400,
            f"Unsupported value: '{param}' does not support '{value}' with this model. "
            f"Supported values are: {_quoted(taken)}.",
            param=param,
            code="unsupported_value",
        )


def _number(
    param: str, value: Any, low: float, high: float | None, *, integer: bool = False
) -> None:
    kind = "integer" if integer else "decimal"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok_type or isinstance(value, bool) or not math.isfinite(value):
        got = "a string" if isinstance(value, str) else f"a {type(value).__name__}"
        raise RequestError(
            400,
            f"Invalid type for '{param}': expected {'an' if integer else 'a'} {kind}, "
            f"but got {got} instead.",
            param=param,
            code="invalid_type",
        )
    if value < low:
        raise RequestError(
            400,
            f"Invalid '{param}': {kind} below minimum value. Expected a value >= {low:g}, "
            f"but got {value} instead.",
            param=param,
            code=f"{kind}_below_min_value",
        )
    if high is not None and value > high:
        raise RequestError(
            400,
            f"Invalid '{param}': {kind} above maximum value. Expected a value <= {high:g}, "
            f"but got {value} instead.",
            param=param,
            code=f"{kind}_above_max_value",
        )


def check_parameters(body: Mapping[str, Any], alias: str) -> None:
    """Refuse what the real API refuses in a request for the model ``alias``.

    Raises:
        RequestError: the 400 the real API answers (first problem found).
    """
    unknown = sorted(name for name in body if name not in KNOWN_PARAMETERS)
    if unknown:
        raise RequestError(
            400,
            f"Unknown parameter: '{unknown[0]}'.",
            param=unknown[0],
            code="unknown_parameter",
        )
    facts = facts_for(alias)
    for name, high in (("temperature", 2.0), ("top_p", 1.0)):
        if body.get(name) is None:
            continue
        if facts.reasoning:
            raise _unsupported_parameter(name)
        _number(name, body[name], 0.0, high)
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, Mapping) else None
    if effort is not None:
        if not facts.efforts:
            raise _unsupported_parameter("reasoning.effort")
        _choice("reasoning.effort", effort, _EFFORTS, facts.efforts)
    text = body.get("text")
    verbosity = text.get("verbosity") if isinstance(text, Mapping) else None
    if verbosity is not None:
        _choice("text.verbosity", verbosity, _VERBOSITIES, facts.verbosities)
    tokens = body.get("max_output_tokens")
    if tokens is not None:
        _number(
            "max_output_tokens", tokens, MIN_OUTPUT_TOKENS, facts.max_output_tokens, integer=True
        )
