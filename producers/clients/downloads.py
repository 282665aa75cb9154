"""Provider outputs: where a download may come from, how large and how slow it may be.

A provider answers a finished job with output URLs. What they name is untrusted: a model,
a compromised account or a man in the middle can make it any host on the network (a cloud
metadata service, an internal API), a redirect to one, a body of any size or one that
trickles forever. An :class:`OutputPolicy` is what one adapter accepts; a
:class:`CheckedDownload` streams one output under it, checking every URL *before* a
connection is opened:

* the scheme is ``https`` (``http`` only to the API base URL's own host when that base
  URL is ``http``, as with a local fake); ``data:`` URIs are decoded under the byte cap;
* the URL carries no user name or password;
* its host (IDNA and lower-cased, as the HTTP client sends it) is the API base URL's host
  or on the provider's delivery list, extended by the deployment with
  ``TUTOPANDA_OUTPUT_HOSTS`` (``[tutopanda] output_hosts`` in Airflow); an IP address is
  allowed only when it is the API base URL's host, with its port;
* every redirect hop is checked the same way before it is followed (at most
  :data:`MAX_REDIRECTS`);
* the body stops at a byte cap (``TUTOPANDA_MAX_OUTPUT_BYTES``, default 4 GiB; checked up
  front from ``Content-Length`` and while streaming) and at a total deadline
  (``TUTOPANDA_DOWNLOAD_DEADLINE``, default 30 minutes).

A refusal is a :class:`~producers.sdk.errors.ProviderError` with code ``malformed_output``,
not retryable, whose message names the host (never a path or query string, which may carry
a token), the rule, and the setting that would allow it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import math
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import httpx

from producers.clients.base import code_for_status, retry_after_seconds
from producers.sdk.errors import ConfigurationError, ErrorCode, ProviderError
from producers.sdk.secrets import redact
from producers.storage.base import CHUNK_SIZE

__all__ = [
    "DEFAULT_DOWNLOAD_DEADLINE",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DOWNLOAD_DEADLINE_ENV",
    "MAX_OUTPUT_BYTES_ENV",
    "MAX_REDIRECTS",
    "OUTPUT_HOSTS_ENV",
    "CheckedDownload",
    "HostRule",
    "OutputPolicy",
    "host_rules",
]

OUTPUT_HOSTS_ENV = "TUTOPANDA_OUTPUT_HOSTS"
MAX_OUTPUT_BYTES_ENV = "TUTOPANDA_MAX_OUTPUT_BYTES"
DOWNLOAD_DEADLINE_ENV = "TUTOPANDA_DOWNLOAD_DEADLINE"
#: Generous: a long 4K video fits; a runaway body does not fill the disk.
DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024**3
#: Seconds one download may take from its first request to its last byte.
DEFAULT_DOWNLOAD_DEADLINE = 30 * 60.0
#: Redirect hops followed per download (each one checked before it is followed).
MAX_REDIRECTS = 5

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_HOST_SHOWN = 253
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_HOSTS_SETTING = f"{OUTPUT_HOSTS_ENV} (Airflow: [tutopanda] output_hosts)"
_BYTES_SETTING = f"{MAX_OUTPUT_BYTES_ENV} (Airflow: [tutopanda] max_output_bytes)"
_DEADLINE_SETTING = f"{DOWNLOAD_DEADLINE_ENV} (Airflow: [tutopanda] download_deadline)"

ErrorMapper = Callable[[Exception], ProviderError]


def _normalise_host(raw: str) -> str:
    """A host name as the HTTP client sends it: IDNA-encoded, lower-cased, no final dot.

    Raises:
        ValueError: ``raw`` is not a valid host name.
    """
    host = httpx.URL(f"https://{raw}/").raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        raise ValueError("empty host")
    return host


def _is_address(host: str) -> bool:
    """True for an IP literal, and for the numeric forms resolvers also read as one
    (``2130706433``, ``127.1``, ``0x7f.1``): no real host name ends in a numeric label."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return bool(_NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]))
    return True


