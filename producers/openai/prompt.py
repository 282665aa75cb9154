"""The OpenAI prompt producer (Responses API): templates in, text or structured JSON out.

A job's custom attributes are either API options or template variables, by name: one
named like an option (``temperature``, ``top_p``, ``max_output_tokens``,
``reasoning_effort``, ``verbosity``) is checked against what the model's family takes and
sent; any other must be used by a template of the config (``system_prompt``,
``user_prompt``). Anything else is ``invalid_input`` before any request, in live and mock
mode alike. The families and their options: :mod:`producers.openai.options`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from producers.clients.base import TextClient, TextRequest
from producers.openai import pricing
from producers.openai.options import (
    check_option,
    option_schemas,
    request_options,
    split_custom,
)
from producers.sdk.artefacts import Artefact
from producers.sdk.definition import ModelInfo, Prepared, ProducerDefinition, define_producer
from producers.sdk.errors import ErrorCode, InvalidInputError, ProviderError
from producers.sdk.jobs import Kind
from producers.sdk.runtime import ProducerRuntime
from producers.sdk.schema import check_schema, validate_instance
from producers.sdk.templates import variables_of

PROVIDER = "openai"
MODEL_PATTERNS = ("gpt-*", "o1*", "o3*", "o4*", "chatgpt-*")
#: The config fields that are templates (their variables may come from custom attributes).
TEMPLATE_FIELDS = ("system_prompt", "user_prompt")


class PromptConfig(BaseModel):
    """The prompt config every LLM producer takes: templates, output format, splitting.

    ``max_output_tokens`` is a default: a job's custom attribute of the same name wins.

    ``split`` turns a structured answer into artefacts: each key is an artefact id, or a
    collection prefix ending in ``[]``; each value is a path into the answer: ``title``,
    ``segments[0].narration``, ``segments[*].visual_description`` (one artefact per item,
    ids ``<prefix>[i]``), or ``.`` for the whole answer.
    """

    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = None
    user_prompt: str = "{{ prompt }}"
    output: Literal["text", "json"] = "text"
    json_schema: dict[str, Any] | None = None
    schema_name: str = Field(default="output", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    split: dict[str, str] = Field(default_factory=dict)
    max_output_tokens: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _schema_for_json(self) -> PromptConfig:
        if self.output == "json":
            if self.json_schema is None:
                raise ValueError("output 'json' needs a json_schema")
            check_schema(self.json_schema)
            remote = _remote_refs(self.json_schema)
            if remote:
                raise ValueError(
                    f"json_schema refers outside itself ($ref {remote[0]!r}); only local "
                    "references ('#/$defs/...') are allowed"
                )
        elif self.split:
            raise ValueError("split needs output 'json'")
        return self


class OpenAIPromptConfig(PromptConfig):
    """Config of the OpenAI prompt producer: :class:`PromptConfig`, strict structured
    output and the reasoning effort.

    ``reasoning_effort`` and ``max_output_tokens`` are defaults: a job's custom attribute
    of the same name wins, and the value used is checked against the model's family.
    """

    strict: bool = True
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None

    @model_validator(mode="after")
    def _strict_schema(self) -> OpenAIPromptConfig:
        if self.output == "json" and self.strict and self.json_schema is not None:
            problems = strict_schema_problems(self.json_schema)
            if problems:
                raise ValueError(
                    "json_schema is not valid for strict structured output: "
                    + "; ".join(problems)
                    + " (or set strict: false)"
                )
        return self


#: The config fields only the OpenAI prompt producer uses (another LLM producer may accept
#: and ignore them, so that one role config serves both).
OPENAI_ONLY_FIELDS: tuple[str, ...] = tuple(
    name for name in OpenAIPromptConfig.model_fields if name not in PromptConfig.model_fields
)


def _remote_refs(schema: Any) -> list[str]:
    """Every ``$ref`` of ``schema`` that does not point inside it (a URL, a file)."""
    if isinstance(schema, Mapping):
        found = [str(schema["$ref"])] if not str(schema.get("$ref", "#")).startswith("#") else []
        return found + [ref for value in schema.values() for ref in _remote_refs(value)]
    if isinstance(schema, list):
        return [ref for value in schema for ref in _remote_refs(value)]
    return []


def strict_schema_problems(schema: Mapping[str, Any], path: str = "#") -> list[str]:
    """What keeps ``schema`` from OpenAI's strict mode: the root must be an object
    (``type: object``, not ``anyOf``: wrap a list or a choice in a property); every object
    needs ``additionalProperties: false`` and all of its properties listed in ``required``."""
    problems: list[str] = []
    if path == "#":
        kind = schema.get("type")
        if kind != "object":
            got = f"type: {kind!r}" if kind else "untyped"
            problems.append(
                f"the root must be an object (type: object), not {got}; wrap the answer in "
                "an object property"
            )
        if "anyOf" in schema:
            problems.append("the root must not be anyOf; put the choice in an object property")
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            problems.append(f"{path} needs additionalProperties: false")
        missing = [
            name for name in schema.get("properties", {}) if name not in schema.get("required", [])
        ]
        if missing:
            problems.append(
                f"{path} must list every property in required (missing: {', '.join(missing)})"
            )
    for name, sub in schema.get("properties", {}).items():
        if isinstance(sub, Mapping):
            problems += strict_schema_problems(sub, f"{path}/properties/{name}")
    items = schema.get("items")
    if isinstance(items, Mapping):
        problems += strict_schema_problems(items, f"{path}/items")
    for key in ("$defs", "definitions"):
        for name, sub in schema.get(key, {}).items():
            if isinstance(sub, Mapping):
                problems += strict_schema_problems(sub, f"{path}/{key}/{name}")
    for key in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(key, [])):
            if isinstance(sub, Mapping):
                problems += strict_schema_problems(sub, f"{path}/{key}/{index}")
    return problems


def _walk(value: Any, path: str, where: str) -> list[Any] | Any:
    if path in ("", "."):
        return value
    current: list[Any] = [value]
    many = False
    for raw in path.replace("]", "").split("."):
        name, _, index = raw.partition("[")
        nxt: list[Any] = []
        for item in current:
            if name:
                if not isinstance(item, Mapping) or name not in item:
                    raise ProviderError(
                        ErrorCode.MALFORMED_OUTPUT,
                        f"the answer has no {name!r} (split path {path!r} for {where})",
                        retryable=False,
                    )
                item = item[name]
            if index == "*":
                if not isinstance(item, list):
                    raise ProviderError(
                        ErrorCode.MALFORMED_OUTPUT,
                        f"{name!r} is not a list (split path {path!r} for {where})",
                        retryable=False,
                    )
                nxt.extend(item)
                many = True
            elif index:
                try:
                    nxt.append(item[int(index)])
                except (IndexError, KeyError, TypeError, ValueError):
                    raise ProviderError(
                        ErrorCode.MALFORMED_OUTPUT,
                        f"no item {index} in {name!r} (split path {path!r} for {where})",
                        retryable=False,
                    ) from None
            else:
                nxt.append(item)
        current = nxt
    return current if many else current[0]


def split_answer(answer: Any, split: Mapping[str, str]) -> list[tuple[str, Any]]:
    """Split a structured answer into ``(artefact id, value)`` pairs per ``split``."""
    pieces: list[tuple[str, Any]] = []
    for key, path in split.items():
        value = _walk(answer, path, key)
        if key.endswith("[]"):
            prefix = key[:-2]
            items = value if isinstance(value, list) else [value]
            pieces.extend((f"{prefix}[{i}]", item) for i, item in enumerate(items))
        else:
            pieces.append((key, value))
    return pieces


def prompt_variables(rt: ProducerRuntime) -> dict[str, Any]:
    """A job's template variables: its inputs (custom wins) and `attachments`."""
    variables = rt.inputs.all()
    variables["attachments"] = {name: rt.attachments.get(name) for name in rt.attachments.names()}
    return variables


