"""The SDK's per-job overhead against bare httpx making the same HTTP calls, on the fakes.

Run with ``make bench`` or ``.venv/bin/python -m benchmarks.sdk_overhead``.

Two providers, each on a fake server in its own process (see :mod:`benchmarks._support`):

* ``replicate:bytedance/seedream-4``, live: mapping and validation, create, poll, a streamed
  download and a verified, fsynced write into a ``LocalStore``; against bare
  ``httpx.AsyncClient`` doing ``POST /v1/models/bytedance/seedream-4/predictions`` with
  the same payload, ``GET /v1/predictions/{id}`` until ``succeeded``, and ``GET`` of the
  output streamed to a temp file while hashing it, then the same durable publish as the
  store (:class:`benchmarks._support.BlobDir`);
* ``openai:gpt-5-mini`` text, live: against bare ``POST /v1/responses`` with the same body,
  the output text extracted and stored the same durable way.

Variants per provider:

* ``bare``: one ``httpx.AsyncClient`` for the whole run (the baseline of every ratio);
* ``adapter``: the SDK's live adapter (``ReplicateClient`` / ``OpenAIClient``, i.e. the
  official client) called directly, built once, storing like ``bare``: no handler, no
  runtime, no ``LocalStore``. It splits the SDK's overhead into the official client's
  share and the share of the SDK's own layers;
* ``sdk-shared``: ``ProducerHandler.run`` with ``HandlerDeps(shared_clients={})``, as
  ``tutopanda movie`` runs its jobs: the adapter is built by the first job and reused
  (connections too, like the baseline);
* ``sdk-per-job``: ``ProducerHandler.run`` with default ``HandlerDeps`` (as ``tutopanda
  produce`` runs its one job): the adapter, its httpx clients and SSL contexts are built
  and closed in every job;
* ``bare-per-job``: a new ``httpx.AsyncClient`` per job, the fair partner of ``sdk-per-job``.

After a warm-up (which also checks that every variant makes the same calls per job with
the same body, and stores the same bytes), ``rounds`` rounds of ``jobs / rounds`` jobs per
variant run interleaved job by job (the variants take turns, in an order rotated every
turn). Reported per variant: the median wall time per job, its spread, the median process
CPU time per job, and the ratio of medians to ``bare``. When a ratio misses the goal, the SDK variant is profiled with cProfile and the
hotspots are printed with the ``producers/`` line they are reached from.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import itertools
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks._profile import hotspots, print_hotspots
from benchmarks._support import (
    NOISY_CPUS,
    BlobDir,
    CpuWatch,
    FakeProcess,
    format_table,
    quantile,
    write_json,
)
from producers.clients import default_client_registry
from producers.clients.base import MediaHints, TextRequest
from producers.clients.openai import OpenAIClient
from producers.clients.replicate import ReplicateClient
from producers.registry import default_registry
from producers.replicate.catalogue import Catalogue
from producers.sdk.definition import Prepared
from producers.sdk.handler import HandlerDeps
from producers.sdk.jobs import JobRequest
from producers.sdk.runtime import ClientContext, close_clients
from producers.sdk.telemetry import ProducerLogger
from producers.storage.local import LocalStore
from producers.testing import fake_secret_resolver, make_job_request

#: A job: runs one job for ``prompt``; returns the sha256 of the output it stored.
JobFn = Callable[[str], Awaitable[str]]

IMAGE_MODEL = "replicate:bytedance/seedream-4"
TEXT_MODEL = "openai:gpt-5-mini"
PROMPT = "A cross-section of an erupting volcano, textbook illustration"
API_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=10.0)
_TERMINAL = frozenset({"succeeded", "failed", "canceled"})
_DOWNLOAD_CHUNK = 1024 * 1024
_job_numbers = itertools.count(1)


def next_prompt() -> str:
    """A prompt no job used before (so every job stores a new blob, as real jobs do)."""
    return f"{PROMPT} #{next(_job_numbers)}"


@dataclass
class Variant:
    """One way of running the provider's job, and what was measured for it."""

    key: str
    label: str
    run: JobFn
    sdk: bool
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median wall seconds per job."""
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        """Median process CPU seconds per job (this process only: the fakes run apart)."""
        return statistics.median(self.cpu)


# -- the SDK side ---------------------------------------------------------------------------


def build_adapter(provider: str, secrets: Mapping[str, str]) -> Any:
    """The provider's live adapter, built the way the SDK builds it (client registry)."""

    context = ClientContext(
        provider=provider,
        mode="live",
        secrets=fake_secret_resolver(secrets),
        logger=ProducerLogger(),
    )
    return default_client_registry().build(context)


