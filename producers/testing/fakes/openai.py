"""A fake OpenAI Responses API for the official ``openai`` client.

``POST /v1/responses`` [route ``responses``] answers with JSON valid against the request's
``text.format`` JSON schema (:func:`producers.clients.mock_json.instance_for`), or plain
text (:func:`producers.clients.mock_json.text_for`), in the real response shape: a
``reasoning`` item first for reasoning models (gpt-5 family, o-series), the model as a
dated snapshot, usage with reasoning tokens. ``GET /v1/responses/{id}`` [route
``retrieve``] returns a stored response. Point the client at
``base_url=fake.api_url`` (``fake.base_url + "/v1"``).

It refuses what the real API refuses: a parameter the API does not have, an option the
model does not take (``temperature``/``top_p`` on reasoning models, ``reasoning`` on the
others, an effort or verbosity the model does not offer) or a value out of range (see
:mod:`producers.testing.fakes.openai_params`), unknown models (404 ``model_not_found``), a
bad key (401 echoing the masked key), a strict schema whose root is not an object (or is
``anyOf``), or with an object without ``additionalProperties: false`` or with properties
missing from ``required`` (400 ``invalid_json_schema``), a misplaced parameter
(``response_format``, ``max_tokens``, ``messages``... at the top level; unknown fields inside
``text``, ``text.format`` or ``reasoning``).

Faults besides the generic ones, on [responses]: ``quota`` (429 ``insufficient_quota``,
the account is out of credit) and ``no_message`` (a completed answer with only a reasoning
item). The ``outcome`` setting (:meth:`FakeOpenAI.configure`) makes every answer end as
the real API ends one it will not finish: ``refusal`` (the message is a refusal part),
``content_filter`` (``incomplete``, reason ``content_filter``) or ``no_message``.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from producers.clients.mock_json import instance_for, text_for
from producers.testing.fakes.base import FakeServer, Fault, IncomingRequest, Reply, mask_secret
from producers.testing.fakes.openai_params import RequestError, check_parameters, is_reasoning

__all__ = ["FAKE_OPENAI_KEY", "MODEL_SNAPSHOTS", "FakeOpenAI", "strict_schema_problem"]

#: The key the fake expects by default (the one the test secret resolver hands out).
FAKE_OPENAI_KEY = "sk-test-FAKE-tutopanda-0123456789abcdef"

#: Model aliases and the dated snapshot the real API answers with.
MODEL_SNAPSHOTS: dict[str, str] = {
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "o1": "o1-2024-12-17",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
}

_REASONING_TOKENS = {"none": 0, "minimal": 0, "low": 64, "medium": 192, "high": 768, "xhigh": 1536}
_RATE_LIMITS = {"requests": 5000, "tokens": 4_000_000}
_SERVER_MESSAGES = {
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
    504: "Gateway timeout.",
}
#: The real body of a 429 for an account out of credit or past its spend limit.
QUOTA_BODY: dict[str, Any] = {
    "message": (
        "You exceeded your current quota, please check your plan and billing details. For "
        "more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors."
    ),
    "type": "insufficient_quota",
    "param": None,
    "code": "insufficient_quota",
}
#: Values of the ``outcome`` setting: how every answer ends.
OUTCOMES = ("completed", "refusal", "content_filter", "no_message")
REFUSAL_TEXT = "I'm sorry, but I can't help with that."
_RESPONSE_PATH = re.compile(r"^/v1/responses/([^/]+)/?$")
_DATED = re.compile(r"^(.*)-\d{4}-\d{2}-\d{2}$")


def _tokens(text: str) -> int:
    """A rough token count (4 characters a token), at least 1 for non-empty text."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _hex_id(prefix: str) -> str:
    return prefix + secrets.token_hex(24)


def _input_text(value: Any) -> str:
    """The text of ``input``: a string, or the text parts of a list of items."""
    if isinstance(value, str):
        return value
    parts: list[str] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, Mapping):
                content = item.get("content", item.get("text"))
                if isinstance(content, str):
                    parts.append(content)
                elif isinstance(content, list):
                    parts.extend(
                        str(piece.get("text", ""))
                        for piece in content
                        if isinstance(piece, Mapping) and "text" in piece
                    )
    return "\n".join(p for p in parts if p)


