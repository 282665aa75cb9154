"""The runtime handed to a producer: config, inputs, attachments, secrets, clients, helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from producers.sdk.artefacts import ArtefactBuilder, DiagnosticsRecorder
from producers.sdk.attachments import Attachments
from producers.sdk.definition import Prepared, ProducerDefinition
from producers.sdk.errors import ConfigurationError, ErrorCode, InvalidInputError, ProviderError
from producers.sdk.jobs import Descriptor, JobRequest, Kind, Mode
from producers.sdk.schema import validate_instance
from producers.sdk.secrets import SecretResolver
from producers.sdk.telemetry import ProducerLogger
from producers.sdk.templates import Templates
from producers.storage.base import ArtefactStore


@dataclass(frozen=True)
class ClientContext:
    """What a client factory gets to build a provider adapter."""

    provider: str
    mode: Mode
    secrets: SecretResolver
    logger: ProducerLogger
    options: Mapping[str, Any] = field(default_factory=dict)


ClientFactory = Callable[[ClientContext], Any]


class ClientRegistry:
    """Provider adapters by (provider, mode); ``mock`` falls back to a generic mock."""

    def __init__(self) -> None:
        self._factories: dict[tuple[str, str], ClientFactory] = {}

    def register(self, provider: str, mode: Mode | str, factory: ClientFactory) -> None:
        """Use ``factory`` to build ``provider``'s adapter in ``mode`` (``*`` for any)."""
        self._factories[(provider.lower(), mode)] = factory

    def has(self, provider: str, mode: Mode) -> bool:
        """True if an adapter can be built for ``provider`` in ``mode``."""
        key = provider.lower()
        return any(k in self._factories for k in ((key, mode), ("*", mode)))

    def build(self, context: ClientContext) -> Any:
        """Build the adapter for ``context.provider`` in ``context.mode``."""
        for key in ((context.provider, context.mode), ("*", context.mode)):
            factory = self._factories.get(key)
            if factory is not None:
                return factory(context)
        if context.mode == "live":
            raise ConfigurationError(
                f"live mode is not available for provider {context.provider!r}: no live "
                "adapter is installed for it yet; run with --mode mock"
            )
        raise ConfigurationError(f"no {context.mode} adapter for provider {context.provider!r}")


class Clients:
    """Provider adapters for one job, built on first use: ``runtime.clients.replicate``."""

    def __init__(
        self,
        registry: ClientRegistry,
        *,
        mode: Mode,
        secrets: SecretResolver,
        logger: ProducerLogger,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        shared: dict[str, Any] | None = None,
    ) -> None:
        self._registry = registry
        self._mode = mode
        self._secrets = secrets
        self._logger = logger
        self._options = options or {}
        self._built: dict[str, Any] = {} if shared is None else shared
        # Shared adapters belong to whoever passed the dict (see close_clients), never to a
        # job: a job closing one would break the jobs still using it.
        self._shares = shared is not None
        self._owned: list[str] = []

    def get(self, provider: str) -> Any:
        """The adapter for ``provider``."""
        provider = provider.lower()
        if provider not in self._built:
            context = ClientContext(
                provider=provider,
                mode=self._mode,
                secrets=self._secrets,
                logger=self._logger,
                options=self._options.get(provider, {}),
            )
            self._built[provider] = self._registry.build(context)
            if not self._shares:
                self._owned.append(provider)
        return self._built[provider]

    def __getattr__(self, provider: str) -> Any:
        if provider.startswith("_"):
            raise AttributeError(provider)
        return self.get(provider)

    async def aclose(self) -> None:
        """Close the adapters this object built."""
        for provider in self._owned:
            client = self._built.pop(provider, None)
            closer = getattr(client, "aclose", None)
            if closer is not None:
                await closer()
        self._owned.clear()


async def close_clients(shared: dict[str, Any]) -> None:
    """Close every adapter in a shared dict (see ``HandlerDeps.shared_clients``)."""
    while shared:
        _, client = shared.popitem()
        closer = getattr(client, "aclose", None)
        if closer is not None:
            await closer()


class CancellationSignal:
    """Set by a client to ask a running job to stop; producers check it between steps."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reason: str | None = None

    def cancel(self, reason: str = "canceled by the client") -> None:
        """Ask the job to stop."""
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancellation was asked for."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Wait until cancellation is asked for."""
        await self._event.wait()

    def raise_if_cancelled(self) -> None:
        """Raise a ``canceled`` :class:`ProviderError` if cancellation was asked for."""
        if self.cancelled:
            raise ProviderError(ErrorCode.CANCELED, self.reason or "canceled", retryable=False)


class Inputs:
    """The job's resolved inputs: general attributes and custom (model-specific) ones."""

    def __init__(self, general: Mapping[str, Any], custom: Mapping[str, Any], model_id: str):
        self.general = dict(general)
        self.custom = dict(custom)
        self._model_id = model_id

    def get(self, name: str, default: Any = None) -> Any:
        """A general attribute, falling back to a custom one, else ``default``."""
        if name in self.general:
            return self.general[name]
        return self.custom.get(name, default)

    def require(self, name: str) -> Any:
        """An input that must be present; ``invalid_input`` naming it otherwise."""
        value = self.get(name)
        if value is None or value == "":
            raise InvalidInputError(
                f"{self._model_id} needs the input {name!r}; given: "
                f"{', '.join(sorted({**self.general, **self.custom})) or '(none)'}",
                field=name,
            )
        return value

    def all(self) -> dict[str, Any]:
        """General and custom inputs merged (custom wins): the variables of templates."""
        return {**self.general, **self.custom}


def parse_config(definition: ProducerDefinition, config: Mapping[str, Any], model_id: str) -> Any:
    """Validate the producer config against the definition's schema."""
    schema = definition.config_schema
    if schema is None:
        return dict(config)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        try:
            return schema.model_validate(dict(config))
        except ValidationError as exc:
            problems = []
            for item in exc.errors():
                loc = ".".join(str(p) for p in item["loc"]) or "(config)"
                problems.append(f"config.{loc}: {item['msg']} (got {item.get('input')!r})")
            allowed = ", ".join(schema.model_fields)
            raise InvalidInputError(
                f"invalid config for {model_id}: "
                + "; ".join(problems)
                + f"; config fields: {allowed}",
                field="config",
            ) from None
    validate_instance(dict(config), schema, where="config")
    return dict(config)


@dataclass
class ProducerRuntime:
    """Everything a producer's functions get. Authors read from it; they never build it."""

    request: JobRequest
    definition: ProducerDefinition
    kind: Kind
    config: Any
    inputs: Inputs
    attachments: Attachments
    secrets: SecretResolver
    clients: Clients
    artefacts: ArtefactBuilder
    templates: Templates
    logger: ProducerLogger
    cancel: CancellationSignal
    diagnostics: DiagnosticsRecorder
    store: ArtefactStore
    prepared: Prepared | None = None
    #: Per-job scratch space shared by submit/poll/collect within one process.
    scratch: dict[str, Any] = field(default_factory=dict)

    @property
    def descriptor(self) -> Descriptor:
        """``(provider, model, environment)`` of this job."""
        return self.request.descriptor

    @property
    def mode(self) -> Mode:
        """``live`` or ``mock``."""
        return self.request.mode

    @property
    def model(self) -> str:
        """The model name (without the provider)."""
        return self.request.descriptor.model
