"""Map a job's general and custom attributes to a model's input payload, per its declaration."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from producers.replicate.declaration import FieldMapping, ModelDeclaration
from producers.sdk.errors import InvalidInputError
from producers.sdk.jobs import GENERAL_ATTRIBUTES
from producers.sdk.schema import allowed_text, validate_instance
from producers.sdk.secrets import SecretResolver


@dataclass
class MappedPayload:
    """The payload for the provider plus what the mapping decided along the way."""

    payload: dict[str, Any]
    secret_fields: frozenset[str] = frozenset()
    ignored: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def redacted(self) -> dict[str, Any]:
        """The payload with secret fields masked, for diagnostics and errors."""
        return {k: ("***" if k in self.secret_fields else v) for k, v in self.payload.items()}


def parse_aspect_ratio(value: str) -> tuple[float, float]:
    """``"16:9"`` -> ``(16.0, 9.0)``; :class:`InvalidInputError` for anything else."""
    left, sep, right = str(value).partition(":")
    try:
        width, height = float(left), float(right)
    except ValueError:
        width = height = 0.0
    if not sep or not (0 < width < math.inf and 0 < height < math.inf):
        raise InvalidInputError(
            f"aspect_ratio {value!r} is not of the form W:H (e.g. 16:9)", field="aspect_ratio"
        )
    return width, height


def _is_integer_field(prop: Mapping[str, Any]) -> bool:
    kind = prop.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


def _snap(value: float, prop: Mapping[str, Any]) -> tuple[Any, bool]:
    enum = [v for v in prop.get("enum", []) if isinstance(v, int | float)]
    if enum:
        best = min(enum, key=lambda v: (abs(v - value), v))
        return best, best != value
    low = prop.get("minimum")
    high = prop.get("maximum")
    snapped: float = value
    if low is not None and snapped < low:
        snapped = low
    if high is not None and snapped > high:
        snapped = high
    return snapped, snapped != value


def _size_for(
    ratio: tuple[float, float], mapping: FieldMapping, props: Mapping[str, Any]
) -> dict[str, Any]:
    width_field, height_field = mapping.size_fields or ("width", "height")
    w, h = ratio
    step = mapping.multiple_of
    long_side = mapping.long_side
    raw_width = long_side if w >= h else long_side * w / h
    raw_height = long_side if h > w else long_side * h / w
    width = max(step, round(raw_width / step) * step)
    height = max(step, round(raw_height / step) * step)
    out: dict[str, Any] = {}
    for name, size in ((width_field, width), (height_field, height)):
        snapped, _ = _snap(size, props.get(name, {}))
        out[name] = int(snapped)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _non_finite(value: Any) -> float | None:
    """The first number in ``value`` (nested lists and mappings too) that is not finite."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return item
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def _check_finite(attributes: Mapping[str, Any], where: str) -> None:
    for name, value in attributes.items():
        bad = _non_finite(value)
        if bad is not None:
            raise InvalidInputError(
                f"{name} for {where} is {bad!r}, not a finite number; numbers must be finite",
                field=name,
            )


#: The largest integer a provider's integer field can be expected to take (64-bit signed).
MAX_INTEGER = 2**63 - 1


def _check_integers(payload: Mapping[str, Any], props: Mapping[str, Any], where: str) -> None:
    """An integer field gets at most a 64-bit integer (``seed=1e308`` was sent as 309 digits)."""
    for name, value in payload.items():
        if (
            _is_integer_field(props.get(name, {}))
            and _is_number(value)
            and not -MAX_INTEGER - 1 <= value <= MAX_INTEGER
        ):
            raise InvalidInputError(
                f"input.{name} of {where} is a {int(value).bit_length() + 1}-bit integer; "
                "an integer field takes at most a 64-bit one "
                f"({-MAX_INTEGER - 1:,} to {MAX_INTEGER:,})",
                field=name,
            )


def _check_count(value: Any, target: str, prop: Mapping[str, Any], model: str) -> int:
    """``count`` multiplies what is paid: outside the field's range or enum it is refused,
    never adjusted (other numbers may be snapped)."""
    whole = _is_number(value) and float(value).is_integer()
    allowed = allowed_text(prop)
    if not whole or value < 1:
        raise InvalidInputError(
            f"count={value!r} for {model} is not a whole number of at least 1 "
            f"(its field {target} allows {allowed})",
            field="count",
        )
    count = int(value)
    enum = [v for v in prop.get("enum", []) if _is_number(v)]
    low: Any = prop.get("minimum")
    high: Any = prop.get("maximum")
    if (
        (enum and count not in enum)
        or (_is_number(low) and count < low)
        or (_is_number(high) and count > high)
    ):
        raise InvalidInputError(
            f"count={count} is outside what {model} allows for {target} ({allowed}); count "
            "multiplies what is paid, so it is never adjusted: choose a count in that range",
            field="count",
        )
    return count


