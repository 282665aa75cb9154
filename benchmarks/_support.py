"""Shared pieces of the benchmarks: fake servers in a child process, a store-like writer, stats.

The fakes run in their own process (:class:`FakeProcess`, through
:func:`producers.testing.fakes.serve_forever`) so that their CPU (TLS, JSON, rendering a
2048x2048 PNG per prediction) and their memory never mix with the measured process: a fake
in-process would share the measured process's GIL and show up in its CPU time, its profile
and its RSS.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import httpx

__all__ = [
    "NOISY_CPUS",
    "REPO_ROOT",
    "BlobDir",
    "CpuWatch",
    "FakeProcess",
    "format_table",
    "quantile",
    "replicate_airflow_env",
    "write_json",
]

#: The repository's root (``benchmarks/..``).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Above this many CPUs kept busy by other processes during a measurement, it is noisy.
NOISY_CPUS = 0.10

_SERVE = (
    "import sys\n"
    "from producers.testing.fakes import serve_forever\n"
    "serve_forever(sys.argv[1], latency=float(sys.argv[2]))\n"
)
_ENV_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
_BASE_LINE = re.compile(r"^Fake \S+ API at (\S+)$")


class FakeProcess:
    """A fake provider server (``replicate`` or ``openai``) running in a child process.

    Starts ``serve_forever`` in a fresh interpreter and reads what it prints: its base URL
    and the environment a client needs (``REPLICATE_BASE_URL``, ``SSL_CERT_FILE`` with the
    child's own test CA, ``REPLICATE_API_TOKEN``; or ``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY``). It is driven through the fake's HTTP control endpoints; its
    stderr is the caller's (a failing fake logs there).

    Args:
        provider: ``replicate`` or ``openai``.
        latency: Replicate: seconds until a prediction finishes; OpenAI: seconds before
            each answer.
    """

    def __init__(self, provider: str, *, latency: float = 0.0) -> None:
        self.provider = provider
        self.latency = latency
        self.base_url = ""
        self.env: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None
        self._control: httpx.Client | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self._process is None:
            raise RuntimeError("the fake is not running")
        return self._process.pid

    def start(self) -> Self:
        """Start the child and wait until it serves.

        Raises:
            RuntimeError: The child exited before printing its address.
        """
        self._process = subprocess.Popen(
            [sys.executable, "-u", "-c", _SERVE, self.provider, str(self.latency)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.rstrip("\n")
            base = _BASE_LINE.match(line)
            if base:
                self.base_url = base.group(1)
            env = _ENV_LINE.match(line)
            if env:
                self.env[env.group(1)] = env.group(2)
            if line.startswith("Ctrl-C"):
                break
        else:
            self.stop()
            raise RuntimeError(f"the fake {self.provider} server exited (see its stderr above)")
        cert = self.env.get("SSL_CERT_FILE")
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=cert) if cert is not None else True
        )
        self._control = httpx.Client(base_url=self.base_url, verify=verify, timeout=30.0)
        self.control("GET", "health")
        return self

    def control(self, method: str, name: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call a control endpoint (``/__fake__/<name>``) and return its JSON answer."""
        if self._control is None:
            raise RuntimeError("the fake is not running")
        response = self._control.request(method, f"/__fake__/{name}", json=body)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Forget the fake's requests and provider state (predictions, rendered files)."""
        self.control("POST", "reset")

    def configure(self, **settings: Any) -> None:
        """Change the fake's settings (``latency``, ``big_output_bytes``, ...)."""
        self.control("POST", "config", settings)

    def requests(self) -> list[dict[str, Any]]:
        """The fake's request log (secrets masked), oldest first."""
        log: list[dict[str, Any]] = self.control("GET", "requests")["requests"]
        return log

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 10 s) and release everything."""
        if self._control is not None:
            self._control.close()
            self._control = None
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def replicate_airflow_env(fake: FakeProcess, store: Path) -> dict[str, str]:
    """What an Airflow process needs to run live Replicate jobs against ``fake``: the
    ``replicate_default`` connection (its token and base URL), the fake's CA, the store."""
    connection = {
        "conn_type": "replicate",
        "password": fake.env["REPLICATE_API_TOKEN"],
        "host": fake.base_url,
    }
    return {
        "AIRFLOW_CONN_REPLICATE_DEFAULT": json.dumps(connection),
        "SSL_CERT_FILE": fake.env["SSL_CERT_FILE"],
        "TUTOPANDA_STORE": str(store),
    }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobDir:
    """What the bare-httpx baseline stores into: the durable steps a ``LocalStore`` takes.

    For a new blob: write a temp file while hashing, flush, fsync; write a JSON sidecar
    through a temp file, fsync, rename and fsync the directory; rename the blob to
    ``blobs/sha256/<aa>/<sha256>`` and fsync the directory. No pydantic, no checks, no
    MIME sniffing: the work any careful client would do, without the SDK around it.

    Args:
        root: The directory (created if missing).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def open_temp(self) -> tuple[Path, BinaryIO]:
        """A new temp file in ``tmp/``, opened for writing."""
        path = self.tmp / f"{uuid.uuid4().hex}.part"
        return path, path.open("xb")

    def publish(self, path: Path, handle: BinaryIO, *, sha256: str, mime_type: str) -> Path:
        """Make the temp file durable and move it to its content address."""
        handle.flush()
        os.fsync(handle.fileno())
        size = handle.tell()
        handle.close()
        final = self.root / "blobs" / "sha256" / sha256[:2] / sha256
        final.parent.mkdir(parents=True, exist_ok=True)
        sidecar = {"mime_type": mime_type, "size": size, "sha256": sha256}
        side_tmp, side = self.open_temp()
        with side:
            side.write(json.dumps(sidecar, sort_keys=True).encode("utf-8"))
            side.flush()
            os.fsync(side.fileno())
        os.replace(side_tmp, final.with_name(final.name + ".json"))
        _fsync_dir(final.parent)
        os.replace(path, final)
        _fsync_dir(final.parent)
        return final

    def put_bytes(self, data: bytes, *, mime_type: str) -> Path:
        """Store a small blob held in memory."""
        path, handle = self.open_temp()
        handle.write(data)
        return self.publish(
            path, handle, sha256=hashlib.sha256(data).hexdigest(), mime_type=mime_type
        )


def _system_busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(pid: int | str) -> float:
    """CPU seconds of a process and its waited-for children (``/proc/<pid>/stat``)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """How much CPU other processes used while we measured (they make timings noisy).

    Busy CPU time of the whole machine, minus this process's and ``pids``' (the fakes),
    over a wall-clock interval. Linux only (``/proc``); elsewhere it reports nothing.

    Args:
        pids: Processes of the benchmark itself besides this one.
    """

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.pids = list(pids)
        self._start: tuple[float, float, float] | None = None

    def _sample(self) -> tuple[float, float, float]:
        ours = _process_cpu_seconds("self") + sum(_process_cpu_seconds(p) for p in self.pids)
        return time.monotonic(), _system_busy_seconds(), ours

    def start(self) -> None:
        """Start the interval."""
        try:
            self._start = self._sample()
        except OSError:
            self._start = None

    def stop(self) -> float | None:
        """End the interval: the average number of CPUs other processes kept busy."""
        if self._start is None:
            return None
        wall, busy, ours = (
            end - start for end, start in zip(self._sample(), self._start, strict=True)
        )
        return max(0.0, busy - ours) / wall if wall > 0 else None


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linearly interpolated."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    if q <= 0:
        return min(values)
    if q >= 1:
        return max(values)
    return cuts[round(q * 100) - 1]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """A plain-text table; the first ``left`` columns are left-aligned, the others right."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if index < left else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def write_json(path: str | None, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` (nothing if ``path`` is None)."""
    if path is None:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
