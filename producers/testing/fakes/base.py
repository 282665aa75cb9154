"""The threaded HTTP(S) server, request log and fault queue that every fake provider shares.

A fake runs in-process in a background thread (``with FakeReplicate() as fake: ...``) on
127.0.0.1 and a free port unless told otherwise. Every request to the provider API is
recorded (:attr:`FakeServer.requests`, secrets masked) and may consume a :class:`Fault`
armed with :meth:`FakeServer.inject`. The same is reachable over HTTP so that a fake
started from the command line can be driven by another process:

* ``GET /__fake__/health``: provider and base URL;
* ``GET /__fake__/requests``: the request log;
* ``GET /__fake__/faults``, ``POST /__fake__/faults``, ``DELETE /__fake__/faults``: the
  armed faults (the POST body is one fault, ``{"kind": "status", "status": 429,
  "retry_after": 2, "route": "create", "times": 1}``, or ``{"faults": [...]}``);
* ``POST /__fake__/config``: change settings (``{"latency": 2.0}``);
* ``POST /__fake__/reset``: forget requests, faults and provider state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, cast, get_args
from urllib.parse import parse_qs, urlsplit

from producers.testing.fakes import tls

__all__ = [
    "CONTROL_PREFIX",
    "ArmedFault",
    "FakeServer",
    "Fault",
    "FaultKind",
    "IncomingRequest",
    "RecordedRequest",
    "Reply",
    "mask_secret",
]

logger = logging.getLogger(__name__)

#: Path prefix of the control endpoints (never recorded, never faulted).
CONTROL_PREFIX = "/__fake__/"
#: Bytes written per ``write`` when streaming a body.
STREAM_CHUNK = 256 * 1024
#: Headers whose values are secrets, masked in the request log.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "openai-api-key"})
NSFW_ERROR = "NSFW content detected. Try running it again, or try a different prompt."
DEFAULT_MALFORMED_BODY = "<html><body><h1>502 Bad Gateway</h1></body></html>"

FaultKind = Literal[
    "status", "slow", "drop", "malformed", "failed", "truncate", "output", "redirect", "trickle",
    "aborted", "removed", "object", "quota", "no_message", "lost",
]  # fmt: skip
_FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
#: Kinds every route understands; the others are provider-specific.
GENERIC_FAULTS = frozenset({"status", "slow", "drop", "malformed"})
_KEY_PREFIX = re.compile(r"^((?:[A-Za-z0-9]+[-_]){1,2})")


def mask_secret(value: str) -> str:
    """Mask a key or an ``Authorization`` value, keeping its scheme, prefix and last 4 chars.

    ``"Bearer sk-test-FAKE-0123456789abcdef"`` becomes ``"Bearer sk-test-***cdef"``.
    """
    scheme, sep, secret = value.partition(" ")
    if not sep:
        scheme, secret = "", value
    secret = secret.strip()
    if len(secret) <= 8:
        masked = "***"
    else:
        match = _KEY_PREFIX.match(secret)
        prefix = match.group(1) if match and len(match.group(1)) < len(secret) - 4 else ""
        masked = f"{prefix}***{secret[-4:]}"
    return f"{scheme} {masked}" if scheme else masked


@dataclass(frozen=True)
class Fault:
    """A fault a fake applies to one matching request instead of (or before) its answer.

    Build one with the class methods: :meth:`status` (an error answer, ``Retry-After``
    optional), :meth:`slow` (answer late), :meth:`drop` (close the connection without an
    answer), :meth:`malformed` (200 with a body that is not JSON), :meth:`failed` and
    :meth:`nsfw` (Replicate: the prediction ends ``failed``), :meth:`truncated`
    (Replicate downloads: fewer bytes than ``Content-Length``, then close), :meth:`output`
    (Replicate: the prediction's outputs are given URLs), :meth:`redirect` (Replicate
    downloads: a redirect to a given URL), :meth:`trickle` (Replicate downloads: one byte
    every few seconds), :meth:`aborted` (Replicate: the prediction ends ``aborted``, before
    it started), :meth:`removed` (Replicate: a finished prediction's output data was removed,
    ``data_removed: true``, output ``null``), :meth:`object_output` (Replicate: the output is
    a JSON object), :meth:`quota` (OpenAI: 429 ``insufficient_quota``, the account is out of
    credit), :meth:`no_message` (OpenAI: a completed response with no ``message`` item),
    :meth:`lost` (Replicate: the prediction is made, then the connection closes unanswered).

    Attributes:
        kind: What happens.
        status_code: The HTTP status of a ``status`` fault.
        retry_after: The ``Retry-After`` header value (seconds), if any.
        seconds: How long a ``slow`` fault sleeps before answering.
        error: The prediction error text of a ``failed`` fault.
        body: A raw body overriding the provider's error body (``status``, ``malformed``).
        headers: Extra response headers.
        keep_bytes: How many bytes a ``truncated`` download sends (default: half).
        urls: The outputs of an ``output`` fault; the ``Location`` of a ``redirect`` fault.
    """

    kind: FaultKind
    status_code: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    error: str | None = None
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    keep_bytes: int | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer with HTTP ``code`` and the provider's error body.

        Args:
            code: The HTTP status (429, 500, 502, 503, 504, 401, ...).
            retry_after: Seconds for the ``Retry-After`` header (an integer is sent as
                one: replicate-python only honours digits).
            body: A raw body to send instead of the provider's error JSON.
            headers: Extra response headers (e.g. ``{"x-should-retry": "false"}``).
        """
        if not 400 <= code <= 599:
            raise ValueError(f"a status fault needs a 4xx or 5xx code, not {code}")
        return cls(
            "status",
            status_code=code,
            retry_after=retry_after,
            body=body,
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Sleep ``seconds`` before answering normally (to exceed a client timeout)."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        return cls("slow", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without sending any answer."""
        return cls("drop")

    @classmethod
    def malformed(cls, body: str = DEFAULT_MALFORMED_BODY) -> Fault:
        """Answer 200 ``application/json`` with a body that is not JSON."""
        return cls("malformed", body=body)

    @classmethod
    def failed(cls, error: str = "CUDA out of memory") -> Fault:
        """Replicate (``create``/``get``): the prediction ends ``failed`` with ``error``."""
        return cls("failed", error=error)

    @classmethod
    def nsfw(cls) -> Fault:
        """Replicate (``create``/``get``): the prediction is blocked by the safety filter."""
        return cls("failed", error=NSFW_ERROR)

    @classmethod
    def truncated(cls, keep_bytes: int | None = None) -> Fault:
        """Replicate (``download``): send ``keep_bytes`` (default half) of the file, close."""
        if keep_bytes is not None and keep_bytes < 0:
            raise ValueError("keep_bytes must not be negative")
        return cls("truncate", keep_bytes=keep_bytes)

    @classmethod
    def output(cls, *urls: str) -> Fault:
        """Replicate (``create``/``get``): the prediction succeeds with ``urls`` as its
        outputs (one per output) instead of the fake's own files: another host, an ``http:``
        URL, a ``data:`` URI, whatever a compromised or confused provider could answer."""
        if not urls:
            raise ValueError("an output fault needs at least one URL")
        return cls("output", urls=tuple(urls))

    @classmethod
    def redirect(cls, url: str, *, status: int = 302) -> Fault:
        """Replicate (``download``): answer ``status`` with ``Location: url`` (relative or
        absolute), as a CDN redirecting to another host would."""
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"a redirect needs a 3xx redirect status, not {status}")
        return cls("redirect", status_code=status, urls=(url,))

    @classmethod
    def trickle(cls, seconds: float) -> Fault:
        """Replicate (``download``): send the file one byte every ``seconds`` seconds (with
        its full ``Content-Length``), as a stalling or hostile server would."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        return cls("trickle", seconds=seconds)

    @classmethod
    def aborted(cls) -> Fault:
        """Replicate (``create``/``get``): the prediction ends ``aborted``: it ended before it
        started (e.g. its deadline passed while queued)."""
        return cls("aborted")

    @classmethod
    def removed(cls) -> Fault:
        """Replicate (``create``/``get``): the prediction succeeded, but its output data has
        been removed (``data_removed: true``, ``output: null``)."""
        return cls("removed")

    @classmethod
    def object_output(cls, value: Mapping[str, Any]) -> Fault:
        """Replicate (``create``/``get``): the prediction succeeds with ``value`` (a JSON
        object) as its output, instead of a URL or a list of URLs."""
        return cls("object", body=json.dumps(dict(value)))

    @classmethod
    def quota(cls) -> Fault:
        """OpenAI: answer 429 ``insufficient_quota`` (out of credit or past the spend limit),
        with the API's real error body."""
        return cls("quota", status_code=429)

    @classmethod
    def no_message(cls) -> Fault:
        """OpenAI (``responses``): a ``completed`` response whose output holds no ``message``
        item (only reasoning), so it has no text."""
        return cls("no_message")

    @classmethod
    def lost(cls) -> Fault:
        """Replicate (``create``): the provider makes the prediction (it runs and is paid
        for), then the connection closes without an answer: the client never hears its id.
        ``drop`` closes it before anything is made."""
        return cls("lost")

    def to_dict(self) -> dict[str, Any]:
        """The fault as JSON-compatible data (what ``POST /__fake__/faults`` accepts)."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.status_code is not None:
            data["status"] = self.status_code
        if self.retry_after is not None:
            data["retry_after"] = self.retry_after
        if self.kind in ("slow", "trickle"):
            data["seconds"] = self.seconds
        if self.error is not None:
            data["error"] = self.error
        if self.body is not None:
            data["body"] = self.body
        if self.headers:
            data["headers"] = dict(self.headers)
        if self.keep_bytes is not None:
            data["keep_bytes"] = self.keep_bytes
        if self.urls:
            data["urls"] = list(self.urls)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from :meth:`to_dict` data; ``{"kind": "nsfw"}`` is accepted too.

        Raises:
            ValueError: For an unknown kind or a bad field.
        """
        kind = str(data.get("kind", ""))
        try:
            if kind == "status":
                if "status" not in data:
                    raise ValueError("a status fault needs 'status'")
                retry = data.get("retry_after")
                return cls.status(
                    int(data["status"]),
                    retry_after=None if retry is None else float(retry),
                    body=data.get("body"),
                    headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
                )
            if kind == "slow":
                return cls.slow(float(data.get("seconds", 0.0)))
            if kind == "drop":
                return cls.drop()
            if kind == "malformed":
                return cls.malformed(str(data.get("body") or DEFAULT_MALFORMED_BODY))
            if kind == "failed":
                return cls.failed(str(data.get("error") or "CUDA out of memory"))
            if kind == "nsfw":
                return cls.nsfw()
            if kind in ("truncate", "truncated"):
                keep = data.get("keep_bytes")
                return cls.truncated(None if keep is None else int(keep))
            if kind == "output":
                return cls.output(*[str(url) for url in data.get("urls") or []])
            if kind == "redirect":
                urls = data.get("urls") or []
                if not urls:
                    raise ValueError("a redirect fault needs 'urls' (its Location)")
                return cls.redirect(str(urls[0]), status=int(data.get("status", 302)))
            if kind == "trickle":
                return cls.trickle(float(data.get("seconds", 1.0)))
            if kind == "aborted":
                return cls.aborted()
            if kind == "removed":
                return cls.removed()
            if kind == "object":
                value = data.get("value")
                if value is None and data.get("body"):
                    value = json.loads(str(data["body"]))
                if not isinstance(value, Mapping):
                    raise ValueError("an object fault needs 'value' (a JSON object)")
                return cls.object_output(value)
            if kind == "quota":
                return cls.quota()
            if kind == "no_message":
                return cls.no_message()
            if kind == "lost":
                return cls.lost()
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"bad {kind} fault: {exc}") from None
        allowed = ", ".join([*_FAULT_KINDS, "nsfw"])
        raise ValueError(f"unknown fault kind {kind!r}; allowed: {allowed}")