def render_prompts(rt: ProducerRuntime, config: PromptConfig) -> tuple[str | None, str]:
    """The job's system prompt (None when the config has none) and user prompt, rendered with
    :func:`prompt_variables`.

    Raises:
        InvalidInputError: a template fails, or the user prompt renders empty.
    """
    variables = prompt_variables(rt)
    system = (
        rt.templates.render(config.system_prompt, variables, name="system_prompt")
        if config.system_prompt
        else None
    )
    user = rt.templates.render(config.user_prompt, variables, name="user_prompt")
    if not user.strip():
        raise InvalidInputError("the rendered user prompt is empty", field="user_prompt")
    return system, user


def template_variables(config: Mapping[str, Any] | PromptConfig) -> frozenset[str]:
    """The variables the templates of a prompt producer's config refer to.

    Args:
        config: The config (a mapping as a job carries it, or the parsed config); a
            template it does not set counts with its default (``{{ prompt }}``).

    Returns:
        The top-level variable names; none for a template that does not parse (rendering
        reports its syntax error).
    """
    names: set[str] = set()
    for name in TEMPLATE_FIELDS:
        if isinstance(config, PromptConfig):
            template = getattr(config, name)
        else:
            template = config.get(name, PromptConfig.model_fields[name].default)
        if not isinstance(template, str):
            continue
        try:
            names |= variables_of(template)
        except (InvalidInputError, jinja2.TemplateError, RecursionError):
            continue  # a broken template is reported when it is rendered
    return frozenset(names)


