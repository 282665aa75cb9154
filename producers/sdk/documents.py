"""Reading JSON, TOML and YAML files and texts that a person gave, safely.

Every file a person or a deployment names (``--config``, ``--options``, ``--attach``, model
declarations, ``tutopanda models import`` inputs) goes through :func:`read_document` or
:func:`read_text`, which refuse, each with one line naming the file and what is allowed:

- a folder, a missing or unreadable file;
- a file over its size cap, checked before reading (and the read itself is bounded, so a
  device or a file that grows cannot make it larger);
- bytes that are not UTF-8 (the message gives the byte offset and line; a UTF-8 byte-order
  mark is accepted, a UTF-16 one is named);
- a document nested deeper than :data:`~producers.sdk.limits.MAX_NESTING_DEPTH`, checked
  before the parser recurses (so no ``RecursionError`` can happen here or downstream);
- a YAML document whose aliases expand to more than
  :data:`~producers.sdk.limits.YAML_MAX_EXPANDED_NODES` values (the "billion laughs" bomb),
  counted on the node graph with memoisation, so the check costs what the file costs;
- YAML tags that are not JSON-like data (``!!binary``, ``!!set``, ...), keys that are not
  text, numbers that are not finite (``.inf``, ``NaN``, ``1e999``);
- syntax errors, with line and column.

Each refusal raises the ``error`` class the caller names (the SDK's
:class:`~producers.sdk.errors.InvalidInputError` by default,
:class:`~producers.sdk.errors.DeclarationError` for declarations): never a traceback.
"""

from __future__ import annotations

import json
import math
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml

from producers.sdk.errors import InvalidInputError
from producers.sdk.limits import (
    DOCUMENT_MAX_BYTES,
    MAX_NESTING_DEPTH,
    YAML_MAX_EXPANDED_NODES,
    size_text,
)

Format = Literal["json", "toml", "yaml"]
ErrorFactory = Callable[[str], Exception]

__all__ = [
    "Format",
    "format_of",
    "json_or_text",
    "parse_document",
    "read_bytes",
    "read_document",
    "read_text",
]