@dataclass
class ArmedFault:
    """A fault waiting in the queue: it applies to ``route`` (None: any) ``times`` more times."""

    fault: Fault
    route: str | None
    times: int
    path_contains: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible data."""
        return {
            **self.fault.to_dict(),
            "route": self.route,
            "times": self.times,
            "path_contains": self.path_contains,
        }


@dataclass
class RecordedRequest:
    """One request the fake received (control endpoints excluded).

    Attributes:
        method: The HTTP method.
        path: The path (no query string).
        route: The route name (``create``, ``get``, ``cancel``, ``download``, ``model``,
            ``responses``, ...) or None for a path the fake does not serve.
        headers: The request headers, lower-cased, secrets masked.
        json: The JSON body (secret fields masked), or None.
        at: When it arrived (``time.time()``).
        fault: The kind of fault applied, if any.
        status: The HTTP status answered (None: the connection was dropped).
    """

    method: str
    path: str
    route: str | None
    headers: dict[str, str]
    json: Any
    at: float
    fault: str | None = None
    status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible data."""
        return asdict(self)


@dataclass(frozen=True)
class IncomingRequest:
    """A parsed request handed to a fake's :meth:`FakeServer.dispatch`."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    route: str | None

    def header(self, name: str, default: str = "") -> str:
        """A header value (case-insensitive)."""
        return self.headers.get(name.lower(), default)


@dataclass
class Reply:
    """What the handler sends back.

    Attributes:
        status: The HTTP status.
        headers: Response headers (``Content-Length`` is added).
        body: The whole body, or None when ``stream`` is used.
        stream: Body chunks, with ``length`` bytes in all.
        length: The ``Content-Length`` of a streamed body.
        truncate_at: Send only this many body bytes, then close the connection.
        drop: Close the connection without answering.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = b""
    stream: Iterable[bytes] | None = None
    length: int | None = None
    truncate_at: int | None = None
    drop: bool = False

    @classmethod
    def json(cls, status: int, data: Any, headers: Mapping[str, str] | None = None) -> Reply:
        """A JSON answer."""
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return cls(status, {"Content-Type": "application/json", **(headers or {})}, body)

    @property
    def content_length(self) -> int:
        """The declared body length."""
        if self.stream is not None:
            return int(self.length or 0)
        return len(self.body or b"")


