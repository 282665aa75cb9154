"""The output policy and the checked download (producers.clients.downloads), over httpx's
MockTransport: which URLs are fetched, which never reach the network, caps and deadlines."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from producers.clients.downloads import (
    DEFAULT_DOWNLOAD_DEADLINE,
    DEFAULT_MAX_OUTPUT_BYTES,
    HostRule,
    OutputPolicy,
    host_rules,
)
from producers.sdk.errors import ConfigurationError, ErrorCode, ProviderError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 120
API = "https://api.replicate.com"


def policy(api: str = API, **overrides: object) -> OutputPolicy:
    settings: dict[str, object] = {
        "provider": "replicate",
        "api_base_url": api,
        "delivery_hosts": (".replicate.delivery",),
        "environ": {},
    }
    settings.update(overrides)
    return OutputPolicy.from_settings(**settings)  # type: ignore[arg-type]


class Recorder:
    """A MockTransport handler that records every request and answers from a table."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer or (lambda request: httpx.Response(200, content=PNG))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)

    @property
    def hosts(self) -> list[str]:
        return [r.url.host for r in self.requests]


async def fetch(rules: OutputPolicy, url: str, recorder: Recorder) -> bytes:
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        return b"".join([chunk async for chunk in rules.open(client, url)])


async def refused(rules: OutputPolicy, url: str, recorder: Recorder) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await fetch(rules, url, recorder)
    error = caught.value
    assert error.code is ErrorCode.MALFORMED_OUTPUT and error.retryable is False
    return error


# -- which URLs are fetched -------------------------------------------------------------------

ALLOWED = [
    ("https://replicate.delivery/pbxt/a/out-0.png", API),
    ("https://pbxt.replicate.delivery/a/out-0.png?sig=1", API),
    ("https://REPLICATE.Delivery./a.png", API),
    ("https://api.replicate.com/files/a.png", API),
    ("https://127.0.0.1:8443/files/a.png", "https://127.0.0.1:8443"),
    ("http://127.0.0.1:8080/files/a.png", "http://127.0.0.1:8080"),
    ("https://[::1]:8443/files/a.png", "https://[::1]:8443"),
]


@pytest.mark.parametrize(
    ("url", "api"),
    ALLOWED,
    ids=["delivery", "delivery-subdomain", "case-and-dot", "api-host", "api-ip", "http-api", "v6"],
)
async def test_allowed_outputs_are_fetched(url: str, api: str) -> None:
    recorder = Recorder()
    assert await fetch(policy(api), url, recorder) == PNG
    assert len(recorder.requests) == 1


REFUSED = [
    ("https://127.0.0.2:8443/x.png", "https://127.0.0.1:8443", "IP address"),
    ("https://127.0.0.1:6379/x.png", "https://127.0.0.1:8443", "IP address"),
    ("https://169.254.169.254/latest/meta-data/", API, "IP address"),
    ("https://metadata.google.internal/x?token=SECRET", API, "neither the API host"),
    ("https://replicate.delivery.evil.example/x.png", API, "neither the API host"),
    ("https://evilreplicate.delivery/x.png", API, "neither the API host"),
    ("http://replicate.delivery/x.png", API, "plain http"),
    ("http://127.0.0.1:8443/x.png", "https://127.0.0.1:8443", "plain http"),
    ("http://127.0.0.2:8080/x.png", "http://127.0.0.1:8080", "plain http"),
    ("https://user:pw@replicate.delivery/x.png", API, "user name or password"),
    ("https://replicate.delivery\\@evil.example/x.png", API, "user name or password"),
    ("file:///proc/self/environ", API, "scheme is file:"),
    ("ftp://replicate.delivery/x.png", API, "scheme is ftp:"),
    ("/files/relative.png", API, "scheme is (none)"),
    ("https://xn--rplicate-9ya.delivery/x.png", API, "neither the API host"),
    ("https://2130706433/x.png", API, "IP address"),
    ("https://0x7f.1/x.png", API, "IP address"),
]


