"""Peak memory while a 512 MiB output is downloaded into a ``LocalStore`` through the SDK.

Run with ``make bench`` or ``.venv/bin/python -m benchmarks.download_memory``.

The fake Replicate server runs in its own process (its memory is not counted) and is told
to pad every output to ``--size-mib`` MiB (``big_output_bytes``), streamed from a
generator. The measured job, ``replicate:bytedance/seedream-4`` in live mode through
``ProducerHandler.run`` with default ``HandlerDeps`` (what ``tutopanda produce`` does), runs
in a fresh child process:

1. import everything and run one warm-up job with the fake's normal (small) output;
2. switch the fake to big outputs, ``gc.collect()``, reset the kernel's peak-RSS mark
   (``echo 5 > /proc/self/clear_refs``), read ``VmRSS``: the baseline;
3. run the job while a thread samples ``/proc/self/statm`` every 10 ms;
4. read ``VmHWM`` (the kernel's exact peak since the reset) and the sampler's peak.

A second fresh child does the same under ``tracemalloc`` (started after the warm-up) for
the peak of Python allocations; its RSS is not reported, tracemalloc's own tables would
inflate it. The parent then checks each stored blob: its size, its sha256 on disk, and
that both match the bytes the fake served (downloaded again, independently, with bare
httpx). Figures are MiB and ratios to the ``--goal-mib`` goal (100 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

from benchmarks._support import REPO_ROOT, FakeProcess, format_table, write_json
from producers.clients import default_client_registry
from producers.registry import default_registry
from producers.sdk.artefacts import ProducerResult
from producers.sdk.handler import HandlerDeps
from producers.storage.local import LocalStore
from producers.testing import fake_secret_resolver, make_job_request

MODEL = "replicate:bytedance/seedream-4"
MIB = 2**20
_RESULT = "RESULT "
_PAGE = os.sysconf("SC_PAGE_SIZE")


# -- the measured child -----------------------------------------------------------------------


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _rss_bytes() -> int:
    """The resident set size, from ``/proc/self/statm`` (cheap enough to poll)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS; False if the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


class RssSampler:
    """A thread reading the RSS every ``interval`` seconds and keeping the highest value."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self.samples += 1
            self._stop.wait(self.interval)

    def start(self) -> None:
        """Start sampling (one sample is taken at once)."""
        self.peak = _rss_bytes()
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (one last sample is taken)."""
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


async def _run_job(deps: HandlerDeps, prompt: str) -> ProducerResult:
    request = make_job_request(MODEL, mode="live", inputs={"prompt": prompt})
    handler = default_registry().resolve(request.descriptor, "live", deps)
    return await handler.run(request)


def _configure_fake(size: int | None) -> None:
    """Set the fake's ``big_output_bytes`` through its control endpoint."""
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    url = os.environ["REPLICATE_BASE_URL"] + "/__fake__/config"
    with httpx.Client(verify=context, timeout=30.0) as client:
        client.post(url, json={"big_output_bytes": size}).raise_for_status()


async def child(mode: str, store_dir: str, size: int) -> dict[str, Any]:
    """Warm up, then run the measured job; the figures of ``mode`` (rss or tracemalloc)."""

    deps = HandlerDeps(
        store=LocalStore(store_dir),
        secrets=fake_secret_resolver({"REPLICATE_API_TOKEN": os.environ["REPLICATE_API_TOKEN"]}),
        clients=default_client_registry(),
        poll_interval=0.05,
    )
    await _run_job(deps, "A warm-up volcano")
    _configure_fake(size)
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
    reset = _reset_peak()
    baseline_rss = _status_kib("VmRSS") * 1024
    baseline_hwm = _status_kib("VmHWM") * 1024
    sampler = RssSampler()
    sampler.start()
    traced_before = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else 0
    if mode == "tracemalloc":
        tracemalloc.reset_peak()
    started = time.perf_counter()
    result = await _run_job(deps, "A volcano, very large")
    seconds = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1] if mode == "tracemalloc" else 0
    sampler.stop()
    hwm = _status_kib("VmHWM") * 1024
    if mode == "tracemalloc":
        tracemalloc.stop()
    (artefact,) = result.artefacts
    return {
        "mode": mode,
        "seconds": seconds,
        "hwm_reset": reset,
        "baseline_rss": baseline_rss,
        "baseline_hwm": baseline_hwm,
        "peak_hwm": hwm,
        "peak_sampled": sampler.peak,
        "samples": sampler.samples,
        "traced_peak": max(0, traced_peak - traced_before),
        "artefact": {
            "uri": artefact.uri,
            "sha256": artefact.sha256,
            "size": artefact.size,
            "mime_type": artefact.mime_type,
        },
        "provider_job_id": result.diagnostics.provider_job_id,
    }


# -- the parent -------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * MIB):
            hasher.update(chunk)
    return hasher.hexdigest()


async def served(fake: FakeProcess, prediction_id: str) -> tuple[int, str]:
    """Download the prediction's output again with bare ``httpx.AsyncClient``: size, sha256."""
    context = ssl.create_default_context(cafile=fake.env["SSL_CERT_FILE"])
    headers = {"Authorization": f"Bearer {fake.env['REPLICATE_API_TOKEN']}"}
    hasher = hashlib.sha256()
    size = 0
    async with httpx.AsyncClient(verify=context, timeout=60.0) as client:
        answer = await client.get(
            f"{fake.base_url}/v1/predictions/{prediction_id}", headers=headers
        )
        output = answer.raise_for_status().json()["output"]
        url = output[0] if isinstance(output, list) else output
        async with client.stream("GET", url) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes(MIB):
                hasher.update(chunk)
                size += len(chunk)
    return size, hasher.hexdigest()


