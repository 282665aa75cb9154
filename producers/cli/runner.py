"""How the CLI runs one pipeline job: the SDK's :class:`~producers.sdk.lifecycle.Job` (reuse,
resume, the one wait loop), plus what is the CLI's own: bounded concurrency per provider, a
create rate, retries with backoff, progress events."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from producers.cli.retry import RetryPolicy
from producers.pipeline.steps import JobSpec
from producers.registry import ProviderRegistry
from producers.sdk.artefacts import ProducerResult
from producers.sdk.definition import Prepared
from producers.sdk.errors import ProviderError
from producers.sdk.handler import HandlerDeps, ProducerHandler
from producers.sdk.jobs import Mode
from producers.sdk.lifecycle import Job, WaitPolicy

#: Jobs in flight per provider unless ``--concurrency PROVIDER=N`` says otherwise.
DEFAULT_CONCURRENCY: Mapping[str, int] = {"replicate": 8, "openai": 4}
#: Replicate documents 600 prediction creates per minute; stay under it.
CREATES_PER_MINUTE: Mapping[str, int] = {"replicate": 600}


class RateLimiter:
    """At most ``per_minute`` starts in any sliding minute (a simple token spacing)."""

    def __init__(self, per_minute: int) -> None:
        self._interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Wait for the next slot."""
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class JobEvents:
    """Callbacks the CLI uses for progress and logs."""

    on_start: Callable[[JobSpec], None] = lambda spec: None
    on_done: Callable[[JobSpec, ProducerResult, bool], None] = lambda spec, result, reused: None
    on_retry: Callable[[JobSpec, ProviderError, int, float], None] = lambda s, e, a, w: None
    on_fail: Callable[[JobSpec, ProviderError], None] = lambda spec, error: None
    #: A job's model failed for good and the job moves to ``following`` (its next model).
    on_fallback: Callable[[JobSpec, ProviderError, JobSpec], None] = lambda s, e, f: None


@dataclass
class CliJobRunner:
    """Runs pipeline jobs for the CLI. Call it with a :class:`JobSpec`."""

    registry: ProviderRegistry
    deps: HandlerDeps
    mode: Mode
    run_id: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: Mapping[str, int] = field(default_factory=dict)
    refresh: bool = False
    refresh_roles: frozenset[str] = frozenset()
    events: JobEvents = field(default_factory=JobEvents)
    #: Seconds a submitted job may take before it is cancelled (None: from its model).
    deadline: float | None = None
    counts: Counter[str] = field(default_factory=Counter)
    #: What the jobs this runner ran paid (reused jobs cost nothing again).
    paid_usd: float = 0.0
    #: Jobs made by a fallback model: their key -> the models passed over and why.
    passed_over: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        limits = {**DEFAULT_CONCURRENCY, **self.concurrency}
        self._slots: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(4))
        for provider, limit in limits.items():
            self._slots[provider] = asyncio.Semaphore(limit)
        self._limiters = {p: RateLimiter(n) for p, n in CREATES_PER_MINUTE.items()}

    def handler(self, spec: JobSpec) -> ProducerHandler:
        """The handler of a job's model."""
        request = spec.request(mode=self.mode, run_id=self.run_id)
        return self.registry.resolve(request.descriptor, self.mode, self.deps)

    async def prepare(self, spec: JobSpec) -> Prepared:
        """Validate and price a job without running it."""
        return await self.handler(spec).prepare(spec.request(mode=self.mode, run_id=self.run_id))

    async def __call__(self, spec: JobSpec) -> ProducerResult:
        """Run ``spec`` (reused if an identical job was made), with retries; when its model
        fails with a provider-side error the retries did not cure, the same job runs on the
        role's next fallback model (mapped and validated afresh)."""
        while True:
            try:
                result = await self._run_one(spec)
            except ProviderError as error:
                following = spec.fallback(error)
                if following is None:
                    self.counts["failed"] += 1
                    self.events.on_fail(spec, error)
                    raise
                self.counts["fallbacks"] += 1
                self.events.on_fallback(spec, error, following)
                spec = following
                continue
            if spec.passed_over:
                self.passed_over[spec.key] = [dict(item) for item in spec.passed_over]
            return result

    async def _run_one(self, spec: JobSpec) -> ProducerResult:
        request = spec.request(mode=self.mode, run_id=self.run_id)
        handler = self.registry.resolve(request.descriptor, self.mode, self.deps)
        policy = WaitPolicy(poll_interval=self.deps.poll_interval, deadline=self.deadline)
        async with Job(handler, request, policy=policy) as job:
            prepared = await job.prepare()
            if not (self.refresh or spec.refresh or spec.role in self.refresh_roles):
                cached = await job.reused()
                if cached is not None:
                    self.counts["reused"] += 1
                    self.events.on_done(spec, cached, True)
                    return cached
        provider = spec.provider
        async with self._slots[provider]:
            limiter = self._limiters.get(provider)
            if limiter is not None and self.mode == "live":
                await limiter.wait()
            self.events.on_start(spec)

            async def attempt(number: int, previous: ProviderError | None) -> ProducerResult:
                retry = request.model_copy(update={"attempt": number})
                async with Job(handler, retry, policy=policy, prepared=prepared) as job:
                    kept = previous.handle if previous is not None else None
                    outcome = await job.run(reuse=False, kept=kept)
                return outcome.result

            def on_retry(error: ProviderError, attempt_number: int, wait: float) -> None:
                self.counts["retries"] += 1
                self.events.on_retry(spec, error, attempt_number, wait)

            result = await self.retry.run(attempt, on_retry=on_retry)
        self.paid_usd = round(self.paid_usd + (result.diagnostics.cost_usd or 0.0), 6)
        self.counts["done"] += 1
        self.events.on_done(spec, result, False)
        return result
