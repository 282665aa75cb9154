"""Step 8: write the declaration: assemble what the steps found, validate it, write it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.replicate.declaration import (
    FieldMapping,
    ModelDeclaration,
    OutputSpec,
    dump_declaration,
    parse_declaration,
)
from producers.replicate.importer.cost import CostFound
from producers.replicate.importer.fixed_fields import FixedFields
from producers.replicate.importer.metadata import Metadata
from producers.replicate.importer.report import Notes
from producers.replicate.importer.schema import Schema
from producers.sdk.jobs import Kind


@dataclass(frozen=True)
class DeclarationFound:
    """What step 8 made: the declaration, and a note if the version id is missing."""

    declaration: ModelDeclaration
    notes: Notes


def build_declaration(
    meta: Metadata,
    schema: Schema,
    *,
    kind: Kind,
    mapping: Mapping[str, FieldMapping],
    output: OutputSpec,
    fixed: FixedFields,
    cost: CostFound,
    unconfirmed: Sequence[str],
    source: str,
) -> DeclarationFound:
    """The declaration the steps found, validated by :func:`parse_declaration`.

    Args:
        meta: The metadata (model, version, description, origin).
        schema: The schemas (the input schema is kept as published, with its components).
        kind: The inferred kind.
        mapping: The inferred mapping of general attributes.
        output: The inferred output shape.
        fixed: Secret fields and defaults.
        cost: The cost formula and the median latency.
        unconfirmed: Every step's unconfirmed facts, in step order.
        source: Where the metadata came from (the declaration's ``source``).

    Raises:
        DeclarationError: the assembled declaration is not valid.
    """
    notes = Notes()
    if meta.form == 2 and meta.version is None:
        notes.not_inferred.append("version: the metadata names no version id")
    origin = f"imported from {source}"
    if meta.origin:
        origin += f" ({meta.origin})"
    data: dict[str, Any] = {
        "model": meta.model,
        "version": meta.version if meta.form == 2 else None,
        "kind": kind.value,
        "description": meta.description,
        "input_schema": meta.input_schema,
        "schema_components": schema.components,
        "output": output.model_dump(),
        "mapping": {k: v.model_dump() for k, v in mapping.items()},
        "defaults": fixed.defaults,
        "secret_fields": fixed.secrets,
        "cost": cost.cost.model_dump(),
        "median_seconds": cost.median_seconds,
        "unconfirmed": list(unconfirmed),
        "source": origin,
    }
    return DeclarationFound(parse_declaration(data, source=source), notes)


def write_declaration(declaration: ModelDeclaration, into: Path | str) -> Path:
    """Write ``declaration`` as ``<into>/<owner>/<name>.json`` and return that path."""
    owner, name = declaration.model.split("/", 1)
    path = Path(into) / owner / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_declaration(declaration), encoding="utf-8")
    return path