def _request(rt: ProducerRuntime) -> TextRequest:
    config: OpenAIPromptConfig = rt.config
    instructions, user = render_prompts(rt, config)
    options, _ = split_custom(rt.model, rt.inputs.custom, template_variables(config))
    defaults: dict[str, Any] = {
        "reasoning_effort": config.reasoning_effort,
        "max_output_tokens": config.max_output_tokens,
    }
    chosen: dict[str, Any] = {}
    for name, default in defaults.items():
        if name in options:
            chosen[name] = options.pop(name)
        elif default is not None:
            chosen[name] = check_option(rt.model, name, default, where="config field")
    return TextRequest(
        model=rt.model,
        instructions=instructions,
        input=user,
        json_schema=config.json_schema if config.output == "json" else None,
        schema_name=config.schema_name,
        strict=config.strict,
        reasoning_effort=chosen.get("reasoning_effort"),
        max_output_tokens=chosen.get("max_output_tokens"),
        options=request_options(options),
    )


async def _prepare(rt: ProducerRuntime) -> Prepared:
    config: OpenAIPromptConfig = rt.config
    request = _request(rt)
    prompt_tokens = pricing.estimate_tokens((request.instructions or "") + request.input)
    output_tokens = request.max_output_tokens or pricing.DEFAULT_OUTPUT_TOKENS
    if config.split:
        ids: tuple[str, ...] = tuple(config.split)
    else:
        ids = tuple(rt.artefacts.ids(1, prefix="json" if config.output == "json" else "text"))
    return Prepared(
        payload=request.model_dump(mode="json", exclude_none=True),
        prompt=request.input,
        estimated_cost_usd=pricing.cost(rt.model, prompt_tokens, output_tokens),
        artefact_ids=ids,
    )


async def _invoke(rt: ProducerRuntime) -> list[Artefact]:
    assert rt.prepared is not None
    config: OpenAIPromptConfig = rt.config
    request = TextRequest.model_validate(rt.prepared.payload)
    client: TextClient = rt.clients.get(rt.descriptor.provider)
    result = await client.generate(request)
    rt.diagnostics.add_usage(result.usage)
    rt.diagnostics.set(
        provider_job_id=result.response_id,
        cost_usd=pricing.usage_cost(result.model, result.usage),
    )
    rt.diagnostics.data.extra["answer_model"] = result.model
    if config.output == "text":
        (artefact_id,) = rt.prepared.artefact_ids
        return [await rt.artefacts.text(artefact_id, result.text)]
    try:
        answer = json.loads(result.text)
    except json.JSONDecodeError as exc:
        raise ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            f"the structured answer is not JSON ({exc.msg} at line {exc.lineno})",
            retryable=False,
        ) from None
    assert config.json_schema is not None
    if not config.split:
        (artefact_id,) = rt.prepared.artefact_ids
        return [await rt.artefacts.json(artefact_id, answer, schema=config.json_schema)]
    artefacts = []
    try:
        validate_instance(answer, config.json_schema, where="answer")
    except InvalidInputError as exc:
        raise ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            f"the answer does not match its schema: {exc.reason}",
            retryable=False,
        ) from None
    for artefact_id, value in split_answer(answer, config.split):
        if isinstance(value, str):
            artefacts.append(await rt.artefacts.text(artefact_id, value))
        else:
            artefacts.append(await rt.artefacts.json(artefact_id, value))
    return artefacts


def _listing() -> Iterator[ModelInfo]:
    for model, price in pricing.PRICES.items():
        yield ModelInfo(
            model_id=f"{PROVIDER}:{model}",
            provider=PROVIDER,
            model=model,
            kind=Kind.TEXT,
            domain="prompt",
            producer=f"{PROVIDER}.prompt",
            description=price.description,
            general_attributes=("prompt",),
            custom_attributes=option_schemas(model),
            cost={
                "per": "token",
                "input_usd_per_million": price.input,
                "output_usd_per_million": price.output,
            },
            median_seconds=price.median_seconds,
            source="OpenAI pricing page (standard tier)",
        )


def openai_prompt_producer() -> ProducerDefinition:
    """The OpenAI prompt producer definition."""
    return define_producer(
        name=f"{PROVIDER}.prompt",
        provider=PROVIDER,
        models=MODEL_PATTERNS,
        kind=Kind.TEXT,
        config_schema=OpenAIPromptConfig,
        prepare=_prepare,
        invoke=_invoke,
        catalogue=_listing,
        description="LLM prompt producer on the OpenAI Responses API",
    )
