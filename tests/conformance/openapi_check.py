"""Check HTTP exchanges against a provider's published OpenAPI document.

:class:`Document` finds the operation of a request (method and path template), and validates
its JSON (or multipart) body against the operation's ``requestBody`` schema and an answer's
body against the response schema declared for its status and media type, with ``jsonschema``
(Draft 2020-12, the dialect of OpenAPI 3.1; ``$ref`` resolved inside the document). The
recording transports (:class:`Recording` for httpx, :class:`Recording2` for the openai
package's httpx2) keep every exchange an adapter makes, below its client, as sent and as
answered.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPECS = Path(__file__).parent / "specs"


@dataclass
class Exchange:
    """One request an adapter sent and the answer it got."""

    method: str
    url: str
    path: str
    request_type: str
    request_body: bytes
    status: int
    response_type: str
    response_headers: dict[str, str]
    response_body: bytes


class Recording(httpx.AsyncBaseTransport):
    """An httpx transport that records every exchange through ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request; keep it and its answer (read whole: API answers are small)."""
        sent = await request.aread()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()  # cached: the client reads the same bytes
        self.exchanges.append(_exchange(request, sent, response, body))
        return response

    async def aclose(self) -> None:
        """Close ``inner``."""
        await self.inner.aclose()


class Recording2(httpx2.AsyncBaseTransport):
    """The same, for the ``httpx2`` package the openai client is built on."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send the request; keep it and its answer."""
        sent = await request.aread()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append(_exchange(request, sent, response, body))
        return response

    async def aclose(self) -> None:
        """Close ``inner``."""
        await self.inner.aclose()


def _exchange(request: Any, sent: bytes, response: Any, body: bytes) -> Exchange:
    return Exchange(
        method=request.method,
        url=str(request.url),
        path=request.url.path,
        request_type=request.headers.get("content-type", ""),
        request_body=sent,
        status=response.status_code,
        response_type=response.headers.get("content-type", ""),
        response_headers={k.lower(): v for k, v in response.headers.items()},
        response_body=body,
    )