@pytest.mark.parametrize(
    ("url", "api", "rule"),
    REFUSED,
    ids=[
        "other-ip",
        "api-ip-other-port",
        "metadata-ip",
        "metadata-name",
        "suffix-trick",
        "no-dot-boundary",
        "http-to-delivery",
        "http-to-https-api",
        "http-other-host-of-http-api",
        "userinfo",
        "backslash-userinfo",
        "file",
        "ftp",
        "relative",
        "punycode-lookalike",
        "decimal-ip",
        "hex-ip",
    ],
)
async def test_refused_outputs_never_reach_the_network(url: str, api: str, rule: str) -> None:
    recorder = Recorder()
    error = await refused(policy(api), url, recorder)
    assert recorder.requests == []
    assert rule in error.reason
    assert "SECRET" not in str(error) and "/x.png" not in str(error)


async def test_the_refusal_names_the_host_and_the_setting_that_would_allow_it() -> None:
    error = await refused(
        policy(), "https://cdn.example.org/a/b.png?X-Amz-Signature=tok", Recorder()
    )
    assert "from cdn.example.org" in error.reason
    assert "TUTOPANDA_OUTPUT_HOSTS" in error.reason and "[tutopanda] output_hosts" in error.reason
    assert "tok" not in error.reason and "b.png" not in error.reason
    assert error.raw == {"host": "cdn.example.org", "rule": error.raw["rule"]}


@pytest.mark.parametrize(
    ("setting", "url", "allowed"),
    [
        ("cdn.example.org", "https://cdn.example.org/a.png", True),
        ("cdn.example.org", "https://a.cdn.example.org/a.png", False),
        (".example.org", "https://a.cdn.example.org/a.png", True),
        ("*.example.org", "https://example.org/a.png", True),
        (" files.example.org , .bücher.de ", "https://x.xn--bcher-kva.de/a.png", True),
        ("example.org", "https://badexample.org/a.png", False),
    ],
    ids=["exact", "exact-no-subdomain", "dot", "star-apex", "idna-list", "boundary"],
)
async def test_the_deployment_extends_the_delivery_list(
    setting: str, url: str, allowed: bool
) -> None:
    recorder = Recorder()
    for rules in (
        policy(output_hosts=setting),
        policy(environ={"TUTOPANDA_OUTPUT_HOSTS": setting}),
    ):
        if allowed:
            assert await fetch(rules, url, recorder) == PNG
        else:
            await refused(rules, url, recorder)
    assert len(recorder.requests) == (2 if allowed else 0)


def test_option_and_environment_hosts_add_up() -> None:
    rules = policy(output_hosts="a.example", environ={"TUTOPANDA_OUTPUT_HOSTS": ".b.example"})
    assert rules.extra_hosts == (HostRule("b.example", True), HostRule("a.example", False))