def strict_schema_problem(schema: Any, path: tuple[str, ...] = ()) -> str | None:
    """The first reason a schema is not valid for strict structured output, or None.

    The root must be an object (``type: "object"``) and not ``anyOf``; every object needs
    ``additionalProperties: false`` and all its properties in ``required`` (worded as the
    real API does, with the schema path as ``context``).
    """
    if not isinstance(schema, Mapping):
        return None
    if not path:
        kind = schema.get("type")
        if kind != "object":
            shown = kind if isinstance(kind, str) or kind is None else json.dumps(kind)
            return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{shown}\"'."
        if "anyOf" in schema:
            return "In context=(), 'anyOf' is not permitted at the root of the schema."
    kind = schema.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (
                f"In context={path!r}, 'additionalProperties' is required to be supplied "
                "and to be false."
            )
        properties = schema.get("properties") or {}
        required = schema.get("required") or []
        missing = [name for name in properties if name not in required]
        if missing:
            return (
                f"In context={path!r}, 'required' is required to be supplied and to be an "
                f"array including every key in properties. Missing '{missing[0]}'."
            )
        for name, sub in properties.items():
            problem = strict_schema_problem(sub, (*path, "properties", str(name)))
            if problem:
                return problem
    for key in ("items", "additionalItems"):
        if isinstance(schema.get(key), Mapping):
            problem = strict_schema_problem(schema[key], (*path, key))
            if problem:
                return problem
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for index, sub in enumerate(schema.get(key) or []):
            problem = strict_schema_problem(sub, (*path, key, str(index)))
            if problem:
                return problem
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            problem = strict_schema_problem(sub, (*path, key, str(name)))
            if problem:
                return problem
    return None


