"""Deterministic mock JSON for LLM structured output, and mock plain-text answers.

``instance_for`` builds a value that validates against a JSON Schema (Draft 2020-12) of
the kind structured-output APIs accept: objects, arrays, strings, numbers, booleans, null,
enums and consts, type lists, ``anyOf``/``oneOf``/``allOf`` and local ``$ref``. The
result is checked with ``jsonschema`` before it is returned, so a schema the generator
misreads raises ``ValueError`` instead of yielding an invalid mock. Its strings tell a short
explainer about the prompt's subject (a movie script about the topic reads like one, marked
"(mock)" in its title); ``text_for`` answers with the prompt's subject.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

__all__ = ["instance_for", "text_for"]

_DEFAULT_ARRAY_ITEMS = 3
_MAX_DEPTH = 48
#: How many times one ``$ref`` may be open at once before recursion goes minimal.
_MAX_REF_REPEATS = 1
_CLOSING = "This placeholder text was written by the mock provider, not by a model."
_UNSUPPORTED = ("not", "if", "then", "else", "$dynamicRef", "$recursiveRef")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_TYPE_HINTS = (
    ("object", ("properties", "additionalProperties", "required", "minProperties")),
    ("array", ("items", "prefixItems", "minItems", "maxItems", "contains")),
    ("string", ("minLength", "maxLength", "pattern", "format")),
    ("number", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")),
)
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


@dataclass(frozen=True)
class _Context:
    """Where the generator is: the JSON-pointer-like schema path, a name and array indices."""

    path: str
    name: str
    indices: tuple[int, ...]
    refs: tuple[str, ...]
    minimal: bool
    #: The length of each array in ``indices`` (parallel to it).
    sizes: tuple[int, ...] = ()

    def child(
        self,
        segment: str,
        *,
        name: str | None = None,
        index: int | None = None,
        size: int | None = None,
        ref: str | None = None,
    ) -> _Context:
        """Return the context one step deeper in the schema."""
        refs = (*self.refs, ref) if ref is not None else self.refs
        minimal = self.minimal or (ref is not None and refs.count(ref) > _MAX_REF_REPEATS)
        return _Context(
            path=f"{self.path}/{segment}",
            name=name if name is not None else self.name,
            indices=(*self.indices, index) if index is not None else self.indices,
            refs=refs,
            minimal=minimal,
            sizes=(*self.sizes, size or 1) if index is not None else self.sizes,
        )

    @property
    def index(self) -> int:
        """The innermost array index (0 outside arrays)."""
        return self.indices[-1] if self.indices else 0

    @property
    def ordinal(self) -> str:
        """1-based array position(s), such as ``"2"`` or ``"1.3"`` in nested arrays."""
        return ".".join(str(i + 1) for i in self.indices) if self.indices else "1"


class _Generator:
    """Walks one schema and builds an instance; holds the root for ``$ref`` lookups."""

    def __init__(self, root: Mapping[str, Any] | bool, seed_text: str) -> None:
        self.root = root
        self.story = _Story.of(seed_text)
        self.seed = seed_text

    def fail(self, ctx: _Context, message: str) -> ValueError:
        """Build the ValueError for an unsupported or unsatisfiable schema at ``ctx``."""
        return ValueError(f"schema at {ctx.path or '#'}: {message}")

    # ----- schema plumbing -------------------------------------------------------------

    def resolve(self, ref: str, ctx: _Context) -> Mapping[str, Any] | bool:
        """Resolve a local ``$ref`` (``#``, ``#/$defs/...``, ``#/definitions/...``)."""
        if not ref.startswith("#"):
            raise self.fail(ctx, f"$ref {ref!r} is not local; only '#/...' references work")
        node: Any = self.root
        pointer = ref[1:]
        if pointer and not pointer.startswith("/"):
            raise self.fail(ctx, f"$ref {ref!r} uses an anchor; only JSON pointers work")
        for raw in pointer.split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise self.fail(ctx, f"$ref {ref!r} points at nothing")
        if not isinstance(node, Mapping | bool):
            raise self.fail(ctx, f"$ref {ref!r} does not point at a schema")
        return node

    def flatten(
        self, schema: Mapping[str, Any] | bool, ctx: _Context
    ) -> tuple[Mapping[str, Any] | bool, _Context]:
        """Inline ``$ref`` and ``allOf`` so the result has neither at its top level."""
        if isinstance(schema, bool):
            return schema, ctx
        for key in _UNSUPPORTED:
            if key in schema:
                raise self.fail(ctx.child(key), f"'{key}' is not supported by the mock")
        if "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str):
                raise self.fail(ctx.child("$ref"), "$ref must be a string")
            ref_ctx = ctx.child("$ref", ref=ref)
            if len(ref_ctx.refs) > _MAX_DEPTH:
                raise self.fail(ref_ctx, f"$ref {ref!r} recurses too deeply")
            target, ref_ctx = self.flatten(self.resolve(ref, ref_ctx), ref_ctx)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            if not _has_constraints(siblings):
                return target, ref_ctx
            merged = _merge(target, siblings, self, ctx)
            return self.flatten(merged, ref_ctx)
        if "allOf" in schema:
            parts = schema["allOf"]
            if not isinstance(parts, list) or not parts:
                raise self.fail(ctx.child("allOf"), "allOf must be a non-empty list")
            merged_schema: Mapping[str, Any] | bool = {
                k: v for k, v in schema.items() if k != "allOf"
            }
            for i, part in enumerate(parts):
                part_ctx = ctx.child(f"allOf/{i}")
                flat, _ = self.flatten(part, part_ctx)
                merged_schema = _merge(merged_schema, flat, self, part_ctx)
            return self.flatten(merged_schema, ctx)
        return schema, ctx

    # ----- generation ------------------------------------------------------------------

    def build(self, schema: Mapping[str, Any] | bool, ctx: _Context) -> Any:
        """Return an instance of ``schema``."""
        if len(ctx.path) > 4000 or ctx.path.count("/") > _MAX_DEPTH * 4:
            raise self.fail(ctx, "schema nests too deeply")
        schema, ctx = self.flatten(schema, ctx)
        if schema is True:
            return self.string({}, ctx)
        if schema is False:
            raise self.fail(ctx, "the schema 'false' accepts no value")
        assert isinstance(schema, Mapping)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if "enum" in schema:
            options = schema["enum"]
            if not isinstance(options, list) or not options:
                raise self.fail(ctx.child("enum"), "enum must be a non-empty list")
            return copy.deepcopy(options[ctx.index % len(options)])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.choice(schema, key, ctx)
        kind = self.pick_type(schema, ctx)
        builder = {
            "object": self.object,
            "array": self.array,
            "string": self.string,
            "integer": self.integer,
            "number": self.number,
            "boolean": self.boolean,
            "null": self.null,
        }.get(kind)
        if builder is None:
            raise self.fail(ctx.child("type"), f"unknown type {kind!r}")
        return builder(schema, ctx)

    def choice(self, schema: Mapping[str, Any], key: str, ctx: _Context) -> Any:
        """Build from the first non-null branch of ``anyOf``/``oneOf`` that works."""
        branches = schema[key]
        if not isinstance(branches, list) or not branches:
            raise self.fail(ctx.child(key), f"{key} must be a non-empty list")
        rest = {k: v for k, v in schema.items() if k != key}
        order = sorted(range(len(branches)), key=lambda i: _is_null_schema(branches[i]))
        errors: list[str] = []
        for i in order:
            branch_ctx = ctx.child(f"{key}/{i}")
            branch: Mapping[str, Any] | bool = branches[i]
            if _has_constraints(rest):
                branch = {"allOf": [rest, branch]}
            try:
                value = self.build(branch, branch_ctx)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            if key == "oneOf" and not self.only_one_matches(branches, i, value):
                errors.append(f"schema at {branch_ctx.path}: value also matches another branch")
                continue
            return value
        raise self.fail(ctx.child(key), "no branch could be built: " + "; ".join(errors))

    def only_one_matches(self, branches: list[Any], chosen: int, value: Any) -> bool:
        """Return True if ``value`` matches no ``oneOf`` branch except ``chosen``."""
        for i, branch in enumerate(branches):
            if i == chosen:
                continue
            sub = _with_root_defs(branch, self.root)
            if jsonschema.Draft202012Validator(sub).is_valid(value):
                return False
        return True

    def pick_type(self, schema: Mapping[str, Any], ctx: _Context) -> str:
        """Return the JSON type to build: the first non-null of ``type``, or an inferred one."""
        declared = schema.get("type")
        if isinstance(declared, str):
            return declared
        if isinstance(declared, list):
            if not declared:
                raise self.fail(ctx.child("type"), "type list is empty")
            non_null = [t for t in declared if t != "null"]
            return str(non_null[0]) if non_null else "null"
        if declared is not None:
            raise self.fail(ctx.child("type"), f"type must be a string or list, not {declared!r}")
        for kind, keywords in _TYPE_HINTS:
            if any(keyword in schema for keyword in keywords):
                return kind
        return "string"

    def object(self, schema: Mapping[str, Any], ctx: _Context) -> dict[str, Any]:
        """Build an object with every listed property (only required ones when minimal)."""
        properties = schema.get("properties", {})
        if not isinstance(properties, Mapping):
            raise self.fail(ctx.child("properties"), "properties must be an object")
        required = list(schema.get("required", []))
        result: dict[str, Any] = {}
        for name, sub in properties.items():
            if ctx.minimal and name not in required:
                continue
            result[name] = self.build(sub, ctx.child(f"properties/{name}", name=name))
        additional = schema.get("additionalProperties", True)
        for name in required:
            if name in result:
                continue
            if additional is False:
                raise self.fail(
                    ctx.child("required"),
                    f"required property {name!r} is not in properties and "
                    "additionalProperties is false",
                )
            extra = additional if isinstance(additional, Mapping) else {"type": "string"}
            result[name] = self.build(extra, ctx.child("additionalProperties", name=name))
        min_properties = int(schema.get("minProperties", 0))
        number = 1
        while len(result) < min_properties:
            if additional is False:
                raise self.fail(
                    ctx.child("minProperties"),
                    "minProperties exceeds the properties allowed (additionalProperties false)",
                )
            extra = additional if isinstance(additional, Mapping) else {"type": "string"}
            key = f"extra_{number}"
            number += 1
            if key not in result:
                result[key] = self.build(extra, ctx.child("additionalProperties", name=key))
        return result

    def array(self, schema: Mapping[str, Any], ctx: _Context) -> list[Any]:
        """Build ``minItems`` items (3 if unset; 0 when minimal), capped by ``maxItems``."""
        min_items = int(schema.get("minItems", 0))
        max_items = schema.get("maxItems")
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", True)
        if isinstance(items, list):  # draft 2019 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        if not isinstance(prefix, list):
            raise self.fail(ctx.child("prefixItems"), "prefixItems must be a list")
        if "items" not in schema and "prefixItems" not in schema and "contains" in schema:
            items = schema["contains"]
        if "minItems" in schema or ctx.minimal:
            count = min_items
        else:
            count = max(_DEFAULT_ARRAY_ITEMS, len(prefix))
        if max_items is not None:
            count = min(count, int(max_items))
        if items is False:
            count = min(count, len(prefix))
        if count < min_items:
            raise self.fail(ctx, f"cannot build {min_items} items (maxItems or items false)")
        result: list[Any] = []
        for i in range(count):
            if i < len(prefix):
                sub, segment = prefix[i], f"prefixItems/{i}"
            else:
                sub, segment = items, "items"
            result.append(self.build(sub, ctx.child(segment, index=i, size=count)))
        return result

    def string(self, schema: Mapping[str, Any], ctx: _Context) -> str:
        """Build readable text, a formatted value, or something matching ``pattern``."""
        min_length = int(schema.get("minLength", 0))
        max_length = schema.get("maxLength")
        if max_length is not None and int(max_length) < min_length:
            raise self.fail(ctx, "maxLength is below minLength")
        fmt = schema.get("format")
        formatted = _formatted(fmt, ctx, self.seed) if isinstance(fmt, str) else None
        text = self.text(ctx)
        candidates = [formatted] if formatted is not None else [text]
        if "pattern" in schema:
            candidates += _pattern_candidates(text, ctx.index)
        for key in ("examples", "default"):
            values = schema.get(key)
            values = values if isinstance(values, list) else [values]
            candidates.extend(v for v in values if isinstance(v, str))
        pattern = schema.get("pattern")
        for candidate in candidates:
            text = _fit_length(candidate, min_length, max_length, ctx)
            length_ok = len(text) >= min_length and (
                max_length is None or len(text) <= int(max_length)
            )
            if length_ok and (pattern is None or re.search(str(pattern), text)):
                return text
        if pattern is not None:
            raise self.fail(
                ctx.child("pattern"),
                f"cannot build a string matching pattern {pattern!r}; "
                "add an 'examples' entry that matches it",
            )
        raise self.fail(ctx, f"cannot build a string for format {fmt!r} within the length bounds")

    def text(self, ctx: _Context) -> str:
        """Return the story's text for the property's role (title, narration, visual) at this
        array position, else ``"<Name> <n> about <subject>"``."""
        return self.story.text(ctx)

    def integer(self, schema: Mapping[str, Any], ctx: _Context) -> int:
        """Build an integer within the bounds, varying with the array index when room allows."""
        low, high = _bounds(schema, ctx, self)
        lo = None if low is None else math.floor(low[0]) + 1 if low[1] else math.ceil(low[0])
        hi = None if high is None else math.ceil(high[0]) - 1 if high[1] else math.floor(high[0])
        step_raw = schema.get("multipleOf")
        step = 1
        if step_raw is not None:
            if not isinstance(step_raw, int) or step_raw <= 0:
                frac = Decimal(str(step_raw))
                if frac <= 0 or frac != frac.to_integral_value():
                    return int(self.number_value(schema, ctx, integer=True))
                step = int(frac)
            else:
                step = step_raw
        start = lo if lo is not None else (hi - 10 * step if hi is not None else step)
        first = math.ceil(start / step) * step
        value = first + ctx.index * step
        if hi is not None and value > hi:
            value = first
        if (hi is not None and value > hi) or (lo is not None and value < lo):
            raise self.fail(ctx, "no integer satisfies the bounds")
        return value

    def number(self, schema: Mapping[str, Any], ctx: _Context) -> float | int:
        """Build a number within the bounds."""
        return self.number_value(schema, ctx, integer=False)

    def number_value(self, schema: Mapping[str, Any], ctx: _Context, *, integer: bool) -> float:
        """Build a number within the bounds and ``multipleOf`` (possibly fractional)."""
        low, high = _bounds(schema, ctx, self)
        step_raw = schema.get("multipleOf")
        if step_raw is not None:
            return self.multiple(schema, ctx, Decimal(str(step_raw)), low, high, integer=integer)
        lo = None if low is None else low[0]
        hi = None if high is None else high[0]
        value: float
        if lo is not None and hi is not None:
            span = hi - lo
            if span < 0 or (
                span == 0 and ((low is not None and low[1]) or (high is not None and high[1]))
            ):
                raise self.fail(ctx, "no number satisfies the bounds")
            value = lo + span * (ctx.index + 1) / (ctx.index + 2)
            if span >= 2 and value != round(value):
                value = float(math.floor(value))
                if value <= lo and low is not None and low[1]:
                    value = lo + span / 2
        elif lo is not None:
            value = lo + 1 + ctx.index
        elif hi is not None:
            value = hi - 1 - ctx.index
        else:
            value = 1.5 + ctx.index
        return value

    def multiple(
        self,
        schema: Mapping[str, Any],
        ctx: _Context,
        step: Decimal,
        low: tuple[float, bool] | None,
        high: tuple[float, bool] | None,
        *,
        integer: bool,
    ) -> float:
        """Return a multiple of ``step`` inside the bounds that jsonschema accepts."""
        if step <= 0:
            raise self.fail(ctx.child("multipleOf"), "multipleOf must be positive")
        base = Decimal(str(low[0])) if low is not None else Decimal(0)
        k = math.ceil(base / step)
        if low is None and high is not None:
            k = math.floor(Decimal(str(high[0])) / step) - 10
        validator = jsonschema.Draft202012Validator(
            {k2: v for k2, v in schema.items() if k2 in _NUMERIC_KEYS}
            | {"type": "integer" if integer else "number"}
        )
        for offset in range(ctx.index, ctx.index + 200):
            raw = (k + offset) * step
            candidate: float | int = int(raw) if raw == raw.to_integral_value() else float(raw)
            if validator.is_valid(candidate):
                return candidate
        for offset in range(0, 200):
            raw = (k + offset) * step
            candidate = int(raw) if raw == raw.to_integral_value() else float(raw)
            if validator.is_valid(candidate):
                return candidate
        raise self.fail(ctx.child("multipleOf"), f"no multiple of {step} satisfies the bounds")

    def boolean(self, schema: Mapping[str, Any], ctx: _Context) -> bool:
        """Return True, then False, alternating with the array index."""
        return ctx.index % 2 == 0

    def null(self, schema: Mapping[str, Any], ctx: _Context) -> None:
        """Return None."""
        return None


_NUMERIC_KEYS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)


