"""Limits on everything a person or a model can make large, in one place, with why.

Each limit bounds the memory or the money one input can cost before anything else looks at
it. They are module constants (the SDK's defaults); the functions that enforce them take a
keyword argument to use another value, so a deployment or a test can change one call without
changing the defaults here. A refused input is one :class:`~producers.sdk.errors.InvalidInputError`
(or :class:`~producers.sdk.errors.DeclarationError` for a model declaration) naming the input
and the limit, raised before any request.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

#: Options and config files (CLI ``--config``/``--options``, a deployment's options files).
#: The shipped ones are about 2 KiB; 1 MiB leaves room for long prompt templates and still
#: bounds the parse (a YAML parser holds several times a file's size in memory).
DOCUMENT_MAX_BYTES = 1 * MIB

#: Model declaration files and the provider metadata ``tutopanda models import`` reads. A
#: published Replicate schema is 10 to 100 KiB; 1 MiB is ten times the largest seen.
DECLARATION_MAX_BYTES = 1 * MIB

#: Attachments (JSON, TOML or text handed to a producer): they end up in a prompt, whose
#: size the provider limits anyway. A producer definition may set its own limit.
ATTACHMENT_MAX_BYTES = 256 * KIB

#: A local file the CLI's user sends with ``produce --file FIELD=PATH`` (an image for an
#: image-to-video model, a voice sample): Replicate takes inline files up to about 100 MB.
FILE_INPUT_MAX_BYTES = 100 * MIB

#: How deeply a JSON, TOML or YAML document (and a model's input schema) may nest. Real
#: documents nest fewer than 10 levels; 64 is far from Python's recursion limit, so no parser,
#: deep-merge, validator or serialiser downstream can hit a ``RecursionError``.
MAX_NESTING_DEPTH = 64

#: How many values (scalars, lists, mappings) a YAML document may expand to once its aliases
#: are followed. A "billion laughs" file of a few hundred bytes expands to 10**9 values; an
#: options file has a few hundred. Counted on the parsed node graph with memoisation, so the
#: check itself costs time and memory in proportion to the file, not to the expansion.
YAML_MAX_EXPANDED_NODES = 100_000

#: How many values a model's input schema may expand to once its ``$ref`` are inlined
#: (the same attack as a YAML alias bomb, through ``schema_components``). Real schemas have
#: a few hundred.
SCHEMA_MAX_EXPANDED_NODES = 100_000

#: The smallest value a JSON Schema allows (an OpenAI structured output's schema, a model's
#: input schema), in values and characters: ``minItems``/``minLength``/``minProperties``
#: multiply when nested, and the mock answer (or a validator) has to make that value. A real
#: script schema's smallest value has a few dozen.
SCHEMA_MAX_INSTANCE_SIZE = 1_000_000

#: A prompt template's source, in characters. Templates come from trusted places (options
#: files, DAG authors, the CLI's user); prompts are a few KiB, 100 000 characters is plenty.
TEMPLATE_MAX_SOURCE_CHARS = 100_000

#: A rendered template, in characters (the output is streamed and stopped once over), and
#: any single value computed inside a template (a string, a list, a number's digits). A
#: prompt is at most a few hundred KiB; 1 000 000 also bounds the memory one render may take
#: to a small multiple of it.
TEMPLATE_MAX_OUTPUT_CHARS = 1_000_000

#: How many bits an integer computed in a template may have (``9 ** 9 ** 9`` would take
#: minutes and hundreds of MB before it could be printed). 100 000 bits is 30 000 digits.
TEMPLATE_MAX_INT_BITS = 100_000

#: ``KEY=VALUE`` values on the command line and in ``ROLE.KEY=VALUE`` overrides, in
#: characters: a value is a prompt, a number or a small JSON list; a long text belongs in a
#: file. Command lines are limited by the OS to about 128 KiB per argument anyway.
VALUE_MAX_CHARS = 100_000

__all__ = [
    "ATTACHMENT_MAX_BYTES",
    "DECLARATION_MAX_BYTES",
    "DOCUMENT_MAX_BYTES",
    "FILE_INPUT_MAX_BYTES",
    "KIB",
    "MAX_NESTING_DEPTH",
    "MIB",
    "SCHEMA_MAX_EXPANDED_NODES",
    "SCHEMA_MAX_INSTANCE_SIZE",
    "TEMPLATE_MAX_INT_BITS",
    "TEMPLATE_MAX_OUTPUT_CHARS",
    "TEMPLATE_MAX_SOURCE_CHARS",
    "VALUE_MAX_CHARS",
    "YAML_MAX_EXPANDED_NODES",
    "size_text",
]


def size_text(size: int) -> str:
    """A byte count for people: ``512 bytes``, ``300.0 KiB``, ``1.05 MiB``."""
    if size >= MIB:
        return f"{size / MIB:.2f} MiB"
    if size >= KIB:
        return f"{size / KIB:.1f} KiB"
    return f"{size} bytes"
