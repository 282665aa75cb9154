"""Step 6: find the fields a job never sets: secrets, and URL-or-bytes choices.

A secret field (an API key the model forwards) is filled from a secret and masked
everywhere; a field that chooses between a URL and inline bytes is set to the URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from producers.replicate.importer.report import Notes
from producers.replicate.importer.schema import Field

_SECRET_NAME = re.compile(
    r"(^|_)(api_?key|api_?token|access_?token|auth_?token|secret(_key)?|password|hf_token|token)$"
)
_SECRET_TEXT = re.compile(r"\b(api|access|auth\w*|secret) (key|token)\b|\bpassword\b")
_TRANSPORT_VALUES = frozenset({"hex", "base64", "b64_json", "bytes", "data_uri", "binary"})


@dataclass(frozen=True)
class FixedFields:
    """What step 6 found.

    Attributes:
        secrets: Secret field -> the secret's name (``openai_api_key`` -> ``OPENAI_API_KEY``).
        defaults: Field -> the value always sent (the URL choice).
        notes: One line per secret and per default.
    """

    secrets: dict[str, str]
    defaults: dict[str, Any]
    notes: Notes


def _secret_fields(fields: Sequence[Field], raw: Mapping[str, Any]) -> dict[str, str]:
    props = raw.get("properties", {})
    secrets: dict[str, str] = {}
    for fld in fields:
        if not fld.is_string:
            continue
        original = props.get(fld.name, {}) if isinstance(props, Mapping) else {}
        flagged = isinstance(original, Mapping) and (
            original.get("x-cog-secret") is True or original.get("format") == "password"
        )
        if (
            flagged
            or _SECRET_NAME.search(fld.name.lower())
            or _SECRET_TEXT.search(fld.description.lower())
        ):
            secrets[fld.name] = re.sub(r"[^A-Z0-9]+", "_", fld.name.upper()).strip("_")
    return secrets


def _transport_defaults(fields: Sequence[Field]) -> dict[str, Any]:
    """Fields that choose between a URL and inline bytes: ask for the URL."""
    defaults: dict[str, Any] = {}
    for fld in fields:
        enum = [v for v in fld.enum or [] if isinstance(v, str)]
        lowered = {v.lower() for v in enum}
        if "url" in lowered and lowered & _TRANSPORT_VALUES:
            value = next(v for v in enum if v.lower() == "url")
            if fld.prop.get("default") != value:
                defaults[fld.name] = value
    return defaults


def find_fixed_fields(fields: Sequence[Field], raw_schema: Mapping[str, Any]) -> FixedFields:
    """Secret fields (by flag, name or description) and URL-or-bytes defaults.

    Args:
        fields: The input fields.
        raw_schema: The input schema as published (its ``x-cog-secret`` flags).
    """
    notes = Notes()
    secrets = _secret_fields(fields, raw_schema)
    for name, secret in secrets.items():
        notes.inferred.append(f"secret: {name} <- {secret}")
        notes.unconfirmed.append(
            f"secret {name}: detected from its name/description; named {secret}"
        )
    defaults = _transport_defaults(fields)
    for name, value in defaults.items():
        notes.inferred.append(
            f"default: {name}={value!r} (the field chooses between a URL and bytes)"
        )
    return FixedFields(secrets, defaults, notes)