def _bounds(
    schema: Mapping[str, Any], ctx: _Context, gen: _Generator
) -> tuple[tuple[float, bool] | None, tuple[float, bool] | None]:
    """Return the tightest (lower, upper) bounds as ``(value, exclusive)`` pairs."""
    values: dict[str, float] = {}
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        value = schema.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise gen.fail(
                ctx.child(key),
                f"{key} must be a number (the draft 4 boolean form is not supported)",
            )
        values[key] = float(value)
    low: tuple[float, bool] | None = None
    high: tuple[float, bool] | None = None
    if "minimum" in values:
        low = (values["minimum"], False)
    if "exclusiveMinimum" in values and (low is None or values["exclusiveMinimum"] >= low[0]):
        low = (values["exclusiveMinimum"], True)
    if "maximum" in values:
        high = (values["maximum"], False)
    if "exclusiveMaximum" in values and (high is None or values["exclusiveMaximum"] <= high[0]):
        high = (values["exclusiveMaximum"], True)
    if low is not None and high is not None and low[0] > high[0]:
        raise gen.fail(ctx, "the minimum is above the maximum")
    return low, high


def _is_null_schema(schema: Any) -> bool:
    """Return True for ``{"type": "null"}`` (and ``{"const": null}``)."""
    if not isinstance(schema, Mapping):
        return False
    return schema.get("type") == "null" or ("const" in schema and schema["const"] is None)


