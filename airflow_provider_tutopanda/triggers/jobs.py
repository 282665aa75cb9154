"""What the operator (on a worker) and the trigger (in the triggerer) share: building a
handler for a request, and waiting for a submitted job without paying twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from producers.registry import default_registry
from producers.sdk.artefacts import ProducerResult
from producers.sdk.errors import ErrorCode, ProviderError
from producers.sdk.handler import FIRST_POLL_DELAY, HandlerDeps, ProducerHandler
from producers.sdk.jobs import JobHandle, JobRequest
from producers.sdk.secrets import StaticSecretResolver

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def build_handler(
    request: JobRequest, store: str, conn_id: str | None, poll_interval: float | None
) -> ProducerHandler:
    """The SDK handler of ``request``: live mode takes secrets and client options from the
    provider's hook (its Airflow connection); mock mode needs no secret at all."""
    provider = request.descriptor.provider
    from airflow_provider_tutopanda.store import open_airflow_store

    deps = HandlerDeps(store=open_airflow_store(store), poll_interval=poll_interval)
    if request.mode == "live":
        from airflow_provider_tutopanda.hooks import hook_for

        hook = hook_for(provider, conn_id=conn_id)
        deps.secrets = hook.secret_resolver()
        deps.client_options = {provider: dict(hook.client_options())}
    else:
        deps.secrets = StaticSecretResolver({})
    return default_registry().resolve(request.descriptor, request.mode, deps)


def poll_delay(handler: ProducerHandler, polls: int, poll_interval: float | None) -> float:
    """Seconds before the next poll: none in mock mode, else the fixed ``poll_interval``
    or a short first wait growing by half up to the producer's own interval."""
    if handler.mode == "mock":
        return 0.0
    if poll_interval is not None:
        return poll_interval
    return float(min(handler.definition.poll_interval, FIRST_POLL_DELAY * 1.5**polls))


async def collect_and_remember(
    handler: ProducerHandler, request: JobRequest, handle: JobHandle, fingerprint: str
) -> ProducerResult:
    """Collect a finished job into the store and record it for reuse under ``fingerprint``."""
    from producers.pipeline import reuse

    result = await handler.collect(request, handle)
    await reuse.remember(handler.deps.store, fingerprint, request.mode, result)
    return result


async def wait_until_done(
    handler: ProducerHandler,
    request: JobRequest,
    handle: JobHandle,
    poll_interval: float | None = None,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Poll ``handle`` until the job is terminal and succeeded.

    A ``rate_limited`` poll waits its ``retry_after`` and polls again (it costs no task
    retry); any other error leaves as a :class:`ProviderError` carrying the handle.
    """
    polls = 0
    while True:
        try:
            status = await handler.poll(request, handle)
        except ProviderError as error:
            if error.code is not ErrorCode.RATE_LIMITED:
                error.handle = error.handle or handle
                raise
            delay = error.retry_after
            if delay is None:
                delay = poll_delay(handler, polls, poll_interval)
            log.info("tutopanda: poll rate limited, polling again in %.1fs", delay)
        else:
            if status.state.terminal:
                return
            delay = status.poll_after
            if delay is None:
                delay = poll_delay(handler, polls, poll_interval)
        polls += 1
        await sleep(delay)