@pytest.mark.parametrize(
    "entry",
    [
        "https://cdn.example.org/",
        "cdn.example.org:443",
        "10.0.0.7",
        "*.1",
        "user@cdn.example",
        "a b",
    ],
    ids=["url", "port", "ip", "numeric-label", "userinfo", "space"],
)
def test_a_bad_host_entry_is_a_configuration_error(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="TUTOPANDA_OUTPUT_HOSTS"):
        host_rules(entry)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TUTOPANDA_MAX_OUTPUT_BYTES", "lots"),
        ("TUTOPANDA_MAX_OUTPUT_BYTES", "0"),
        ("TUTOPANDA_MAX_OUTPUT_BYTES", "1.5"),
        ("TUTOPANDA_DOWNLOAD_DEADLINE", "-1"),
        ("TUTOPANDA_DOWNLOAD_DEADLINE", "inf"),
        ("TUTOPANDA_DOWNLOAD_DEADLINE", "nan"),
    ],
    ids=["bytes-word", "bytes-zero", "bytes-fraction", "deadline-negative", "inf", "nan"],
)
def test_a_bad_limit_is_a_configuration_error_naming_it(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        policy(environ={variable: value})


def test_limits_defaults_environment_and_options() -> None:
    assert policy().max_bytes == DEFAULT_MAX_OUTPUT_BYTES == 4 * 1024**3
    assert policy().deadline == DEFAULT_DOWNLOAD_DEADLINE == 1800.0
    env = {"TUTOPANDA_MAX_OUTPUT_BYTES": "1048576", "TUTOPANDA_DOWNLOAD_DEADLINE": "2.5"}
    assert (policy(environ=env).max_bytes, policy(environ=env).deadline) == (1048576, 2.5)
    assert policy(environ=env, max_output_bytes="2048", download_deadline=9).max_bytes == 2048
    assert policy(environ=env, download_deadline="9").deadline == 9.0


# -- redirects --------------------------------------------------------------------------------


def redirecting(*locations: str) -> Recorder:
    """Answers the n-th request with a 302 to ``locations[n]``, then with the PNG."""

    def answer(request: httpx.Request) -> httpx.Response:
        hop = len(recorder.requests) - 1
        if hop < len(locations):
            return httpx.Response(302, headers={"Location": locations[hop]})
        return httpx.Response(200, content=PNG)

    recorder = Recorder(answer)
    return recorder


async def test_redirects_within_allowed_hosts_are_followed() -> None:
    recorder = redirecting("https://pbxt.replicate.delivery/b.png", "/c.png")
    assert await fetch(policy(), "https://replicate.delivery/a.png", recorder) == PNG
    assert [str(r.url) for r in recorder.requests] == [
        "https://replicate.delivery/a.png",
        "https://pbxt.replicate.delivery/b.png",
        "https://pbxt.replicate.delivery/c.png",
    ]


@pytest.mark.parametrize(
    ("location", "rule"),
    [
        ("https://169.254.169.254/latest/meta-data/", "IP address"),
        ("https://internal.corp.example/admin", "neither the API host"),
        ("http://replicate.delivery/a.png", "plain http"),
        ("data:image/png;base64,iVBORw0KGgo=", "not a valid URL"),
        ("file:///etc/passwd", "scheme is file:"),
        ("gopher://replicate.delivery/x", "scheme is gopher:"),
        ("//169.254.169.254/x", "IP address"),
    ],
    ids=["metadata", "internal", "downgrade", "data", "file", "gopher", "scheme-relative"],
)
async def test_a_redirect_is_checked_before_it_is_followed(location: str, rule: str) -> None:
    recorder = redirecting(location)
    error = await refused(policy(), "https://replicate.delivery/a.png", recorder)
    assert recorder.hosts == ["replicate.delivery"]
    assert rule in error.reason and "redirect 1" in error.reason, error.reason


async def test_too_many_redirects() -> None:
    recorder = redirecting(*[f"/hop{i}.png" for i in range(10)])
    error = await refused(policy(), "https://replicate.delivery/a.png", recorder)
    assert "more than 5 redirects" in error.reason
    assert len(recorder.requests) == 6


async def test_a_redirect_without_location_is_refused() -> None:
    recorder = Recorder(lambda request: httpx.Response(302))
    error = await refused(policy(), "https://replicate.delivery/a.png", recorder)
    assert "without a Location" in error.reason


# -- size and time ------------------------------------------------------------------------------


async def test_content_length_over_the_cap_is_refused_before_the_body() -> None:
    served: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(8):
            served.append(1)
            yield PNG[:16] + bytes(1024 - 16)

    recorder = Recorder(
        lambda request: httpx.Response(200, headers={"Content-Length": "8192"}, content=body())
    )
    error = await refused(policy(max_output_bytes=4096), "https://replicate.delivery/a", recorder)
    assert "8192 bytes, over the cap of 4 KiB" in error.reason
    assert "TUTOPANDA_MAX_OUTPUT_BYTES" in error.reason
    assert served == []


async def test_a_body_without_length_stops_at_the_cap_while_streaming() -> None:
    served: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            served.append(1)
            yield bytes(64 * 1024)

    recorder = Recorder(lambda request: httpx.Response(200, content=endless()))
    rules = policy(max_output_bytes=1024 * 1024)
    received: list[int] = []

    async def consume(client: httpx.AsyncClient) -> None:
        async for chunk in rules.open(client, "https://replicate.delivery/a"):
            received.append(len(chunk))

    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        with pytest.raises(ProviderError) as caught:
            await consume(client)
    assert caught.value.code is ErrorCode.MALFORMED_OUTPUT and not caught.value.retryable
    assert "over the cap of 1 MiB" in caught.value.reason
    assert sum(received) <= 1024 * 1024
    assert len(served) <= 1024 * 1024 // (64 * 1024) + 32  # it stopped reading


async def test_a_trickling_body_ends_at_the_deadline() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield PNG[:1]
        while True:
            await asyncio.sleep(0.05)
            yield b"\x00"

    recorder = Recorder(lambda request: httpx.Response(200, content=trickle()))
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await refused(policy(download_deadline=0.5), "https://replicate.delivery/a", recorder)
    assert 0.45 <= loop.time() - started < 2.0
    assert "within the deadline of 0.5 s" in error.reason
    assert "TUTOPANDA_DOWNLOAD_DEADLINE" in error.reason


async def test_a_slow_answer_ends_at_the_deadline_too() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, content=PNG)

    rules = policy(download_deadline=0.2)
    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
        with pytest.raises(ProviderError, match=r"within the deadline of 0\.2 s"):
            await anext(rules.open(client, "https://replicate.delivery/a"))