class SdkJobs:
    """Jobs through ``ProducerHandler.run`` in live mode, into a ``LocalStore``.

    Args:
        model_id: ``provider:model``.
        store_dir: The store's directory.
        secrets: The fake keys (``REPLICATE_API_TOKEN``, ``OPENAI_API_KEY``).
        shared: Share adapters between jobs: ``HandlerDeps.shared_clients={}`` (the first
            job builds the adapter, the others reuse it; :func:`close_clients` closes it),
            as ``tutopanda movie`` does. False: default deps, an adapter per job.
    """

    def __init__(
        self, model_id: str, store_dir: Path, secrets: Mapping[str, str], *, shared: bool
    ) -> None:

        self.model_id = model_id
        self.provider = model_id.split(":", 1)[0]
        self.registry = default_registry()
        self.clients = default_client_registry()
        self.secrets = fake_secret_resolver(secrets)
        self.shared: dict[str, Any] | None = {} if shared else None
        self.deps = HandlerDeps(
            store=LocalStore(store_dir),
            secrets=self.secrets,
            clients=self.clients,
            poll_interval=0.0,
            shared_clients=self.shared,
        )

    def _request(self, prompt: str) -> JobRequest:
        return make_job_request(self.model_id, mode="live", inputs={"prompt": prompt})

    async def __call__(self, prompt: str) -> str:
        """Run one job; the sha256 of its (single) artefact."""
        request = self._request(prompt)
        handler = self.registry.resolve(request.descriptor, "live", self.deps)
        result = await handler.run(request)
        (artefact,) = result.artefacts
        return str(artefact.sha256)

    async def prepare(self, prompt: str) -> Prepared:
        """What the SDK maps ``prompt`` to (``Prepared``: payload, state), no provider call."""
        request = self._request(prompt)
        handler = self.registry.resolve(request.descriptor, "live", self.deps)
        return await handler.prepare(request)

    async def aclose(self) -> None:
        """Close the shared adapters."""
        if self.shared is not None:
            await close_clients(self.shared)


# -- the bare side --------------------------------------------------------------------------


async def _stream_to_blob(
    client: httpx.AsyncClient, url: str, blobs: BlobDir, headers: Mapping[str, str]
) -> str:
    """GET ``url`` streamed to a temp file while hashing it, then publish it durably."""
    path, handle = blobs.open_temp()
    hasher = hashlib.sha256()
    try:
        async with client.stream("GET", url, headers=headers) as response:
            response.raise_for_status()
            mime_type = response.headers.get("content-type", "application/octet-stream")
            async for chunk in response.aiter_bytes(_DOWNLOAD_CHUNK):
                handle.write(chunk)
                hasher.update(chunk)
    except BaseException:
        handle.close()
        path.unlink(missing_ok=True)
        raise
    digest = hasher.hexdigest()
    blobs.publish(path, handle, sha256=digest, mime_type=mime_type)
    return digest