def _has_constraints(schema: Mapping[str, Any]) -> bool:
    """Return True if ``schema`` has keywords beyond annotations."""
    annotations = {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "$schema",
        "$id",
        "$defs",
        "definitions",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
    return any(key not in annotations for key in schema)


def _with_root_defs(schema: Any, root: Mapping[str, Any] | bool) -> Any:
    """Give a sub-schema the root's ``$defs``/``definitions`` so its local refs resolve."""
    if not isinstance(schema, Mapping) or not isinstance(root, Mapping):
        return schema
    defs = {key: root[key] for key in ("$defs", "definitions") if key in root}
    return {"allOf": [schema], **defs}


def _merge(
    first: Mapping[str, Any] | bool,
    second: Mapping[str, Any] | bool,
    gen: _Generator,
    ctx: _Context,
) -> Mapping[str, Any] | bool:
    """Merge two flattened schemas for ``allOf`` (conjunction, as far as the mock needs)."""
    if first is False or second is False:
        return False
    if first is True:
        return second
    if second is True:
        return first
    assert isinstance(first, Mapping)
    assert isinstance(second, Mapping)
    merged: dict[str, Any] = dict(first)
    for key, value in second.items():
        if key not in merged:
            merged[key] = value
            continue
        mine = merged[key]
        if key == "properties":
            props = dict(mine)
            for name, sub in value.items():
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            merged[key] = props
        elif key == "required":
            merged[key] = list(dict.fromkeys([*mine, *value]))
        elif key == "type":
            both = _intersect_types(_as_list(mine), _as_list(value))
            if not both:
                raise gen.fail(ctx, f"allOf types {mine!r} and {value!r} do not overlap")
            merged[key] = both
        elif key == "enum":
            merged[key] = [v for v in mine if v in value]
            if not merged[key]:
                raise gen.fail(ctx, "allOf enums do not overlap")
        elif key in _LOWER_BOUNDS and not isinstance(mine, bool):
            merged[key] = max(mine, value)
        elif key in _UPPER_BOUNDS and not isinstance(mine, bool):
            merged[key] = min(mine, value)
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping | bool):
            merged[key] = {"allOf": [mine, value]}
        elif key in ("anyOf", "oneOf"):
            raise gen.fail(ctx, f"allOf with {key} in more than one part is not supported")
        else:
            merged[key] = mine
    return merged