@dataclass(frozen=True)
class HostRule:
    """One allowed output host: ``name`` exactly, or with ``subdomains`` also any
    ``*.name`` (written ``.name`` or ``*.name`` in a setting)."""

    name: str
    subdomains: bool = False

    @classmethod
    def parse(cls, entry: str, *, setting: str = OUTPUT_HOSTS_ENV) -> HostRule:
        """Parse ``example.com``, ``.example.com`` or ``*.example.com``.

        Raises:
            ConfigurationError: The entry is not a host name (a URL, a port, an IP address).
        """
        text = entry.strip()
        subdomains = text.startswith((".", "*."))
        name = text.removeprefix("*").removeprefix(".")
        problem = ""
        if not name or any(c in name for c in "/:@?#*[] \t"):
            problem = "is not a host name (write example.com, .example.com or *.example.com)"
        elif _is_address(name):
            problem = "is an IP address; only the API base URL's host may be one"
        else:
            try:
                name = _normalise_host(name)
            except (ValueError, httpx.InvalidURL, UnicodeError):
                problem = "is not a valid host name"
        if problem:
            raise ConfigurationError(f"{setting}: {entry.strip()!r} {problem}")
        return cls(name, subdomains)

    def matches(self, host: str) -> bool:
        """True if the normalised ``host`` is this rule's name (or, with subdomains, under it)."""
        return host == self.name or (self.subdomains and host.endswith("." + self.name))

    def __str__(self) -> str:
        return f"*.{self.name}" if self.subdomains else self.name


def host_rules(
    value: str | Iterable[str] | None, *, setting: str = OUTPUT_HOSTS_ENV
) -> tuple[HostRule, ...]:
    """Parse a comma-separated setting (or a list of entries) into host rules.

    Raises:
        ConfigurationError: An entry is not a host name.
    """
    if value is None:
        return ()
    entries = value.split(",") if isinstance(value, str) else list(value)
    return tuple(HostRule.parse(e, setting=setting) for e in entries if e.strip())


def _positive(value: object, *, setting: str, integer: bool) -> float:
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else value
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0 or (integer and number != int(number)):
        kind = "a positive whole number of bytes" if integer else "a positive number of seconds"
        raise ConfigurationError(f"{setting}: {value!r} is not {kind}")
    return number


