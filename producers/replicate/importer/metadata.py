"""Step 1: read the metadata, in either of the two forms a provider publishes.

* form 1: ``model``, ``category``, ``cost`` (price text), ``median_seconds`` and
  ``input_schema`` (the model's JSON Schema for its input);
* form 2: Replicate's model metadata: ``model`` (or ``owner`` + ``name``), ``category``,
  ``description``, ``version``, ``openapi_schema`` (or ``latest_version.openapi_schema``)
  with ``components.schemas.Input``/``Output``, and ``default_example`` (a real prediction).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from producers.replicate.importer.report import import_error

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class Metadata:
    """What the metadata says, whichever form it came in.

    Attributes:
        model: ``owner/name``.
        version: The version id (form 2), if any.
        category: The provider's category text (``Image Models``), if any.
        description: The model's description, if any.
        cost_text: The published price text, if any.
        median_seconds: The latency: published, else the example prediction's time.
        median_from_example: True if ``median_seconds`` is one example's predict time.
        example_seconds: The example prediction's ``metrics.predict_time``, if any (what an
            upper bound of the price is computed from).
        hardware: The hardware the metadata says the model runs on (``hardware``: a name
            such as ``gpu-l40s`` or ``Nvidia L40S GPU``), if any.
        input_schema: The input schema as published (not normalised).
        components: Form 2's ``components.schemas`` (empty for form 1).
        output_schema: Form 2's Output schema, if any.
        example_output: The example prediction's output, if any.
        origin: The metadata's own ``source`` text, if any.
        form: 1 or 2.
    """

    model: str
    version: str | None
    category: str | None
    description: str | None
    cost_text: str | None
    median_seconds: float | None
    median_from_example: bool
    input_schema: dict[str, Any]
    components: dict[str, Any]
    output_schema: dict[str, Any] | None
    example_output: Any
    origin: str | None
    form: int
    example_seconds: float | None = None
    hardware: str | None = None


def _model_name(data: Mapping[str, Any], source: str) -> str:
    model = data.get("model")
    if not isinstance(model, str):
        owner, name = data.get("owner"), data.get("name")
        if isinstance(owner, str) and isinstance(name, str) and owner and name:
            model = f"{owner}/{name}"
    if not isinstance(model, str) or not model.strip():
        keys = ", ".join(sorted(map(str, data))) or "none"
        raise import_error(
            source,
            "no model name: expected 'model': 'owner/name' (or 'owner' and 'name'); "
            f"top-level keys: {keys}",
        )
    model = model.strip()
    if ":" in model and _MODEL_NAME.match(model.split(":", 1)[0]):
        model = model.split(":", 1)[0]  # "owner/name:version" -> "owner/name"
    if not _MODEL_NAME.match(model):
        raise import_error(source, f"model name {model!r} is not of the form owner/name")
    return model


def read_metadata(data: Any, source: str) -> Metadata:
    """Read the parsed metadata of one model.

    Args:
        data: The parsed metadata document.
        source: Where it came from, for messages.

    Returns:
        What the metadata says.

    Raises:
        DeclarationError: not an object, no model name, no input schema, or an input
            schema without fields.
    """
    if not isinstance(data, Mapping):
        raise import_error(
            source, f"expected a JSON object at the top level, got {type(data).__name__}"
        )
    model = _model_name(data, source)
    latest = data.get("latest_version")
    latest = latest if isinstance(latest, Mapping) else {}
    openapi = data.get("openapi_schema", latest.get("openapi_schema"))
    version = data.get("version", latest.get("id"))
    output_schema: dict[str, Any] | None = None
    components: dict[str, Any] = {}
    if isinstance(openapi, Mapping):
        schemas = openapi.get("components", {})
        schemas = schemas.get("schemas") if isinstance(schemas, Mapping) else None
        if not isinstance(schemas, Mapping) or not isinstance(schemas.get("Input"), Mapping):
            raise import_error(source, f"{model}: openapi_schema has no components.schemas.Input")
        components = {str(k): v for k, v in schemas.items()}
        input_schema = dict(schemas["Input"])
        if isinstance(schemas.get("Output"), Mapping):
            output_schema = dict(schemas["Output"])
        form = 2
    elif isinstance(data.get("input_schema"), Mapping):
        input_schema = dict(data["input_schema"])
        form = 1
    else:
        raise import_error(
            source,
            f"{model}: no input schema: expected 'input_schema' (a JSON Schema of the input) "
            "or 'openapi_schema' with components.schemas.Input (Replicate's OpenAPI document)",
        )
    props = input_schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        raise import_error(source, f"{model}: the input schema has no properties (no input fields)")

    example = data.get("default_example")
    example = example if isinstance(example, Mapping) else {}
    metrics = example.get("metrics")
    example_seconds = _seconds(
        metrics.get("predict_time") if isinstance(metrics, Mapping) else None
    )
    median: float | None = None
    from_example = False
    raw_median = data.get("median_seconds")
    if isinstance(raw_median, int | float) and not isinstance(raw_median, bool):
        median = float(raw_median)
    elif example_seconds is not None:
        median, from_example = round(example_seconds, 1), True

    cost = data.get("cost", data.get("price"))
    category = data.get("category")
    description = data.get("description")
    origin = data.get("source")
    return Metadata(
        model=model,
        version=version if isinstance(version, str) and version else None,
        category=category if isinstance(category, str) and category.strip() else None,
        description=description.strip()
        if isinstance(description, str) and description.strip()
        else None,
        cost_text=cost.strip() if isinstance(cost, str) else None,
        median_seconds=median,
        median_from_example=from_example,
        input_schema=input_schema,
        components=components,
        output_schema=output_schema,
        example_output=example.get("output"),
        origin=origin if isinstance(origin, str) else None,
        form=form,
        example_seconds=example_seconds,
        hardware=_hardware(data.get("hardware")),
    )


def _seconds(value: Any) -> float | None:
    """A positive, finite number of seconds, else None (the metadata is untrusted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return round(seconds, 3) if math.isfinite(seconds) and seconds > 0 else None


def _hardware(value: Any) -> str | None:
    """The hardware name in the metadata: a string, or an object with ``sku`` or ``name``."""
    if isinstance(value, Mapping):
        value = value.get("sku", value.get("name"))
    if isinstance(value, str) and value.strip() and len(value) <= 100:
        return value.strip()
    return None


def example_urls(output: Any) -> list[str]:
    """The URLs (or file names) in an example prediction's output."""
    if isinstance(output, str):
        return [output]
    if isinstance(output, list):
        return [item for item in output if isinstance(item, str)]
    if isinstance(output, Mapping):
        return [item for item in output.values() if isinstance(item, str)]
    return []


def extension(url: str) -> str | None:
    """The lower-case file extension of a URL or file name (``jpeg`` reads as ``jpg``)."""
    path = urlparse(url).path if "://" in url else url
    match = re.search(r"\.([A-Za-z0-9]{2,5})$", path)
    if not match:
        return None
    ext = match.group(1).lower()
    return "jpg" if ext == "jpeg" else ext
