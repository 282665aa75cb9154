"""Airflow 3 on the CeleryExecutor as separate hosts, for the distributed system test.

``DistributedAirflow`` runs what ``docker/compose.yaml`` runs, as processes: an api-server, a
scheduler, a dag-processor, triggerers and Celery workers, each one a *host* with its own
``AIRFLOW_HOME`` (its own copy of the DAG files and of the deployment's local settings), its
own working folder and temp folder, its own hostname (a UTS namespace, ``unshare --uts``, where
the machine allows it; else ``[core] hostname_callable`` names it) and its own process group,
so a host can be killed whole (SIGKILL: no clean-up, as when a machine dies) and started
again. They share only what separate machines share: the metadata DB (PostgreSQL, also the
Celery result backend), the broker (Redis), the api-server (the Task Execution API) and the
S3 bucket; no disk.

The settings come from one place: ``docker/airflow.env`` (the constants compose passes to
every Airflow container) plus the deployment's addresses and secrets, with the commands of
:data:`SERVICE_COMMANDS` and :data:`INIT_COMMANDS` (the compose services'; the unit test
``tests/unit/test_docker.py`` compares them). What the test adds is listed in
:data:`TEST_SPEEDUPS` (shorter heartbeats and timeouts, so a killed host is noticed in
seconds) and :data:`EXTRA_ARGS` (bind addresses, queues), never a setting of airflow.env.

The hosts run on this machine's loopback: network namespaces would need Redis and PostgreSQL
to listen beyond 127.0.0.1, which the machine's services do not.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.system.harness import free_port

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_ENV = REPO / "docker" / "airflow.env"

#: What each compose service runs (its ``command``, after the image's ``airflow``).
SERVICE_COMMANDS: dict[str, tuple[str, ...]] = {
    "airflow-apiserver": ("api-server",),
    "airflow-scheduler": ("scheduler",),
    "airflow-dag-processor": ("dag-processor",),
    "airflow-triggerer": ("triggerer",),
    "airflow-worker": ("celery", "worker"),
}
#: What compose's one-shot ``airflow-init`` runs, in order, before the services start.
INIT_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("airflow", "db", "migrate"),
    ("python", "-m", "airflow_provider_tutopanda.pools"),
)
#: The Celery queue every task goes to unless routed (``[operators] default_queue``).
DEFAULT_QUEUE = "default"

#: Settings the test adds to airflow.env so that a dead host is seen in seconds rather than
#: minutes; none of them is in airflow.env (the unit test checks).
TEST_SPEEDUPS: dict[str, str] = {
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
    # A task whose host died stops heartbeating: failed (and retried) after this.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    # A task message a dead worker had taken but not started is sent again after this.
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "30",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
    # A dead triggerer's triggers move to a live one after this.
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "1",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
    "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
    "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
    "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "6",
    "PYTHONUNBUFFERED": "1",
}
#: Arguments a host adds to its service's command (compose's defaults differ by container).
EXTRA_ARGS: dict[str, str] = {
    "airflow-apiserver": "--host 127.0.0.1 --port <free port>",
    "airflow-worker": "--queues <its queues> --celery-hostname <host>@%h",
}


def read_env_file(path: Path = AIRFLOW_ENV) -> dict[str, str]:
    """``KEY=value`` lines of an env file (comments and blank lines skipped; no quoting)."""
    settings: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path.name}:{number}: not KEY=value: {raw!r}")
        settings[key.strip()] = value.strip()
    return settings


def celery_problem() -> str | None:
    """Why Airflow's CeleryExecutor cannot load here (the Celery provider and the installed
    ``celery`` disagree), or None. Every scheduler and worker would fail at start otherwise."""
    try:
        import airflow.providers.celery.executors.celery_executor_utils  # noqa: F401
    except ImportError as error:
        import celery

        return (
            f"the CeleryExecutor cannot load with celery {celery.__version__}: {error} "
            "(the lock needs a celery release the Celery provider supports)"
        )
    return None


@cache
def uts_namespaces() -> bool:
    """Whether ``unshare --uts`` works here (root, or a user namespace that allows it)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        probe = subprocess.run(
            [unshare, "--uts", "sh", "-c", "hostname tp-probe && hostname"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == "tp-probe"


HOSTNAME_MODULE = '''\
"""This host's name ([core] hostname_callable): the TUTOPANDA_HOST of its environment."""
import os


def hostname() -> str:
    return os.environ["TUTOPANDA_HOST"]
'''


@dataclass
class Host:
    """One Airflow component on its own 'machine' (folder, hostname, process group)."""

    name: str
    service: str
    home: Path
    args: tuple[str, ...]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_files: list[Path] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.home / f"{self.name}.{self.starts}.log"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self, tail: int = 6000) -> str:
        parts = []
        for path in self.log_files:
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts) or "(no output)"