def _human_bytes(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:g} {unit}" if unit == "bytes" else f"{size:.4g} {unit}"
        size /= 1024
    return f"{size:g} GiB"  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class OutputPolicy:
    """Where one provider's outputs may be downloaded from, and how much of them.

    Attributes:
        provider: The provider's name (in messages).
        api_base_url: The adapter's API base URL: its host (and port) is allowed, and
            plain ``http`` only when it is ``http`` itself.
        delivery_hosts: The provider's own delivery hosts (Replicate: ``replicate.delivery``
            and its subdomains).
        extra_hosts: Hosts the deployment allows besides (``TUTOPANDA_OUTPUT_HOSTS``).
        max_bytes: The byte cap of one output.
        deadline: Seconds one download may take in all.
        max_redirects: Redirect hops followed.
    """

    provider: str
    api_base_url: str
    delivery_hosts: tuple[HostRule, ...] = ()
    extra_hosts: tuple[HostRule, ...] = ()
    max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    deadline: float = DEFAULT_DOWNLOAD_DEADLINE
    max_redirects: int = MAX_REDIRECTS

    @classmethod
    def from_settings(
        cls,
        *,
        provider: str,
        api_base_url: str,
        delivery_hosts: Iterable[str] = (),
        output_hosts: str | Iterable[str] | None = None,
        max_output_bytes: int | str | None = None,
        download_deadline: float | str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> OutputPolicy:
        """The policy from the client's options, else the environment, else the defaults.

        ``output_hosts`` and ``TUTOPANDA_OUTPUT_HOSTS`` both extend the provider's delivery
        list; an option given for the cap or the deadline wins over its variable.

        Raises:
            ConfigurationError: A setting has a bad value (the message names it).
        """
        env = os.environ if environ is None else environ
        extra = host_rules(env.get(OUTPUT_HOSTS_ENV), setting=OUTPUT_HOSTS_ENV)
        extra += host_rules(output_hosts, setting="[tutopanda] output_hosts")
        size_value: object = max_output_bytes
        size_setting = "[tutopanda] max_output_bytes"
        if size_value is None and env.get(MAX_OUTPUT_BYTES_ENV, "").strip():
            size_value, size_setting = env[MAX_OUTPUT_BYTES_ENV], MAX_OUTPUT_BYTES_ENV
        deadline_value: object = download_deadline
        deadline_setting = "[tutopanda] download_deadline"
        if deadline_value is None and env.get(DOWNLOAD_DEADLINE_ENV, "").strip():
            deadline_value, deadline_setting = env[DOWNLOAD_DEADLINE_ENV], DOWNLOAD_DEADLINE_ENV
        try:
            base = httpx.URL(api_base_url)
            if base.scheme not in _DEFAULT_PORTS or not base.host:
                raise ValueError(api_base_url)
        except (ValueError, httpx.InvalidURL):
            raise ConfigurationError(
                f"the {provider} API base URL {api_base_url!r} is not an http(s) URL"
            ) from None
        return cls(
            provider=provider,
            api_base_url=api_base_url,
            delivery_hosts=host_rules(list(delivery_hosts), setting=f"{provider} delivery"),
            extra_hosts=extra,
            max_bytes=(
                DEFAULT_MAX_OUTPUT_BYTES
                if size_value is None
                else int(_positive(size_value, setting=size_setting, integer=True))
            ),
            deadline=(
                DEFAULT_DOWNLOAD_DEADLINE
                if deadline_value is None
                else _positive(deadline_value, setting=deadline_setting, integer=False)
            ),
        )

    # -- the rules ------------------------------------------------------------------------

    @property
    def _api(self) -> httpx.URL:
        return httpx.URL(self.api_base_url)

    def _origin(self, url: httpx.URL) -> tuple[str, str, int | None]:
        return (
            url.scheme,
            url.raw_host.decode("ascii").lower().rstrip("."),
            url.port or _DEFAULT_PORTS.get(url.scheme),
        )

    def refusal(self, host: str, reason: str, *, allow: str | None = None) -> ProviderError:
        """The error of a refused output: ``malformed_output``, not retryable, naming
        ``host``, the rule (``reason``) and what would allow it."""
        shown = host[:_MAX_HOST_SHOWN] or "(no host)"
        message = f"refused the {self.provider} output from {shown}: {reason}"
        if allow:
            message += f"; {allow}"
        return ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            message,
            retryable=False,
            caused_by_user=False,
            provider=self.provider,
            raw={"host": shown, "rule": reason},
            hint="docs/security.md: provider outputs",
        )

    def check(self, url: str | httpx.URL, *, hop: int = 0) -> httpx.URL:
        """Check one URL (or redirect target) against the policy before any connection.

        Args:
            url: The output URL, or the absolute target of a redirect.
            hop: 0 for the output URL, n for the n-th redirect (named in messages).

        Returns:
            The parsed URL, to be requested as it is.

        Raises:
            ProviderError: ``malformed_output`` when a rule refuses it.
        """
        where = "" if hop == 0 else f"redirect {hop} "
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
            host = parsed.raw_host.decode("ascii").lower().rstrip(".")
        except (httpx.InvalidURL, ValueError, UnicodeError):
            raise self.refusal("", f"the {where}output URL is not a valid URL") from None
        scheme = parsed.scheme
        api = self._api
        api_scheme, api_host, api_port = self._origin(api)
        if scheme not in _DEFAULT_PORTS:
            raise self.refusal(
                host,
                f"the {where}URL's scheme is {scheme or '(none)'}:, "
                "but outputs are downloaded over https only",
            )
        if parsed.userinfo:
            raise self.refusal(host, f"the {where}URL carries a user name or password")
        if not host:
            raise self.refusal(host, f"the {where}URL has no host")
        same_api_origin = self._origin(parsed) == (api_scheme, api_host, api_port)
        if scheme == "http" and not (api_scheme == "http" and same_api_origin):
            raise self.refusal(
                host,
                f"the {where}URL is plain http, but outputs are downloaded over https only "
                "(http only from an http API base URL's own host, as with a local fake)",
            )
        if same_api_origin:
            return parsed
        if _is_address(host):
            raise self.refusal(
                host,
                f"the {where}URL's host is an IP address, allowed only as the API base URL's "
                f"host and port ({api_host}:{api_port})",
            )
        if any(rule.matches(host) for rule in (*self.delivery_hosts, *self.extra_hosts)):
            return parsed
        known = ", ".join(str(r) for r in (*self.delivery_hosts, *self.extra_hosts))
        raise self.refusal(
            host,
            f"the {where}URL's host is neither the API host ({api_host}) nor a delivery host "
            f"of {self.provider}{f' ({known})' if known else ''}",
            allow=f"a deployment that trusts it adds it to {_HOSTS_SETTING}",
        )

    def too_large(self, host: str, size: int | None = None) -> ProviderError:
        """The refusal of a body over the byte cap."""
        what = f"{size} bytes" if size is not None else "more bytes"
        return self.refusal(
            host,
            f"the body is {what}, over the cap of {_human_bytes(self.max_bytes)}",
            allow=f"raise {_BYTES_SETTING} to allow it",
        )

    def too_slow(self, host: str) -> ProviderError:
        """The refusal of a download that outlived the deadline."""
        return self.refusal(
            host,
            f"the download did not finish within the deadline of {self.deadline:g} s",
            allow=f"raise {_DEADLINE_SETTING} to allow it",
        )

    def open(
        self, client: httpx.AsyncClient, url: str, *, map_error: ErrorMapper | None = None
    ) -> CheckedDownload:
        """A :class:`CheckedDownload` of ``url`` through ``client`` (no I/O until iterated)."""
        return CheckedDownload(client, url, self, map_error=map_error)