def run_child(fake: FakeProcess, mode: str, store_dir: Path, size: int) -> dict[str, Any]:
    """Run the measured job in a fresh interpreter; its figures."""
    fake.configure(big_output_bytes=None)
    fake.reset()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.download_memory",
            "--child",
            mode,
            "--store",
            str(store_dir),
            "--size-mib",
            str(size / MIB),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **fake.env},
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(_RESULT)]
    if not lines:
        raise RuntimeError(f"the {mode} child printed no result:\n{completed.stdout}")
    figures: dict[str, Any] = json.loads(lines[-1][len(_RESULT) :])
    return figures


def verify(fake: FakeProcess, figures: Mapping[str, Any], size: int) -> dict[str, Any]:
    """Check the stored blob against its artefact and against what the fake served."""
    artefact = figures["artefact"]
    path = Path(url2pathname(urlsplit(artefact["uri"]).path))
    on_disk = path.stat().st_size
    disk_sha = _sha256_file(path)
    started = time.perf_counter()
    served_size, served_sha = asyncio.run(served(fake, figures["provider_job_id"]))
    served_seconds = time.perf_counter() - started
    checks = {
        "stored size is the requested size": on_disk == size,
        "artefact size matches the file": artefact["size"] == on_disk,
        "file sha256 matches the artefact": disk_sha == artefact["sha256"],
        "fake served the same size": served_size == on_disk,
        "fake served the same sha256": served_sha == disk_sha,
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "size": on_disk,
        "sha256": disk_sha,
        "served_sha256": served_sha,
        "served_seconds": served_seconds,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, the measured job)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--size-mib", type=float, default=512.0, help="output size (MiB)")
    parser.add_argument("--goal-mib", type=float, default=100.0, help="peak memory goal (MiB)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--child", choices=("rss", "tracemalloc"), help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = int(args.size_mib * MIB)
    if args.child:
        figures = asyncio.run(child(args.child, args.store, size))
        print(_RESULT + json.dumps(figures), flush=True)
        return 0

    started = time.perf_counter()
    print(
        f"Download memory: a {size / MIB:g} MiB output of {MODEL} into a LocalStore, live, "
        "measured in fresh child processes; fake Replicate in its own process",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="tutopanda-bench-mem-"))
    runs: dict[str, Any] = {}
    try:
        with FakeProcess("replicate") as fake:
            for mode in ("rss", "tracemalloc"):
                store_dir = work / mode
                figures = run_child(fake, mode, store_dir, size)
                figures["verified"] = verify(fake, figures, size)
                runs[mode] = figures
                shutil.rmtree(store_dir, ignore_errors=True)
                verified = figures["verified"]
                print(
                    f"  {mode} child: SDK job {figures['seconds']:.1f} s "
                    f"({size / MIB / figures['seconds']:.0f} MiB/s, to disk with fsync; the same "
                    "bytes to bare httpx.AsyncClient, hashed, not stored: "
                    f"{size / MIB / verified['served_seconds']:.0f} MiB/s), verified: "
                    f"{'yes' if verified['ok'] else 'NO'}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rss, traced = runs["rss"], runs["tracemalloc"]
    hwm_increase = (rss["peak_hwm"] - rss["baseline_rss"]) / MIB
    sampled_increase = (rss["peak_sampled"] - rss["baseline_rss"]) / MIB
    traced_peak = traced["traced_peak"] / MIB
    goal = args.goal_mib
    rows = [
        [
            "peak RSS increase (VmHWM)" + ("" if rss["hwm_reset"] else ", not reset"),
            f"{hwm_increase:.1f}",
            f"{hwm_increase / goal:.2f}",
        ],
        [
            f"peak RSS increase (sampled every 10 ms, {rss['samples']} samples)",
            f"{sampled_increase:.1f}",
            f"{sampled_increase / goal:.2f}",
        ],
        [
            "tracemalloc peak (Python allocations)",
            f"{traced_peak:.1f}",
            f"{traced_peak / goal:.2f}",
        ],
    ]
    print(f"\nbaseline RSS before the job: {rss['baseline_rss'] / MIB:.1f} MiB")
    print(format_table(["measure", "MiB", f"/ {goal:g} MiB"], rows))
    for mode, figures in runs.items():
        verified = figures["verified"]
        failed = [name for name, ok in verified["checks"].items() if not ok]
        print(
            f"{mode} run: stored {verified['size']} bytes, sha256 {verified['sha256'][:16]}..., "
            + ("size and sha256 match what the fake served" if not failed else "FAILED: ")
            + ", ".join(failed)
        )
    elapsed = time.perf_counter() - started
    print(f"\ndownload_memory took {elapsed:.0f} s", flush=True)
    write_json(
        args.json,
        {
            "benchmark": "download_memory",
            "settings": {"size_bytes": size, "goal_mib": goal},
            "elapsed_s": elapsed,
            "peak_rss_increase_mib": hwm_increase if rss["hwm_reset"] else sampled_increase,
            "peak_rss_increase_hwm_mib": hwm_increase,
            "peak_rss_increase_sampled_mib": sampled_increase,
            "tracemalloc_peak_mib": traced_peak,
            "baseline_rss_mib": rss["baseline_rss"] / MIB,
            "verified": all(r["verified"]["ok"] for r in runs.values()),
            "runs": runs,
        },
    )
    return 0 if all(r["verified"]["ok"] for r in runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