_SUFFIXES: dict[str, Format] = {".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
_NAMES: dict[str, str] = {"json": "JSON", "toml": "TOML", "yaml": "YAML"}
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# Strings (skipped, whatever brackets they hold) or brackets (counted), for the nesting
# pre-check. JSON strings have backslash escapes; TOML adds literal and multi-line strings
# and comments. Unrolled loops: linear time, no backtracking.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)
_TOML_TOKENS = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|\'[^\'\n]*\'|#[^\n]*'
    r"|[\[\]{}]"
)
_OPENERS = frozenset("[{")
_CLOSERS = frozenset("]}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def format_of(path: str | Path, default: Format = "json") -> Format:
    """The format a file's suffix names (``.json``, ``.toml``, ``.yaml``/``.yml``), else ``default``."""
    return _SUFFIXES.get(Path(path).suffix.lower(), default)


def read_bytes(
    path: str | Path,
    *,
    what: str,
    max_bytes: int,
    expected: str = "a file",
    error: ErrorFactory = InvalidInputError,
) -> bytes:
    """Read a whole (small) file, refusing a folder, a missing file or one over ``max_bytes``.

    Args:
        path: The file.
        what: What the file is, for messages (``"config"``, ``"model declaration"``).
        max_bytes: The size cap, checked before reading; the read is bounded by it too.
        expected: What is allowed, for the message about a folder (``"a JSON file"``).
        error: The exception class to raise.

    Raises:
        Exception: ``error`` with one line naming the file and what is allowed.
    """
    path = Path(path)
    label = f"{what} {path}"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{label} does not exist; give {expected}") from None
    except OSError as exc:
        raise error(f"{label} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{label} is a folder; give {expected}") from None
    limit = f"the limit is {size_text(max_bytes)}"
    if info.st_size > max_bytes:
        raise error(f"{label} is {size_text(info.st_size)}; {limit}")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{label} cannot be read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise error(f"{label} is larger than {size_text(max_bytes)}; {limit}")
    return data


def _decode(data: bytes, label: str, error: ErrorFactory) -> str:
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if data.startswith(_UTF16_BOMS):
            problem = "it starts with a UTF-16 byte-order mark"
        else:
            line = data.count(b"\n", 0, exc.start) + 1
            problem = f"byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line})"
        raise error(f"{label} is not UTF-8 text ({problem}); save it as UTF-8") from None


def read_text(
    path: str | Path,
    *,
    what: str,
    max_bytes: int,
    expected: str = "a UTF-8 text file",
    error: ErrorFactory = InvalidInputError,
) -> str:
    """Read a UTF-8 text file with the checks of :func:`read_bytes`; say where it is not UTF-8."""
    data = read_bytes(path, what=what, max_bytes=max_bytes, expected=expected, error=error)
    return _decode(data, f"{what} {path}", error)


def read_document(
    path: str | Path,
    *,
    what: str,
    max_bytes: int = DOCUMENT_MAX_BYTES,
    default_format: Format = "json",
    formats: tuple[Format, ...] = ("json", "toml", "yaml"),
    error: ErrorFactory = InvalidInputError,
    max_depth: int = MAX_NESTING_DEPTH,
    max_nodes: int = YAML_MAX_EXPANDED_NODES,
) -> Any:
    """Read and parse a JSON, TOML or YAML file (by suffix, else ``default_format``).

    Returns:
        The parsed data: JSON-like values only (dicts with text keys, lists, text, finite
        numbers, booleans, None).

    Raises:
        Exception: ``error`` with one line naming the file, for every problem listed in the
        module docstring.
    """
    fmt = format_of(path, default_format)
    allowed = " or ".join(_NAMES[f] for f in formats)
    label = f"{what} {path}"
    if fmt not in formats:
        raise error(f"{label} is {_NAMES[fmt]}; give a {allowed} file")
    text = read_text(
        path, what=what, max_bytes=max_bytes, expected=f"a {allowed} file", error=error
    )
    return parse_document(
        text, fmt, label=label, error=error, max_depth=max_depth, max_nodes=max_nodes
    )


def parse_document(
    text: str,
    fmt: Format,
    *,
    label: str,
    error: ErrorFactory = InvalidInputError,
    max_depth: int = MAX_NESTING_DEPTH,
    max_nodes: int = YAML_MAX_EXPANDED_NODES,
) -> Any:
    """Parse a JSON, TOML or YAML text with the nesting, alias and number checks.

    Args:
        text: The document.
        fmt: ``json``, ``toml`` or ``yaml``.
        label: What the text is, for messages (``"config c.yaml"``, ``"attachment 'a.json'"``).
        error: The exception class to raise.
        max_depth: How deeply values may nest.
        max_nodes: How many values a YAML document may expand to through its aliases.

    Raises:
        Exception: ``error`` with one line naming ``label`` and what is wrong, with line and
        column for syntax errors.
    """
    name = _NAMES[fmt]
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the document
    if fmt == "yaml":
        data = _load_yaml(text, label, error, max_depth, max_nodes)
    else:
        if fmt == "json":
            _check_brackets(text, _JSON_TOKENS, label, error, max_depth)
        else:  # a TOML document is a table itself: one level before any bracket
            _check_brackets(text, _TOML_TOKENS, label, error, max_depth, start=1)
        try:
            data = json.loads(text) if fmt == "json" else tomllib.loads(text)
        except json.JSONDecodeError as exc:
            raise error(
                f"{label} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        except (ValueError, RecursionError) as exc:
            # TOMLDecodeError names line and column itself; a ValueError is also what an
            # integer of more than 4300 digits gives.
            raise error(f"{label} is not valid {name}: {_parse_problem(exc)}") from None
    _check_tree(data, label, error, max_depth)
    return data


def json_or_text(raw: str, *, label: str, error: ErrorFactory = InvalidInputError) -> Any:
    """A ``KEY=VALUE`` value: its JSON value when it is JSON, else the text itself.

    JSON that nests deeper than :data:`~producers.sdk.limits.MAX_NESTING_DEPTH`, holds a
    number that is not finite (``1e999``, ``NaN``, ``Infinity``) or an integer too long to
    convert is refused with ``error`` naming ``label``.
    """
    _check_brackets(raw, _JSON_TOKENS, label, error, MAX_NESTING_DEPTH)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    except ValueError as exc:
        raise error(f"{label} is not a usable value: {_parse_problem(exc)}") from None
    _check_tree(value, label, error, MAX_NESTING_DEPTH)
    return value


# -- nesting and values -------------------------------------------------------------------


def _check_brackets(
    text: str,
    tokens: re.Pattern[str],
    label: str,
    error: ErrorFactory,
    max_depth: int,
    *,
    start: int = 0,
) -> None:
    depth = start
    for match in tokens.finditer(text):
        token = match.group()
        if token in _OPENERS:
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, match.start()) + 1
                raise error(
                    f"{label} nests deeper than {max_depth} levels (line {line}); "
                    f"at most {max_depth} are allowed"
                )
        elif token in _CLOSERS:
            depth = max(start, depth - 1)


def _where(path: tuple[Any, ...]) -> str:
    shown = ".".join(str(part) for part in path) or "(top level)"
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _parse_problem(exc: Exception) -> str:
    text = _one_line(str(exc))
    if "integer string conversion" in text:
        return "it has an integer of more than 4300 digits"
    return text


def _check_tree(data: Any, label: str, error: ErrorFactory, max_depth: int) -> None:
    """Depth, text keys and finite numbers of parsed data; iterative, shared values once."""
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            where = f"{label}: {_where(path)}" if path else label
            raise error(f"{where} is {value!r}, not a finite number; numbers must be finite")
        if not isinstance(value, dict | list):
            continue
        if len(path) >= max_depth:
            raise error(
                f"{label} nests deeper than {max_depth} levels (at {_where(path)}); "
                f"at most {max_depth} are allowed"
            )
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise error(
                        f"{label}: the key {key!r} at {_where(path)} is not text; "
                        "keys must be text (quote it)"
                    )
                stack.append((item, (*path, key)))
        else:
            stack.extend((item, (*path, index)) for index, item in enumerate(value))


# -- YAML ---------------------------------------------------------------------------------


class _YamlLimit(Exception):
    """A limit was hit while composing; carries the message tail and the position."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (pure Python: its composer's depth can be bounded), composing
    at most ``max_depth`` levels, with only JSON-like tags."""

    max_depth = MAX_NESTING_DEPTH
    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > self.max_depth + 1:  # the levels are collections; +1: a leaf
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _YamlLimit(
                    f"nests deeper than {self.max_depth} levels (line {mark.line + 1}); "
                    f"at most {self.max_depth} are allowed"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refuse_tag(loader: _Loader, node: yaml.Node) -> Any:
    mark = node.start_mark
    raise _YamlLimit(
        f"uses the YAML tag {node.tag} (line {mark.line + 1}), which is not JSON-like data; "
        "use text, numbers, booleans, lists and mappings"
    )


# Dates stay text (data, not Python objects); binary data, sets and ordered pairs are refused.
def _text(loader: _Loader, node: yaml.Node) -> str:
    return loader.construct_yaml_str(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _text)
for _tag in ("binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)


def _measure(root: yaml.Node, max_depth: int, max_nodes: int) -> None:
    """Refuse a node graph that expands (aliases followed) deeper or larger than allowed.

    Memoised per node, so shared (aliased) nodes are measured once: time and memory are
    proportional to the file, not to what it expands to.
    """
    # id(node) -> (expanded values, height in collections: 0 for a scalar)
    sizes: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def visit(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        known = sizes.get(key)
        if known is None:
            if key in active:
                mark = node.start_mark
                raise _YamlLimit(
                    f"has an alias that contains itself (line {mark.line + 1}); "
                    "recursive data is not allowed"
                )
            if isinstance(node, yaml.SequenceNode):
                children: list[yaml.Node] = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = []
            active.add(key)
            is_collection = isinstance(node, yaml.CollectionNode)
            count, height = 1, int(is_collection)
            for child in children:
                child_count, child_height = visit(child, depth + 1)
                count += child_count
                height = max(height, child_height + 1)
                if count > max_nodes:
                    break
            active.discard(key)
            known = sizes[key] = (count, height)
        count, height = known
        if depth + height > max_depth:
            raise _YamlLimit(
                f"nests deeper than {max_depth} levels once its aliases are followed; "
                f"at most {max_depth} are allowed"
            )
        if count > max_nodes:
            raise _YamlLimit(
                f"expands to more than {max_nodes:,} values once its aliases are followed; "
                f"at most {max_nodes:,} are allowed (is it an alias bomb?)"
            )
        return known

    visit(root, 0)


def _load_yaml(text: str, label: str, error: ErrorFactory, max_depth: int, max_nodes: int) -> Any:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # its reader refuses control characters here
        loader.max_depth = max_depth
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, max_depth, max_nodes)
        return loader.construct_document(node)
    except _YamlLimit as exc:
        raise error(f"{label} {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = _one_line(exc.problem or exc.context or "syntax error")
        raise error(f"{label} is not valid YAML: {problem}{where}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ReaderError (a control character), an integer too long to convert.
        raise error(f"{label} is not valid YAML: {_parse_problem(exc)}") from None
    finally:
        if loader is not None:
            loader.dispose()
