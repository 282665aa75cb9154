"""JSON Schema helpers: normalise published schemas, validate payloads with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from producers.sdk.errors import DeclarationError, InvalidInputError
from producers.sdk.limits import (
    MAX_NESTING_DEPTH,
    SCHEMA_MAX_EXPANDED_NODES,
    SCHEMA_MAX_INSTANCE_SIZE,
)

_DROP_KEYS = frozenset({"x-order", "x-cog-array-type", "x-cog-array-display"})


def normalise_openapi_schema(
    schema: Mapping[str, Any],
    components: Mapping[str, Any] | None = None,
    *,
    max_depth: int = MAX_NESTING_DEPTH,
    max_nodes: int = SCHEMA_MAX_EXPANDED_NODES,
) -> dict[str, Any]:
    """Turn an OpenAPI 3.0 style schema (as Replicate publishes it) into JSON Schema 2020-12.

    ``allOf: [{"$ref": "#/components/schemas/X"}]`` is replaced by X merged in (this is
    where Replicate hides enums), ``nullable: true`` becomes a ``null`` alternative, and
    ``x-*`` presentation keys are dropped.

    Raises:
        KeyError: a ``$ref`` that cannot be resolved (the message names it).
        DeclarationError: a ``$ref`` cycle (naming the refs in order), a schema nested
            deeper than ``max_depth`` levels or one that inlines to more than ``max_nodes``
            values (refs used many times over).
    """
    components = components or {}
    resolving: list[str] = []
    produced = 0

    def resolve(ref: str) -> dict[str, Any]:
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith("#/components/schemas/") or name not in components:
            raise KeyError(f"unresolvable $ref {ref!r}")
        if ref in resolving:
            cycle = " -> ".join([*resolving[resolving.index(ref) :], ref])
            raise DeclarationError(f"$ref cycle: {cycle}; a schema may not contain itself")
        component = components[name]
        return dict(component) if isinstance(component, Mapping) else {}

    def walk(node: Any, depth: int) -> Any:
        nonlocal produced
        produced += 1
        if produced > max_nodes:
            raise DeclarationError(
                f"the schema expands to more than {max_nodes:,} values once its $ref are "
                f"inlined; at most {max_nodes:,} are allowed"
            )
        if not isinstance(node, Mapping | list):
            return node
        if depth > max_depth:
            raise DeclarationError(
                f"the schema nests deeper than {max_depth} levels; at most {max_depth} are allowed"
            )
        if isinstance(node, list):
            return [walk(item, depth + 1) for item in node]
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROP_KEYS:
                continue
            if key == "$ref":
                target = resolve(str(value))
                resolving.append(str(value))
                try:
                    out.update(walk(target, depth + 1))
                finally:
                    resolving.pop()
            elif key == "allOf" and isinstance(value, list):
                for part in value:
                    merged = walk(part, depth + 1)
                    if not isinstance(merged, Mapping):
                        continue
                    for mkey, mvalue in merged.items():
                        if mkey == "title" and "title" in node:
                            continue
                        out.setdefault(mkey, mvalue)
            elif key == "properties" and isinstance(value, Mapping):
                out[key] = {name: walk(prop, depth + 1) for name, prop in value.items()}
            else:
                out[key] = walk(value, depth + 1)
        if out.pop("nullable", False):
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        # An empty anyOf (seen in published schemas) allows nothing; it means "no constraint".
        if out.get("anyOf") == []:
            del out["anyOf"]
        return out

    result = walk(schema, 0)
    return result if isinstance(result, dict) else {}


def allowed_text(prop: Mapping[str, Any]) -> str:
    """Say what a property accepts, for error messages: enum, range, or type."""
    if "enum" in prop:
        return "one of " + ", ".join(repr(v) for v in prop["enum"])
    kind = prop.get("type")
    parts: list[str] = []
    if kind:
        parts.append(kind if isinstance(kind, str) else " or ".join(kind))
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    high = prop.get("maximum", prop.get("exclusiveMaximum"))
    if low is not None and high is not None:
        parts.append(f"from {low} to {high}")
    elif low is not None:
        parts.append(f"at least {low}")
    elif high is not None:
        parts.append(f"at most {high}")
    return " ".join(parts) or "any value"


def _describe(error: ValidationError, schema: Mapping[str, Any], where: str) -> tuple[str, str]:
    path = ".".join(str(p) for p in error.absolute_path)
    field = path or where
    label = f"{where}.{path}" if path else where
    value = error.instance
    validator = error.validator
    rule = error.schema if isinstance(error.schema, Mapping) else {}
    if validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        prop = schema.get("properties", {}).get(missing, {})
        return missing, (
            f"{where}.{missing} is required but missing (expected {allowed_text(prop)})"
        )
    if validator == "additionalProperties":
        allowed = ", ".join(sorted(rule.get("properties", {})))
        return field, f"{label} has unknown fields: {error.message}; allowed fields: {allowed}"
    if validator == "enum":
        return field, f"{label}: {value!r} is not allowed; allowed: {allowed_text(rule)}"
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return field, f"{label}: {value!r} is out of range; allowed: {allowed_text(rule)}"
    if validator == "type":
        return field, (
            f"{label}: {value!r} has the wrong type ({type(value).__name__}); "
            f"allowed: {allowed_text(rule)}"
        )
    return field, f"{label}: {error.message}"


def validate_instance(
    instance: Any,
    schema: Mapping[str, Any],
    *,
    where: str = "input",
    **error_context: Any,
) -> None:
    """Validate ``instance`` against a JSON Schema; raise one :class:`InvalidInputError`.

    The error lists every problem, each naming the field, the bad value and what is
    allowed; ``error.field`` is the first bad field.
    """
    validator = Draft202012Validator(schema, format_checker=None)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    if not errors:
        return
    described = [_describe(error, schema, where) for error in errors]
    message = "; ".join(text for _, text in described)
    raise InvalidInputError(message, field=described[0][0], **error_context)


class InvalidSchemaError(ValueError):
    """A JSON Schema is not valid, or asks for values too large to make; one line."""


def _pointer(schema: Mapping[str, Any], ref: str) -> Any:
    """The node a local ``$ref`` (``#/$defs/x``) names, or None."""
    node: Any = schema
    for part in ref.removeprefix("#").strip("/").split("/") if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _smallest_size(schema: Mapping[str, Any], limit: int) -> int:
    """About how many values and characters the smallest instance of ``schema`` holds, as a
    generator filling every listed property would make it; stops counting once over
    ``limit``. Local ``$ref`` are followed (a cycle counts once), depth is bounded."""
    resolving: list[str] = []

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, Mapping) or depth > MAX_NESTING_DEPTH:
            return 1
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#") and ref not in resolving:
            resolving.append(ref)
            try:
                return size(_pointer(schema, ref), depth + 1)
            finally:
                resolving.pop()
        total = 1
        length = node.get("minLength")
        if isinstance(length, int | float) and not isinstance(length, bool):
            total = max(total, int(min(length, limit + 1)))
        props = node.get("properties")
        if isinstance(props, Mapping):
            for prop in props.values():
                total += size(prop, depth + 1)
                if total > limit:
                    return total
        for key in ("allOf", "prefixItems"):
            for part in node.get(key) or []:
                total += size(part, depth + 1)
        for key in ("anyOf", "oneOf"):
            parts = node.get(key)
            if isinstance(parts, list) and parts:
                total += max(size(part, depth + 1) for part in parts)
        count = node.get("minItems", node.get("minProperties"))
        if isinstance(count, int | float) and not isinstance(count, bool) and count > 0:
            item = node.get("items", node.get("additionalProperties"))
            total += int(min(count, limit + 1)) * size(item, depth + 1)
        return total

    return size(schema, 0)


def check_schema(schema: Mapping[str, Any], *, max_size: int = SCHEMA_MAX_INSTANCE_SIZE) -> None:
    """Refuse ``schema`` if it is not a valid JSON Schema, or if its smallest instance would
    be larger than ``max_size`` values and characters (``minItems: 100000000`` would make a
    mock answer, or a validator, take gigabytes).

    Raises:
        InvalidSchemaError: one line saying what is wrong and where.
    """
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        message = " ".join(str(exc.message).split())
        message = message if len(message) <= 200 else message[:197] + "..."
        raise InvalidSchemaError(f"the JSON Schema is not valid: {message} (at {where})") from None
    except RecursionError:
        raise InvalidSchemaError(
            f"it nests too deeply (at most {MAX_NESTING_DEPTH} levels)"
        ) from None
    smallest = _smallest_size(schema, max_size)
    if smallest > max_size:
        raise InvalidSchemaError(
            f"the JSON Schema's smallest value would hold more than {max_size:,} items and "
            "characters "
            "(minItems, minLength, minProperties multiply when nested); lower them"
        )


__all__ = [
    "InvalidSchemaError",
    "allowed_text",
    "check_schema",
    "jsonschema",
    "normalise_openapi_schema",
    "validate_instance",
]