class FakeOpenAI(FakeServer):
    """A fake OpenAI Responses API for ``openai.OpenAI``/``openai.AsyncOpenAI``.

    Args:
        api_key: The key to expect (None: any non-empty key).
        latency: Seconds to wait before each answer (generation time).
        models: Extra model aliases and their dated snapshots.
        host: The address to listen on.
        port: The port (0: a free one).
        tls: Serve HTTPS with the test CA (default plain HTTP).

    Attributes:
        latency: Seconds to wait before each answer.
    """

    provider = "openai"
    routes = ("responses", "retrieve")
    route_faults: ClassVar[Mapping[str, frozenset[str]]] = {
        "quota": frozenset({"responses"}),
        "no_message": frozenset({"responses"}),
    }

    def __init__(
        self,
        *,
        api_key: str | None = FAKE_OPENAI_KEY,
        latency: float = 0.0,
        models: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
    ) -> None:
        super().__init__(host=host, port=port, tls=tls)
        self.api_key = api_key
        self.latency = latency
        self.models = {**MODEL_SNAPSHOTS, **(models or {})}
        self.outcome = "completed"
        self._responses: dict[str, dict[str, Any]] = {}

    @property
    def api_url(self) -> str:
        """The ``base_url`` for the openai client: ``base_url + "/v1"``."""
        return self.base_url + "/v1"

    # -- settings and state -------------------------------------------------------------------

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Change ``latency``, ``api_key`` or ``outcome`` (one of :data:`OUTCOMES`: how
        every answer ends; :meth:`reset_state` sets it back to ``completed``) at run time."""
        unknown = set(settings) - {"latency", "api_key", "outcome"}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        if "outcome" in settings and settings["outcome"] not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        with self._lock:
            if "outcome" in settings:
                self.outcome = str(settings["outcome"])
            if "latency" in settings:
                self.latency = max(0.0, float(settings["latency"]))
            if "api_key" in settings:
                key = settings["api_key"]
                self.api_key = None if key is None else str(key)

    def settings(self) -> dict[str, Any]:
        """The current settings (the key is not shown)."""
        return {
            "latency": self.latency,
            "key_required": self.api_key is not None,
            "outcome": self.outcome,
        }

    def reset_state(self) -> None:
        """Forget the stored responses; answers end ``completed`` again."""
        with self._lock:
            self._responses.clear()
            self.outcome = "completed"

    # -- routing and errors -------------------------------------------------------------------

    def route_of(self, method: str, path: str) -> str | None:
        """The route name of a request."""
        if method == "POST" and path.rstrip("/") == "/v1/responses":
            return "responses"
        if method == "GET" and _RESPONSE_PATH.match(path):
            return "retrieve"
        return None

    def _headers(self, *, remaining: int | None = None, reset: str = "12ms") -> dict[str, str]:
        limit_requests = _RATE_LIMITS["requests"]
        limit_tokens = _RATE_LIMITS["tokens"]
        left = limit_requests - 1 if remaining is None else remaining
        return {
            "x-request-id": "req_" + secrets.token_hex(16),
            "openai-version": "2020-10-01",
            "openai-processing-ms": "42",
            "x-ratelimit-limit-requests": str(limit_requests),
            "x-ratelimit-remaining-requests": str(left),
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-limit-tokens": str(limit_tokens),
            "x-ratelimit-remaining-tokens": str(limit_tokens if remaining is None else 0),
            "x-ratelimit-reset-tokens": "0s" if remaining is None else reset,
        }

    def _error(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Reply:
        return Reply.json(status, {"error": dict(body)}, {**self._headers(), **(headers or {})})

    def error_reply(
        self, request: IncomingRequest, status: int, fault: Fault | None = None
    ) -> Reply:
        """OpenAI's error body ``{"error": {"message", "type", "param", "code"}}``."""
        extra = dict(fault.headers) if fault is not None else {}
        retry = fault.retry_after if fault is not None else None
        if retry is not None:
            extra["retry-after"] = str(int(retry)) if float(retry).is_integer() else str(retry)
        if status == 429:
            wait = 1.0 if retry is None else float(retry)
            model = request.json.get("model") if isinstance(request.json, Mapping) else None
            reset = f"{wait:g}s"
            extra = {**self._headers(remaining=0, reset=reset), **extra}
            message = (
                f"Rate limit reached for {model or 'the model'} in organization org-fake on "
                f"requests per min (RPM): Limit {_RATE_LIMITS['requests']}, Used "
                f"{_RATE_LIMITS['requests']}, Requested 1. Please try again in {reset}. Visit "
                "https://platform.openai.com/account/rate-limits to learn more."
            )
            body = {
                "message": message,
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        elif status == 401:
            body = self._auth_error(request)
        elif status == 403:
            model = request.json.get("model") if isinstance(request.json, Mapping) else None
            body = {
                "message": f"Project `proj_fake` does not have access to model `{model}`",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        elif status >= 500:
            body = {
                "message": _SERVER_MESSAGES.get(status, HTTPStatus(status).phrase),
                "type": "server_error",
                "param": None,
                "code": None,
            }
        else:
            body = {
                "message": HTTPStatus(status).phrase,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        return self._error(status, body, extra)

    def _apply(self, request: IncomingRequest, fault: Fault | None) -> Reply:
        """Apply ``fault`` as every fake does; an error answer with a fault's own body still
        carries the headers every OpenAI answer has (``x-request-id``...)."""
        reply = super()._apply(request, fault)
        if fault is not None and fault.kind == "status" and not reply.drop:
            present = {name.lower() for name in reply.headers}
            for name, value in self._headers().items():
                if name.startswith(("x-request-id", "openai-")) and name not in present:
                    reply.headers[name] = value
        return reply

    def not_found(self, request: IncomingRequest) -> Reply:
        """OpenAI's answer to a path it does not serve."""
        return self._error(
            404,
            {
                "message": f"Invalid URL ({request.method} {request.path})",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            },
        )

    def _auth_error(self, request: IncomingRequest) -> dict[str, Any]:
        scheme, _, key = request.header("authorization").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return {
                "message": (
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    "YOUR_KEY). You can obtain an API key from "
                    "https://platform.openai.com/account/api-keys."
                ),
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        return {
            "message": (
                f"Incorrect API key provided: {mask_secret(key)}. You can find your API key "
                "at https://platform.openai.com/account/api-keys."
            ),
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }

    def _authorised(self, request: IncomingRequest) -> bool:
        scheme, _, key = request.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return False
        return self.api_key is None or key.strip() == self.api_key

    # -- answers ------------------------------------------------------------------------------

    def dispatch(self, request: IncomingRequest, fault: Fault | None) -> Reply:
        """Answer one Responses API request."""
        if request.route is None:
            return self.not_found(request)
        if not self._authorised(request):
            return self.error_reply(request, 401)
        if request.route == "retrieve":
            match = _RESPONSE_PATH.match(request.path)
            assert match is not None
            with self._lock:
                stored = self._responses.get(match.group(1))
            if stored is None:
                return self._error(
                    404,
                    {
                        "message": f"Response with id '{match.group(1)}' not found.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    },
                )
            return Reply.json(200, stored, self._headers())
        if fault is not None and fault.kind == "quota":
            return self._error(429, QUOTA_BODY)
        try:
            response = self._respond(request)
        except RequestError as exc:
            return self._error(exc.status, exc.body)
        outcome = "no_message" if fault is not None and fault.kind == "no_message" else None
        _end_as(response, outcome or self.outcome)
        if self.latency > 0 and not self.sleep(self.latency):
            return Reply(drop=True)
        if response.get("store", True):
            with self._lock:
                self._responses[str(response["id"])] = response
        return Reply.json(200, response, self._headers())

    def _snapshot(self, model: str) -> str:
        if model in self.models:
            return self.models[model]
        dated = _DATED.match(model)
        if dated and (dated.group(1) in self.models or model in self.models.values()):
            return model
        raise RequestError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )

    def _respond(self, request: IncomingRequest) -> dict[str, Any]:
        body = request.json
        if not isinstance(body, Mapping):
            raise RequestError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.)",
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError(
                400,
                "Missing required parameter: 'model'.",
                param="model",
                code="missing_required_parameter",
            )
        snapshot = self._snapshot(model)
        dated = _DATED.match(model)
        alias = dated.group(1) if dated else model
        check_parameters(body, alias)
        reasoning_model = is_reasoning(model)
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), Mapping) else None
        effort = str((reasoning or {}).get("effort") or "medium")
        max_tokens = body.get("max_output_tokens")
        if "input" not in body:
            raise RequestError(
                400,
                "Missing required parameter: 'input'.",
                param="input",
                code="missing_required_parameter",
            )
        prompt = _input_text(body.get("input"))
        instructions = body.get("instructions")
        raw_text = body.get("text")
        text_config: Mapping[str, Any] = raw_text if isinstance(raw_text, Mapping) else {}
        raw_format = text_config.get("format")
        fmt: Mapping[str, Any] | None = raw_format if isinstance(raw_format, Mapping) else None
        answer = self._answer_text(fmt, prompt)
        reasoning_tokens = _REASONING_TOKENS[effort] if reasoning_model else 0
        text_tokens = _tokens(answer)
        status = "completed"
        incomplete: dict[str, Any] | None = None
        include_message = True
        if isinstance(max_tokens, int) and reasoning_tokens + text_tokens > max_tokens:
            status = "incomplete"
            incomplete = {"reason": "max_output_tokens"}
            if reasoning_tokens >= max_tokens:
                reasoning_tokens = max_tokens
                include_message = False
                text_tokens = 0
            else:
                text_tokens = max_tokens - reasoning_tokens
                answer = answer[: text_tokens * 4]
        output: list[dict[str, Any]] = []
        if reasoning_model:
            output.append({"id": _hex_id("rs_"), "type": "reasoning", "summary": []})
        if include_message:
            output.append(
                {
                    "id": _hex_id("msg_"),
                    "type": "message",
                    "status": "completed" if status == "completed" else "incomplete",
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "annotations": [], "logprobs": [], "text": answer}
                    ],
                }
            )
        input_tokens = _tokens(prompt) + _tokens(str(instructions or "")) + 8
        now = time.time()
        answer_body: dict[str, Any] = {
            "id": _hex_id("resp_"),
            "object": "response",
            "created_at": int(now),
            "status": status,
            "background": False,
            "completed_at": int(now) if status == "completed" else None,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": instructions,
            "max_output_tokens": max_tokens,
            "max_tool_calls": None,
            "model": snapshot,
            "output": output,
            "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": effort if reasoning_model else None, "summary": None},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": "default",
            "store": bool(body.get("store", True)),
            "temperature": body.get("temperature", 1.0),
            "text": {
                "format": dict(fmt) if fmt is not None else {"type": "text"},
                "verbosity": str(text_config.get("verbosity") or "medium"),
            },
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": list(body.get("tools") or []),
            "top_logprobs": 0,
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": text_tokens + reasoning_tokens,
                "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                "total_tokens": input_tokens + text_tokens + reasoning_tokens,
            },
            "metadata": dict(body.get("metadata") or {}),
        }
        if isinstance(body.get("user"), str):
            # Only when sent: the published schema types it as a string, never null.
            answer_body["user"] = body["user"]
        return answer_body

    def _answer_text(self, fmt: Mapping[str, Any] | None, prompt: str) -> str:
        kind = fmt.get("type", "text") if fmt is not None else "text"
        if fmt is None or kind == "text":
            return text_for(prompt)
        if kind == "json_object":
            if "json" not in prompt.lower():
                raise RequestError(
                    400,
                    "Response input messages must contain the word 'json' in some form to use "
                    "'text.format' of type 'json_object'.",
                    param="input",
                )
            return json.dumps({"answer": text_for(prompt)}, ensure_ascii=False)
        if kind != "json_schema":
            raise RequestError(
                400,
                f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
                "'json_schema'.",
                param="text.format.type",
                code="invalid_value",
            )
        for name in ("name", "schema"):
            if name not in fmt:
                raise RequestError(
                    400,
                    f"Missing required parameter: 'text.format.{name}'.",
                    param=f"text.format.{name}",
                    code="missing_required_parameter",
                )
        schema = fmt["schema"]
        if fmt.get("strict"):
            problem = strict_schema_problem(schema)
            if problem:
                raise RequestError(
                    400,
                    f"Invalid schema for response_format '{fmt['name']}': {problem}",
                    param="text.format.schema",
                    code="invalid_json_schema",
                )
        try:
            value = instance_for(schema, seed_text=prompt)
        except ValueError as exc:
            raise RequestError(
                400,
                f"Invalid schema for response_format '{fmt['name']}': {exc}",
                param="text.format.schema",
                code="invalid_json_schema",
            ) from None
        return json.dumps(value, ensure_ascii=False)