def _as_list(value: str | Sequence[str]) -> list[str]:
    """Return a ``type`` value as a list."""
    return [value] if isinstance(value, str) else list(value)


def _intersect_types(left: list[str], right: list[str]) -> list[str]:
    """Intersect two ``type`` lists, in ``left``'s order (integer is a kind of number)."""
    result: list[str] = []
    for kind in left:
        other = {"integer": "number", "number": "integer"}.get(kind)
        if kind in right:
            result.append(kind)
        elif other is not None and other in right:
            result.append("integer")
    return list(dict.fromkeys(result))


def _humanize(name: str) -> str:
    """Turn ``visual_description`` or ``visualDescription`` into ``Visual description``."""
    spaced = _CAMEL_RE.sub(" ", name).replace("_", " ").replace("-", " ")
    words = spaced.split()
    if not words:
        return ""
    text = " ".join(word.lower() if not word.isupper() else word for word in words)
    return text[0].upper() + text[1:]


def _fit_length(text: str, min_length: int, max_length: Any, ctx: _Context) -> str:
    """Pad or shorten ``text`` to the length bounds, keeping array items distinct."""
    if len(text) < min_length:
        filler = f" {text}"
        while len(text) < min_length:
            text += filler
    if max_length is not None and len(text) > int(max_length):
        limit = int(max_length)
        suffix = ctx.ordinal if ctx.indices else ""
        if 0 < len(suffix) < limit:
            text = text[: limit - len(suffix)].rstrip() + suffix
        else:
            text = text[:limit]
        if len(text) < min_length:
            text = (text + "x" * min_length)[:limit]
    return text


