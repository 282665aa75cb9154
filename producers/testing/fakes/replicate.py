"""A fake Replicate API over HTTPS, for the official ``replicate`` client (1.0.x).

Served routes (route names in brackets, for :meth:`FakeReplicate.inject`):

* ``POST /v1/models/{owner}/{name}/predictions`` [create]: run a model by name;
* ``POST /v1/predictions`` [create]: run a model by ``version`` (an id, ``owner/name``
  or ``owner/name:id``);
* ``POST /v1/deployments/{owner}/{name}/predictions`` [create]: run a deployment (the fake
  serves a deployment named like a catalogued model as that model);
* ``GET /v1/predictions/{id}`` [get];
* ``GET /v1/predictions`` [list]: the token's predictions, newest first, :attr:`page_size`
  (100) a page, ``{"next", "previous", "results"}`` with cursor URLs; ``created_after`` and
  ``created_before`` (ISO 8601) filter them, ``source=web`` leaves none (the fake's are
  ``api``); each result has the fields the real list returns (no ``logs``, plus ``source``);
* ``POST /v1/predictions/{id}/cancel`` [cancel];
* ``GET /v1/models/{owner}/{name}`` and ``.../versions/{id}`` [model];
* ``POST /v1/files`` [upload]: a multipart upload (``content``, optional ``metadata``),
  answered 201 with the file resource (``urls.get`` is the file's API URL);
* ``GET /v1/files``, ``GET /v1/files/{id}``, ``DELETE /v1/files/{id}`` [files];
* ``GET /v1/files/{id}/download?owner=&expiry=&signature=`` [file_download]: the bytes, for a
  signed URL (:meth:`FakeReplicate.file_download_url`);
* ``GET /files/{prediction id}/out-{i}.{ext}`` [download]: the outputs, streamed.

Besides the generic faults: ``failed``/``nsfw``, ``output`` (other output URLs), ``aborted``
(the prediction ends ``aborted``, never started), ``removed`` (it succeeds with its output
data removed: ``data_removed: true``, output ``null``) and ``object`` (its output is a JSON
object) on [create] and [get]; ``lost`` on [create] (the prediction is made, then the
connection closes without an answer); ``truncate``, ``redirect`` and ``trickle`` on
[download].

As strict as the real API: a create body's unknown or misplaced top-level field (``prompt``
beside ``input``, ``version`` on a model's route) is refused 422 like any other schema error
(``- (root): Additional property prompt is not allowed``); every error answer is
``application/problem+json`` with ``title``, ``detail`` and ``status``; ``Retry-After`` is
a whole number of seconds. A prediction whose input names a file URL of this fake that does
not exist (never uploaded, deleted or expired) fails as the model could not fetch it.

Models come from the catalogue (:meth:`producers.replicate.catalogue.Catalogue.load`);
inputs are validated against each declaration's input schema, with Replicate's 422 body.
A prediction answers ``starting`` on create, then, on each GET, ``processing`` until
``latency`` seconds after its creation and ``succeeded`` (or ``failed``) after that.
``Prefer: wait=N`` on create holds the answer until the prediction finishes, or N seconds
and then answers ``starting`` (as the real API does). Output bytes are made by
:func:`producers.clients.mock.render` from :func:`producers.replicate.shape.media_hints`,
so they have the requested kind and shape.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import jsonschema
from jsonschema.exceptions import ValidationError

from producers.clients.base import MediaHints
from producers.clients.mock import answer_text, media_format, render, text_tokens
from producers.replicate.catalogue import Catalogue
from producers.replicate.declaration import ModelDeclaration
from producers.replicate.shape import media_hints
from producers.testing.fakes.base import (
    FakeServer,
    Fault,
    IncomingRequest,
    Reply,
    iter_padded,
)
from producers.testing.fixtures import FAKE_TOKEN

__all__ = ["FAKE_TOKEN", "FakeReplicate", "validation_problems"]

_TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "mp4": "video/mp4",
}
_MAX_WAIT = 60.0
_CREATE_BY_MODEL = re.compile(r"^/v1/models/([^/]+)/([^/]+)/predictions/?$")
_CREATE_BY_DEPLOYMENT = re.compile(r"^/v1/deployments/([^/]+)/([^/]+)/predictions/?$")
_FILES = re.compile(r"^/v1/files/?$")
_FILE_RESOURCE = re.compile(r"^/v1/files/([^/]+)/?$")
_FILE_DOWNLOAD = re.compile(r"^/v1/files/([^/]+)/download/?$")
#: The top-level fields of a create body, by route (the published request schemas).
_CREATE_FIELDS = frozenset(
    {"input", "stream", "webhook", "webhook_completed", "webhook_events_filter"}
)
_CREATE_BY_VERSION_FIELDS = _CREATE_FIELDS | {"version"}
#: The form fields of ``POST /v1/files``.
_UPLOAD_FIELDS = frozenset({"content", "metadata", "filename", "type"})
#: How long an uploaded file lives (the real API: a day).
DEFAULT_FILE_TTL = 24 * 3600.0
PROBLEM_JSON = "application/problem+json"
_MODEL = re.compile(r"^/v1/models/([^/]+)/([^/]+)/?$")
_VERSION = re.compile(r"^/v1/models/([^/]+)/([^/]+)/versions/([^/]+)/?$")
_PREDICTION = re.compile(r"^/v1/predictions/([^/]+)/?$")
_CANCEL = re.compile(r"^/v1/predictions/([^/]+)/cancel/?$")
_FILE = re.compile(r"^/files/([^/]+)/out-(\d+)\.(\w+)$")
_WAIT = re.compile(r"(?:^|[;,\s])wait(?:=(\d+(?:\.\d+)?))?(?:$|[;,\s])")
_TITLES = {
    401: "Unauthenticated",
    402: "Insufficient credit",
    403: "Forbidden",
    409: "Conflict",
    404: "Not found",
    422: "Input validation failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_DETAILS = {
    401: "You did not pass a valid authentication token",
    402: (
        "You have insufficient credit to run this model. Go to "
        "https://replicate.com/account/billing#billing to purchase credit. Once you purchase "
        "credit, please wait a few minutes before trying again."
    ),
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    500: "An internal error occurred. Please try again later.",
    502: "The server received an invalid response from an upstream server.",
    503: "The service is temporarily unavailable. Please try again later.",
    504: "The server did not receive a timely response from an upstream server.",
}


def _timestamp(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


def _json_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _describe(error: ValidationError) -> tuple[str, str, str]:
    """One error as Replicate (gojsonschema) words it: (type, field, description)."""
    path = [str(part) for part in error.absolute_path]
    name = ".".join(path)
    where = "input." + name if name else "input"
    rule = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.validator_value
    kind = str(error.validator)
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return "required", where, f"{missing} is required"
    if kind == "enum":
        allowed = ", ".join(_json_value(v) for v in rule.get("enum", []))
        return "enum", where, f"{name or 'input'} must be one of the following: {allowed}"
    if kind == "const":
        return "const", where, f"{name or 'input'} does not match: {_json_value(value)}"
    if kind == "type":
        expected = ", ".join(value) if isinstance(value, list) else str(value)
        given = _json_type(error.instance)
        return "invalid_type", where, f"Invalid type. Expected: {expected}, given: {given}"
    messages = {
        "minimum": ("number_gte", "Must be greater than or equal to {}"),
        "maximum": ("number_lte", "Must be less than or equal to {}"),
        "exclusiveMinimum": ("number_gt", "Must be greater than {}"),
        "exclusiveMaximum": ("number_lt", "Must be less than {}"),
        "minLength": ("string_gte", "String length must be greater than or equal to {}"),
        "maxLength": ("string_lte", "String length must be less than or equal to {}"),
        "minItems": ("array_min_items", "Array must have at least {} items"),
        "maxItems": ("array_max_items", "Array must have at most {} items"),
        "multipleOf": ("multiple_of", "Must be a multiple of {}"),
        "pattern": ("pattern", "Does not match pattern '{}'"),
        "format": ("format", "Does not match format '{}'"),
    }
    if kind in messages:
        code, template = messages[kind]
        return code, where, template.format(_number(value))
    if kind == "additionalProperties":
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        extra = sorted(set(instance) - set(rule.get("properties", {})))
        text = ", ".join(extra) or "?"
        return (
            "additional_property_not_allowed",
            where,
            f"Additional property {text} is not allowed",
        )
    return kind, where, error.message


def validation_problems(declaration: ModelDeclaration, payload: Any) -> list[tuple[str, str, str]]:
    """Validate ``payload`` against the model's input schema, as Replicate does.

    Returns:
        ``(type, field, description)`` per problem, sorted by field; empty if valid.
    """
    if not isinstance(payload, Mapping):
        return [
            (
                "invalid_type",
                "input",
                "Invalid type. Expected: object, given: " + _json_type(payload),
            )
        ]
    validator = jsonschema.Draft202012Validator(declaration.resolved_schema)
    errors = sorted(
        validator.iter_errors(dict(payload)),
        key=lambda e: (list(map(str, e.absolute_path)), str(e.validator)),
    )
    return [_describe(error) for error in errors]


@dataclass
class _Prediction:
    """One prediction's state."""

    id: str
    declaration: ModelDeclaration
    version: str
    input: dict[str, Any]
    hints: MediaHints
    created: float
    latency: float
    status: str = "starting"
    started: float | None = None
    completed: float | None = None
    error: str | None = None
    fail_with: str | None = None
    output_urls: list[str] = field(default_factory=list)
    #: ``aborted``: it ends aborted, never started (an ``aborted`` fault).
    end_with: str | None = None
    #: Its output data was removed (a ``removed`` fault): output null, input and logs gone.
    data_removed: bool = False
    #: An output to answer instead of the URLs (an ``object`` fault).
    output_value: Any = None

    @property
    def finishes_at(self) -> float:
        """When the prediction reaches its final state (unless canceled)."""
        return self.created + self.latency


