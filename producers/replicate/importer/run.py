"""The importer's steps in order: read, find the schema, infer, write, report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from producers.replicate.importer.cost import infer_cost
from producers.replicate.importer.fixed_fields import find_fixed_fields
from producers.replicate.importer.kind import infer_kind, infer_media
from producers.replicate.importer.mapping import infer_mapping
from producers.replicate.importer.metadata import read_metadata
from producers.replicate.importer.output import infer_output
from producers.replicate.importer.report import ImportResult, gather
from producers.replicate.importer.schema import find_schema
from producers.replicate.importer.write import build_declaration
from producers.sdk.documents import read_document
from producers.sdk.errors import DeclarationError
from producers.sdk.limits import DECLARATION_MAX_BYTES


def import_metadata(data: Mapping[str, Any], *, source: str = "<memory>") -> ImportResult:
    """Infer a model declaration from a provider's published metadata (form 1 or form 2).

    Args:
        data: The parsed metadata (see :mod:`producers.replicate.importer.metadata` for
            the two forms).
        source: Where the metadata came from; used in messages and the declaration's
            ``source``.

    Returns:
        The declaration and the lists of what was inferred and what was not.

    Raises:
        DeclarationError: The metadata has no model name, no input schema, an input
            schema without fields or with an unresolvable ``$ref``, or nothing says what
            the model makes.
    """
    meta = read_metadata(data, source)
    schema = find_schema(meta, source)
    media = infer_media(meta, schema.fields, source)
    mapping = infer_mapping(schema.fields, media.media)
    kind = infer_kind(media, mapping.mapping, schema)
    output = infer_output(meta, schema, kind.kind.media, "count" in mapping.mapping)
    fixed = find_fixed_fields(schema.fields, meta.input_schema)
    cost = infer_cost(meta, schema)
    notes = gather(kind.notes, mapping.notes, output.notes, fixed.notes, cost.notes)
    made = build_declaration(
        meta,
        schema,
        kind=kind.kind,
        mapping=mapping.mapping,
        output=output.output,
        fixed=fixed,
        cost=cost,
        unconfirmed=notes.unconfirmed,
        source=source,
    )
    notes.extend(made.notes)
    return ImportResult(
        declaration=made.declaration, inferred=notes.inferred, not_inferred=notes.not_inferred
    )


def import_file(path: Path | str, *, source: str | None = None) -> ImportResult:
    """Read a metadata JSON file and infer its declaration (see :func:`import_metadata`).

    Args:
        path: The metadata file.
        source: How to name the file in the declaration's ``source``; defaults to ``path``.

    Raises:
        DeclarationError: The file cannot be read (a folder, missing, over
            :data:`~producers.sdk.limits.DECLARATION_MAX_BYTES`, not UTF-8, nested too
            deeply), is not JSON, or cannot be imported.
    """
    data = read_document(
        path,
        what="model metadata",
        max_bytes=DECLARATION_MAX_BYTES,
        formats=("json",),
        error=DeclarationError,
    )
    return import_metadata(data, source=source or str(path))
