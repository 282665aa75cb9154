"""Write a model declaration from a provider's published model metadata.

``tutopanda models import FILE`` (ARCHITECTURE.md, "Model declarations") reads what a
provider publishes about one model and infers a
:class:`~producers.replicate.declaration.ModelDeclaration`: its kind, the
mapping of general attributes to input fields, the output shape, secrets, a cost formula
and the median latency. Two input forms are accepted (see :mod:`.metadata`).

Inference uses only the metadata: category words, field names, field descriptions, enums,
the output schema and the example prediction. There is no table of known models; every
guess, and everything that could not be inferred, is reported in :class:`ImportResult`.

One module per step, each returning what it found and its notes; :mod:`.run` calls them
in order:

1. :mod:`.metadata`: read either form;
2. :mod:`.schema`: normalise the input and output schemas, list the fields;
3. :mod:`.kind`: the media family, then the kind;
4. :mod:`.mapping` (with :mod:`.vocabulary`): general attributes -> fields;
5. :mod:`.output`: one file or a list, the format;
6. :mod:`.fixed_fields`: secrets and URL-or-bytes defaults;
7. :mod:`.cost`: the cost formula and the median latency;
8. :mod:`.write`: assemble, validate and write the declaration;
9. :mod:`.report`: the notes, added up into the :class:`ImportResult`.
"""

from producers.replicate.importer.cost import parse_cost
from producers.replicate.importer.report import ImportResult
from producers.replicate.importer.run import import_file, import_metadata
from producers.replicate.importer.write import write_declaration

__all__ = [
    "ImportResult",
    "import_file",
    "import_metadata",
    "parse_cost",
    "write_declaration",
]