class BareReplicate:
    """The Replicate job with bare httpx: create, poll until done, stream the output.

    Args:
        env: ``REPLICATE_BASE_URL``, ``REPLICATE_API_TOKEN``, ``SSL_CERT_FILE``.
        payload: The model input with any prompt (the SDK's mapping, computed beforehand).
        blobs: Where outputs go.
        per_job: A new ``httpx.AsyncClient`` (httpx defaults) per job.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        payload: Mapping[str, Any],
        blobs: BlobDir,
        *,
        per_job: bool,
    ) -> None:
        self.base = env["REPLICATE_BASE_URL"]
        self.headers = {"Authorization": f"Bearer {env['REPLICATE_API_TOKEN']}"}
        self.payload = dict(payload)
        self.blobs = blobs
        self.per_job = per_job
        owner, name = IMAGE_MODEL.split(":", 1)[1].split("/", 1)
        self.create_url = f"{self.base}/v1/models/{owner}/{name}/predictions"
        self.client: httpx.AsyncClient | None = None
        if not per_job:
            context = ssl.create_default_context(cafile=env["SSL_CERT_FILE"])
            self.client = httpx.AsyncClient(timeout=API_TIMEOUT, verify=context)

    async def __call__(self, prompt: str) -> str:
        """Run one job; the sha256 of the stored output."""
        if self.client is not None:
            return await self._job(self.client, prompt)
        async with httpx.AsyncClient(timeout=API_TIMEOUT) as client:
            return await self._job(client, prompt)

    async def _job(self, client: httpx.AsyncClient, prompt: str) -> str:
        body = {"input": {**self.payload, "prompt": prompt}}
        response = await client.post(self.create_url, json=body, headers=self.headers)
        response.raise_for_status()
        prediction = response.json()
        while prediction["status"] not in _TERMINAL:
            response = await client.get(
                f"{self.base}/v1/predictions/{prediction['id']}", headers=self.headers
            )
            response.raise_for_status()
            prediction = response.json()
        if prediction["status"] != "succeeded":
            raise RuntimeError(f"prediction {prediction['id']} ended {prediction['status']}")
        output = prediction["output"]
        url = output[0] if isinstance(output, list) else output
        return await _stream_to_blob(client, url, self.blobs, {})

    async def aclose(self) -> None:
        """Close the shared client."""
        if self.client is not None:
            await self.client.aclose()


class BareOpenAI:
    """The OpenAI text job with bare httpx: ``POST /v1/responses``, store the text.

    Args:
        env: ``OPENAI_BASE_URL`` (ending in ``/v1``) and ``OPENAI_API_KEY``.
        body: The request body with any prompt as ``input`` (the SDK's, computed beforehand).
        blobs: Where outputs go.
        per_job: A new ``httpx.AsyncClient`` (httpx defaults) per job.
    """

    def __init__(
        self, env: Mapping[str, str], body: Mapping[str, Any], blobs: BlobDir, *, per_job: bool
    ) -> None:
        self.url = env["OPENAI_BASE_URL"].rstrip("/") + "/responses"
        self.headers = {"Authorization": f"Bearer {env['OPENAI_API_KEY']}"}
        self.body = dict(body)
        self.blobs = blobs
        self.client = None if per_job else httpx.AsyncClient(timeout=API_TIMEOUT)

    async def __call__(self, prompt: str) -> str:
        """Run one job; the sha256 of the stored text."""
        if self.client is not None:
            return await self._job(self.client, prompt)
        async with httpx.AsyncClient(timeout=API_TIMEOUT) as client:
            return await self._job(client, prompt)

    async def _job(self, client: httpx.AsyncClient, prompt: str) -> str:
        response = await client.post(
            self.url, json={**self.body, "input": prompt}, headers=self.headers
        )
        response.raise_for_status()
        answer = response.json()
        text = "".join(
            part.get("text", "")
            for item in answer.get("output", [])
            if item.get("type") == "message"
            for part in item.get("content", [])
            if part.get("type") == "output_text"
        )
        data = text.encode("utf-8")
        self.blobs.put_bytes(data, mime_type="text/plain")
        return hashlib.sha256(data).hexdigest()

    async def aclose(self) -> None:
        """Close the shared client."""
        if self.client is not None:
            await self.client.aclose()


class AdapterReplicate:
    """The Replicate job through the SDK's adapter alone: create, poll, download, store bare.

    Args:
        adapter: A ``ReplicateClient``, shared by every job.
        prepared: The SDK's ``Prepared`` for the job (payload and media hints).
        version: The model's pinned version, if any (as the producer passes it).
        blobs: Where outputs go (the same writer as ``bare``).
    """

    def __init__(
        self, adapter: ReplicateClient, prepared: Prepared, version: str | None, blobs: BlobDir
    ) -> None:
        self.adapter = adapter
        self.model = IMAGE_MODEL.split(":", 1)[1]
        self.version = version
        self.payload = dict(prepared.payload)
        self.hints = MediaHints.model_validate(prepared.state["hints"])
        self.blobs = blobs

    async def __call__(self, prompt: str) -> str:
        """Run one job; the sha256 of the stored output."""
        job = await self.adapter.create_job(
            model=self.model,
            version=self.version,
            payload={**self.payload, "prompt": prompt},
            hints=self.hints,
        )
        while job.status not in _TERMINAL:
            job = await self.adapter.get_job(job.id)
        if job.status != "succeeded":
            raise RuntimeError(f"prediction {job.id} ended {job.status}")
        path, handle = self.blobs.open_temp()
        hasher = hashlib.sha256()
        try:
            async for chunk in self.adapter.download(job.outputs[0]):
                handle.write(chunk)
                hasher.update(chunk)
        except BaseException:
            handle.close()
            path.unlink(missing_ok=True)
            raise
        digest = hasher.hexdigest()
        self.blobs.publish(path, handle, sha256=digest, mime_type="image/png")
        return digest

    async def aclose(self) -> None:
        """Close the adapter."""
        await self.adapter.aclose()


class AdapterOpenAI:
    """The OpenAI text job through the SDK's adapter alone (``generate``), stored bare.

    Args:
        adapter: An ``OpenAIClient``, shared by every job.
        payload: The SDK's ``TextRequest`` data for the job (``input`` is replaced).
        blobs: Where outputs go (the same writer as ``bare``).
    """

    def __init__(self, adapter: OpenAIClient, payload: Mapping[str, Any], blobs: BlobDir) -> None:
        self.adapter = adapter
        self.payload = dict(payload)
        self.blobs = blobs

    async def __call__(self, prompt: str) -> str:
        """Run one job; the sha256 of the stored text."""
        request = TextRequest.model_validate({**self.payload, "input": prompt})
        result = await self.adapter.generate(request)
        data = result.text.encode("utf-8")
        self.blobs.put_bytes(data, mime_type="text/plain")
        return hashlib.sha256(data).hexdigest()

    async def aclose(self) -> None:
        """Close the adapter."""
        await self.adapter.aclose()


# -- checking that the variants do the same thing ---------------------------------------------


def _calls(log: Sequence[Mapping[str, Any]], jobs: int) -> dict[str, float]:
    """Requests per job by ``METHOD route``."""
    counts = Counter(
        f"{entry['method']} {entry['path'] if entry['route'] == 'create' else entry['route']}"
        for entry in log
    )
    return {name: count / jobs for name, count in sorted(counts.items())}


def _bodies(log: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The JSON bodies sent, with the prompt replaced by a placeholder."""

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith(PROMPT):
            return "<prompt>"
        return value

    return [scrub(entry["json"]) for entry in log if entry.get("json") is not None]


async def warm_up(
    fake: FakeProcess, variants: Sequence[Variant], jobs: int
) -> dict[str, dict[str, Any]]:
    """Run ``jobs`` jobs of each variant; record the calls each makes and the bytes stored.

    Returns:
        Per variant: ``calls`` (requests per job by route), ``bodies`` (the JSON bodies of
        the last job, prompt scrubbed) and ``sha256`` (of the output for a fixed prompt).
    """
    seen: dict[str, dict[str, Any]] = {}
    for variant in variants:
        fake.reset()
        for _ in range(jobs):
            await variant.run(next_prompt())
        log = fake.requests()
        per_job = len(log) // jobs
        seen[variant.key] = {
            "calls": _calls(log, jobs),
            "bodies": _bodies(log[-per_job:]),
            "sha256": await variant.run(f"{PROMPT} (same for every variant)"),
        }
    return seen


def check_same(seen: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What differs between the variants (calls, bodies, stored bytes); empty if nothing."""
    problems: list[str] = []
    reference_key = next(iter(seen))
    reference = seen[reference_key]
    for key, data in seen.items():
        for aspect in ("calls", "bodies", "sha256"):
            if data[aspect] != reference[aspect]:
                problems.append(
                    f"{key} differs from {reference_key} in {aspect}: "
                    f"{data[aspect]!r} != {reference[aspect]!r}"
                )
    return problems


# -- measuring ------------------------------------------------------------------------------


async def measure(
    fake: FakeProcess, variants: Sequence[Variant], *, rounds: int, block: int
) -> None:
    """Run ``rounds`` rounds of ``block`` jobs per variant, interleaved job by job.

    Within a round the variants take turns, one job each, in an order rotated after every
    turn, so a change of machine load hits every variant alike. Between rounds the fake
    forgets its state and the garbage collector runs.
    """
    count = len(variants)
    for round_index in range(rounds):
        fake.reset()
        gc.collect()
        times: dict[str, list[float]] = {v.key: [] for v in variants}
        for turn in range(block):
            shift = (round_index * block + turn) % count
            for variant in [*variants[shift:], *variants[:shift]]:
                prompt = next_prompt()
                cpu = time.process_time()
                start = time.perf_counter()
                await variant.run(prompt)
                times[variant.key].append(time.perf_counter() - start)
                variant.cpu.append(time.process_time() - cpu)
        for variant in variants:
            variant.wall.extend(times[variant.key])
            variant.round_medians.append(statistics.median(times[variant.key]))
        medians = "  ".join(f"{v.key} {v.round_medians[-1] * 1000:7.2f}" for v in variants)
        print(f"  round {round_index + 1}/{rounds}: median ms/job  {medians}", flush=True)


# -- profiling ------------------------------------------------------------------------------


async def profile(variant: Variant, jobs: int) -> dict[str, Any]:
    """Profile ``jobs`` jobs of ``variant`` with cProfile."""
    prompts = [next_prompt() for _ in range(jobs)]
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        for prompt in prompts:
            await variant.run(prompt)
    finally:
        profiler.disable()
    return hotspots(profiler, jobs)


# -- one provider ---------------------------------------------------------------------------


@dataclass
class Bench:
    """A provider's fake, its variants and what to close at the end."""

    name: str
    model_id: str
    fake: FakeProcess
    variants: list[Variant]
    closers: list[Callable[[], Awaitable[None]]]


def _variants(
    bare: JobFn, adapter: JobFn, shared: JobFn, per_job: JobFn, bare_per_job: JobFn
) -> list[Variant]:
    return [
        Variant("bare", "bare httpx, one client", bare, sdk=False),
        Variant("adapter", "adapter only (official client)", adapter, sdk=False),
        Variant("sdk-shared", "SDK, shared adapter", shared, sdk=True),
        Variant("sdk-per-job", "SDK, adapter per job (default deps)", per_job, sdk=True),
        Variant("bare-per-job", "bare httpx, client per job", bare_per_job, sdk=False),
    ]


async def build_replicate(fake: FakeProcess, work: Path) -> Bench:
    """The Replicate variants (store and blob directories under ``work``)."""

    env = fake.env
    secrets = {"REPLICATE_API_TOKEN": env["REPLICATE_API_TOKEN"]}
    shared = SdkJobs(IMAGE_MODEL, work / "sdk-store", secrets, shared=True)
    per_job = SdkJobs(IMAGE_MODEL, work / "sdk-store", secrets, shared=False)
    prepared = await shared.prepare(PROMPT)
    if prepared.payload.get("prompt") != PROMPT:
        raise RuntimeError(f"the SDK does not map the prompt to 'prompt': {prepared.payload}")
    declaration = Catalogue.load().get(IMAGE_MODEL.split(":", 1)[1])
    assert declaration is not None
    blobs = BlobDir(work / "bare-store")
    bare = BareReplicate(env, prepared.payload, blobs, per_job=False)
    bare_per_job = BareReplicate(env, prepared.payload, blobs, per_job=True)
    adapter = AdapterReplicate(
        build_adapter("replicate", secrets), prepared, declaration.version, blobs
    )
    return Bench(
        name="replicate",
        model_id=IMAGE_MODEL,
        fake=fake,
        variants=_variants(bare, adapter, shared, per_job, bare_per_job),
        closers=[shared.aclose, bare.aclose, adapter.aclose],
    )


async def build_openai(fake: FakeProcess, work: Path) -> Bench:
    """The OpenAI variants (store and blob directories under ``work``)."""

    env = fake.env
    secrets = {"OPENAI_API_KEY": env["OPENAI_API_KEY"]}
    shared = SdkJobs(TEXT_MODEL, work / "sdk-store", secrets, shared=True)
    per_job = SdkJobs(TEXT_MODEL, work / "sdk-store", secrets, shared=False)
    payload = (await shared.prepare(PROMPT)).payload
    body = OpenAIClient.params(TextRequest.model_validate(payload))
    if body.get("input") != PROMPT:
        raise RuntimeError(f"the SDK does not send the prompt as 'input': {body}")
    blobs = BlobDir(work / "bare-store")
    bare = BareOpenAI(env, body, blobs, per_job=False)
    bare_per_job = BareOpenAI(env, body, blobs, per_job=True)
    adapter = AdapterOpenAI(build_adapter("openai", secrets), payload, blobs)
    return Bench(
        name="openai",
        model_id=TEXT_MODEL,
        fake=fake,
        variants=_variants(bare, adapter, shared, per_job, bare_per_job),
        closers=[shared.aclose, bare.aclose, adapter.aclose],
    )


def report(bench: Bench, goal: float) -> dict[str, Any]:
    """Print the provider's table; return its figures."""
    base = bench.variants[0]
    partners = {"sdk-per-job": "bare-per-job"}
    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    for variant in bench.variants:
        ratio = variant.median / base.median
        round_ratios = [
            v / b for v, b in zip(variant.round_medians, base.round_medians, strict=True)
        ]
        partner = next((v for v in bench.variants if v.key == partners.get(variant.key)), None)
        figures[variant.key] = {
            "label": variant.label,
            "sdk": variant.sdk,
            "jobs": len(variant.wall),
            "median_ms": variant.median * 1000,
            "p10_ms": quantile(variant.wall, 0.10) * 1000,
            "p90_ms": quantile(variant.wall, 0.90) * 1000,
            "cpu_ms": variant.cpu_median * 1000,
            "ratio": ratio,
            "ratio_rounds_min": min(round_ratios),
            "ratio_rounds_max": max(round_ratios),
            "delta_ms": (variant.median - base.median) * 1000,
            "cpu_ratio": variant.cpu_median / base.cpu_median,
            "ratio_to_partner": None if partner is None else variant.median / partner.median,
            "partner": None if partner is None else partner.key,
            "meets_goal": None if not variant.sdk else ratio <= goal,
        }
        f = figures[variant.key]
        verdict = "-" if f["meets_goal"] is None else ("yes" if f["meets_goal"] else "MISSED")
        rows.append(
            [
                variant.label,
                f"{f['median_ms']:.2f}",
                f"{f['p10_ms']:.2f}-{f['p90_ms']:.2f}",
                f"{f['cpu_ms']:.2f}",
                f"{ratio:.2f}",
                f"{f['ratio_rounds_min']:.2f}-{f['ratio_rounds_max']:.2f}",
                f"{f['delta_ms']:+.2f}",
                f"{f['cpu_ratio']:.2f}",
                verdict,
            ]
        )
    print(f"\n{bench.model_id}: per job, {len(base.wall)} jobs per variant")
    print(
        format_table(
            [
                "variant",
                "median ms",
                "p10-p90 ms",
                "CPU ms",
                "ratio",
                "per round",
                "delta ms",
                "CPU ratio",
                f"<= {goal:.2f}",
            ],
            rows,
        )
    )
    if "adapter" in figures and "sdk-shared" in figures:
        sdk, adapter = figures["sdk-shared"], figures["adapter"]
        sdk_cpu = sdk["cpu_ms"] - base.cpu_median * 1000
        adapter_cpu = adapter["cpu_ms"] - base.cpu_median * 1000
        print(
            f"SDK, shared adapter over bare: {sdk['delta_ms']:+.2f} ms/job wall "
            f"({sdk_cpu:+.2f} CPU) = adapter and official client {adapter['delta_ms']:+.2f} "
            f"({adapter_cpu:+.2f} CPU) + the SDK's handler, runtime and LocalStore "
            f"{sdk['delta_ms'] - adapter['delta_ms']:+.2f} ({sdk_cpu - adapter_cpu:+.2f} CPU)"
        )
    for variant in bench.variants:
        f = figures[variant.key]
        if f["ratio_to_partner"] is not None:
            print(
                f"{variant.label} vs {f['partner']}: {f['ratio_to_partner']:.2f} "
                "(both build their HTTP clients per job)"
            )
    return figures


async def run_bench(
    bench: Bench, *, warmup: int, rounds: int, block: int, goal: float, profile_mode: str
) -> dict[str, Any]:
    """Warm up and check, measure, report and (if a goal is missed) profile one provider."""
    print(f"\n== {bench.model_id} (fake {bench.name} in process {bench.fake.pid})", flush=True)
    seen = await warm_up(bench.fake, bench.variants, warmup)
    problems = check_same(seen)
    calls = ", ".join(f"{k} {v:g}" for k, v in seen["bare"]["calls"].items())
    if problems:
        print("  WARNING: the variants do not do the same thing:", *problems, sep="\n    ")
    else:
        print(f"  every variant: {calls} per job, same JSON bodies, same bytes stored")
    watch = CpuWatch([bench.fake.pid])
    watch.start()
    await measure(bench.fake, bench.variants, rounds=rounds, block=block)
    others = watch.stop()
    figures = report(bench, goal)
    if others is not None and others > NOISY_CPUS:
        print(
            f"WARNING: other processes kept {others:.2f} of {os.cpu_count()} CPUs busy while "
            "this was measured: the figures are distorted; run again on a quiet machine"
        )
    profiles: dict[str, Any] = {}
    chosen = [
        v
        for v in bench.variants
        if v.sdk
        and (
            profile_mode == "always"
            or (profile_mode == "auto" and not figures[v.key]["meets_goal"])
        )
    ]
    if chosen:
        jobs = max(block, 10)
        profiles["bare"] = await profile(bench.variants[0], jobs)
        for variant in chosen:
            profiles[variant.key] = await profile(variant, jobs)
            print_hotspots(
                f"{bench.model_id} / {variant.label}", profiles[variant.key], profiles["bare"]
            )
    return {
        "model_id": bench.model_id,
        "calls_per_job": seen["bare"]["calls"],
        "same_calls": not problems,
        "other_cpus_busy": others,
        "problems": problems,
        "variants": figures,
        "profiles": profiles,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Start the fakes, run the chosen providers, clean up."""
    work = Path(tempfile.mkdtemp(prefix="tutopanda-bench-"))
    results: dict[str, Any] = {}
    fakes = {name: FakeProcess(name) for name in args.providers}
    try:
        for fake in fakes.values():
            fake.start()
            os.environ.update(fake.env)
        builders = {"replicate": build_replicate, "openai": build_openai}
        for name, fake in fakes.items():
            bench = await builders[name](fake, work / name)
            try:
                results[name] = await run_bench(
                    bench,
                    warmup=args.warmup,
                    rounds=args.rounds,
                    block=max(1, args.jobs // args.rounds),
                    goal=args.goal,
                    profile_mode=args.profile,
                )
            finally:
                for close in bench.closers:
                    await close()
    finally:
        for fake in fakes.values():
            fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=100, help="measured jobs per variant")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up jobs per variant")
    parser.add_argument("--goal", type=float, default=1.10, help="target SDK/bare ratio")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile an SDK variant with cProfile (auto: when it misses the goal)",
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        choices=("replicate", "openai"),
        default=["replicate", "openai"],
    )
    parser.add_argument("--json", help="write the figures to this JSON file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print and optionally save the figures."""
    args = parse_args(argv)
    started = time.perf_counter()
    print(
        f"SDK overhead vs bare httpx: {args.jobs} jobs per variant in {args.rounds} rounds "
        f"after {args.warmup} warm-up jobs; fakes in child processes; Python "
        f"{sys.version.split()[0]}, httpx {httpx.__version__}, {os.cpu_count()} CPUs",
        flush=True,
    )
    results = asyncio.run(main_async(args))
    elapsed = time.perf_counter() - started
    print(f"\nsdk_overhead took {elapsed:.0f} s", flush=True)
    write_json(
        args.json,
        {
            "benchmark": "sdk_overhead",
            "settings": {
                "jobs": args.jobs,
                "rounds": args.rounds,
                "warmup": args.warmup,
                "goal": args.goal,
            },
            "elapsed_s": elapsed,
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
