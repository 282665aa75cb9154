"""Parsing ``KEY=VALUE`` options of the CLI into typed values."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import typer

_STRING_GENERAL = {"prompt", "negative_prompt", "aspect_ratio", "voice", "language", "image"}


def _coerce(raw: str, expected: Any) -> Any:
    types = expected if isinstance(expected, list) else [expected]
    if "string" in types and "array" not in types:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_pairs(
    pairs: Iterable[str],
    *,
    option: str,
    types: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; values are JSON when they parse as JSON,
    except where the field is known to be a string."""
    out: dict[str, Any] = {}
    types = types or {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        expected = "string" if key in _STRING_GENERAL and not types else types.get(key)
        if key in _STRING_GENERAL and option == "--set":
            expected = "string"
        out[key] = _coerce(raw, expected)
    return out