# -- data URIs and HTTP errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("data:image/png;base64," + base64.b64encode(PNG).decode(), PNG),
        ("data:text/plain,hello%20world", b"hello world"),
    ],
    ids=["base64", "percent"],
)
async def test_data_uris_are_decoded_without_a_request(uri: str, expected: bytes) -> None:
    recorder = Recorder()
    assert await fetch(policy(), uri, recorder) == expected
    assert recorder.requests == []


async def test_a_data_uri_over_the_cap_is_refused() -> None:
    uri = "data:image/png;base64," + base64.b64encode(bytes(4096)).decode()
    error = await refused(policy(max_output_bytes=1024), uri, Recorder())
    assert "over the cap" in error.reason


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (404, ErrorCode.NOT_FOUND, False),
        (503, ErrorCode.PROVIDER_UNAVAILABLE, True),
        (403, ErrorCode.AUTH_FAILED, False),
    ],
    ids=["404", "503", "403"],
)
async def test_http_errors_keep_their_codes_and_name_only_the_host(
    status: int, code: ErrorCode, retryable: bool
) -> None:
    recorder = Recorder(lambda request: httpx.Response(status, text="<html>secret</html>"))
    with pytest.raises(ProviderError) as caught:
        await fetch(policy(), "https://replicate.delivery/a.png?token=tok", recorder)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert "replicate.delivery" in str(caught.value)
    assert "tok" not in str(caught.value) and "secret" not in str(caught.value)


async def test_a_broken_connection_is_mapped_and_retryable() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    with pytest.raises(ProviderError) as caught:
        await fetch(policy(), "https://replicate.delivery/a.png", Recorder(broken))
    assert caught.value.code is ErrorCode.PROVIDER_UNAVAILABLE and caught.value.retryable


async def test_source_names_the_host_the_bytes_come_from() -> None:
    recorder = redirecting("https://pbxt.replicate.delivery/b.png")
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        download = policy().open(client, "https://replicate.delivery/a.png")
        assert download.source == "replicate.delivery"
        assert await anext(download) == PNG
        assert download.source == "pbxt.replicate.delivery"
        await download.aclose()