def _end_as(response: dict[str, Any], outcome: str) -> None:
    """Make ``response`` end as the real API ends an answer it does not finish."""
    if outcome == "completed":
        return
    output: list[dict[str, Any]] = response["output"]
    messages = [item for item in output if item["type"] == "message"]
    if outcome == "no_message":
        response["output"] = [item for item in output if item["type"] != "message"] or [
            {"id": _hex_id("rs_"), "type": "reasoning", "summary": []}
        ]
        response["status"] = "completed"
        response["incomplete_details"] = None
        usage = response["usage"]
        reasoning = max(usage["output_tokens"], 1)
        usage["output_tokens_details"]["reasoning_tokens"] = reasoning
        usage["output_tokens"] = reasoning
        usage["total_tokens"] = usage["input_tokens"] + reasoning
        return
    for message in messages:
        if outcome == "refusal":
            message["content"] = [{"type": "refusal", "refusal": REFUSAL_TEXT}]
        else:  # content_filter: the text is cut where the filter stopped it
            for part in message["content"]:
                part["text"] = str(part.get("text", ""))[:8]
            message["status"] = "incomplete"
    if outcome == "content_filter":
        response["status"] = "incomplete"
        response["completed_at"] = None
        response["incomplete_details"] = {"reason": "content_filter"}