def _pattern_candidates(text: str, index: int) -> list[str]:
    """Return spellings of ``text`` to try against a ``pattern`` (slugs, snake case, digits)."""
    result: list[str] = []
    for base in (text, re.sub(r"\d+", " ", text)):
        slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")
        result += [
            slug,
            slug.replace("-", "_"),
            slug.replace("-", ""),
            slug.upper().replace("-", "_"),
            slug.replace("-", " "),
            slug.title().replace("-", ""),
        ]
    result += [str(index + 1), "mock", "MOCK", "Mock"]
    return list(dict.fromkeys(result))


def _formatted(fmt: str, ctx: _Context, seed: str) -> str | None:
    """Return a plausible value for a string ``format``, varying with the array index."""
    i = ctx.index
    slug = re.sub(r"[^a-z0-9]+", "-", (ctx.name or "item").lower()).strip("-") or "item"
    day = datetime.date(2024, 1, 1) + datetime.timedelta(days=i)
    digest = hashlib.sha256(f"{seed}\x00{ctx.path}\x00{ctx.ordinal}".encode()).digest()
    values = {
        "date": day.isoformat(),
        "date-time": f"{day.isoformat()}T09:00:00Z",
        "time": f"{9 + i % 12:02d}:00:00Z",
        "duration": f"PT{i + 1}M",
        "email": f"mock{i + 1}@example.com",
        "idn-email": f"mock{i + 1}@example.com",
        "hostname": f"host{i + 1}.example.com",
        "idn-hostname": f"host{i + 1}.example.com",
        "ipv4": f"192.0.2.{(i % 254) + 1}",
        "ipv6": f"2001:db8::{i + 1:x}",
        "uri": f"https://example.com/{slug}/{i + 1}",
        "iri": f"https://example.com/{slug}/{i + 1}",
        "uri-reference": f"/{slug}/{i + 1}",
        "iri-reference": f"/{slug}/{i + 1}",
        "url": f"https://example.com/{slug}/{i + 1}",
        "uri-template": f"https://example.com/{slug}/{{id}}",
        "uuid": str(uuid.UUID(bytes=digest[:16], version=4)),
        "json-pointer": f"/{slug}/{i}",
        "relative-json-pointer": f"0/{slug}",
        "regex": "^[a-z]+$",
    }
    return values.get(fmt)


