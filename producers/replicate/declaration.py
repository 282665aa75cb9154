"""Model declarations: one data file per Replicate model (ARCHITECTURE.md, "Model declarations")."""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from producers.replicate.hardware import find_hardware, known_names
from producers.sdk.documents import read_document
from producers.sdk.errors import DeclarationError
from producers.sdk.jobs import GENERAL_ATTRIBUTES, Kind
from producers.sdk.limits import DECLARATION_MAX_BYTES
from producers.sdk.schema import InvalidSchemaError, check_schema, normalise_openapi_schema
from producers.sdk.uploads import file_fields

DECLARATION_VERSION = 1


class FieldMapping(BaseModel):
    """How one general attribute becomes the model's input field(s).

    Exactly one of ``field`` (one input field) or ``size_fields`` (an aspect ratio turned
    into a width and a height) is set. Transforms apply in this order: ``values`` (a lookup
    table), ``scale`` (multiply; integers are rounded when the field is an integer),
    ``snap`` (numbers: nearest allowed enum value or clamp to the range), ``fallback`` (a
    value outside the field's enum becomes this one, with a warning), ``as_list`` (wrap).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str | None = None
    size_fields: tuple[str, str] | None = None
    long_side: int = Field(default=1024, gt=0)
    multiple_of: int = Field(default=8, gt=0)
    values: dict[str, Any] | None = None
    scale: float | None = None
    snap: bool = False
    fallback: Any = None
    as_list: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> FieldMapping:
        if (self.field is None) == (self.size_fields is None):
            raise ValueError("set exactly one of 'field' or 'size_fields'")
        return self

    @property
    def targets(self) -> tuple[str, ...]:
        """The input fields this mapping writes."""
        return self.size_fields if self.size_fields is not None else (str(self.field),)


class OutputSpec(BaseModel):
    """What the model answers with.

    ``media`` is the family of the declaration's kind (``text`` for text-to-text). A media
    model answers with a URL or a list of URLs; if it answers with a JSON object, the URLs are
    taken from its key ``field`` (default: every URL value in key order, lists flattened).
    A text model answers with a string or a list of tokens (joined); ``system_field`` and
    ``max_tokens_field`` name its input fields for the system prompt and for the most tokens
    to generate (a prompt producer's ``system_prompt`` and ``max_output_tokens``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    media: Literal["image", "audio", "video", "text"]
    multiple: bool = False
    format_field: str | None = None
    default_format: str | None = None
    field: str | None = None
    system_field: str | None = None
    max_tokens_field: str | None = None


_OPTIONAL_OUTPUT_FIELDS = frozenset({"field", "system_field", "max_tokens_field"})

CostUnit = Literal["run", "output", "output_second", "input_character", "input_token"]

#: How a price was found: the provider's ``published`` per-unit price; ``hardware``: the
#: hardware's price per second times the expected seconds; ``upper_bound``: the example
#: prediction's time at the most expensive public hardware (the price is at most that).
CostBasis = Literal["published", "hardware", "upper_bound"]


class CostRateBy(BaseModel):
    """A rate that depends on one input field's value (e.g. resolution)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    usd: dict[str, float]


class CostSpec(BaseModel):
    """A model's price, and how it was found (``basis``).

    * ``published``: the provider's price, ``usd`` per ``per`` unit or a rate table ``by``;
    * ``hardware``: billed by compute time: the ``hardware``'s price per second (the table in
      :mod:`producers.replicate.hardware`) times the expected seconds (``seconds``, else the
      declaration's ``median_seconds``);
    * ``upper_bound``: the hardware is unknown: the expected seconds (``seconds``: the example
      prediction's ``predict_time``) at the most expensive public hardware; every estimate
      from it is shown as an upper bound (``<= $0.04``).

    No ``basis`` reads as ``published`` when ``usd`` or ``by`` is set (declarations written
    before there were bases), else the price is unknown. ``text`` says in words where the
    price came from.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str | None = None
    basis: CostBasis | None = None
    per: CostUnit = "run"
    usd: float | None = Field(default=None, ge=0)
    by: CostRateBy | None = None
    hardware: str | None = None
    seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_basis(self) -> CostSpec:
        rate = self.usd is not None or self.by is not None
        if self.basis == "published" and not rate:
            raise ValueError("basis 'published' needs 'usd' or 'by' (the published rate)")
        if self.basis in ("hardware", "upper_bound") and rate:
            raise ValueError(
                f"basis {self.basis!r} is priced by compute time: set no 'usd' or 'by' "
                "(those are published rates)"
            )
        if self.basis == "hardware":
            if self.hardware is None:
                raise ValueError("basis 'hardware' needs 'hardware' (e.g. 'gpu-l40s')")
            if find_hardware(self.hardware) is None:
                raise ValueError(
                    f"hardware {self.hardware!r} is not in the hardware price table; "
                    f"known: {', '.join(known_names())}"
                )
        elif self.hardware is not None:
            raise ValueError("'hardware' is only for basis 'hardware'")
        return self

    @property
    def effective_basis(self) -> CostBasis | None:
        """The basis, reading a rate without one as ``published``; None: price unknown."""
        if self.basis is not None:
            return self.basis
        return "published" if self.usd is not None or self.by is not None else None

    @property
    def known(self) -> bool:
        """True if an estimate can be computed (with the declaration's median time)."""
        return self.effective_basis is not None

    @property
    def upper_bound(self) -> bool:
        """True if estimates from this price are upper bounds."""
        return self.effective_basis == "upper_bound"


class ModelDeclaration(BaseModel):
    """One Replicate model as data: kind, published input schema, mapping, cost, latency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    declaration_version: int = DECLARATION_VERSION
    provider: str = "replicate"
    model: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    version: str | None = None
    kind: Kind
    description: str | None = None
    input_schema: dict[str, Any]
    schema_components: dict[str, Any] = Field(default_factory=dict)
    output: OutputSpec
    mapping: dict[str, FieldMapping] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    secret_fields: dict[str, str] = Field(default_factory=dict)
    cost: CostSpec = Field(default_factory=CostSpec)
    median_seconds: float | None = None
    mapper: str | None = Field(default=None, pattern=r"^[\w.]+:[\w]+$")
    unconfirmed: list[str] = Field(default_factory=list)
    source: str | None = None

    @property
    def model_id(self) -> str:
        """``provider:owner/name``."""
        return f"{self.provider}:{self.model}"

    @functools.cached_property
    def resolved_schema(self) -> dict[str, Any]:
        """The input schema as JSON Schema 2020-12, ``$ref``/``allOf`` enums resolved."""
        return normalise_openapi_schema(self.input_schema, self.schema_components)

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        """The model's input fields and their (resolved) schemas."""
        props = self.resolved_schema.get("properties", {})
        return dict(props) if isinstance(props, Mapping) else {}

    @functools.cached_property
    def file_fields(self) -> frozenset[str]:
        """Input fields that take a file (``format: uri``): see :mod:`producers.sdk.uploads`."""
        return file_fields(self.properties)

    @property
    def required(self) -> list[str]:
        """Input fields the model requires."""
        return list(self.resolved_schema.get("required", []))

    def mapper_function(self) -> Callable[..., dict[str, Any]] | None:
        """Import the declaration's custom mapping function, if it names one."""
        if self.mapper is None:
            return None
        module_name, _, attr = self.mapper.partition(":")
        func = getattr(importlib.import_module(module_name), attr)
        if not callable(func):
            raise DeclarationError(f"{self.model}: mapper {self.mapper!r} is not callable")
        return func  # type: ignore[no-any-return]

    @model_validator(mode="after")
    def _consistent(self) -> ModelDeclaration:
        try:
            schema = normalise_openapi_schema(self.input_schema, self.schema_components)
            check_schema(schema)
        except KeyError as exc:
            raise ValueError(f"input_schema: {exc.args[0]}") from None
        except (DeclarationError, InvalidSchemaError) as exc:  # a $ref cycle, too deep...
            raise ValueError(f"input_schema: {exc}") from None
        except Exception as exc:
            raise ValueError(f"input_schema is not a valid JSON Schema: {exc}") from None
        fields = set(schema.get("properties", {}))
        listed = ", ".join(sorted(fields))

        def need(where: str, name: str) -> None:
            if name not in fields:
                raise ValueError(
                    f"{where} names {name!r}, which is not an input field of "
                    f"{self.model}; fields: {listed}"
                )

        for attribute, mapping in self.mapping.items():
            if attribute not in GENERAL_ATTRIBUTES:
                raise ValueError(
                    f"mapping.{attribute}: {attribute!r} is not a general attribute; "
                    f"allowed: {', '.join(GENERAL_ATTRIBUTES)}"
                )
            for target in mapping.targets:
                need(f"mapping.{attribute}", target)
        for name in self.defaults:
            need("defaults", name)
        for name in self.secret_fields:
            need("secret_fields", name)
        if self.output.format_field:
            need("output.format_field", self.output.format_field)
        if self.cost.by:
            need("cost.by.field", self.cost.by.field)
        timed = self.cost.effective_basis in ("hardware", "upper_bound")
        if timed and self.cost.seconds is None and self.median_seconds is None:
            raise ValueError(
                f"cost: basis {self.cost.effective_basis!r} needs the expected seconds "
                "('cost.seconds' or 'median_seconds')"
            )
        for name in ("system_field", "max_tokens_field"):
            target = getattr(self.output, name)
            if target is not None:
                need(f"output.{name}", target)
        if (self.kind is Kind.TEXT) != (self.output.media == "text"):
            raise ValueError(
                f"kind {self.kind.value!r} makes {self.kind.media}, but output.media is "
                f"{self.output.media!r}"
            )
        text_fields = self.output.system_field or self.output.max_tokens_field
        if self.kind is not Kind.TEXT and text_fields:
            raise ValueError("output.system_field and output.max_tokens_field are for text models")
        if self.kind is Kind.TEXT and "prompt" not in self.mapping and self.mapper is None:
            raise ValueError("a text-to-text model needs mapping.prompt (its prompt field)")
        return self


def _format_validation_error(path: Path | str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{loc}: {message}")
    return f"malformed model declaration {path}: " + "; ".join(problems)


def parse_declaration(data: Any, *, source: Path | str = "<memory>") -> ModelDeclaration:
    """Build a declaration from parsed JSON; :class:`DeclarationError` says what is wrong."""
    if not isinstance(data, Mapping):
        raise DeclarationError(
            f"malformed model declaration {source}: expected a JSON object at the top level"
        )
    try:
        return ModelDeclaration.model_validate(data)
    except ValidationError as exc:
        raise DeclarationError(_format_validation_error(source, exc)) from None


def load_declaration(
    path: Path | str, *, max_bytes: int = DECLARATION_MAX_BYTES
) -> ModelDeclaration:
    """Read one declaration file (JSON).

    Raises:
        DeclarationError: one line naming the file: a folder, a missing or unreadable file,
            one over ``max_bytes``, not UTF-8, nested too deeply, not valid JSON, or not a
            valid declaration (each field that is wrong).
    """
    return parse_declaration(read_declaration_data(path, max_bytes=max_bytes), source=path)


def read_declaration_data(path: Path | str, *, max_bytes: int = DECLARATION_MAX_BYTES) -> Any:
    """A declaration file's JSON, read and parsed but not yet validated (see
    :func:`load_declaration` for what is refused here)."""
    return read_document(
        path,
        what="model declaration",
        max_bytes=max_bytes,
        formats=("json",),
        error=DeclarationError,
    )


def dump_declaration(declaration: ModelDeclaration) -> str:
    """Serialise a declaration the way shipped files are written (stable, indented)."""
    data = declaration.model_dump(mode="json", exclude_defaults=False)
    # The output's optional fields (object outputs, text models) only when set.
    data["output"] = {
        name: value
        for name, value in data["output"].items()
        if value is not None or name not in _OPTIONAL_OUTPUT_FIELDS
    }
    # Mapping entries only carry what was set: a rename is {"field": "x"}, not every option.
    data["mapping"] = {
        name: mapping.model_dump(mode="json", exclude_defaults=True)
        for name, mapping in declaration.mapping.items()
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
