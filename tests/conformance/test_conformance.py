"""Conformance: every request our adapters send, and every answer the fakes give, against the
providers' published OpenAPI documents (vendored in ``specs/``, see ``specs/SOURCE``).

The adapters (``ReplicateClient``, ``OpenAIClient``, and the official openai client for what
only the fake serves) run the scenarios we use against the fakes, through a recording
transport below the official clients: creates, polls, cancels, file uploads, text and JSON
answers, and the errors (4xx, 5xx, 429, out of credit, problem+json). Each request body is
validated against its operation's ``requestBody`` schema, each answer against the response
schema declared for its status and media type (and its declared headers, e.g. an integer
``Retry-After``). OpenAI's document declares only 200 and 429 answers; its other error
answers are checked against the document's own ``ErrorResponse`` schema. The last tests show
the validator refuses what is wrong, so a pass means something.
"""

from __future__ import annotations

import contextlib
import json
import struct
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import openai
import pytest
from openapi_check import Document, Exchange, Recording, Recording2, deepcopy_json

from producers.clients import default_client_registry
from producers.clients.base import MediaHints, TextRequest, ssl_context
from producers.clients.openai import OpenAIClient
from producers.clients.replicate import ReplicateClient
from producers.replicate.catalogue import Catalogue
from producers.sdk import ProviderError
from producers.sdk.uploads import LocalFile
from producers.testing import JobContext, fake_secret_resolver, make_job_request
from producers.testing.fakes import FAKE_OPENAI_KEY, FAKE_TOKEN, FakeOpenAI, FakeReplicate, Fault
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration

OPENAI = Document("openai.responses.json", prefix="/v1")
REPLICATE = Document("replicate.openapi.json", prefix="/v1")
OPENAI_ERROR = "/components/schemas/ErrorResponse"
OBJECT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "points"],
    "properties": {
        "title": {"type": "string"},
        "points": {"type": "array", "items": {"type": "string"}},
    },
}


def _check(document: Document, exchanges: list[Exchange], **kwargs: Any) -> tuple[list[str], int]:
    """Every problem of ``exchanges`` against ``document``, and how many answers a schema
    checked."""
    problems: list[str] = []
    checked = 0
    for exchange in exchanges:
        problems += document.request_problems(exchange)
        found, was_checked = document.response_problems(exchange, **kwargs)
        problems += found
        checked += was_checked
    return problems, checked


# ---- OpenAI -------------------------------------------------------------------------------


@pytest.fixture
def openai_fake(live_fakes: LiveFakes) -> FakeOpenAI:
    fake: FakeOpenAI = live_fakes.openai
    return fake


async def _expect_error(call: Awaitable[Any]) -> None:
    with pytest.raises((ProviderError, openai.APIError)):
        await call


