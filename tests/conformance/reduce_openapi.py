"""Reduce a provider's published OpenAPI document to the operations we use.

OpenAI's document is about 3 MB; the conformance test needs only the operations our adapters
call and every component they reference (transitively). Refresh the vendored copy with::

    python tests/conformance/reduce_openapi.py openapi.yaml \
        tests/conformance/specs/openai.responses.json \
        "post /responses" "get /responses/{response_id}"

where ``openapi.yaml`` is the full document (see ``specs/SOURCE``). The output is JSON, the
operations and components unchanged, plus an ``x-reduced`` note naming what was kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(text, Loader=loader)
    if not isinstance(data, dict):
        raise SystemExit(f"{path} is not an OpenAPI document")
    return data


def _refs(value: Any) -> Iterator[str]:
    """Every local ``$ref`` in ``value``."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            yield ref
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def reduce(document: dict[str, Any], operations: list[str]) -> dict[str, Any]:
    """The document with only ``operations`` (``"post /responses"``) and what they use."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        method, _, path = operation.partition(" ")
        method = method.lower()
        if method not in _METHODS or path not in document.get("paths", {}):
            raise SystemExit(f"no operation {operation!r} in the document")
        item = document["paths"][path]
        if method not in item:
            raise SystemExit(f"no operation {operation!r} in the document")
        kept = paths.setdefault(path, {k: v for k, v in item.items() if k not in _METHODS})
        kept[method] = item[method]
    components: dict[str, dict[str, Any]] = {}
    pending = list(_refs(paths))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts = ref[2:].split("/")
        if parts[0] != "components" or len(parts) < 3:
            raise SystemExit(f"unexpected reference {ref}")
        target = _resolve(document, "#/" + "/".join(parts[:3]))
        components.setdefault(parts[1], {})[parts[2]] = target
        pending.extend(_refs(target))
    reduced = {key: document[key] for key in ("openapi", "info", "servers") if key in document}
    reduced["x-reduced"] = {
        "operations": operations,
        "note": "reduced by tests/conformance/reduce_openapi.py; operations and components "
        "are copied unchanged",
    }
    reduced["paths"] = paths
    reduced["components"] = {
        kind: dict(sorted(items.items())) for kind, items in components.items()
    }
    return reduced


def main(argv: list[str] | None = None) -> int:
    """Command line: source document, output file, operations."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("operations", nargs="+", help='e.g. "post /responses"')
    args = parser.parse_args(argv)
    reduced = reduce(_load(args.source), list(args.operations))
    args.output.write_text(json.dumps(reduced, indent=1, ensure_ascii=False) + "\n", "utf-8")
    count = sum(len(items) for items in reduced["components"].values())
    print(f"{args.output}: {len(args.operations)} operations, {count} components")
    return 0


if __name__ == "__main__":
    sys.exit(main())