def _apply(
    attribute: str,
    value: Any,
    mapping: FieldMapping,
    declaration: ModelDeclaration,
    warnings: list[str],
) -> dict[str, Any]:
    props = declaration.properties
    if mapping.size_fields is not None:
        return _size_for(parse_aspect_ratio(value), mapping, props)
    target = str(mapping.field)
    prop = props.get(target, {})
    if mapping.values is not None:
        value = mapping.values.get(str(value), value)
    if mapping.scale is not None and _is_number(value):
        value = value * mapping.scale
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(
                f"{attribute} for {declaration.model_id} is too large once scaled for {target}",
                field=attribute,
            )
    if attribute == "count":
        return {target: _check_count(value, target, prop, declaration.model_id)}
    if isinstance(value, float) and _is_integer_field(prop):
        value = round(value)
    if mapping.snap and _is_number(value):
        snapped, changed = _snap(value, prop)
        if changed:
            warnings.append(
                f"{attribute}={value!r} is not allowed for {target}; used {snapped!r} "
                f"(allowed: {allowed_text(prop)})"
            )
        value = snapped
    enum = prop.get("enum")
    if mapping.fallback is not None and enum is not None and value not in enum:
        warnings.append(
            f"{attribute}={value!r} is not supported by {declaration.model}; "
            f"used {target}={mapping.fallback!r} (allowed: {allowed_text(prop)})"
        )
        value = mapping.fallback
    if mapping.as_list and not isinstance(value, list):
        value = [value]
    return {target: value}


def map_inputs(
    declaration: ModelDeclaration,
    inputs: Mapping[str, Any],
    custom: Mapping[str, Any],
    *,
    secrets: SecretResolver | None = None,
) -> MappedPayload:
    """Build and validate the provider payload; nothing is sent from here.

    Order: declaration defaults, then mapped general attributes, then custom attributes
    (model fields, passed through as given; they win over general ones). Unknown general
    attribute names are an error; general attributes this model has no field for are
    recorded in ``ignored``. Unknown custom attributes, values outside an enum or range,
    wrong types, missing required fields, numbers that are not finite (anywhere in inputs or
    custom) and a ``count`` outside its field's range or enum (never snapped: it multiplies
    what is paid) raise :class:`InvalidInputError` naming the field, the value and what is
    allowed. Other numbers of a mapping with ``snap`` are snapped, with a warning.
    """
    where = declaration.model_id
    unknown_general = sorted(set(inputs) - set(GENERAL_ATTRIBUTES))
    if unknown_general:
        raise InvalidInputError(
            f"unknown general attribute(s) {', '.join(map(repr, unknown_general))}; "
            f"general attributes are: {', '.join(GENERAL_ATTRIBUTES)} "
            "(model-specific fields go in custom attributes)",
            field=unknown_general[0],
        )
    props = declaration.properties
    unknown_custom = sorted(set(custom) - set(props))
    if unknown_custom:
        raise InvalidInputError(
            f"unknown attribute(s) {', '.join(map(repr, unknown_custom))} for {where}; "
            f"allowed: {', '.join(sorted(props))}",
            field=unknown_custom[0],
        )
    _check_finite(inputs, where)
    _check_finite(custom, where)
    secret_names = set(declaration.secret_fields)
    set_secrets = sorted(secret_names & set(custom))
    if set_secrets:
        raise InvalidInputError(
            f"{', '.join(set_secrets)} of {where} is a secret: it comes from the secret "
            f"{declaration.secret_fields[set_secrets[0]]!r} (environment or connection), "
            "never from job attributes",
            field=set_secrets[0],
        )

    warnings: list[str] = []
    ignored: dict[str, Any] = {}
    payload: dict[str, Any] = dict(declaration.defaults)
    mapper = declaration.mapper_function()
    if mapper is not None:
        payload.update(mapper(dict(inputs), declaration))
    else:
        for attribute, value in inputs.items():
            if value is None:
                continue
            mapping = declaration.mapping.get(attribute)
            if mapping is None:
                ignored[attribute] = value
                continue
            payload.update(_apply(attribute, value, mapping, declaration, warnings))
    payload.update(custom)
    for field_name, secret_name in declaration.secret_fields.items():
        if secrets is None:
            raise InvalidInputError(
                f"{where} needs the secret {secret_name!r} for field {field_name!r}, "
                "and no secret resolver was given"
            )
        payload[field_name] = secrets.require(secret_name)
    _check_integers(payload, props, where)
    mapped = MappedPayload(
        payload=payload,
        secret_fields=frozenset(secret_names),
        ignored=ignored,
        warnings=warnings,
    )
    prompt = prompt_of(declaration, payload)
    validate_instance(
        payload,
        declaration.resolved_schema,
        where="input",
        provider=declaration.provider,
        model=declaration.model,
        prompt=prompt,
        payload=mapped.redacted(),
    )
    return mapped


def effective_input(declaration: ModelDeclaration, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What the model will run with: schema defaults overlaid by the payload."""
    effective = {
        name: prop["default"] for name, prop in declaration.properties.items() if "default" in prop
    }
    effective.update(payload)
    return effective


def prompt_of(declaration: ModelDeclaration, payload: Mapping[str, Any]) -> str | None:
    """The prompt (or text to speak) in a payload, for error messages and mocks."""
    mapping = declaration.mapping.get("prompt")
    if mapping is not None and mapping.field is not None:
        value = payload.get(mapping.field)
        return None if value is None else str(value)
    value = payload.get("prompt", payload.get("text"))
    return None if value is None else str(value)