async def test_openai_adapter_requests_and_fake_answers_conform(openai_fake: FakeOpenAI) -> None:
    recording = Recording2(httpx2.AsyncHTTPTransport())
    http_client = openai.DefaultAsyncHttpxClient(transport=recording)
    adapter = OpenAIClient(FAKE_OPENAI_KEY, base_url=openai_fake.api_url, http_client=http_client)
    official = openai.AsyncOpenAI(
        api_key=FAKE_OPENAI_KEY,
        base_url=openai_fake.api_url,
        http_client=http_client,
        max_retries=0,
    )
    try:
        text = await adapter.generate(
            TextRequest(model="gpt-5-mini", instructions="Be brief.", input="volcanoes")
        )
        await adapter.generate(
            TextRequest(
                model="gpt-4.1-mini",
                input="volcanoes",
                max_output_tokens=500,
                options={"temperature": 0.3, "top_p": 0.9},
            )
        )
        await adapter.generate(
            TextRequest(
                model="gpt-5",
                input="volcanoes",
                json_schema=OBJECT_SCHEMA,
                schema_name="script",
                reasoning_effort="low",
                max_output_tokens=4000,
                options={"text": {"verbosity": "low"}},
            )
        )
        # Answers that end without text, and the errors, as the adapter meets them.
        await _expect_error(
            adapter.generate(TextRequest(model="gpt-5-mini", input="x", max_output_tokens=16))
        )
        for fault in (
            Fault.no_message(),
            Fault.quota(),
            Fault.status(429, retry_after=2),
            Fault.status(401),
            Fault.status(403),
            Fault.status(409),
            Fault.status(500),
            Fault.status(502),
            Fault.status(503),
            Fault.status(504),
        ):
            openai_fake.inject(fault, route="responses")
            await _expect_error(adapter.generate(TextRequest(model="gpt-5-mini", input="x")))
        for outcome in ("refusal", "content_filter"):
            openai_fake.configure({"outcome": outcome})
            await _expect_error(adapter.generate(TextRequest(model="gpt-5-mini", input="x")))
        openai_fake.configure({"outcome": "completed"})
        await _expect_error(adapter.generate(TextRequest(model="gpt-9-nano", input="x")))
        await _expect_error(
            adapter.generate(TextRequest(model="gpt-5", input="x", options={"temperature": 0.2}))
        )
        await _expect_error(
            adapter.generate(
                TextRequest(model="gpt-5-mini", input="x", json_schema={"type": "array"})
            )
        )
        # What only the fake serves: a stored response, and one that is not there.
        assert text.response_id is not None
        await official.responses.retrieve(text.response_id)
        await _expect_error(official.responses.retrieve("resp_missing"))
    finally:
        await adapter.aclose()
    exchanges = recording.exchanges
    problems, checked = _check(OPENAI, exchanges, error_schema=OPENAI_ERROR)
    assert problems == [], "\n".join(problems)
    assert len(exchanges) == 21 and checked == len(exchanges)
    statuses = sorted({exchange.status for exchange in exchanges})
    assert statuses == [200, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504]


# ---- Replicate ----------------------------------------------------------------------------


@pytest.fixture
def replicate_fake(live_fakes: LiveFakes) -> FakeReplicate:
    fake: FakeReplicate = live_fakes.replicate
    return fake


def _png(path: Path, size: int) -> LocalFile:
    """A valid PNG of about ``size`` bytes (noise does not compress)."""
    import os

    side = int((size / 3) ** 0.5) + 1
    rows = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return LocalFile(path=path, mime_type="image/png", size=len(data))


async def _replicate_expect_error(call: Awaitable[Any]) -> None:
    with pytest.raises(ProviderError):
        await call


async def _run_replicate_job(transport: Recording, model: str, **inputs: Any) -> Any:
    """One live job of the Replicate media producer through the SDK (real payload mapping)."""
    context = JobContext(
        clients=default_client_registry(),
        secrets=fake_secret_resolver({"REPLICATE_API_TOKEN": FAKE_TOKEN}),
    )
    request = make_job_request(f"replicate:{model}", mode="live", inputs=inputs)
    deps = context.deps()
    deps.client_options = {"replicate": {"transport": transport}}
    deps.poll_interval = 0.01
    handler = context.registry.resolve(request.descriptor, "live", deps)
    return await handler.run(request)