def _retry_after_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler: reads a request, asks the fake, writes the reply."""

    protocol_version = "HTTP/1.1"
    server: _Server
    #: Idle keep-alive connections are closed after this many seconds.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537).split(b";", 1)[0].strip()
                size = int(size_line or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        headers = {key.lower(): value for key, value in self.headers.items()}
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                parsed = None
        request = IncomingRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=headers,
            body=body,
            json=parsed,
            route=None,
        )
        try:
            reply = self.server.fake._answer(request)
        except Exception:
            logger.exception("the fake failed to answer %s %s", self.command, parts.path)
            reply = Reply.json(500, {"error": "the fake server failed; see its log"})
        self._write(reply)

    def _abort(self) -> None:
        """Close the TCP connection at once (no TLS close_notify, no answer)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write(self, reply: Reply) -> None:
        if reply.drop:
            self._abort()
            return
        chunks: Iterable[bytes] = reply.stream if reply.stream is not None else [reply.body or b""]
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(reply.content_length))
            self.end_headers()
            if self.command != "HEAD":
                self._write_body(chunks, reply.truncate_at)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()
        if reply.truncate_at is not None:
            self._abort()

    def _write_body(self, chunks: Iterable[bytes], limit: int | None) -> None:
        remaining = limit
        for chunk in chunks:
            for start in range(0, len(chunk), STREAM_CHUNK):
                piece = chunk[start : start + STREAM_CHUNK]
                if remaining is not None:
                    piece = piece[:remaining]
                    remaining -= len(piece)
                if piece:
                    self.wfile.write(piece)
                if remaining == 0:
                    return


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that does the TLS handshake in the worker thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        fake: FakeServer,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(10)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ssl.SSLError) as exc:
                logger.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("error while serving %s", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Shut every open connection down (frees threads waiting on idle keep-alives)."""
        with self.connections_lock:
            connections = list(self.connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class FakeServer:
    """A fake provider API on a background thread: request log, faults, control endpoints.

    Subclasses define :attr:`provider`, :attr:`routes`, :meth:`route_of`,
    :meth:`dispatch` and :meth:`error_reply`, and may override :attr:`route_faults`,
    :meth:`configure`, :meth:`settings`, :meth:`reset_state` and :meth:`mask_body`.

    Args:
        host: The address to listen on.
        port: The port (0: a free one).
        tls: Serve HTTPS with the test CA of :mod:`producers.testing.fakes.tls`.
    """

    provider: ClassVar[str] = "fake"
    #: Every route name the fake serves.
    routes: ClassVar[tuple[str, ...]] = ()
    #: Provider-specific fault kinds and the routes they apply to.
    route_faults: ClassVar[Mapping[str, frozenset[str]]] = {}

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, tls: bool = False) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._faults: list[ArmedFault] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the port and serve in a background thread.

        Returns:
            The fake itself (so ``fake = FakeReplicate().start()`` works).
        """
        if self._server is not None:
            return self
        context = tls.server_ssl_context() if self.tls else None
        self._stopping.clear()
        server = _Server((self.host, self.port), self, context)
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{self.provider}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while serving."""
        return self._server is not None

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.tls else "http"

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` with no trailing slash (a wildcard host shows as loopback)."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, path: str) -> str:
        """An absolute URL on this fake."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- request log -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, route: str | None = None, *, method: str | None = None) -> int:
        """How many requests matched ``route`` (None: any) and ``method`` (None: any)."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (route is None or r.route == route) and (method is None or r.method == method)
            )

    def statuses(self, route: str | None = None) -> list[int | None]:
        """The statuses answered to ``route`` (None: any), oldest first."""
        with self._lock:
            return [r.status for r in self._requests if route is None or r.route == route]

    # -- faults ----------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        route: str | None = None,
        times: int = 1,
        path_contains: str | None = None,
    ) -> None:
        """Arm ``fault`` for the next ``times`` requests to ``route`` (None: any route),
        optionally only those whose path contains ``path_contains`` (e.g. one model's name).

        Faults are consumed first armed, first used; a request consumes at most one.

        Raises:
            ValueError: For an unknown route, a fault kind the route cannot take, or
                ``times < 1``.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        if route is not None and route not in self.routes:
            raise ValueError(
                f"unknown route {route!r} for the fake {self.provider}; "
                f"routes: {', '.join(self.routes)}"
            )
        if fault.kind not in GENERIC_FAULTS:
            allowed = self.route_faults.get(fault.kind)
            if allowed is None:
                raise ValueError(f"the fake {self.provider} has no {fault.kind!r} fault")
            if route is not None and route not in allowed:
                raise ValueError(
                    f"a {fault.kind!r} fault applies to the routes {', '.join(sorted(allowed))}, "
                    f"not {route!r}"
                )
        with self._lock:
            self._faults.append(
                ArmedFault(fault=fault, route=route, times=times, path_contains=path_contains)
            )

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[ArmedFault]:
        """The armed faults, in the order they will be used."""
        with self._lock:
            return [ArmedFault(a.fault, a.route, a.times, a.path_contains) for a in self._faults]

    def _take_fault(self, route: str | None, path: str = "") -> Fault | None:
        with self._lock:
            for armed in self._faults:
                if armed.route is not None and armed.route != route:
                    continue
                if armed.path_contains is not None and armed.path_contains not in path:
                    continue
                kind = armed.fault.kind
                if kind not in GENERIC_FAULTS and route not in self.route_faults.get(
                    kind, frozenset()
                ):
                    continue
                armed.times -= 1
                if armed.times <= 0:
                    self._faults.remove(armed)
                return armed.fault
        return None

    def reset(self) -> None:
        """Forget the request log, the armed faults and the provider state."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self.reset_state()

    # -- hooks for subclasses ---------------------------------------------------------------

    def route_of(self, method: str, path: str) -> str | None:
        """The route name of a request, or None if the fake does not serve it."""
        return None

    def dispatch(self, request: IncomingRequest, fault: Fault | None) -> Reply:
        """Answer a provider request; ``fault`` is a provider-specific fault, if any."""
        return self.not_found(request)

    def error_reply(
        self, request: IncomingRequest, status: int, fault: Fault | None = None
    ) -> Reply:
        """The provider's error answer for ``status`` (``fault`` may carry Retry-After)."""
        headers = dict(fault.headers) if fault is not None else {}
        if fault is not None and fault.retry_after is not None:
            headers["Retry-After"] = _retry_after_text(fault.retry_after)
        return Reply.json(status, {"error": HTTPStatus(status).phrase}, headers)

    def not_found(self, request: IncomingRequest) -> Reply:
        """The answer to a path the fake does not serve."""
        return self.error_reply(request, 404)

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Change settings at run time (``POST /__fake__/config``).

        Raises:
            ValueError: For an unknown or bad setting.
        """
        if settings:
            raise ValueError(f"unknown settings: {', '.join(sorted(settings))}")

    def settings(self) -> dict[str, Any]:
        """The current settings."""
        return {}

    def reset_state(self) -> None:
        """Forget provider state (predictions, stored responses)."""

    def mask_body(self, route: str | None, body: Any) -> Any:
        """The JSON body as recorded (secret fields masked)."""
        return body

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False if the fake is stopping."""
        if seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    # -- request handling -----------------------------------------------------------------

    def _answer(self, request: IncomingRequest) -> Reply:
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        route = self.route_of(request.method, request.path)
        request = dataclasses.replace(request, route=route)
        fault = self._take_fault(route, request.path) if route is not None else None
        headers = {
            k: (mask_secret(v) if k in SECRET_HEADERS else v) for k, v in request.headers.items()
        }
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            route=route,
            headers=headers,
            json=self.mask_body(route, request.json),
            at=time.time(),
            fault=fault.kind if fault is not None else None,
        )
        with self._lock:
            self._requests.append(record)
        reply = self._apply(request, fault)
        with self._lock:
            record.status = None if reply.drop else reply.status
        return reply

    def _apply(self, request: IncomingRequest, fault: Fault | None) -> Reply:
        if fault is None:
            return self._dispatch(request, None)
        if fault.kind == "status":
            code = int(fault.status_code or 500)
            if fault.body is not None:
                headers = {"Content-Type": "application/json", **dict(fault.headers)}
                if fault.retry_after is not None:
                    headers["Retry-After"] = _retry_after_text(fault.retry_after)
                return Reply(code, headers, fault.body.encode("utf-8"))
            return self.error_reply(request, code, fault)
        if fault.kind == "slow":
            if not self.sleep(fault.seconds):
                return Reply(drop=True)
            return self._dispatch(request, None)
        if fault.kind == "drop":
            return Reply(drop=True)
        if fault.kind == "malformed":
            body = (fault.body or DEFAULT_MALFORMED_BODY).encode("utf-8")
            headers = {"Content-Type": "application/json", **dict(fault.headers)}
            return Reply(200, headers, body)
        return self._dispatch(request, fault)

    def _dispatch(self, request: IncomingRequest, fault: Fault | None) -> Reply:
        try:
            return self.dispatch(request, fault)
        except Exception:
            logger.exception("the fake %s failed to answer %s", self.provider, request.path)
            return self.error_reply(request, 500)

    def _control(self, request: IncomingRequest) -> Reply:
        name = request.path[len(CONTROL_PREFIX) :].strip("/")
        method = request.method
        try:
            if name == "health" and method == "GET":
                return Reply.json(200, {"provider": self.provider, "base_url": self.base_url})
            if name == "requests" and method == "GET":
                return Reply.json(200, {"requests": [r.to_dict() for r in self.requests]})
            if name == "requests" and method == "DELETE":
                with self._lock:
                    self._requests.clear()
                return Reply.json(200, {"requests": []})
            if name == "faults" and method == "GET":
                return Reply.json(200, {"faults": [a.to_dict() for a in self.faults]})
            if name == "faults" and method == "DELETE":
                self.clear_faults()
                return Reply.json(200, {"faults": []})
            if name == "faults" and method == "POST":
                body = request.json
                items = body.get("faults") if isinstance(body, Mapping) else None
                entries = items if isinstance(items, list) else [body]
                for entry in entries:
                    if not isinstance(entry, Mapping):
                        raise ValueError("a fault must be a JSON object")
                    route = entry.get("route")
                    self.inject(
                        Fault.from_dict(entry),
                        route=None if route is None else str(route),
                        times=int(entry.get("times", 1)),
                        path_contains=entry.get("path_contains"),
                    )
                return Reply.json(200, {"faults": [a.to_dict() for a in self.faults]})
            if name == "reset" and method == "POST":
                self.reset()
                return Reply.json(200, {"reset": True})
            if name == "config" and method in ("GET", "POST"):
                if method == "POST":
                    if not isinstance(request.json, Mapping):
                        raise ValueError("the config body must be a JSON object")
                    self.configure(cast(Mapping[str, Any], request.json))
                return Reply.json(200, self.settings())
        except (ValueError, TypeError) as exc:
            return Reply.json(400, {"error": str(exc)})
        return Reply.json(404, {"error": f"no control endpoint {method} {request.path}"})


def iter_padded(blob: bytes, total: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """``blob`` then zero bytes up to ``total`` bytes, in chunks (constant memory)."""
    yield blob
    padding = bytes(min(chunk, max(total - len(blob), 0)))
    left = total - len(blob)
    while left > 0:
        piece = padding if left >= len(padding) else padding[:left]
        yield piece
        left -= len(piece)
