"""Text-to-text models (LLMs) on Replicate: the prompt config, the payload, the answer.

A Replicate LLM takes the prompt config of the OpenAI prompt producer
(:class:`~producers.openai.prompt.PromptConfig`: ``system_prompt`` and ``user_prompt``
templates, ``output`` text or json, ``json_schema``, ``schema_name``, ``split``,
``max_output_tokens``), so one role config serves both providers. The OpenAI-only fields
(``strict``, ``reasoning_effort``) are accepted and ignored with a warning.

* The system prompt goes to the model's ``output.system_field`` (else before the user
  prompt); ``max_output_tokens`` to its ``output.max_tokens_field``.
* For ``output: json`` the schema is given to the model in the system prompt
  (:func:`~producers.replicate.shape.json_instruction`); the answer's JSON is taken from
  the text (the whole text, a fenced block, or the first JSON value in it) and validated
  against the schema. A bad answer is ``malformed_output``, retryable: another sample may
  be fine.
* A job's custom attributes are input fields of the model (sent), variables of the
  templates, ``max_output_tokens`` (a default's override), or an OpenAI-only option
  (``reasoning_effort``, ``verbosity``: ignored with a warning); anything else is
  ``invalid_input`` before any request.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from producers.clients.base import MediaHints, MediaJob
from producers.openai.prompt import (
    OPENAI_ONLY_FIELDS,
    PromptConfig,
    render_prompts,
    split_answer,
    template_variables,
)
from producers.replicate.declaration import ModelDeclaration
from producers.replicate.mapping import MappedPayload, map_inputs
from producers.replicate.outputs import output_text
from producers.replicate.shape import json_instruction, media_hints
from producers.sdk.artefacts import Artefact
from producers.sdk.errors import ErrorCode, InvalidInputError, ProviderError
from producers.sdk.runtime import ProducerRuntime
from producers.sdk.schema import validate_instance

#: Job options of OpenAI models that no Replicate LLM takes: ignored with a warning.
OPENAI_OPTIONS = ("reasoning_effort", "verbosity")
#: How many places in an answer are tried as the start of its JSON value.
_JSON_STARTS = 64
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)```", re.DOTALL)


class ReplicatePromptConfig(PromptConfig):
    """Config of a Replicate LLM: :class:`PromptConfig`, plus the OpenAI-only fields,
    accepted (so one role config serves both providers) and ignored with a warning."""

    strict: bool | None = None
    reasoning_effort: str | None = None


def parse_prompt_config(config: Any, model_id: str) -> ReplicatePromptConfig:
    """The job's config as a :class:`ReplicatePromptConfig` (already parsed, or a mapping).

    Raises:
        InvalidInputError: each field that is wrong, and the fields there are.
    """
    if isinstance(config, ReplicatePromptConfig):
        return config
    data = config.model_dump() if isinstance(config, PromptConfig) else dict(config or {})
    try:
        return ReplicatePromptConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            loc = ".".join(str(p) for p in item["loc"]) or "(config)"
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"config.{loc}: {message}")
        fields = ", ".join(ReplicatePromptConfig.model_fields)
        raise InvalidInputError(
            f"invalid config for {model_id}: " + "; ".join(problems) + f"; config fields: {fields}",
            field="config",
        ) from None


@dataclass(frozen=True)
class TextJob:
    """A prepared LLM job: the payload, the rendered user prompt, the output's shape and
    the artefact ids."""

    mapped: MappedPayload
    prompt: str
    hints: MediaHints
    artefact_ids: tuple[str, ...]


def _max_tokens(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(
            f"{where} max_output_tokens={value!r} is not a whole number of at least 1",
            field="max_output_tokens",
        )
    return value


def _options(
    rt: ProducerRuntime, decl: ModelDeclaration, config: ReplicatePromptConfig
) -> tuple[dict[str, Any], int | None]:
    """The custom attributes to send, and the most tokens to generate (if set)."""
    used = template_variables(config)
    props = decl.properties
    prompt_mapping = decl.mapping.get("prompt")
    reserved = {decl.output.system_field, prompt_mapping.field if prompt_mapping else None}
    options: dict[str, Any] = {}
    max_tokens = config.max_output_tokens
    for name, value in rt.inputs.custom.items():
        if name == "max_output_tokens" and name not in props:
            max_tokens = _max_tokens(value, "custom attribute")
        elif name in props and name not in reserved and name not in decl.secret_fields:
            options[name] = value
        elif name in used:
            continue
        elif name in OPENAI_OPTIONS:
            rt.diagnostics.warn(f"{name} is an OpenAI option; {decl.model_id} ignores it")
        else:
            fields = sorted(f for f in props if f not in reserved and f not in decl.secret_fields)
            why = " (the config's templates set it)" if name in reserved else ""
            raise InvalidInputError(
                f"custom attribute {name!r} is neither an input field of {decl.model_id}"
                f"{why} nor a variable of the config's templates; fields: "
                f"{', '.join(fields) or '(none)'}, max_output_tokens; template variables: "
                f"{', '.join(sorted(used)) or '(none)'}",
                field=name,
            )
    return options, max_tokens


def text_artefact_ids(rt: ProducerRuntime, config: PromptConfig) -> tuple[str, ...]:
    """The artefacts an LLM job makes: the split's keys, else one ``json``/``text`` id."""
    if config.split:
        return tuple(config.split)
    return tuple(rt.artefacts.ids(1, prefix="json" if config.output == "json" else "text"))