async def test_replicate_adapter_requests_and_fake_answers_conform(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    recording = Recording(httpx.AsyncHTTPTransport(verify=ssl_context()))
    # Whole jobs through the producer: create by model name, polls until done, downloads.
    for model in Catalogue.load().models()[:6]:
        await _run_replicate_job(recording, model, prompt="A fox at dawn", aspect_ratio="16:9")
    client = ReplicateClient(FAKE_TOKEN, base_url=replicate_fake.base_url, transport=recording)
    hints = MediaHints(media="image")
    flux = Catalogue.load().get("black-forest-labs/flux-dev")
    assert flux is not None and flux.version
    try:
        # A pinned version with a large local file: uploaded with the files API first.
        big = _png(tmp_path / "frame.png", 400 * 1024)
        job = await client.create_job(
            model="black-forest-labs/flux-dev",
            version=flux.version,
            payload={"prompt": "A fox", "image": big},
            hints=hints,
        )
        await client.get_job(job.id)
        # A small one goes inline.
        small = _png(tmp_path / "small.png", 2 * 1024)
        await client.create_job(
            model="black-forest-labs/flux-dev",
            version=flux.version,
            payload={"prompt": "A fox", "image": small},
            hints=hints,
        )
        replicate_fake.configure({"latency": 30.0})
        running = await client.create_job(
            model="bytedance/seedream-4", version=None, payload={"prompt": "x"}, hints=hints
        )
        await client.cancel_job(running.id)
        replicate_fake.configure({"latency": 0.0})
        # Predictions that end badly, and errors on each route.
        for fault in (
            Fault.failed(),
            Fault.nsfw(),
            Fault.aborted(),
            Fault.removed(),
            Fault.object_output({"text": "hello", "score": 0.5}),
        ):
            created = await client.create_job(
                model="bytedance/seedream-4", version=None, payload={"prompt": "x"}, hints=hints
            )
            replicate_fake.inject(fault, route="get")
            with contextlib.suppress(ProviderError):  # some end badly, some do not
                await client.get_job(created.id)
        for fault, route in (
            (Fault.status(429, retry_after=2), "create"),
            (Fault.status(500), "create"),
            (Fault.status(503), "get"),
            (Fault.status(401), "create"),
            (Fault.status(404), "cancel"),
        ):
            replicate_fake.inject(fault, route=route)
            if route == "create":
                call = client.create_job(
                    model="bytedance/seedream-4", version=None, payload={"prompt": "x"}, hints=hints
                )
            elif route == "get":
                call = client.get_job(job.id)
            else:
                call = client.cancel_job(job.id)
            await _replicate_expect_error(call)
        await _replicate_expect_error(client.get_job("missingprediction0000000000"))
        # A create whose answer is lost: the adapter lists the recent predictions to find it
        # (adopted), or finds none (a drop before it was made), or pages on (a short page).
        replicate_fake.inject(Fault.lost(), route="create")
        lost = await client.create_job(
            model="bytedance/seedream-4", version=None, payload={"prompt": "lost"}, hints=hints
        )
        assert "recovered_create" in lost.raw
        replicate_fake.inject(Fault.drop(), route="create")
        await _replicate_expect_error(
            client.create_job(
                model="bytedance/seedream-4",
                version=None,
                payload={"prompt": "dropped"},
                hints=hints,
            )
        )
        replicate_fake.page_size = 2
        try:
            replicate_fake.inject(Fault.lost(), route="create")
            await _replicate_expect_error(
                client.create_job(
                    model="bytedance/seedream-4", version=None, payload={"prompt": "z"}, hints=hints
                )
            )
        finally:
            replicate_fake.page_size = 100
        await _replicate_expect_error(
            client.create_job(
                model="bytedance/seedream-4",
                version=None,
                payload={"prompt": "x", "size": "gigantic"},
                hints=hints,
            )
        )
    finally:
        await client.aclose()
    # The Airflow hook's connection probe: the account, else a model (and its version).
    async with httpx.AsyncClient(
        transport=recording,
        base_url=replicate_fake.base_url,
        headers={"Authorization": f"Bearer {FAKE_TOKEN}"},
    ) as probe:
        await probe.get("/v1/account")
        await probe.get("/v1/models/black-forest-labs/flux-dev")
        await probe.get(f"/v1/models/black-forest-labs/flux-dev/versions/{flux.version}")
    exchanges = recording.exchanges
    problems, checked = _check(REPLICATE, exchanges)
    problems += [p for e in exchanges for p in _query_problems(REPLICATE, e)]
    assert problems == [], "\n".join(problems)
    lists = [e for e in exchanges if e.method == "GET" and e.path == "/v1/predictions"]
    assert len(lists) == 4  # one look each, two pages for the short ones
    assert all("created_after=" in e.url for e in lists)
    assert sum("cursor=" in e.url for e in lists) == 1
    operations = {REPLICATE.operation(e.method, e.path).name for e in exchanges}  # type: ignore[union-attr]
    assert operations >= {
        "POST /models/{model_owner}/{model_name}/predictions",
        "POST /predictions",
        "GET /predictions/{prediction_id}",
        "POST /predictions/{prediction_id}/cancel",
        "GET /predictions",
        "POST /files",
        "GET /models/{model_owner}/{model_name}",
        "GET /models/{model_owner}/{model_name}/versions/{version_id}",
    }
    assert checked >= len([e for e in exchanges if e.status < 400])
    errors = [e for e in exchanges if e.status >= 400]
    assert {e.status for e in errors} >= {401, 404, 422, 429, 500, 503}
    # Replicate answers errors as problem details (RFC 9457), as its document declares.
    assert {e.response_type.split(";")[0] for e in errors} == {"application/problem+json"}
    for error in errors:
        body = json.loads(error.response_body)
        assert body["status"] == error.status and body["detail"]


#: Query parameters the API puts in the URLs it answers with (a list's ``next``), which its
#: document does not declare.
_API_OWN_QUERY = frozenset({"cursor"})


def _query_problems(document: Document, exchange: Exchange) -> list[str]:
    """What is wrong with the query of ``exchange``: a parameter its operation does not
    declare, or a value its schema refuses (e.g. a ``created_after`` that is no date-time)."""
    operation = document.operation(exchange.method, exchange.path)
    if operation is None:
        return []
    declared = {
        str(param["name"]): index
        for index, param in enumerate(operation.spec.get("parameters", []))
        if param.get("in") == "query"
    }
    template = operation.template.replace("~", "~0").replace("/", "~1")
    problems = []
    for name, values in parse_qs(urlsplit(exchange.url).query).items():
        if name in _API_OWN_QUERY:
            continue
        if name not in declared:
            problems.append(f"{operation.name}: query parameter {name!r} is not declared")
            continue
        pointer = f"/paths/{template}/{operation.method}/parameters/{declared[name]}/schema"
        for value in values:
            found = document.problems(pointer, value)
            problems += [f"{operation.name} query {name}: {p}" for p in found]
    return problems


# ---- the validator refuses what is wrong ---------------------------------------------------


def _exchange(
    method: str,
    path: str,
    request: Any = None,
    *,
    status: int = 200,
    response: Any = None,
    response_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Exchange:
    return Exchange(
        method=method,
        url=f"https://api.example/v1{path}",
        path=f"/v1{path}",
        request_type="application/json",
        request_body=b"" if request is None else json.dumps(request).encode(),
        status=status,
        response_type=response_type,
        response_headers=headers or {},
        response_body=json.dumps(response).encode(),
    )


GOOD_PREDICTION: dict[str, Any] = {
    "id": "q1w2e3r4t5y6u7i8o9p0asdfgh",
    "model": "bytedance/seedream-4",
    "version": "hidden",
    "input": {"prompt": "x"},
    "output": None,
    "logs": "",
    "error": None,
    "status": "starting",
    "created_at": "2026-12-03T10:00:00.000Z",
    "data_removed": False,
    "urls": {
        "get": "https://api.replicate.com/v1/predictions/q1",
        "cancel": "https://api.replicate.com/v1/predictions/q1/cancel",
        "web": "https://replicate.com/p/q1",
    },
}

WRONG: list[tuple[str, Document, Callable[[], Exchange], str]] = [
    (
        "openai-temperature-a-string",
        OPENAI,
        lambda: _exchange(
            "POST", "/responses", {"model": "gpt-5", "input": "x", "temperature": "hot"}
        ),
        "temperature",
    ),
    (
        "openai-format-of-chat-completions",
        OPENAI,
        lambda: _exchange(
            "POST",
            "/responses",
            {"model": "gpt-5", "input": "x", "text": {"format": {"type": "json_schema"}}},
        ),
        "text",
    ),
    (
        "replicate-unknown-top-level-field",
        REPLICATE,
        lambda: _exchange("POST", "/predictions", {"version": "abc", "inputs": {"prompt": "x"}}),
        "inputs",
    ),
    (
        "replicate-input-not-an-object",
        REPLICATE,
        lambda: _exchange("POST", "/models/a/b/predictions", {"input": "a fox"}),
        "input",
    ),
    (
        "replicate-unknown-status",
        REPLICATE,
        lambda: _exchange(
            "GET", "/predictions/q1", response={**GOOD_PREDICTION, "status": "done", "version": "v"}
        ),
        "done",
    ),
    (
        "replicate-missing-urls",
        REPLICATE,
        lambda: _exchange(
            "GET",
            "/predictions/q1",
            response={k: v for k, v in GOOD_PREDICTION.items() if k != "urls"} | {"version": "v"},
        ),
        "urls",
    ),
    (
        "replicate-error-as-plain-json",
        REPLICATE,
        lambda: _exchange(
            "GET",
            "/files/abc",
            status=404,
            response={"title": "Not found", "detail": "Not found.", "status": 404},
        ),
        "application/problem+json",
    ),
    (
        "openai-error-without-message",
        OPENAI,
        lambda: _exchange(
            "POST",
            "/responses",
            {"model": "gpt-5", "input": "x"},
            status=429,
            response={"error": {"type": "requests", "code": None, "param": None}},
        ),
        "message",
    ),
    (
        "openai-retry-after-not-an-integer",
        OPENAI,
        lambda: _exchange(
            "POST",
            "/responses",
            {"model": "gpt-5", "input": "x"},
            status=429,
            response={"error": {"type": "requests", "code": None, "param": None, "message": "m"}},
            headers={"retry-after": "0.5"},
        ),
        "Retry-After",
    ),
]


@pytest.mark.parametrize(
    ("document", "make", "words"),
    [case[1:] for case in WRONG],
    ids=[case[0] for case in WRONG],
)
def test_the_validator_refuses_what_is_wrong(
    document: Document, make: Callable[[], Exchange], words: str
) -> None:
    exchange = make()
    problems = document.request_problems(exchange)
    problems += document.response_problems(exchange, error_schema=OPENAI_ERROR)[0]
    assert problems, "the validator let a wrong exchange through"
    assert any(words in problem for problem in problems), problems


def test_the_right_shapes_pass() -> None:
    """The counterpart of the wrong ones: the same exchanges, right, have no problem."""
    prediction = {**deepcopy_json(GOOD_PREDICTION), "version": "v"}
    error = {"error": {"type": "requests", "code": None, "param": None, "message": "m"}}
    good = [
        (
            OPENAI,
            _exchange(
                "POST",
                "/responses",
                {"model": "gpt-5", "input": "x", "temperature": 1},
                status=429,
                response=error,
                headers={"retry-after": "2"},
            ),
        ),
        (
            REPLICATE,
            _exchange(
                "POST",
                "/predictions",
                {"version": "abc", "input": {"prompt": "x"}},
                status=201,
                response=prediction,
            ),
        ),
        (REPLICATE, _exchange("GET", "/predictions/q1", response=prediction)),
    ]
    for document, exchange in good:
        assert document.request_problems(exchange) == []
        assert document.response_problems(exchange) == ([], True)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("created_after=yesterday", "is not a 'date-time'"),
        ("source=api", "is not one of"),
        ("model=bytedance%2Fseedream-4", "'model' is not declared"),
    ],
    ids=["bad-date", "bad-source", "undeclared"],
)
def test_the_list_query_check_refuses_what_is_wrong(query: str, words: str) -> None:
    listed = _exchange("GET", "/predictions", response={"next": None, "results": []})
    wrong = Exchange(**{**listed.__dict__, "url": f"{listed.url}?{query}"})
    problems = _query_problems(REPLICATE, wrong)
    assert any(words in problem for problem in problems), problems
    right = Exchange(
        **{**listed.__dict__, "url": f"{listed.url}?created_after=2026-12-03T10:00:00Z"}
    )
    assert _query_problems(REPLICATE, right) == []
