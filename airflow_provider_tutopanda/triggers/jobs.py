"""What the operator (on a worker) and the trigger (in the triggerer) share.

- :func:`job_handler`: the SDK handler of a job, its provider's client built once by the
  provider's hook (live mode) and reused for every call of the task or the trigger;
- :class:`JobEvent`: the trigger's event, a typed model validated where it lands
  (``execute_complete``), carrying the handle and, on failure, the error's record;
- :func:`wait_policy`: the SDK's wait policy from the operator's arguments.

The job's life itself (prepare, reuse, resume or submit, wait, collect, remember) is the SDK's
:class:`producers.sdk.lifecycle.Job`; nothing here polls.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from producers.registry import default_registry
from producers.sdk.errors import ProviderError
from producers.sdk.handler import HandlerDeps, ProducerHandler
from producers.sdk.jobs import JobHandle, JobRequest
from producers.sdk.lifecycle import WaitPolicy
from producers.sdk.runtime import ClientRegistry, close_clients
from producers.sdk.secrets import StaticSecretResolver
from producers.storage.base import ArtefactStore


@dataclass
class _Shared:
    """A live client (and its hook) shared by the triggers of one triggerer process."""

    hook: Any
    client: Any
    users: int = 0


#: Clients every trigger of this process shares, by (provider, connection): one connection
#: pool and one set of settings per provider, not one per waiting job (a triggerer holds
#: hundreds). Only triggers share: they all run on the triggerer's one event loop.
_SHARED: dict[tuple[str, str | None], _Shared] = {}
_LOCK = threading.Lock()
#: Stores by URI, shared the same way (an S3 store holds a boto3 client).
_STORES: dict[str, ArtefactStore] = {}


def job_handler(
    request: JobRequest, store: str, conn_id: str | None, *, shared: bool = False
) -> ProducerHandler:
    """The SDK handler of ``request``: live mode takes the secret, the client options and the
    client itself from the provider's hook (its Airflow connection), built once; mock mode
    needs no secret at all. ``shared`` (triggers): the client and the store are the process's
    shared ones. Close it with :func:`close_handler`."""
    from airflow_provider_tutopanda.store import open_airflow_store

    provider = request.descriptor.provider
    if shared:
        opened = _STORES.get(store)
        if opened is None:
            opened = _STORES[store] = open_airflow_store(store)
    else:
        opened = open_airflow_store(store)
    deps = HandlerDeps(store=opened, shared_clients={})
    if request.mode == "live":
        if shared:
            entry = _acquire(provider, conn_id)
            hook = entry.hook
            deps.shared_clients = {provider: entry.client}
            _OWNERS[id(deps)] = (provider, conn_id)
        else:
            from airflow_provider_tutopanda.hooks import hook_for

            hook = hook_for(provider, conn_id=conn_id)
            # Built on first use, once: a pass that only prepares and defers (the trigger
            # submits) never builds, nor imports, the provider's client.
            deps.clients = _hook_clients(provider, hook)
        deps.secrets = hook.secret_resolver()
        deps.client_options = {provider: dict(hook.client_options())}
    else:
        deps.secrets = StaticSecretResolver({})
    return default_registry().resolve(request.descriptor, request.mode, deps)


def _hook_clients(provider: str, hook: Any) -> ClientRegistry:
    """A client registry whose live adapter for ``provider`` is the hook's client."""
    clients = ClientRegistry()
    clients.register(provider, "live", lambda _context: hook.client)
    return clients


#: Handlers whose client is a shared one: id(deps) -> its key in :data:`_SHARED`.
_OWNERS: dict[int, tuple[str, str | None]] = {}


def _acquire(provider: str, conn_id: str | None) -> _Shared:
    from airflow_provider_tutopanda.hooks import hook_for

    key = (provider, conn_id)
    with _LOCK:  # acquired off the event loop (sync_to_async), released on it
        entry = _SHARED.get(key)
        if entry is None:
            hook = hook_for(provider, conn_id=conn_id)
            entry = _SHARED[key] = _Shared(hook=hook, client=hook.client)
        entry.users += 1
        return entry


async def close_handler(handler: ProducerHandler) -> None:
    """Close the clients :func:`job_handler` built; a shared client is closed when its last
    trigger is done (the next one builds it again, reading the connection anew)."""
    key = _OWNERS.pop(id(handler.deps), None)
    if key is None:
        await close_clients(handler.deps.shared_clients or {})
        return
    with _LOCK:
        entry = _SHARED.get(key)
        if entry is None:
            return
        entry.users -= 1
        if entry.users > 0:
            return
        del _SHARED[key]
    await close_clients({key[0]: entry.client})


def wait_policy(
    poll_interval: float | None, deadline: float | None, max_poll_failures: int | None = None
) -> WaitPolicy:
    """The SDK's wait policy from an operator's arguments (None: the SDK's defaults)."""
    policy = WaitPolicy(poll_interval=poll_interval, deadline=deadline)
    if max_poll_failures is not None:
        policy = WaitPolicy(
            poll_interval=poll_interval, deadline=deadline, max_poll_failures=max_poll_failures
        )
    return policy


class JobEvent(BaseModel):
    """What the trigger tells the task: the job is done, or failed with this error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["done", "error"]
    #: The job's handle; None only for a failure before the trigger could submit it.
    handle: JobHandle | None = None
    error: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _error_iff_failed(self) -> JobEvent:
        if (self.status == "error") != (self.error is not None):
            raise ValueError("an error event carries the error, a done event none")
        if self.status == "done" and self.handle is None:
            raise ValueError("a done event carries the job's handle")
        return self

    @classmethod
    def failed(cls, handle: JobHandle | None, error: ProviderError) -> JobEvent:
        """The event of a job that failed with ``error``."""
        return cls(status="error", handle=handle, error=error.to_dict())

    def provider_error(self) -> ProviderError:
        """The error of an ``error`` event, with the handle (a retry resumes the job)."""
        return ProviderError.from_dict(self.error or {}, handle=self.handle)