def prepare_text(rt: ProducerRuntime, decl: ModelDeclaration) -> TextJob:
    """Render the templates and build the payload of an LLM job; nothing is sent.

    Raises:
        InvalidInputError: a bad config, an empty user prompt, a custom attribute that is
            neither a field of the model nor a template variable, or a payload the model's
            input schema refuses.
    """
    config = parse_prompt_config(rt.config, decl.model_id)
    for name in OPENAI_ONLY_FIELDS:
        if getattr(config, name, None) is not None:
            rt.diagnostics.warn(f"config.{name} is an OpenAI option; {decl.model_id} ignores it")
    system, user = render_prompts(rt, config)
    if config.output == "json":
        assert config.json_schema is not None  # the config's validator checked it
        instruction = json_instruction(config.json_schema, config.schema_name)
        system = f"{system}\n\n{instruction}" if system else instruction
    options, max_tokens = _options(rt, decl, config)
    out = decl.output
    custom: dict[str, Any] = {}
    if system and out.system_field is not None:
        custom[out.system_field] = system
    elif system:
        user = f"{system}\n\n{user}"
    if max_tokens is not None:
        if out.max_tokens_field is not None:
            custom[out.max_tokens_field] = max_tokens
        else:
            rt.diagnostics.warn(
                f"{decl.model_id} has no field for the most tokens to generate; "
                "max_output_tokens is not sent"
            )
    custom.update(options)
    general = {**rt.inputs.general, "prompt": user}
    mapped = map_inputs(decl, general, custom, secrets=rt.secrets)
    for warning in mapped.warnings:
        rt.diagnostics.warn(warning)
    rt.diagnostics.set(ignored_inputs=mapped.ignored)
    return TextJob(
        mapped=mapped,
        prompt=user,
        hints=media_hints(decl, mapped.payload),
        artefact_ids=text_artefact_ids(rt, config),
    )


def _bad_answer(message: str) -> ProviderError:
    return ProviderError(ErrorCode.MALFORMED_OUTPUT, message, retryable=True)


def extract_json(text: str) -> Any:
    """The JSON value of an LLM's answer: the whole text, else a fenced block
    (```` ```json ````), else the first JSON object or array in it.

    Raises:
        ProviderError: ``malformed_output`` (retryable) if the answer holds no JSON value;
            the message gives its length, never its text.
    """
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for match in _FENCE.finditer(text):
        try:
            return json.loads(match.group(1).strip())
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    starts = [i for i, char in enumerate(text) if char in "{["][:_JSON_STARTS]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        return value
    raise _bad_answer(
        f"the answer holds no JSON value ({len(text)} characters, no JSON object or array "
        "parses in it)"
    )


async def collect_text(
    rt: ProducerRuntime, decl: ModelDeclaration, job: MediaJob
) -> list[Artefact]:
    """The artefacts of a finished LLM prediction: its text, or its JSON (validated against
    the config's schema, split per the config).

    Raises:
        ProviderError: ``malformed_output`` (retryable) for no text, no JSON value in the
            answer or JSON that does not match the schema.
    """
    config = parse_prompt_config(rt.config, decl.model_id)
    text = output_text(job, decl.output)
    ids = rt.prepared.artefact_ids if rt.prepared is not None else ()
    ids = ids or text_artefact_ids(rt, config)
    if config.output == "text":
        return [await rt.artefacts.text(ids[0], text)]
    assert config.json_schema is not None
    answer = extract_json(text)
    try:
        validate_instance(answer, config.json_schema, where="answer")
    except InvalidInputError as exc:
        raise _bad_answer(f"the answer does not match its schema: {exc.reason}") from None
    if not config.split:
        return [await rt.artefacts.json(ids[0], answer, schema=config.json_schema)]
    artefacts = []
    for artefact_id, value in split_answer(answer, config.split):
        if isinstance(value, str):
            artefacts.append(await rt.artefacts.text(artefact_id, value))
        else:
            artefacts.append(await rt.artefacts.json(artefact_id, value))
    return artefacts