def _nullable(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` (left in Replicate's 3.1 document) as JSON Schema."""
    if isinstance(schema, list):
        return [_nullable(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _nullable(value) for key, value in schema.items()}
    if converted.pop("nullable", False) is True:
        kind = converted.get("type")
        if isinstance(kind, str):
            converted["type"] = [kind, "null"]
        elif kind is None:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _pointer(*parts: str) -> str:
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@dataclass(frozen=True)
class Operation:
    """An operation of the document."""

    method: str
    template: str
    spec: Mapping[str, Any]

    @property
    def name(self) -> str:
        """``METHOD /path/{param}``."""
        return f"{self.method.upper()} {self.template}"


class Document:
    """A provider's OpenAPI document, for validating exchanges.

    Args:
        filename: The document under ``specs/``.
        prefix: The path prefix of the API's server (``/v1``), stripped from request paths.
    """

    def __init__(self, filename: str, *, prefix: str = "") -> None:
        raw = json.loads((SPECS / filename).read_text(encoding="utf-8"))
        self.data: dict[str, Any] = _nullable(raw)
        self.uri = f"urn:tutopanda:conformance:{filename}"
        self.prefix = prefix
        resource = Resource.from_contents(self.data, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(self.uri, resource)
        self._routes: list[tuple[re.Pattern[str], str]] = []
        for template in self.data["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            self._routes.append((re.compile(f"^{pattern}/?$"), template))
        # Fixed paths before templated ones (/responses/input_tokens before /responses/{id}).
        self._routes.sort(key=lambda route: route[1].count("{"))

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation serving ``method path`` (the server prefix stripped), or None."""
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix) :]
        for pattern, template in self._routes:
            item = self.data["paths"][template]
            if pattern.match(path) and method.lower() in item:
                return Operation(method.lower(), template, item[method.lower()])
        return None

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in node:
            target: Any = self.data
            for part in str(node["$ref"])[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def problems(self, pointer: str, instance: Any) -> list[str]:
        """What is wrong with ``instance`` against the schema at ``pointer`` (a JSON pointer
        into the document), one line each; empty when it is valid."""
        validator = Draft202012Validator(
            {"$ref": f"{self.uri}#{pointer}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        found = []
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path)):
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            found.append(f"{where}: {error.message[:300]}")
        return found

    def request_problems(self, exchange: Exchange) -> list[str]:
        """What is wrong with the request of ``exchange`` (empty: conformant)."""
        operation = self.operation(exchange.method, exchange.path)
        if operation is None:
            return [f"{exchange.method} {exchange.path} is no operation of the document"]
        body_spec = operation.spec.get("requestBody")
        if body_spec is None:
            return [] if not exchange.request_body else [f"{operation.name} takes no body"]
        body_spec = self._resolve(body_spec)
        if not exchange.request_body:
            return [f"{operation.name} needs a body"] if body_spec.get("required") else []
        media = _media(exchange.request_type)
        content = body_spec.get("content", {})
        if media not in content:
            return [f"{operation.name} takes {', '.join(content)}, not {media!r}"]
        pointer = _pointer("paths", operation.template, operation.method, "requestBody")
        if "$ref" in operation.spec["requestBody"]:
            pointer = str(operation.spec["requestBody"]["$ref"])[1:]
        pointer += _pointer("content", media, "schema")
        if media == "multipart/form-data":
            instance: Any = multipart_fields(exchange.request_type, exchange.request_body)
        else:
            instance = json.loads(exchange.request_body)
        return [f"{operation.name} request: {p}" for p in self.problems(pointer, instance)]

    def response_problems(
        self, exchange: Exchange, *, error_schema: str | None = None
    ) -> tuple[list[str], bool]:
        """What is wrong with the answer of ``exchange``, and whether a schema checked it.

        The schema is the one declared for the answer's status (else ``default``, else
        ``{n}XX``) and media type; an answer of an error status the document declares nothing
        for is checked against ``error_schema`` (a pointer), if given. Declared headers with a
        schema (``Retry-After``) are checked too.
        """
        operation = self.operation(exchange.method, exchange.path)
        if operation is None:
            return [f"{exchange.method} {exchange.path} is no operation of the document"], False
        responses = operation.spec.get("responses", {})
        status = str(exchange.status)
        key = next(
            (k for k in (status, f"{status[0]}XX", "default") if k in responses),
            None,
        )
        media = _media(exchange.response_type)
        base = _pointer("paths", operation.template, operation.method, "responses")
        if key is None:
            if error_schema is None or exchange.status < 400:
                return [], False
            return self._body_problems(operation, error_schema, media, exchange), True
        declared = responses[key]
        pointer = base + _pointer(key)
        if "$ref" in declared:
            pointer = str(declared["$ref"])[1:]
        declared = self._resolve(declared)
        problems = []
        for name, header in (declared.get("headers") or {}).items():
            value = exchange.response_headers.get(name.lower())
            header = self._resolve(header)
            if value is None or "schema" not in header:
                continue
            schema_type = header["schema"].get("type")
            parsed: Any = value
            if schema_type in ("integer", "number"):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    parsed = value
            header_pointer = pointer + _pointer("headers", name, "schema")
            problems += [f"header {name}: {p}" for p in self.problems(header_pointer, parsed)]
        content = declared.get("content") or {}
        if not content:
            return problems, False
        if media not in content:
            declared_types = ", ".join(content)
            return [*problems, f"{operation.name} {status}: {media!r}, not {declared_types}"], True
        if "schema" not in content[media]:
            return problems, False
        schema_pointer = pointer + _pointer("content", media, "schema")
        return [*problems, *self._body_problems(operation, schema_pointer, media, exchange)], True

    def _body_problems(
        self, operation: Operation, pointer: str, media: str, exchange: Exchange
    ) -> list[str]:
        if media in ("application/octet-stream", "text/plain", "text/event-stream"):
            return []
        try:
            instance = json.loads(exchange.response_body)
        except ValueError:
            return [f"{operation.name} {exchange.status}: the body is not JSON"]
        return [
            f"{operation.name} {exchange.status}: {p}" for p in self.problems(pointer, instance)
        ]


def multipart_fields(content_type: str, body: bytes) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body: text fields as text (``metadata`` parsed
    as JSON when it is), file fields as text placeholders (the schema says ``binary``)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            fields[name] = f"<{len(payload)} bytes>"
            continue
        text = payload.decode("utf-8")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        fields[name] = value if isinstance(value, dict) else text
    return fields


def deepcopy_json(value: Any) -> Any:
    """A deep copy of JSON data (to break a body on purpose without touching the original)."""
    return copy.deepcopy(value)