# ----- the story: what a mock script says about its subject ----------------------------

#: Words before a colon that announce the subject ("... about: X", "Topic: X").
_SUBJECT_LABEL_RE = re.compile(r"(?i)\b(?:about|topic|subject|theme)\s*:[ \t]*(?P<rest>[^\n]+)")
_ABOUT_RE = re.compile(r"(?i)\babout\s+")
_SUBJECT_WORDS = 16
_SUBJECT_CHARS = 160
_QUOTES = " \t\"'`\u201c\u201d\u2018\u2019"
_QUESTION_WORDS = frozenset({"how", "why", "what", "when", "where", "who", "which", "whose"})
_DO = frozenset({"do", "does", "did"})
_BE = frozenset({"is", "are", "was", "were"})
_INSTRUCTIONS = frozenset(
    {"explain", "describe", "write", "tell", "show", "teach", "summarize", "summarise"}
)
_LOWER_FIRST = _QUESTION_WORDS | _DO | _BE | {"the", "a", "an", "whether", "can", "should"}
_SMALL_WORDS = frozenset(
    {"a", "an", "the", "and", "but", "or", "nor", "for", "of", "on", "in", "to", "at", "by"}
    | {"with", "from", "as", "into", "vs"}
)
_ROLE_WORDS: dict[str, frozenset[str]] = {
    "title": frozenset({"title", "headline", "heading", "name", "label"}),
    "visual": frozenset(
        {"visual", "visuals", "image", "picture", "illustration", "shot", "scene", "camera"}
        | {"prompt", "imagery", "frame", "drawing", "artwork"}
    ),
    "narration": frozenset(
        {"narration", "narrator", "voiceover", "voice", "script", "text", "line", "lines"}
        | {"caption", "subtitle", "speech", "dialogue", "dialog", "spoken", "summary", "body"}
        | {"content", "paragraph", "sentence", "answer", "explanation", "description"}
    ),
}
_OPENING_QUESTION = "{question} Let's find out, one step at a time."
_OPENING = "Let's look at {about}, one step at a time."
_CLOSING_LINE = "And that, in short, is {about}."
_NARRATION_BEATS = (
    "To understand {about}, start with the basics and what each part does.",
    "Next, the key step behind {about}: one change that sets everything in motion.",
    "A closer look at {about} shows small causes adding up to a big effect.",
    "A real-world example helps to picture {about}.",
    "Scientists study {about} by measuring, modelling and watching closely.",
)
_OPENING_VISUAL = (
    "A bold, inviting title picture illustrating {about}, bright colours, clean illustrated style"
)
_CLOSING_VISUAL = (
    "A calm closing picture summing up {about} in one simple image, soft evening light"
)
_VISUAL_BEATS = (
    "A clear labelled diagram illustrating {about}, its basic parts side by side, clean "
    "illustrated style",
    "A dramatic close-up illustrating {about} at its key moment, arrows showing the movement, "
    "warm light",
    "A detailed cut-away view illustrating {about}, small parts magnified, soft studio light",
    "A real-world scene illustrating {about}, people watching from a safe distance, natural "
    "daylight",
    "A field scene of scientists studying {about} with instruments and notebooks, documentary "
    "style",
)
_TITLE_BEATS = ("The basics", "The key step", "A closer look", "A real example", "How we know")


def _clean_subject(text: str, max_words: int = _SUBJECT_WORDS) -> str:
    """``text`` as a subject: one line of words, no wrapping quotes or trailing full stop,
    at most ``max_words`` words (and ``_SUBJECT_CHARS`` characters at the default)."""
    subject = " ".join(text.split()[:max_words])
    if max_words == _SUBJECT_WORDS and len(subject) > _SUBJECT_CHARS:
        subject = subject[:_SUBJECT_CHARS].rsplit(" ", 1)[0]
    subject = subject.strip(_QUOTES)
    return subject.rstrip(" .,;:").strip(_QUOTES)


