"""Step 2: find the schema: the input schema as JSON Schema, its fields, the output schema."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from producers.replicate.importer.metadata import Metadata
from producers.replicate.importer.report import import_error
from producers.sdk.errors import DeclarationError
from producers.sdk.schema import normalise_openapi_schema


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Field:
    """One input field of the model, with what the inference steps ask of it.

    Attributes:
        name: The field's name.
        prop: Its normalised JSON Schema.
        required: True if the schema requires it.
        order: Its position (``x-order`` when published, else after those that have one).
    """

    name: str
    prop: Mapping[str, Any]
    required: bool
    order: int

    @property
    def types(self) -> frozenset[str]:
        """Its JSON types (read off the enum's values when the schema gives none)."""
        kind = self.prop.get("type")
        if isinstance(kind, str):
            found = {kind}
        elif isinstance(kind, list):
            found = {str(k) for k in kind}
        else:
            found = set()
            for value in self.enum or []:
                if isinstance(value, bool):
                    found.add("boolean")
                elif isinstance(value, int):
                    found.add("integer")
                elif isinstance(value, float):
                    found.add("number")
                elif isinstance(value, str):
                    found.add("string")
        return frozenset(found - {"null"})

    @property
    def enum(self) -> list[Any] | None:
        """Its enum without ``null``, or None."""
        values = self.prop.get("enum")
        return [v for v in values if v is not None] if isinstance(values, list) else None

    @property
    def text(self) -> str:
        """Title and description, lower case, for matching words."""
        parts = [self.prop.get("description"), self.prop.get("title")]
        return " ".join(p for p in parts if isinstance(p, str)).lower()

    @property
    def description(self) -> str:
        """Its description as published (empty if none)."""
        value = self.prop.get("description")
        return value if isinstance(value, str) else ""

    @property
    def is_string(self) -> bool:
        """True if it takes a string."""
        return "string" in self.types

    @property
    def is_integer(self) -> bool:
        """True if it takes an integer."""
        return "integer" in self.types

    @property
    def is_numeric(self) -> bool:
        """True if it takes an integer or a number."""
        return bool(self.types & {"integer", "number"})

    @property
    def is_boolean(self) -> bool:
        """True if it takes only a boolean."""
        return self.types == frozenset({"boolean"})

    @property
    def is_uri(self) -> bool:
        """True if it takes a URI string."""
        return self.is_string and self.prop.get("format") == "uri"

    @property
    def is_uri_list(self) -> bool:
        """True if it takes a list of URIs (or strings)."""
        items = self.prop.get("items")
        return (
            "array" in self.types
            and isinstance(items, Mapping)
            and (items.get("format") == "uri" or items.get("type") == "string")
        )

    @property
    def is_free_text(self) -> bool:
        """True if it takes any text (a string, no enum, not a URI)."""
        return self.is_string and not self.enum and self.prop.get("format") not in ("uri",)

    @property
    def maximum(self) -> float | None:
        """Its largest allowed number (enum or ``maximum``), or None."""
        values = [v for v in self.enum or [] if is_number(v)]
        if values:
            return float(max(values))
        high = self.prop.get("maximum")
        return float(high) if isinstance(high, int | float) else None


def _fields(schema: Mapping[str, Any], original: Mapping[str, Any]) -> list[Field]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []) or [])
    raw_props = original.get("properties", {})
    out = []
    for index, (name, prop) in enumerate(props.items()):
        raw = raw_props.get(name, {}) if isinstance(raw_props, Mapping) else {}
        order = raw.get("x-order") if isinstance(raw, Mapping) else None
        out.append(
            Field(
                name=str(name),
                prop=prop if isinstance(prop, Mapping) else {},
                required=name in required,
                order=order if isinstance(order, int) else 1000 + index,
            )
        )
    return sorted(out, key=lambda f: f.order)


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def referenced_components(
    schema: Mapping[str, Any], components: Mapping[str, Any]
) -> dict[str, Any]:
    """The components ``schema`` references, directly or through other components."""
    wanted: dict[str, Any] = {}
    pending = list(_refs(schema))
    while pending:
        ref = pending.pop()
        name = ref.rsplit("/", 1)[-1]
        if name in wanted or name not in components:
            continue
        wanted[name] = components[name]
        pending.extend(_refs(components[name]))
    return dict(sorted(wanted.items()))


@dataclass(frozen=True)
class Schema:
    """What step 2 found.

    Attributes:
        components: The components the input schema references (kept in the declaration).
        input_schema: The input schema as JSON Schema 2020-12 (``$ref`` inlined).
        output_schema: The Output schema as JSON Schema, or None if none is published.
        fields: The input fields, in the published order.
    """

    components: dict[str, Any]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    fields: tuple[Field, ...]

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        """Each field's normalised schema, by name."""
        return {f.name: dict(f.prop) for f in self.fields}


def find_schema(meta: Metadata, source: str) -> Schema:
    """Normalise the published input and output schemas and list the input fields.

    Raises:
        DeclarationError: a ``$ref`` that cannot be resolved, a ``$ref`` cycle, or a
            schema nested or inlined beyond the limits.
    """
    components = referenced_components(meta.input_schema, meta.components)
    try:
        schema = normalise_openapi_schema(meta.input_schema, components)
        output_schema = (
            None
            if meta.output_schema is None
            else normalise_openapi_schema(meta.output_schema, meta.components)
        )
    except KeyError as exc:
        raise import_error(source, f"{meta.model}: input schema has an {exc.args[0]}") from None
    except DeclarationError as exc:
        raise import_error(source, f"{meta.model}: {exc}") from None
    return Schema(
        components=components,
        input_schema=schema,
        output_schema=output_schema,
        fields=tuple(_fields(schema, meta.input_schema)),
    )
