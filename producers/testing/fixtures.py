"""Test helpers for producer authors: job contexts, artefact assertions, fake secrets."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from producers.registry import ProviderRegistry, default_registry
from producers.sdk.artefacts import Artefact
from producers.sdk.definition import ProducerDefinition
from producers.sdk.handler import HandlerDeps, ProducerHandler
from producers.sdk.jobs import Attachment, Descriptor, JobRequest, Mode
from producers.sdk.runtime import ClientRegistry
from producers.sdk.secrets import StaticSecretResolver
from producers.storage.base import ArtefactStore
from producers.storage.memory import MemoryStore

#: A token that looks real enough; tests plant it and check it never leaks.
FAKE_TOKEN = "r8_FAKE_tutopanda_test_token_0123456789"


def fake_secret_resolver(values: Mapping[str, str] | None = None) -> StaticSecretResolver:
    """A resolver holding fake provider keys (override or add with ``values``)."""
    defaults = {
        "OPENAI_API_KEY": "sk-test-FAKE-tutopanda-0123456789abcdef",
        "REPLICATE_API_TOKEN": FAKE_TOKEN,
    }
    return StaticSecretResolver({**defaults, **(values or {})})


def make_job_request(
    model_id: str = "replicate:bytedance/seedream-4",
    *,
    inputs: Mapping[str, Any] | None = None,
    custom: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    attachments: Sequence[Attachment] = (),
    produces: Sequence[str] = (),
    mode: Mode = "mock",
    attempt: int = 1,
    environment: str = "local",
    **overrides: Any,
) -> JobRequest:
    """A realistic job request with every field overridable (the requirements'
    ``createMockProviderJobContext``)."""
    return JobRequest(
        descriptor=Descriptor.parse(model_id, environment=environment),
        mode=mode,
        attempt=attempt,
        inputs=dict({"prompt": "A red panda explaining volcanoes"} if inputs is None else inputs),
        custom=dict(custom or {}),
        config=dict(config or {}),
        attachments=tuple(attachments),
        produces=tuple(produces),
        **overrides,
    )


class JobContext:
    """A registry, a store and fake secrets wired together; builds handlers for tests."""

    def __init__(
        self,
        *,
        registry: ProviderRegistry | None = None,
        store: ArtefactStore | None = None,
        secrets: StaticSecretResolver | None = None,
        clients: ClientRegistry | None = None,
    ) -> None:
        self.registry = registry or default_registry()
        self.store = store or MemoryStore()
        self.secrets = secrets or fake_secret_resolver()
        self.clients = clients
        self.shared_clients: dict[str, Any] = {}

    def register(self, definition: ProducerDefinition) -> None:
        """Add a producer under test (on a copy, so the default registry is untouched)."""
        self.registry = ProviderRegistry([*self.registry.definitions, definition])

    def deps(self) -> HandlerDeps:
        """Handler dependencies using this context's store, secrets and clients."""
        return HandlerDeps(
            store=self.store,
            secrets=self.secrets,
            clients=self.clients,
            shared_clients=self.shared_clients,
        )

    def handler(self, request: JobRequest) -> ProducerHandler:
        """The handler for ``request``'s descriptor and mode."""
        return self.registry.resolve(request.descriptor, request.mode, self.deps())

    @property
    def client_requests(self) -> dict[str, list[str]]:
        """Calls made on each shared adapter (mock adapters count them)."""
        return {p: list(getattr(c, "requests", [])) for p, c in self.shared_clients.items()}


async def assert_artefact(
    artefact: Artefact,
    *,
    store: ArtefactStore,
    kind: str | None = None,
    mime_prefix: str | None = None,
    mocked: bool | None = None,
) -> bytes:
    """Check an artefact's shape and its stored bytes (size and sha256); returns the bytes.

    ``kind`` is ``inline`` or ``blob``; ``mime_prefix`` e.g. ``image/``.
    """
    assert artefact.id, "artefact has no id"
    if kind is not None:
        assert artefact.kind == kind, f"{artefact.id}: kind {artefact.kind}, expected {kind}"
    if mime_prefix is not None:
        assert artefact.mime_type.startswith(mime_prefix), (
            f"{artefact.id}: MIME {artefact.mime_type}, expected {mime_prefix}*"
        )
    data = await store.read_bytes(artefact.uri)
    assert len(data) == artefact.size, f"{artefact.id}: size {len(data)} != {artefact.size}"
    digest = hashlib.sha256(data).hexdigest()
    assert digest == artefact.sha256, f"{artefact.id}: sha256 mismatch"
    diagnostics = artefact.diagnostics
    assert diagnostics.provider and diagnostics.model, f"{artefact.id}: diagnostics lack model"
    assert diagnostics.payload is not None, f"{artefact.id}: diagnostics lack the payload sent"
    if mocked is not None:
        assert diagnostics.mocked is mocked, f"{artefact.id}: mocked={diagnostics.mocked}"
    return data