def _default_map_error(provider: str) -> ErrorMapper:
    def mapped(exc: Exception) -> ProviderError:
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(
                ErrorCode.TIMEOUT, f"{provider} download timed out", provider=provider
            )
        if isinstance(exc, httpx.TransportError):
            return ProviderError(
                ErrorCode.PROVIDER_UNAVAILABLE,
                redact(f"the {provider} download broke: {type(exc).__name__}"),
                provider=provider,
            )
        return ProviderError(
            ErrorCode.UNKNOWN, redact(f"{type(exc).__name__}: {exc}"), provider=provider
        )

    return mapped


class CheckedDownload(AsyncIterator[bytes]):
    """The bytes of one output, streamed under an :class:`OutputPolicy`.

    Nothing happens until the first ``__anext__``; the deadline counts from there. Redirects
    are followed here (the ``httpx`` client must not follow them itself), each target
    checked first. ``source`` is the host the bytes come from (after redirects), for
    messages; ``aclose()`` closes the connection.

    Args:
        client: The HTTP client (``follow_redirects=False``).
        url: The output URL (``https:``, ``http:`` or ``data:``).
        policy: The rules.
        map_error: Maps a transport exception (``httpx``) to a ProviderError.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        policy: OutputPolicy,
        *,
        map_error: ErrorMapper | None = None,
    ) -> None:
        self._client = client
        self._url = url
        self._policy = policy
        self._map_error = map_error or _default_map_error(policy.provider)
        self.source = "data:" if url.startswith("data:") else _host_of(url)
        self._chunks = self._stream()

    async def __anext__(self) -> bytes:
        """The next chunk; raises StopAsyncIteration at the end."""
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        """Stop and close the connection, if one is open."""
        await self._chunks.aclose()

    async def _stream(self) -> AsyncGenerator[bytes, None]:
        if self._url.startswith("data:"):
            for chunk in self._data_uri():
                yield chunk
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._policy.deadline
        try:
            response = await self._follow(deadline)
            try:
                async for chunk in self._body(response, deadline):
                    yield chunk
            finally:
                await response.aclose()
        except ProviderError:
            raise
        except Exception as exc:  # the download boundary: every failure leaves mapped
            raise self._map_error(exc) from exc

    async def _follow(self, deadline: float) -> httpx.Response:
        """Send the request and follow checked redirects; the final response, streaming."""
        policy = self._policy
        target = policy.check(self._url)
        for hop in range(policy.max_redirects + 1):
            self.source = _host_of(target)
            request = self._client.build_request("GET", target)
            try:
                async with asyncio.timeout_at(deadline):
                    response = await self._client.send(request, stream=True)
            except TimeoutError:
                raise policy.too_slow(self.source) from None
            except (httpx.InvalidURL, httpx.RemoteProtocolError) as exc:
                # httpx builds a redirect's next request even when it does not follow it.
                if isinstance(exc, httpx.RemoteProtocolError) and "location" not in str(exc):
                    raise
                raise policy.refusal(
                    self.source, f"redirect {hop + 1} is not a valid URL"
                ) from None
            if response.status_code not in _REDIRECT_STATUSES:
                return await self._checked_status(response)
            location = response.headers.get("location")
            await response.aclose()
            if not location:
                raise policy.refusal(
                    self.source, f"HTTP {response.status_code} redirect without a Location"
                )
            if hop == policy.max_redirects:
                break
            # Where httpx itself would go (a relative Location joined, a host-less one fixed).
            following = response.next_request
            joined = following.url if following is not None else target.join(location)
            target = policy.check(joined, hop=hop + 1)
        raise policy.refusal(self.source, f"more than {policy.max_redirects} redirects")

    async def _checked_status(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status < 400:
            length = response.headers.get("content-length", "").strip()
            if length.isdigit() and int(length) > self._policy.max_bytes:
                await response.aclose()
                raise self._policy.too_large(self.source, int(length))
            return response
        await response.aclose()
        raise ProviderError(
            code_for_status(status),
            f"the download of a {self._policy.provider} output from {self.source} "
            f"answered HTTP {status}",
            status_code=status,
            retry_after=retry_after_seconds(dict(response.headers)),
            provider=self._policy.provider,
        )

    async def _body(self, response: httpx.Response, deadline: float) -> AsyncIterator[bytes]:
        chunks = response.aiter_bytes(CHUNK_SIZE)
        total = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise self._policy.too_slow(self.source) from None
            total += len(chunk)
            if total > self._policy.max_bytes:
                raise self._policy.too_large(self.source)
            yield chunk

    def _data_uri(self) -> Iterable[bytes]:
        header, comma, data = self._url.partition(",")
        if not comma:
            raise self._policy.refusal("data:", "the data: URI has no comma")
        if header.lower().endswith(";base64"):
            if len(data) // 4 * 3 > self._policy.max_bytes + 3:
                raise self._policy.too_large("data:")
            try:
                blob = base64.b64decode(data)
            except (binascii.Error, ValueError):
                raise self._policy.refusal("data:", "the data: URI is not valid base64") from None
        else:
            blob = unquote_to_bytes(data)
        if len(blob) > self._policy.max_bytes:
            raise self._policy.too_large("data:", len(blob))
        return (blob[i : i + CHUNK_SIZE] for i in range(0, len(blob), CHUNK_SIZE))


def _host_of(url: str | httpx.URL) -> str:
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        return parsed.raw_host.decode("ascii").lower().rstrip(".")
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return ""
