"""Secrets: resolved by name through a resolver, and scrubbed from anything we emit."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any

from producers.sdk.errors import ErrorCode, ProviderError

MASK = "***"
_MIN_SECRET_LENGTH = 6


class _Redactor:
    """Remembers every secret value handed out, to scrub it from text and data."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if len(value) < _MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value not in self._values:
                self._values.add(value)
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def text(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


_REDACTOR = _Redactor()


def register_secret(value: str) -> None:
    """Mark ``value`` as secret so :func:`redact` masks it everywhere from now on."""
    _REDACTOR.add(value)


def redact(value: Any) -> Any:
    """Mask every registered secret in a string or in nested JSON-like data."""
    return _REDACTOR.data(value)


class SecretResolver:
    """Looks up secrets by name; every value it returns is registered for redaction."""

    def lookup(self, name: str) -> str | None:
        """Return the raw secret or None; subclasses override this."""
        raise NotImplementedError

    def get(self, name: str) -> str | None:
        """The secret called ``name``, or None if it is not set."""
        value = self.lookup(name)
        if value:
            register_secret(value)
            return value
        return None

    def require(self, name: str) -> str:
        """The secret called ``name``; a non-retryable ``auth_failed`` error if unset."""
        value = self.get(name)
        if value is None:
            raise ProviderError(
                ErrorCode.AUTH_FAILED,
                f"the secret {name} is not set",
                retryable=False,
                caused_by_user=True,
                hint=f"export {name}=... (or configure the connection that provides it)",
            )
        return value


class EnvSecretResolver(SecretResolver):
    """Secrets from environment variables (the default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def lookup(self, name: str) -> str | None:
        """Read ``name`` from the environment."""
        environ = os.environ if self._environ is None else self._environ
        return environ.get(name)


class StaticSecretResolver(SecretResolver):
    """Secrets from a mapping: for tests and for clients that already hold them."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.requested: list[str] = []

    def lookup(self, name: str) -> str | None:
        """Return the mapped value and remember that it was asked for."""
        self.requested.append(name)
        return self._values.get(name)


class ChainSecretResolver(SecretResolver):
    """The first resolver that knows a secret wins."""

    def __init__(self, *resolvers: SecretResolver) -> None:
        self._resolvers = resolvers

    def lookup(self, name: str) -> str | None:
        """Ask each resolver in turn."""
        for resolver in self._resolvers:
            value = resolver.lookup(name)
            if value:
                return value
        return None
