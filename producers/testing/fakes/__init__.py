"""Fake provider servers that speak Replicate's and OpenAI's wire protocols on localhost.

They let the live code paths (the official ``replicate`` and ``openai`` clients) run in
tests and benchmarks with no network::

    from producers.testing.fakes import Fault, FakeReplicate, ca_bundle_path

    with FakeReplicate(latency=0.2) as fake:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_bundle_path()))
        client = replicate.Client(api_token=FAKE_TOKEN, base_url=fake.base_url)
        fake.inject(Fault.status(429, retry_after=0), route="get", times=2)
        ...

:func:`serve_forever` runs one from the command line; another process drives it through
the control endpoints under ``/__fake__/``.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

from producers.testing.fakes.base import (
    NSFW_ERROR,
    ArmedFault,
    FakeServer,
    Fault,
    IncomingRequest,
    RecordedRequest,
    Reply,
    mask_secret,
)
from producers.testing.fakes.openai import FAKE_OPENAI_KEY, FakeOpenAI
from producers.testing.fakes.replicate import FAKE_TOKEN, FakeReplicate
from producers.testing.fakes.tls import ca_bundle_path, ca_path, client_ssl_context, local_ca

__all__ = [
    "FAKE_OPENAI_KEY",
    "FAKE_TOKEN",
    "NSFW_ERROR",
    "PROVIDERS",
    "ArmedFault",
    "FakeOpenAI",
    "FakeReplicate",
    "FakeServer",
    "Fault",
    "IncomingRequest",
    "RecordedRequest",
    "Reply",
    "ca_bundle_path",
    "ca_path",
    "client_ssl_context",
    "local_ca",
    "make_fake",
    "mask_secret",
    "serve_forever",
]

#: Provider names :func:`make_fake` and :func:`serve_forever` accept.
PROVIDERS = ("replicate", "openai")


def make_fake(
    provider: str,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    latency: float = 0.0,
    **options: Any,
) -> FakeServer:
    """Build (without starting) the fake for ``provider``.

    Args:
        provider: ``replicate`` or ``openai``.
        port: The port (0: a free one).
        host: The address to listen on.
        latency: Replicate: seconds until a prediction finishes; OpenAI: seconds before
            each answer.
        **options: Passed to the fake's constructor (``token=``, ``tls=``, ...).

    Raises:
        ValueError: For an unknown provider.
    """
    name = provider.strip().lower()
    if name == "replicate":
        return FakeReplicate(port=port, host=host, latency=latency, **options)
    if name == "openai":
        return FakeOpenAI(port=port, host=host, latency=latency, **options)
    raise ValueError(f"no fake for provider {provider!r}; choose one of: {', '.join(PROVIDERS)}")


def _environment(fake: FakeServer) -> dict[str, str]:
    """The environment variables a client needs to talk to ``fake``."""
    env: dict[str, str] = {}
    if isinstance(fake, FakeReplicate):
        env["REPLICATE_BASE_URL"] = fake.base_url
        if fake.tls:
            env["SSL_CERT_FILE"] = str(ca_bundle_path())
        env["REPLICATE_API_TOKEN"] = fake.token or FAKE_TOKEN
    elif isinstance(fake, FakeOpenAI):
        env["OPENAI_BASE_URL"] = fake.api_url
        if fake.tls:
            env["SSL_CERT_FILE"] = str(ca_bundle_path())
        env["OPENAI_API_KEY"] = fake.api_key or FAKE_OPENAI_KEY
    return env


def serve_forever(
    provider: str, port: int = 0, host: str = "127.0.0.1", latency: float = 0.0
) -> None:
    """Run the fake for ``provider`` in the foreground until Ctrl-C (or SIGTERM).

    Prints the base URL, for Replicate the CA bundle path, then the environment lines a
    client needs (``REPLICATE_BASE_URL=...``, ``SSL_CERT_FILE=...``,
    ``REPLICATE_API_TOKEN=...``; for OpenAI ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``).

    Args:
        provider: ``replicate`` or ``openai``.
        port: The port (0: a free one).
        host: The address to listen on.
        latency: Replicate: seconds until a prediction finishes; OpenAI: seconds before
            each answer.
    """
    fake = make_fake(provider, port=port, host=host, latency=latency)
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if in_main:
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with fake:
            print(f"Fake {fake.provider} API at {fake.base_url}", flush=True)
            if fake.tls:
                print(f"CA bundle: {ca_bundle_path()}", flush=True)
            print("Set these in the client's environment:", flush=True)
            for key, value in _environment(fake).items():
                print(f"{key}={value}", flush=True)
            print(
                f"Control endpoints: {fake.base_url}/__fake__/"
                "{requests,faults,reset,config,health}",
                flush=True,
            )
            print("Ctrl-C stops it.", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("Stopping.", flush=True)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
