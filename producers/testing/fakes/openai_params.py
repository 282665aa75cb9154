"""What the real Responses API accepts in ``POST /v1/responses``, for the fake OpenAI server.

The fake refuses what the real API refuses, with its 400 body (``{"error": {"message",
"type", "param", "code"}}``) and its wording:

* a parameter the API does not have: ``Unknown parameter: 'seed'.`` (``unknown_parameter``);
  the parameters are those of the official client's ``ResponseCreateParams`` (the client is
  generated from OpenAI's published API description) plus ``stream``; inside ``text``,
  ``text.format`` (per format type) and ``reasoning`` the same, named by their path
  (``Unknown parameter: 'text.format.json_schema'.``);
* a Chat Completions parameter sent to the Responses API (``response_format``,
  ``messages``, ``max_tokens``, ``max_completion_tokens``, ``reasoning_effort``,
  ``verbosity``): ``Unsupported parameter: 'response_format'. In the Responses API, this
  parameter has moved to 'text.format'. Try again with the new parameter.``;
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
from openai.types.responses.response_format_text_json_schema_config_param import (
    ResponseFormatTextJSONSchemaConfigParam,
)
from openai.types.responses.response_text_config_param import ResponseTextConfigParam
from openai.types.shared_params.reasoning import Reasoning

__all__ = [
    "KNOWN_PARAMETERS",
    "MOVED_PARAMETERS",
    "ModelFacts",
    "RequestError",
    "check_parameters",
    "facts_for",
]

#: Every top-level parameter of ``POST /v1/responses``.
KNOWN_PARAMETERS: frozenset[str] = frozenset(ResponseCreateParamsBase.__annotations__) | {"stream"}
#: Chat Completions parameters and where the Responses API has moved them.
MOVED_PARAMETERS: dict[str, str] = {
    "response_format": "text.format",
    "messages": "input",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "reasoning_effort": "reasoning.effort",
    "verbosity": "text.verbosity",
}
#: The fields of the nested objects, by path (``text.format`` by its ``type``).
_NESTED_FIELDS: dict[str, frozenset[str]] = {
    "text": frozenset(ResponseTextConfigParam.__annotations__),
    "reasoning": frozenset(Reasoning.__annotations__),
    "text.format:text": frozenset({"type"}),
    "text.format:json_object": frozenset({"type"}),
    "text.format:json_schema": frozenset(ResponseFormatTextJSONSchemaConfigParam.__annotations__),
}
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


def _unknown(param: str) -> RequestError:
    return RequestError(
        400, f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter"
    )


def _object(param: str, value: Any) -> Mapping[str, Any] | None:
    """``value`` if it is an object; None if absent; else the API's invalid-type 400."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        got = "a string" if isinstance(value, str) else f"a {type(value).__name__}"
        raise RequestError(
            400,
            f"Invalid type for '{param}': expected an object, but got {got} instead.",
            param=param,
            code="invalid_type",
        )
    return value


def check_shape(body: Mapping[str, Any]) -> None:
    """Refuse unknown, misplaced and nested unknown parameters, as the real API does.

    Raises:
        RequestError: the 400 the real API answers (first problem found).
    """
    for name in body:
        if name in MOVED_PARAMETERS and name not in KNOWN_PARAMETERS:
            raise RequestError(
                400,
                f"Unsupported parameter: '{name}'. In the Responses API, this parameter has "
                f"moved to '{MOVED_PARAMETERS[name]}'. Try again with the new parameter.",
                code="unsupported_parameter",
            )
    unknown = sorted(name for name in body if name not in KNOWN_PARAMETERS)
    if unknown:
        raise _unknown(unknown[0])
    for path in ("text", "reasoning"):
        value = _object(path, body.get(path))
        for name in sorted(value or {}):
            if name not in _NESTED_FIELDS[path]:
                raise _unknown(f"{path}.{name}")
    text = body.get("text")
    fmt = _object("text.format", text.get("format")) if isinstance(text, Mapping) else None
    if fmt is not None:
        fields = _NESTED_FIELDS.get(f"text.format:{fmt.get('type')}")
        for name in sorted(fmt):
            if fields is not None and name not in fields:
                raise _unknown(f"text.format.{name}")


def check_parameters(body: Mapping[str, Any], alias: str) -> None:
    """Refuse what the real API refuses in a request for the model ``alias``.

    Raises:
        RequestError: the 400 the real API answers (first problem found).
    """
    check_shape(body)
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