@dataclass
class UploadedFile:
    """A file uploaded with ``POST /v1/files``.

    Attributes:
        id: Its id.
        name: The filename sent.
        content_type: The content type sent (``application/octet-stream`` if none).
        data: The bytes.
        metadata: The metadata sent (``{}`` if none).
        created: When it was uploaded.
        expires: When it expires.
        deleted: True once ``DELETE`` removed it.
    """

    id: str
    name: str
    content_type: str
    data: bytes
    metadata: dict[str, Any]
    created: float
    expires: float
    deleted: bool = False

    def alive(self, now: float | None = None) -> bool:
        """Not deleted and not expired."""
        return not self.deleted and (time.time() if now is None else now) < self.expires


class FakeReplicate(FakeServer):
    """A fake Replicate API (HTTPS) for the official ``replicate`` client.

    Use ``replicate.Client(api_token=FAKE_TOKEN, base_url=fake.base_url)`` with
    ``SSL_CERT_FILE`` set to :func:`producers.testing.fakes.tls.ca_bundle_path`.

    Args:
        token: The API token to expect (None: any Bearer token).
        latency: Seconds from creation until a prediction finishes.
        catalogue: The models served (default: :meth:`Catalogue.load`).
        host: The address to listen on.
        port: The port (0: a free one).
        tls: Serve HTTPS (needed for ``FileOutput``; plain HTTP outputs come back as str).

    Attributes:
        latency: Seconds from creation until a prediction finishes (new predictions).
        big_output_bytes: If set, every output is padded to this many bytes, streamed from
            a generator (for download benchmarks).
    """

    provider = "replicate"
    routes = (
        "create",
        "get",
        "list",
        "cancel",
        "model",
        "download",
        "upload",
        "files",
        "file_download",
    )
    route_faults: ClassVar[Mapping[str, frozenset[str]]] = {
        "lost": frozenset({"create"}),
        "failed": frozenset({"create", "get"}),
        "output": frozenset({"create", "get"}),
        "aborted": frozenset({"create", "get"}),
        "removed": frozenset({"create", "get"}),
        "object": frozenset({"create", "get"}),
        "truncate": frozenset({"download"}),
        "redirect": frozenset({"download"}),
        "trickle": frozenset({"download"}),
    }

    def __init__(
        self,
        *,
        token: str | None = FAKE_TOKEN,
        latency: float = 0.0,
        catalogue: Catalogue | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
    ) -> None:
        super().__init__(host=host, port=port, tls=tls)
        self.token = token
        self.latency = latency
        self.big_output_bytes: int | None = None
        self.catalogue = catalogue if catalogue is not None else Catalogue.load()
        self._by_version = {d.version: d for d in self.catalogue if d.version}
        self._secret_fields = frozenset(name for d in self.catalogue for name in d.secret_fields)
        self._predictions: dict[str, _Prediction] = {}
        self._files: dict[tuple[str, int], bytes] = {}
        self._uploads: dict[str, UploadedFile] = {}
        self.file_ttl = DEFAULT_FILE_TTL
        self._signing_key = secrets.token_bytes(32)
        self.owner = "fake-owner"
        #: Results per page of ``GET /v1/predictions`` (the real API: 100).
        self.page_size = 100

    # -- settings and state -------------------------------------------------------------------

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Change ``latency``, ``big_output_bytes``, ``token`` or ``file_ttl`` at run time."""
        unknown = set(settings) - {"latency", "big_output_bytes", "token", "file_ttl"}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        with self._lock:
            if "latency" in settings:
                self.latency = max(0.0, float(settings["latency"]))
            if "big_output_bytes" in settings:
                big = settings["big_output_bytes"]
                self.big_output_bytes = None if big is None else int(big)
            if "token" in settings:
                token = settings["token"]
                self.token = None if token is None else str(token)
            if "file_ttl" in settings:
                self.file_ttl = max(0.0, float(settings["file_ttl"]))

    def settings(self) -> dict[str, Any]:
        """The current settings (the token itself is not shown)."""
        return {
            "latency": self.latency,
            "big_output_bytes": self.big_output_bytes,
            "token_required": self.token is not None,
            "file_ttl": self.file_ttl,
        }

    def reset_state(self) -> None:
        """Forget every prediction, rendered file and uploaded file."""
        with self._lock:
            self._predictions.clear()
            self._files.clear()
            self._uploads.clear()

    def prediction(self, prediction_id: str) -> dict[str, Any]:
        """The current JSON of a prediction (as ``GET`` would answer, without advancing it).

        Raises:
            KeyError: For an unknown id.
        """
        with self._lock:
            return self._json(self._predictions[prediction_id])

    def max_in_flight(self) -> int:
        """The most predictions that were running at once (created, not yet finished or
        canceled), over every prediction since the last reset: what a client's concurrency
        limit bounds. A prediction ending as another starts does not count as overlapping."""
        with self._lock:
            spans = [
                (
                    p.created,
                    p.completed if p.status == "canceled" and p.completed else p.finishes_at,
                )
                for p in self._predictions.values()
            ]
        events = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
        running = peak = 0
        for _, step in events:
            running += step
            peak = max(peak, running)
        return peak

    @property
    def uploaded_files(self) -> list[UploadedFile]:
        """The files uploaded since the last reset (deleted ones too), oldest first."""
        with self._lock:
            return list(self._uploads.values())

    def file_url(self, file_id: str) -> str:
        """The API URL of an uploaded file (its ``urls.get``)."""
        return f"{self.base_url}/v1/files/{file_id}"

    def file_download_url(self, file_id: str, *, expiry: int | None = None) -> str:
        """A signed ``/v1/files/{id}/download`` URL (HMAC-SHA256 of ``owner id expiry``)."""
        expiry = int(time.time() + 3600) if expiry is None else expiry
        signature = self._signature(file_id, expiry)
        return (
            f"{self.base_url}/v1/files/{file_id}/download?owner={quote(self.owner)}"
            f"&expiry={expiry}&signature={quote(signature, safe='')}"
        )

    def _signature(self, file_id: str, expiry: int) -> str:
        message = f"{self.owner} {file_id} {expiry}".encode()
        digest = hmac.new(self._signing_key, message, hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")

    @property
    def prediction_ids(self) -> list[str]:
        """Ids of the predictions created, oldest first."""
        with self._lock:
            return list(self._predictions)

    def mask_body(self, route: str | None, body: Any) -> Any:
        """Mask the model's secret input fields (e.g. ``openai_api_key``) in the log."""
        if route != "create" or not isinstance(body, Mapping):
            return body
        inputs = body.get("input")
        if not isinstance(inputs, Mapping):
            return body
        if not self._secret_fields & set(inputs):
            return body
        masked = {k: ("***" if k in self._secret_fields else v) for k, v in inputs.items()}
        return {**body, "input": masked}

    # -- routing ------------------------------------------------------------------------------

    def route_of(self, method: str, path: str) -> str | None:
        """The route name of a request."""
        if method == "POST" and (
            path.rstrip("/") == "/v1/predictions"
            or _CREATE_BY_MODEL.match(path)
            or _CREATE_BY_DEPLOYMENT.match(path)
        ):
            return "create"
        if method == "POST" and _FILES.match(path):
            return "upload"
        if method in ("GET", "HEAD") and _FILE_DOWNLOAD.match(path):
            return "file_download"
        if (method in ("GET", "HEAD") and _FILES.match(path)) or (
            method in ("GET", "HEAD", "DELETE") and _FILE_RESOURCE.match(path)
        ):
            return "files"
        if method == "POST" and _CANCEL.match(path):
            return "cancel"
        if method in ("GET", "HEAD") and _PREDICTION.match(path):
            return "get"
        if method in ("GET", "HEAD") and path.rstrip("/") == "/v1/predictions":
            return "list"
        if method in ("GET", "HEAD") and (_MODEL.match(path) or _VERSION.match(path)):
            return "model"
        if method in ("GET", "HEAD") and _FILE.match(path):
            return "download"
        return None

    def error_reply(
        self, request: IncomingRequest, status: int, fault: Fault | None = None
    ) -> Reply:
        """Replicate's problem-details error body (``application/problem+json``):
        ``{"title", "detail", "status"}``; ``Retry-After`` in whole seconds (rounded up)."""
        headers = dict(fault.headers) if fault is not None else {}
        detail = _DETAILS.get(status, HTTPStatus(status).phrase)
        if fault is not None and fault.retry_after is not None:
            seconds = max(0, math.ceil(fault.retry_after))
            headers["Retry-After"] = str(seconds)
            if status == 429:
                unit = "second" if seconds == 1 else "seconds"
                detail = f"Request was throttled. Expected available in {seconds} {unit}."
        elif status == 429:
            detail = "Request was throttled."
        title = _TITLES.get(status, HTTPStatus(status).phrase)
        return self._problem(status, title, detail, headers=headers)

    def _apply(self, request: IncomingRequest, fault: Fault | None) -> Reply:
        """Apply ``fault`` as every fake does, then keep ``Retry-After`` a whole number of
        seconds (rounded up) and a fault's own JSON error body ``application/problem+json``,
        as Replicate sends them."""
        reply = super()._apply(request, fault)
        value = reply.headers.get("Retry-After")
        if value is not None and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
            reply.headers["Retry-After"] = str(math.ceil(float(value)))
        if fault is not None and fault.kind == "status" and fault.body is not None:
            try:
                is_problem = isinstance(json.loads(fault.body), dict)
            except ValueError:
                is_problem = False  # e.g. a proxy's HTML page: sent as it is
            if is_problem:
                reply.headers["Content-Type"] = PROBLEM_JSON
        return reply

    def not_found(self, request: IncomingRequest | None, detail: str = "Not found.") -> Reply:
        """Replicate's 404."""
        return self._problem(404, "Not found", detail)

    def _problem(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> Reply:
        """A problem-details answer (``application/problem+json``)."""
        body = {"title": title, "detail": detail, "status": status, **extra}
        return Reply.json(status, body, {**(headers or {}), "Content-Type": PROBLEM_JSON})

    def _schema_problem(self, problems: list[tuple[str, str, str]]) -> Reply:
        """Replicate's 422 for a request that fails its schema (gojsonschema's words)."""
        detail = "".join(f"- {where}: {text}\n" for _, where, text in problems)
        return self._problem(
            422,
            "Input validation failed",
            detail,
            invalid_fields=[
                {"type": kind, "field": where, "description": text}
                for kind, where, text in problems
            ],
        )

    def _authorised(self, request: IncomingRequest) -> bool:
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token.strip():
            return False
        return self.token is None or token.strip() == self.token

    def dispatch(self, request: IncomingRequest, fault: Fault | None) -> Reply:
        """Answer one Replicate API request."""
        route = request.route
        if route == "download":
            return self._download(request, fault)
        if route == "file_download":
            return self._file_download(request)
        if route is None:
            return self.not_found(request)
        if not self._authorised(request):
            return self.error_reply(request, 401)
        if route == "create":
            return self._create(request, fault)
        if route == "model":
            return self._model(request)
        if route == "upload":
            return self._upload(request)
        if route == "files":
            return self._file_resource(request)
        if route == "list":
            return self._list(request)
        match = _CANCEL.match(request.path) or _PREDICTION.match(request.path)
        assert match is not None
        prediction_id = match.group(1)
        if route == "cancel":
            return self._cancel(prediction_id)
        return self._get(prediction_id, fault)

    # -- models -------------------------------------------------------------------------------

    def _version_id(self, declaration: ModelDeclaration) -> str:
        if declaration.version:
            return declaration.version
        return hashlib.sha256(f"fake-version:{declaration.model}".encode()).hexdigest()

    def _version_json(self, declaration: ModelDeclaration) -> dict[str, Any]:
        item = {"type": "string", "format": "uri"}
        output: dict[str, Any] = (
            {"type": "array", "items": item, "title": "Output"}
            if declaration.output.multiple
            else {**item, "title": "Output"}
        )
        if declaration.output.media == "text":  # as Cog publishes an LLM's streamed output
            output = {
                "type": "array",
                "items": {"type": "string"},
                "title": "Output",
                "x-cog-array-type": "iterator",
                "x-cog-array-display": "concatenate",
            }
        schemas = {**declaration.schema_components, "Input": declaration.input_schema}
        schemas["Output"] = output
        return {
            "id": self._version_id(declaration),
            "created_at": "2025-01-01T00:00:00.000000Z",
            "cog_version": "0.14.0",
            "openapi_schema": {
                "openapi": "3.0.2",
                "info": {"title": "Cog", "version": "0.1.0"},
                "paths": {},
                "components": {"schemas": schemas},
            },
        }

    def _model(self, request: IncomingRequest) -> Reply:
        version_match = _VERSION.match(request.path)
        match = version_match or _MODEL.match(request.path)
        assert match is not None
        name = f"{match.group(1)}/{match.group(2)}"
        declaration = self.catalogue.get(name)
        if declaration is None:
            return self.not_found(request, f"Model {name} not found.")
        version = self._version_json(declaration)
        if version_match is not None:
            if version_match.group(3) != version["id"]:
                return self.not_found(request, f"Version {version_match.group(3)} not found.")
            return Reply.json(200, version)
        owner, model_name = declaration.model.split("/", 1)
        return Reply.json(
            200,
            {
                "url": f"https://replicate.com/{declaration.model}",
                "owner": owner,
                "name": model_name,
                "description": declaration.description,
                "visibility": "public",
                "github_url": None,
                "paper_url": None,
                "license_url": None,
                "run_count": 0,
                "cover_image_url": None,
                "default_example": None,
                "latest_version": version,
            },
        )

    def _body_problems(self, request: IncomingRequest) -> list[tuple[str, str, str]]:
        """A create body's top-level problems, as Replicate's request schema finds them: not
        a JSON object, ``input`` missing, an unknown or misplaced field."""
        body = request.json
        if not isinstance(body, Mapping):
            given = "null" if body is None and request.body else _json_type(body)
            if body is None and not request.body:
                given = "null"
            return [("invalid_type", "(root)", f"Invalid type. Expected: object, given: {given}")]
        by_version = request.path.rstrip("/") == "/v1/predictions"
        allowed = _CREATE_BY_VERSION_FIELDS if by_version else _CREATE_FIELDS
        problems = [
            (
                "additional_property_not_allowed",
                "(root)",
                f"Additional property {name} is not allowed",
            )
            for name in sorted(set(body) - allowed)
        ]
        if "input" not in body:
            problems.insert(0, ("required", "(root)", "input is required"))
        return problems

    def _resolve(self, request: IncomingRequest) -> ModelDeclaration | Reply:
        by_model = _CREATE_BY_MODEL.match(request.path)
        if by_model is not None:
            name = f"{by_model.group(1)}/{by_model.group(2)}"
            declaration = self.catalogue.get(name)
            if declaration is None:
                return self.not_found(request, f"Model {name} not found.")
            return declaration
        by_deployment = _CREATE_BY_DEPLOYMENT.match(request.path)
        if by_deployment is not None:
            name = f"{by_deployment.group(1)}/{by_deployment.group(2)}"
            declaration = self.catalogue.get(name)
            if declaration is None:
                return self.not_found(request, f"Deployment {name} not found.")
            return declaration
        body = request.json if isinstance(request.json, Mapping) else {}
        version = body.get("version")
        if not isinstance(version, str) or not version:
            return self._problem(
                422,
                "Input validation failed",
                "- (root): version is required\n",
                invalid_fields=[
                    {"type": "required", "field": "(root)", "description": "version is required"}
                ],
            )
        found: ModelDeclaration | None
        if ":" in version:
            name, _, version_id = version.partition(":")
            found = self.catalogue.get(name)
            if found is not None and self._version_id(found) != version_id:
                found = None
        elif "/" in version:
            found = self.catalogue.get(version)
        else:
            found = self._by_version.get(version)
        if found is None:
            return self._problem(
                422,
                "Invalid version or not permitted",
                "- version: Invalid version or not permitted\n",
                invalid_fields=[
                    {
                        "type": "invalid_version",
                        "field": "version",
                        "description": "Invalid version or not permitted",
                    }
                ],
            )
        return found

    # -- predictions --------------------------------------------------------------------------

    def _json(self, p: _Prediction) -> dict[str, Any]:
        base = self.base_url
        output: Any = None
        removed = p.data_removed and p.status in _TERMINAL
        if p.status == "succeeded" and not removed:
            if p.output_value is not None:
                output = p.output_value
            else:
                output = p.output_urls if p.declaration.output.multiple else p.output_urls[0]
        logs = ""
        if p.status not in ("starting", "aborted") and not removed:
            logs = "Using seed: 42\n"
            if p.status == "processing":
                logs += "  0%|          | 0/28 [00:00<?, ?it/s]\n"
            elif p.status == "succeeded":
                logs += "100%|██████████| 28/28 [00:01<00:00, 20.00it/s]\n"
            elif p.status == "failed":
                logs += f"Traceback (most recent call last):\nRuntimeError: {p.error}\n"
        metrics: dict[str, Any] = {}
        if p.status in _TERMINAL and p.started is not None and p.completed is not None:
            metrics["predict_time"] = round(max(p.completed - p.started, 0.0), 6)
            metrics["total_time"] = round(max(p.completed - p.created, 0.0), 6)
        answer: dict[str, Any] = {
            "id": p.id,
            "model": p.declaration.model,
            "version": p.version,
            "input": {} if removed else p.input,
            "logs": logs,
            "output": output,
            "data_removed": removed,
            "error": p.error,
            "status": p.status,
            "created_at": _timestamp(p.created),
            "started_at": _timestamp(p.started),
            "completed_at": _timestamp(p.completed),
            "urls": {
                "get": f"{base}/v1/predictions/{p.id}",
                "cancel": f"{base}/v1/predictions/{p.id}/cancel",
                "web": f"https://replicate.com/p/{p.id}",
            },
            "metrics": metrics,
        }
        # The real API leaves out the times that have not happened yet (its document types
        # them as strings, never null).
        for key in ("started_at", "completed_at"):
            if answer[key] is None:
                del answer[key]
        return answer

    def _advance(self, p: _Prediction, now: float, *, polled: bool) -> None:
        """Move a prediction along its lifecycle (call with the lock held)."""
        if p.status in _TERMINAL:
            return
        if now >= p.finishes_at and p.end_with == "aborted":
            # It ended before it started: no start time, no predict_time, nothing billed.
            p.status = "aborted"
            p.started = None
            p.completed = max(p.finishes_at, p.created)
        elif now >= p.finishes_at:
            p.started = p.started if p.started is not None else p.created
            p.completed = max(p.finishes_at, p.started)
            if p.fail_with is not None:
                p.status = "failed"
                p.error = p.fail_with
            else:
                p.status = "succeeded"
        elif polled:
            p.status = "processing"
            if p.started is None:
                p.started = now

    def _create(self, request: IncomingRequest, fault: Fault | None) -> Reply:
        body_problems = self._body_problems(request)
        if body_problems:
            return self._schema_problem(body_problems)
        resolved = self._resolve(request)
        if isinstance(resolved, Reply):
            return resolved
        declaration = resolved
        body = request.json if isinstance(request.json, Mapping) else {}
        payload = body.get("input", {})
        problems = validation_problems(declaration, payload)
        if problems:
            return self._schema_problem(problems)
        hints = media_hints(declaration, payload)
        now = time.time()
        prediction = _Prediction(
            id=_new_id(),
            declaration=declaration,
            version=self._version_id(declaration),
            input=dict(payload),
            hints=hints,
            created=now,
            latency=self.latency,
            fail_with=fault.error
            if fault is not None and fault.kind == "failed"
            else self._missing_input_file(payload),
        )
        ext = media_format(hints)
        prediction.output_urls = [
            f"{self.base_url}/files/{prediction.id}/out-{i}.{ext}"
            for i in range(max(1, hints.count))
        ]
        if fault is not None and fault.kind == "output":
            prediction.output_urls = list(fault.urls)
        if hints.media == "text":  # an LLM streams tokens: its output is the list of them
            given = fault.urls if fault is not None and fault.kind == "output" else None
            prediction.output_value = list(given) if given else _llm_tokens(hints)
        if fault is not None:
            self._apply_end_fault(prediction, fault)
        with self._lock:
            self._predictions[prediction.id] = prediction
        if fault is not None and fault.kind == "lost":
            return Reply(drop=True)  # made (and paid for); the answer never leaves
        wait = self._prefer_wait(request.header("prefer"))
        if wait is not None:
            return self._hold(prediction, wait)
        with self._lock:
            return Reply.json(201, self._json(prediction))

    @staticmethod
    def _prefer_wait(header: str) -> float | None:
        match = _WAIT.search(header.strip()) if header else None
        if match is None:
            return None
        seconds = float(match.group(1)) if match.group(1) else _MAX_WAIT
        return min(max(seconds, 1.0), _MAX_WAIT)

    def _hold(self, prediction: _Prediction, wait: float) -> Reply:
        """Answer a ``Prefer: wait`` create: finished in time, or ``starting`` after ``wait``."""
        deadline = time.time() + wait
        while True:
            with self._lock:
                now = time.time()
                if prediction.status in _TERMINAL or now >= prediction.finishes_at:
                    self._advance(prediction, now, polled=True)
                    return Reply.json(201, self._json(prediction))
                if now >= deadline:
                    # The real API answers "starting" when the wait runs out, even if the
                    # prediction is processing; replicate-python relies on that.
                    data = self._json(prediction)
                    data["status"] = "starting"
                    return Reply.json(201, data)
                pause = min(prediction.finishes_at, deadline) - now
            if not self.sleep(min(pause, 0.05)):
                return Reply(drop=True)

    def _get(self, prediction_id: str, fault: Fault | None) -> Reply:
        with self._lock:
            prediction = self._predictions.get(prediction_id)
            if prediction is None:
                return self.not_found(None)
            if fault is not None and fault.kind == "failed" and prediction.status not in _TERMINAL:
                prediction.fail_with = fault.error
                prediction.latency = 0.0
            if fault is not None and fault.kind == "output":
                prediction.output_urls = list(fault.urls)
            if fault is not None and prediction.status not in _TERMINAL:
                if self._apply_end_fault(prediction, fault) and fault.kind != "object":
                    prediction.latency = 0.0  # it ends now
            elif (
                fault is not None
                and prediction.status == "succeeded"
                and (fault.kind in ("removed", "object"))
            ):
                self._apply_end_fault(prediction, fault)
            self._advance(prediction, time.time(), polled=True)
            return Reply.json(200, self._json(prediction))

    @staticmethod
    def _apply_end_fault(prediction: _Prediction, fault: Fault) -> bool:
        """Arm an ``aborted``, ``removed`` or ``object`` fault on a prediction; True if it
        was one of them."""
        if fault.kind == "aborted":
            prediction.end_with = "aborted"
        elif fault.kind == "removed":
            prediction.data_removed = True
        elif fault.kind == "object":
            prediction.output_value = json.loads(fault.body or "{}")
        else:
            return False
        return True

    def _missing_input_file(self, payload: Any) -> str | None:
        """The error of a prediction whose input names a file URL of this fake that does not
        exist (never uploaded, deleted or expired): the model cannot fetch it."""
        if not isinstance(payload, Mapping):
            return None
        prefix = f"{self.base_url}/v1/files/"
        now = time.time()
        for name, value in payload.items():
            for item in value if isinstance(value, list) else [value]:
                if not isinstance(item, str) or not item.startswith(prefix):
                    continue
                file_id = item[len(prefix) :].split("?", 1)[0].split("/", 1)[0]
                with self._lock:
                    found = self._uploads.get(file_id)
                if found is None or not found.alive(now):
                    return f"{name}: failed to download {item}: 404 Not Found"
        return None

    def _list_item(self, p: _Prediction) -> dict[str, Any]:
        """A prediction as the list shows it: the fields of ``GET /v1/predictions`` in the
        API's document (no ``logs``), with ``source``."""
        item = self._json(p)
        del item["logs"]
        item["source"] = "api"
        return item

    def _list(self, request: IncomingRequest) -> Reply:
        """``GET /v1/predictions``: the predictions, newest first, one page at a time."""
        bounds: dict[str, float] = {}
        for name in ("created_after", "created_before"):
            given = request.query.get(name)
            if not given:
                continue
            when = _parse_time(given[-1])
            if when is None:
                return self._problem(
                    400, "Bad request", f"{name}: {given[-1][:60]!r} is not an ISO 8601 date-time"
                )
            bounds[name] = when
        sources = request.query.get("source")
        source = sources[-1] if sources else None
        if source not in (None, "web"):
            return self._problem(400, "Bad request", f"source: {source[:20]!r} is not one of: web")
        try:
            cursor = _read_cursor((request.query.get("cursor") or [""])[-1])
        except ValueError:
            return self._problem(400, "Bad request", "cursor: not a cursor of this list")
        after = bounds.get("created_after", -math.inf)
        before = bounds.get("created_before", math.inf)
        now = time.time()
        with self._lock:
            for prediction in self._predictions.values():
                self._advance(prediction, now, polled=False)
            listed = sorted(
                (
                    p
                    for p in self._predictions.values()
                    if after <= p.created < before and source is None
                ),
                key=_list_key,
                reverse=True,
            )
            size = max(1, self.page_size)
            if cursor is None:
                page = listed[:size]
            elif cursor[0] == "next":  # older than the cursor
                page = [p for p in listed if _list_key(p) < cursor[1]][:size]
            else:  # newer than the cursor: the page just before it
                page = [p for p in listed if _list_key(p) > cursor[1]][-size:]
            results = [self._list_item(p) for p in page]
        older = bool(page) and _list_key(listed[-1]) < _list_key(page[-1])
        newer = cursor is not None and bool(page) and _list_key(listed[0]) > _list_key(page[0])
        kept = {k: v[-1] for k, v in request.query.items() if k != "cursor" and v}
        return Reply.json(
            200,
            {
                "next": self._list_url(kept, "next", _list_key(page[-1])) if older else None,
                "previous": self._list_url(kept, "previous", _list_key(page[0])) if newer else None,
                "results": results,
            },
        )

    def _list_url(self, query: Mapping[str, str], way: str, key: tuple[float, str]) -> str:
        raw = json.dumps([way, key[0], key[1]]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        return f"{self.base_url}/v1/predictions?{urlencode({**query, 'cursor': cursor})}"

    def _cancel(self, prediction_id: str) -> Reply:
        with self._lock:
            prediction = self._predictions.get(prediction_id)
            if prediction is None:
                return self.not_found(None)
            now = time.time()
            self._advance(prediction, now, polled=False)
            if prediction.status not in _TERMINAL:
                prediction.status = "canceled"
                prediction.started = prediction.started or prediction.created
                prediction.completed = now
            return Reply.json(200, self._json(prediction))

    # -- files --------------------------------------------------------------------------------

    def _file_json(self, record: UploadedFile) -> dict[str, Any]:
        """A file resource as the real API answers it."""
        return {
            "id": record.id,
            "name": record.name,
            "content_type": record.content_type,
            "size": len(record.data),
            "etag": hashlib.md5(record.data, usedforsecurity=False).hexdigest(),
            "checksums": {
                "sha256": hashlib.sha256(record.data).hexdigest(),
                "md5": hashlib.md5(record.data, usedforsecurity=False).hexdigest(),
            },
            "metadata": record.metadata,
            "created_at": _timestamp(record.created),
            "expires_at": _timestamp(record.expires),
            "urls": {"get": self.file_url(record.id)},
        }

    def _upload(self, request: IncomingRequest) -> Reply:
        """``POST /v1/files``: a multipart upload of ``content`` (its filename and type) and
        optional ``metadata`` (a JSON object); answered 201 with the file resource."""
        parts = _multipart(request.header("content-type"), request.body)
        if parts is None:
            return self._schema_problem([("required", "content", "content is required")])
        fields: dict[str, tuple[dict[str, str], bytes, str | None]] = {}
        problems: list[tuple[str, str, str]] = []
        for headers, data in parts:
            name, filename = _disposition(headers.get("content-disposition", ""))
            if name not in _UPLOAD_FIELDS:
                text = f"Additional property {name or '?'} is not allowed"
                problems.append(("additional_property_not_allowed", "(root)", text))
            else:
                fields[name] = (headers, data, filename)
        if "content" not in fields:
            problems.insert(0, ("required", "content", "content is required"))
        metadata: Any = {}
        if "metadata" in fields:
            try:
                metadata = json.loads(fields["metadata"][1] or b"{}")
            except ValueError:
                metadata = None
            if not isinstance(metadata, dict):
                given = _json_type(metadata) if metadata is not None else "string"
                text = f"Invalid type. Expected: object, given: {given}"
                problems.append(("invalid_type", "metadata", text))
        if problems:
            return self._schema_problem(problems)
        headers, data, filename = fields["content"]
        name = filename or "file"
        if "filename" in fields:
            name = fields["filename"][1].decode("utf-8", "replace").strip() or name
        if len(name.encode("utf-8")) > 255:
            text = "String length must be less than or equal to 255"
            return self._schema_problem([("string_lte", "filename", text)])
        content_type = headers.get("content-type") or "application/octet-stream"
        if "type" in fields:
            content_type = fields["type"][1].decode("utf-8", "replace").strip() or content_type
        now = time.time()
        record = UploadedFile(
            id=base64.urlsafe_b64encode(secrets.token_bytes(27)).decode("ascii"),
            name=name,
            content_type=content_type,
            data=data,
            metadata=metadata,
            created=now,
            expires=now + self.file_ttl,
        )
        with self._lock:
            self._uploads[record.id] = record
        return Reply.json(201, self._file_json(record))

    def _file_resource(self, request: IncomingRequest) -> Reply:
        """``GET /v1/files`` (the list), ``GET`` and ``DELETE /v1/files/{id}``."""
        now = time.time()
        match = _FILE_RESOURCE.match(request.path)
        if match is None:
            with self._lock:
                alive = [f for f in self._uploads.values() if f.alive(now)]
            results = [self._file_json(f) for f in reversed(alive)]
            return Reply.json(200, {"next": None, "previous": None, "results": results})
        with self._lock:
            record = self._uploads.get(match.group(1))
            if record is None or not record.alive(now):
                return self.not_found(request)
            if request.method == "DELETE":
                record.deleted = True
                return Reply(204, {}, b"")
            return Reply.json(200, self._file_json(record))

    def _file_download(self, request: IncomingRequest) -> Reply:
        """``GET /v1/files/{id}/download?owner=&expiry=&signature=``: the bytes, for a valid
        signature (HMAC-SHA256 of ``owner id expiry``) before ``expiry``."""
        match = _FILE_DOWNLOAD.match(request.path)
        assert match is not None
        file_id = match.group(1)
        query = {k: v[0] for k, v in request.query.items() if v}
        missing = [n for n in ("owner", "expiry", "signature") if not query.get(n)]
        if missing:
            return self._schema_problem([("required", n, f"{n} is required") for n in missing])
        try:
            expiry = int(query["expiry"])
        except ValueError:
            text = "Invalid type. Expected: integer, given: string"
            return self._schema_problem([("invalid_type", "expiry", text)])
        expected = self._signature(file_id, expiry)
        if (
            query["owner"] != self.owner
            or not hmac.compare_digest(query["signature"], expected)
            or expiry < time.time()
        ):
            return self._problem(403, "Forbidden", "Invalid or expired signature.")
        with self._lock:
            record = self._uploads.get(file_id)
        if record is None or not record.alive():
            return self.not_found(request)
        return Reply(200, {"Content-Type": record.content_type}, record.data)

    # -- downloads ----------------------------------------------------------------------------

    def _file_bytes(self, prediction: _Prediction, index: int) -> bytes:
        key = (prediction.id, index)
        with self._lock:
            cached = self._files.get(key)
        if cached is not None:
            return cached
        blob = render(prediction.hints, index)
        with self._lock:
            self._files[key] = blob
        return blob

    def _download(self, request: IncomingRequest, fault: Fault | None) -> Reply:
        match = _FILE.match(request.path)
        assert match is not None
        prediction_id, index, ext = match.group(1), int(match.group(2)), match.group(3)
        with self._lock:
            prediction = self._predictions.get(prediction_id)
            big = self.big_output_bytes
        if (
            prediction is None
            or prediction.status != "succeeded"
            or index >= len(prediction.output_urls)
            or not prediction.output_urls[index].endswith(f".{ext}")
        ):
            return Reply(404, {"Content-Type": "text/plain"}, b"Not Found")
        if fault is not None and fault.kind == "redirect":
            location = {"Location": fault.urls[0], "Content-Type": "text/plain"}
            return Reply(fault.status_code or 302, location, b"")
        blob = self._file_bytes(prediction, index)
        headers = {"Content-Type": _CONTENT_TYPES.get(ext, "application/octet-stream")}
        total = max(big, len(blob)) if big is not None else len(blob)
        if fault is not None and fault.kind == "trickle":
            trickle = self._trickle(blob, fault.seconds)
            return Reply(200, headers, None, stream=trickle, length=len(blob))
        reply = Reply(200, headers, body=None, stream=_chunks(blob, total), length=total)
        if fault is not None and fault.kind == "truncate":
            keep = fault.keep_bytes if fault.keep_bytes is not None else total // 2
            reply.truncate_at = min(keep, max(total - 1, 0))
        return reply

    def _trickle(self, blob: bytes, seconds: float) -> Iterator[bytes]:
        """One byte of ``blob`` every ``seconds`` (stops early when the fake stops)."""
        for offset in range(len(blob)):
            if not self.sleep(seconds):
                return
            yield blob[offset : offset + 1]


_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^";\s]+))', re.IGNORECASE)
_DISPOSITION_NAME = re.compile(r'(?:^|;)\s*name="([^"]*)"', re.IGNORECASE)
_DISPOSITION_FILENAME = re.compile(r'(?:^|;)\s*filename="([^"]*)"', re.IGNORECASE)


def _list_key(p: _Prediction) -> tuple[float, str]:
    return (p.created, p.id)


def _parse_time(text: str) -> float | None:
    """An ISO 8601 date-time (``Z`` or an offset; naive: UTC) as Unix time, else None."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _read_cursor(text: str) -> tuple[str, tuple[float, str]] | None:
    """A list cursor: ``(way, (created, id))``; None for none.

    Raises:
        ValueError: Not a cursor this fake made.
    """
    if not text:
        return None
    try:
        way, created, prediction_id = json.loads(
            base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        )
    except (ValueError, TypeError):
        raise ValueError("not a cursor") from None
    if way not in ("next", "previous") or not isinstance(prediction_id, str):
        raise ValueError("not a cursor")
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise ValueError("not a cursor")
    return str(way), (float(created), prediction_id)


def _multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]] | None:
    """The parts of a ``multipart/form-data`` body (headers lower-cased, bytes exact), or
    None if it is not one."""
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        return None
    delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        return None
    parts: list[tuple[dict[str, str], bytes]] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            return None
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip():
                headers[key.strip().lower()] = value.strip()
        parts.append((headers, data.removesuffix(b"\r\n")))
    return None  # no closing delimiter


def _disposition(value: str) -> tuple[str, str | None]:
    """The ``name`` and ``filename`` of a ``Content-Disposition: form-data`` header."""
    name = _DISPOSITION_NAME.search(value)
    filename = _DISPOSITION_FILENAME.search(value)
    return (name.group(1) if name else "", filename.group(1) if filename else None)


def _llm_tokens(hints: MediaHints) -> list[str]:
    """An LLM's answer as Replicate sends it, a list of tokens: JSON valid against the schema
    its system prompt carries (:func:`producers.replicate.shape.json_instruction`), else a
    few words from the prompt."""
    try:
        text = answer_text(hints)
    except ValueError:  # no answer satisfies the schema: the model answers anyway
        text = answer_text(hints.model_copy(update={"json_schema": None}))
    return text_tokens(text)


def _chunks(blob: bytes, total: int) -> Iterator[bytes]:
    """The file's bytes, padded with zeros to ``total`` (trailing bytes media readers skip)."""
    if total <= len(blob):
        yield blob
        return
    yield from iter_padded(blob, total)
