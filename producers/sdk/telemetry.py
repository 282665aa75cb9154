"""Structured log events of the SDK (``providers.sdk.invoke.start|end|error``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from producers.sdk.secrets import redact

EVENT_PREFIX = "providers.sdk"
_LOGGER = logging.getLogger("producers.sdk")


class ProducerLogger:
    """Emits named events with structured fields, secrets masked.

    Each event is one log record on the ``producers.sdk`` logger whose message is the
    event name followed by its fields as JSON, and whose ``extra`` carries ``event`` and
    ``fields`` for handlers that want them structured.
    """

    def __init__(self, logger: logging.Logger | None = None, **context: Any) -> None:
        self._logger = logger or _LOGGER
        self._context = context

    def bind(self, **context: Any) -> ProducerLogger:
        """A logger that adds ``context`` to every event."""
        return ProducerLogger(self._logger, **{**self._context, **context})

    def event(self, name: str, level: int = logging.INFO, **fields: Any) -> None:
        """Emit ``providers.sdk.<name>`` with the bound context and ``fields``."""
        if not self._logger.isEnabledFor(level):
            return
        event = name if name.startswith(EVENT_PREFIX) else f"{EVENT_PREFIX}.{name}"
        data = redact({**self._context, **fields})
        self._logger.log(
            level,
            "%s %s",
            event,
            json.dumps(data, default=str, sort_keys=True),
            extra={"event": event, "fields": data},
        )

    def info(self, message: str, **fields: Any) -> None:
        """A free-form informational event under ``providers.sdk.log``."""
        self.event("log", logging.INFO, message=message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        """A free-form warning event under ``providers.sdk.log``."""
        self.event("log", logging.WARNING, message=message, **fields)