class DistributedAirflow:
    """The hosts of a CeleryExecutor deployment, on this machine (module docstring).

    Args:
        root: A folder for the hosts' folders.
        database_url: The metadata DB, ``postgresql+psycopg://...`` (psycopg 3).
        broker_url: The Celery broker, ``redis://127.0.0.1:6379/N``.
        dag_files: DAG files deployed to every host's dags folder.
        local_settings: The deployment's ``airflow_local_settings.py`` source (cluster
            policies), deployed to every host's ``config/``; None for none.
        env: More environment for every host (connections, the store, certificates).
    """

    def __init__(
        self,
        root: Path,
        database_url: str,
        broker_url: str,
        *,
        dag_files: Iterable[Path],
        local_settings: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.database_url = database_url
        self.dag_files = [Path(p) for p in dag_files]
        self.local_settings = local_settings
        self.api_port = free_port()
        self.bin = Path(sys.executable).with_name("airflow")
        self.uts = uts_namespaces()
        from cryptography.fernet import Fernet

        result_backend = "db+" + database_url
        self.env: dict[str, str] = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            **read_env_file(),
            **TEST_SPEEDUPS,
            # The deployment's addresses and secrets: the same on every host.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database_url,
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                f"http://127.0.0.1:{self.api_port}/execution/"
            ),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            **(env or {}),
        }
        self.hosts: dict[str, Host] = {}

    # -- hosts ----------------------------------------------------------------------------------

    def add_host(self, name: str, service: str, *extra: str) -> Host:
        """Lay out a host running ``service``'s command (plus ``extra`` arguments)."""
        home = self.root / name
        for folder in ("dags", "config", "tmp", "site"):
            (home / folder).mkdir(parents=True, exist_ok=True)
        for path in self.dag_files:
            shutil.copy(path, home / "dags" / path.name)
        if self.local_settings is not None:
            (home / "config" / "airflow_local_settings.py").write_text(self.local_settings)
        env = {
            **self.env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "TMPDIR": str(home / "tmp"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "HOME": str(home),
            "TUTOPANDA_HOST": name,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        if self.uts:
            env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "socket.gethostname"
        else:
            (home / "site" / "tp_hostname.py").write_text(HOSTNAME_MODULE)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(home / "site"), env.get("PYTHONPATH", "")) if p
            )
            env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "tp_hostname.hostname"
        args = (*SERVICE_COMMANDS[service], *extra)
        if service == "airflow-apiserver":
            args += ("--host", "127.0.0.1", "--port", str(self.api_port))
        host = Host(name=name, service=service, home=home, args=args, env=env)
        self.hosts[name] = host
        return host

    def _argv(self, host: Host, command: Sequence[str]) -> list[str]:
        if not self.uts:
            return list(command)
        script = 'hostname "$1" && shift && exec "$@"'
        return ["unshare", "--uts", "sh", "-c", script, "sh", host.name, *command]

    def start_host(self, name: str) -> Host:
        """Start (or start again) a host's service, in a process group of its own."""
        host = self.hosts[name]
        if host.alive():
            raise RuntimeError(f"{name} is running")
        host.starts += 1
        host.log_files.append(host.log)
        with host.log.open("ab") as out:
            host.process = subprocess.Popen(
                self._argv(host, [str(self.bin), *host.args]),
                env=host.env,
                cwd=host.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return host

    def kill_host(self, name: str) -> None:
        """SIGKILL the host's every process at once, as when its machine dies."""
        import psutil

        host = self.hosts[name]
        if host.process is None:
            return
        victims: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(host.process.pid)
            victims = [parent, *parent.children(recursive=True)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(host.process.pid, signal.SIGKILL)
        for victim in victims:
            with contextlib.suppress(psutil.Error):
                victim.kill()
        psutil.wait_procs(victims, timeout=10)
        host.process.wait(timeout=10)

    def wait_for_output(self, name: str, text: str, timeout: float = 90.0) -> None:
        """Wait until the host's current output contains ``text``."""
        host = self.hosts[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.log.exists() and text in host.log.read_text(errors="replace"):
                return
            self.check_alive()
            time.sleep(0.3)
        raise TimeoutError(f"{name} did not print {text!r} within {timeout:.0f}s")

    def check_alive(self, *, expected_dead: Iterable[str] = ()) -> None:
        """Raise if a started host exited by itself."""
        for name, host in self.hosts.items():
            if host.process is None or name in expected_dead or host.alive():
                continue
            if host.process.returncode == -signal.SIGKILL:
                continue  # killed on purpose
            raise RuntimeError(f"{name} exited with {host.process.returncode}:\n{host.output()}")

    # -- the deployment ---------------------------------------------------------------------------

    def init(self, host: str) -> None:
        """What compose's ``airflow-init`` does, on ``host``: :data:`INIT_COMMANDS`."""
        for command in INIT_COMMANDS:
            program = self.bin if command[0] == "airflow" else Path(sys.executable)
            self.run(host, [str(program), *command[1:]], timeout=300)

    def run(
        self, host: str, argv: Sequence[str], *, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on a host (its environment and folder); it must succeed."""
        done = subprocess.run(
            list(argv),
            env=self.hosts[host].env,
            cwd=self.hosts[host].home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(argv)} on {host} exited with {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def airflow(self, host: str, *args: str, timeout: float = 120.0) -> str:
        """``airflow ARGS`` on a host; its output."""
        return self.run(host, [str(self.bin), *args], timeout=timeout).stdout

    def health(self) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return dict(json.loads(answer.read()))
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def wait_healthy(self, timeout: float = 120.0) -> None:
        """Wait until the api-server answers and reports the other components healthy."""
        deadline = time.monotonic() + timeout
        report: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            self.check_alive()
            report = self.health()
            parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            if report and all((report.get(p) or {}).get("status") == "healthy" for p in parts):
                return
            time.sleep(0.5)
        raise TimeoutError(f"Airflow was not healthy after {timeout:.0f}s: {report}")

    def stop(self, grace: float = 10.0) -> None:
        """Stop every host (SIGTERM, then SIGKILL what is left)."""
        import psutil

        victims: list[psutil.Process] = []
        for host in self.hosts.values():
            if host.process is None:
                continue
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(host.process.pid)
                victims += [parent, *parent.children(recursive=True)]
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(host.process.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(victims, timeout=grace)
        for host in self.hosts.values():
            if host.process is None:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(host.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                host.process.wait(timeout=5)
        for survivor in alive:
            with contextlib.suppress(psutil.Error):
                survivor.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the metadata DB --------------------------------------------------------------------------

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a SQL query on the metadata DB."""
        import psycopg

        url = self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=True) as conn:
            return list(conn.execute(statement, params).fetchall())  # type: ignore[arg-type]

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query(
            "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
        )
        return str(rows[0][0]) if rows else None

    def tries(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every try of every task of a run: the finished ones (``task_instance_history``)
        and the current ones (``task_instance``), with the host that ran each."""
        keys = ("task_id", "map_index", "try_number", "state", "hostname", "queue")
        rows = self.query(
            "SELECT task_id, map_index, try_number, state, hostname, queue "
            "FROM task_instance_history WHERE dag_id = %s AND run_id = %s "
            "UNION ALL SELECT task_id, map_index, try_number, state, hostname, queue "
            "FROM task_instance WHERE dag_id = %s AND run_id = %s "
            "ORDER BY 1, 2, 3",
            (dag_id, run_id, dag_id, run_id),
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def wait_until(
        self,
        what: str,
        check: Callable[[], Any],
        *,
        timeout: float = 120.0,
        expected_dead: Iterable[str] = (),
    ) -> Any:
        """Poll ``check`` until it returns something true; that value."""
        dead = tuple(expected_dead)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            self.check_alive(expected_dead=dead)
            time.sleep(0.25)
        raise TimeoutError(f"waited {timeout:.0f}s for {what}")

    # -- diagnostics ----------------------------------------------------------------------------

    def task_logs(self, tail: int = 3000) -> str:
        parts = []
        for host in self.hosts.values():
            for path in sorted((host.home / "logs").glob("dag_id=*/**/*.log")):
                text = path.read_text(errors="replace")[-tail:]
                parts.append(f"--- {host.name}: {path.relative_to(host.home)}\n{text}")
        return "\n".join(parts) or "(no task logs)"

    def diagnostics(self, tail: int = 5000) -> str:
        """Every host's output and task logs: what to print when the test fails."""
        parts = [f"===== {h.name} ({h.service})\n{h.output(tail)}" for h in self.hosts.values()]
        parts.append(f"===== task logs\n{self.task_logs()}")
        return "\n".join(parts)


@contextlib.contextmanager
def redis_db(url: str) -> Iterator[str]:
    """A Redis database emptied before and after use (``redis://host:port/N``)."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        with contextlib.suppress(redis.RedisError):
            client.flushdb()
        client.close()