def _drop_trailing_aside(text: str) -> str:
    """``text`` without a parenthesised aside at its very end (``... (narration: "...")``)."""
    stripped = text.rstrip()
    if not stripped.endswith(")"):
        return text
    depth = 0
    for i in range(len(stripped) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(stripped[i], 0)
        if depth == 0:
            head = stripped[:i].rstrip()
            return head if head else text
    return text


def subject_of(prompt: str, *, about: bool = True, max_words: int = _SUBJECT_WORDS) -> str:
    """The subject a prompt asks about, for mock answers that tell its story.

    In order: the rest of the line after a labelled colon (``"... script about: X"``,
    ``"Topic: X"``); else the text after the last ``": "`` once a trailing parenthesised
    aside is set apart (``"Scene 1: X (narration: ...)"`` gives X); else, with ``about``,
    the text after the last ``"about "``; else the prompt itself.

    Args:
        prompt: The rendered prompt (what the model would read).
        about: Whether ``"... about X"`` counts as naming the subject.
        max_words: The subject is cut to this many words.

    Returns:
        The subject, or ``""`` for an empty prompt.
    """

    def clean(text: str) -> str:
        return _clean_subject(text, max_words)

    labelled = _SUBJECT_LABEL_RE.search(prompt)
    if labelled is not None and clean(labelled.group("rest")):
        return clean(labelled.group("rest"))
    body = _drop_trailing_aside(prompt)
    if ": " in body and clean(body.rsplit(": ", 1)[1]):
        return clean(body.rsplit(": ", 1)[1])
    if about:
        matches = list(_ABOUT_RE.finditer(body))
        if matches and clean(body[matches[-1].end() :]):
            return clean(body[matches[-1].end() :])
    return clean(body)


def _about_phrase(subject: str) -> str:
    """``subject`` as something one can look at: ``"how volcanoes erupt"`` for ``"How do
    volcanoes erupt?"``, ``"the water cycle"`` for ``"The water cycle"``; a question it cannot
    turn around is quoted."""
    words = subject.rstrip("?!. ").split()
    if len(words) > 1 and words[0].lower() in _INSTRUCTIONS:
        words = words[1:]
        if len(words) > 1 and words[0].lower() == "about":
            words = words[1:]
    if not words:
        return "the topic"
    first, second = words[0].lower(), words[1].lower() if len(words) > 1 else ""
    if len(words) > 2 and first in _QUESTION_WORDS and second in _DO:
        return " ".join([first, *words[2:]])  # how do volcanoes erupt -> how volcanoes erupt
    if len(words) > 2 and first in {"what", "who", "which", "where", "when"} and second in _BE:
        return " ".join([first, *words[2:], second])  # what is X -> what X is
    if 3 < len(words) <= 7 and first in {"why", "how"} and second in _BE:
        # why is the sky blue -> why the sky is blue (the last word taken as the predicate)
        return " ".join([first, *words[2:-1], second, words[-1]])
    if len(words) > 1 and first in _DO:
        return " ".join(["whether", *words[1:]])  # do fish sleep -> whether fish sleep
    asks = subject.rstrip().endswith("?") or first in _DO | _BE | {"can", "should"}
    if asks and (first not in _QUESTION_WORDS or second in _BE | {"can", "should", "would"}):
        question = subject.rstrip(" ?!.") + "?"
        return f"the question \u201c{question[0].upper()}{question[1:]}\u201d"
    sentence_case = len(words) > 1 and not any(c.isupper() for w in words[1:] for c in w)
    if first in _LOWER_FIRST or (sentence_case and words[0][1:].islower()):
        words = [first, *words[1:]]  # "Black holes" -> "black holes"; "Mars" stays
    # A colon inside would read as a label to the next prompt (see subject_of).
    return " ".join(words).replace(": ", " \u2014 ")


def _title_case(subject: str) -> str:
    """``subject`` in title case (small words lower, words with capitals inside kept)."""
    result: list[str] = []
    for i, word in enumerate(subject.split()):
        if any(c.isupper() for c in word[1:]):
            result.append(word)
        elif i > 0 and word.lower() in _SMALL_WORDS:
            result.append(word.lower())
        else:
            result.append(word[:1].upper() + word[1:])
    return " ".join(result)


def _role(name: str) -> str | None:
    """The story role of a property name (``"title"``, ``"visual"``, ``"narration"``)."""
    words = {w.lower() for w in _humanize(name).split()}
    for role in ("visual", "title", "narration"):  # visual_description is visual
        if words & _ROLE_WORDS[role]:
            return role
    return None


@dataclass(frozen=True)
class _Story:
    """A short explainer about one subject: what each kind of string in the answer says."""

    subject: str
    about: str

    @classmethod
    def of(cls, seed_text: str) -> _Story:
        """The story of the subject of ``seed_text`` (see :func:`subject_of`)."""
        subject = subject_of(seed_text)
        words = subject.split()
        if len(words) > 1 and words[0].lower() in _INSTRUCTIONS:  # "Explain X" is about X
            subject = " ".join(words[1:])
        return cls(subject=subject, about=_about_phrase(subject) if subject else "the topic")

    @property
    def title(self) -> str:
        """The movie's title, marked as mock."""
        base = _title_case(self.subject) if self.subject else "An Explainer"
        return f"{base} (mock)"

    def text(self, ctx: _Context) -> str:
        """The string for ``ctx``: by the property's role and its place in its array."""
        role = _role(ctx.name)
        index = ctx.index
        size = ctx.sizes[-1] if ctx.sizes else 1
        nested = len(ctx.indices) > 1
        if role is None:
            label = _humanize(ctx.name) or "Value"
            return f"{label} {ctx.ordinal} about {self.about}"
        if role == "title":
            if not ctx.indices:
                return self.title
            return f"{ctx.ordinal}. {self._beat(_TITLE_BEATS, 'Introduction', 'In short', index, size)[0]}"
        if role == "visual":
            beat, cycle = self._beat(_VISUAL_BEATS, _OPENING_VISUAL, _CLOSING_VISUAL, index, size)
            text = beat.format(about=self.about)
            return f"{text}, part {ctx.ordinal}" if cycle or nested else text
        if self.subject.endswith("?"):
            opening = _OPENING_QUESTION.format(question=self.subject[0].upper() + self.subject[1:])
        else:
            opening = _OPENING.format(about=self.about)
        if size == 1 and not nested:
            return opening
        beat, cycle = self._beat(_NARRATION_BEATS, opening, _CLOSING_LINE, index, size)
        text = beat.format(about=self.about)
        return f"Part {ctx.ordinal}. {text}" if cycle or nested else text

    @staticmethod
    def _beat(
        body: tuple[str, ...], opening: str, closing: str, index: int, size: int
    ) -> tuple[str, int]:
        """The beat at ``index`` of ``size``: the opening, a body beat, or the closing; and
        how many times the body beats went round before it (0 the first time)."""
        if index == 0:
            return opening, 0
        if index == size - 1:
            return closing, 0
        return body[(index - 1) % len(body)], (index - 1) // len(body)


def instance_for(schema: Mapping[str, Any], *, seed_text: str = "") -> Any:
    """Build a deterministic JSON value that validates against ``schema``.

    Objects get every property listed in ``properties``, in order; arrays get ``minItems``
    items (3 if unset) capped by ``maxItems``; strings tell a short explainer about the
    subject of ``seed_text`` (:func:`subject_of`): by the property's name, a title (``"How Do
    Volcanoes Erupt? (mock)"``; numbered beat titles inside arrays), narration (an opening,
    body beats, a closing, by the position in the array) or a scene description illustrating
    the subject; other strings read ``"<Name> <n> about <subject>"``. Strings differ per
    array index; enums give their first value (the value at the array index, within arrays);
    numbers respect bounds and ``multipleOf``; type lists, ``anyOf`` and ``oneOf`` take the
    first non-null branch;
    ``allOf`` is merged; ``$ref`` may point anywhere inside the schema (``#/$defs/...``,
    ``#/definitions/...``, ``#``), and recursion stops at optional properties and arrays.

    Args:
        schema: A JSON Schema (Draft 2020-12; Draft 7 ``definitions`` work too).
        seed_text: Text the value is about (the prompt); its subject goes into strings.

    Returns:
        A JSON-compatible value (dict, list, str, int, float, bool or None).

    Raises:
        ValueError: Naming the schema path, for unsupported constructs (``not``,
            ``if``/``then``/``else``, ``$dynamicRef``, a ``$ref`` that is not local, a
            ``pattern`` no candidate matches) or unsatisfiable ones, or if the built value
            does not validate against the schema.
    """
    if not isinstance(schema, Mapping | bool):
        raise ValueError(f"schema at #: must be an object or boolean, not {type(schema).__name__}")
    generator = _Generator(schema, seed_text)
    root = _Context(path="#", name="", indices=(), refs=(), minimal=False)
    value = generator.build(schema, root)
    validator = jsonschema.Draft202012Validator(schema)
    error = best_match(validator.iter_errors(value))
    if error is not None:
        where = "#" + "".join(f"/{part}" for part in error.absolute_schema_path)
        raise ValueError(f"schema at {where}: the mock value does not validate: {error.message}")
    return value


def text_for(prompt: str, *, max_words: int = 60) -> str:
    """Return a deterministic, plausible mock answer to ``prompt``.

    The answer is ``"Mock answer:"``, then the prompt's subject (see :func:`subject_of`, without
    the ``"about "`` rule: the scene after ``"Scene 1: "``, the text after ``"about: "``, else
    the whole prompt), then a fixed closing sentence, all cut to ``max_words`` words. So the
    mock answer to an image-prompt request is the scene it describes.

    Args:
        prompt: The prompt being answered.
        max_words: The most words the answer may have (at least 1).

    Returns:
        The answer text.
    """
    limit = max(1, max_words)
    subject = subject_of(prompt, about=False, max_words=limit)
    words = subject.split() or ["(empty", "prompt)"]
    words[0] = words[0][:1].upper() + words[0][1:]
    closing = _CLOSING.split()
    answer = ["Mock", "answer:", *words]
    if answer[-1][-1:] not in ".!?":
        answer[-1] += "."
    return " ".join([*answer, *closing][:limit])
