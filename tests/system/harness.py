"""A real Airflow for system tests and benchmarks: its four services on a fresh PostgreSQL DB.

``AirflowSystem`` runs ``airflow scheduler``, ``dag-processor``, ``triggerer`` and
``api-server`` (Airflow 3 tasks talk to the Execution API) as child processes, each in its own
process group, with the LocalExecutor, a private ``AIRFLOW_HOME`` and dags folder, free
ports, and short parsing and scheduling intervals, so a DAG file written into the dags folder
runs within seconds::

    with fresh_database() as url, AirflowSystem(home, url, env=extra) as system:
        system.write_dag("my_dag", source)
        system.wait_for_dag("my_dag")
        run_id = system.trigger("my_dag")
        assert system.wait_for_run("my_dag", run_id) == "success", system.diagnostics()

Runs are triggered through the ``airflow`` CLI; state is read from the metadata DB directly
(fast, and no API token to manage). Nothing here is imported by DAGs or tasks.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

#: The PostgreSQL server the system tests use: local, trust auth, user ``postgres``.
ADMIN_URL = os.environ.get(
    "TUTOPANDA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
#: The process title of a task's own process (the supervisor's child) under the task SDK.
TASK_TITLE = "airflow worker -- "
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_problem(admin_url: str = ADMIN_URL) -> str | None:
    """Why the system tests cannot use PostgreSQL (no driver, server down), or None."""
    try:
        import psycopg
    except ImportError:
        return (
            "no PostgreSQL driver: the system tests need psycopg (psycopg[binary]) "
            "in the environment"
        )
    try:
        with psycopg.connect(admin_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL at {admin_url} is unreachable: {str(error).strip()}"
    return None


@contextlib.contextmanager
def fresh_database(admin_url: str = ADMIN_URL, prefix: str = "tutopanda_sys") -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL (psycopg 3), drop it afterwards."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = admin_url.rsplit("/", 1)[0].split("://", 1)[1]
    try:
        yield f"postgresql+psycopg://{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _clean_environment() -> dict[str, str]:
    """This process's environment without any Airflow setting (a test runner may set some)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


class AirflowSystem:
    """Airflow's services on ``database_url`` under ``home`` (see the module docstring).

    Args:
        home: The ``AIRFLOW_HOME`` (made if missing); DAGs go to ``home/dags``.
        database_url: The metadata DB, ``postgresql+psycopg://...``.
        env: More environment for every Airflow process (connections, ``SSL_CERT_FILE``...).
        parallelism: LocalExecutor slots (``[core] parallelism``).
        pools: ``{name: {"slots", "description", "include_deferred"}}`` imported before start.
        paused_at_creation: New DAGs start paused (``airflow dags unpause`` them).
        use_job_schedule: Let the scheduler create runs from DAG schedules; off by default,
            so only triggered and backfilled runs happen (a scheduled DAG adds no run of its
            own to what a test counts).
    """

    def __init__(
        self,
        home: Path,
        database_url: str,
        *,
        env: Mapping[str, str] | None = None,
        parallelism: int = 8,
        pools: Mapping[str, Mapping[str, Any]] | None = None,
        paused_at_creation: bool = False,
        use_job_schedule: bool = False,
    ) -> None:
        self.home = Path(home)
        self.dags = self.home / "dags"
        self.logs = self.home / "component-logs"
        self.database_url = database_url
        self.pools = dict(pools or {})
        self.api_port = free_port()
        self.bin = Path(sys.executable).with_name("airflow")
        self.env = {
            **_clean_environment(),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(paused_at_creation),
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            # Airflow maps postgresql to asyncpg for its async engine; psycopg 3 does both.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(use_job_schedule),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            # A task supervisor may notice its task's exit only at its next heartbeat (5 s by
            # default), holding the executor slot; and a deferred task whose trigger fires in
            # that window is failed by a stale executor event (apache/airflow#72716).
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
            "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        """Migrate the DB, import the pools, start the services and wait until they are up."""
        self.dags.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate", timeout=300)
        if self.pools:
            pools_file = self.home / "pools.json"
            pools_file.write_text(json.dumps(self.pools))
            self.airflow("pools", "import", str(pools_file))
        for name in COMPONENTS:
            argv = [str(self.bin), name]
            if name == "api-server":
                argv += ["--host", "127.0.0.1", "--port", str(self.api_port)]
            with (self.logs / f"{name}.log").open("ab") as out:
                self._processes[name] = subprocess.Popen(
                    argv,
                    env=self.env,
                    cwd=self.home,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        self.wait_healthy(timeout)

    def health(self) -> dict[str, Any] | None:
        """The api-server's ``/api/v2/monitor/health`` answer, or None if it does not answer."""
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return dict(json.loads(answer.read()))
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def wait_healthy(self, timeout: float = 120.0) -> None:
        """Wait until the api-server answers and the other three services heartbeat."""
        deadline = time.monotonic() + timeout
        report: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            report = self.health()
            parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            if report and all((report.get(p) or {}).get("status") == "healthy" for p in parts):
                return
            time.sleep(0.5)
        raise TimeoutError(f"Airflow was not healthy after {timeout:.0f}s: {report}")

    def _check_alive(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {process.returncode}:\n{self.component_log(name)}"
                )

    def stop(self, grace: float = 10.0) -> None:
        """Stop every service and everything they started (SIGTERM, then SIGKILL)."""
        import psutil

        victims: list[psutil.Process] = []
        for process in self._processes.values():
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(process.pid)
                victims += [parent, *parent.children(recursive=True)]
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(victims, timeout=grace)
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        for survivor in alive:
            with contextlib.suppress(psutil.Error):
                survivor.kill()
        for process in self._processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self._processes.clear()

    # -- the CLI and the DB ---------------------------------------------------------------------

    def airflow(
        self, *args: str, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` with this system's environment; output captured."""
        done = subprocess.run(
            [str(self.bin), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a SQL query on the metadata DB."""
        import psycopg

        url = self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=True) as conn:
            return list(conn.execute(statement, params).fetchall())  # type: ignore[arg-type]

    # -- DAGs and runs --------------------------------------------------------------------------

    def write_dag(self, name: str, source: str) -> Path:
        """Write ``dags/NAME.py`` (atomically, so the processor never reads half a file)."""
        path = self.dags / f"{name}.py"
        partial = path.with_suffix(".py.part")
        partial.write_text(source, encoding="utf-8")
        partial.replace(path)
        return path

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> None:
        """Wait until the DAG is parsed and serialized; import errors fail at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if self.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (dag_id,)):
                return
            errors = self.query("SELECT filename, stacktrace FROM import_error")
            if errors:
                raise RuntimeError(f"DAG import errors: {errors}")
            time.sleep(0.5)
        raise TimeoutError(f"DAG {dag_id} was not parsed within {timeout:.0f}s")

    def trigger(
        self, dag_id: str, run_id: str | None = None, conf: Mapping[str, Any] | None = None
    ) -> str:
        """Trigger a run through the CLI; its run id."""
        run_id = run_id or f"manual__{dag_id}__{secrets.token_hex(3)}"
        args = ["dags", "trigger", dag_id, "--run-id", run_id]
        if conf:
            args += ["--conf", json.dumps(dict(conf))]
        self.airflow(*args)
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """A run's state, or None before it exists."""
        rows = self.query(
            "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
        )
        return str(rows[0][0]) if rows else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120.0) -> str:
        """Wait until a run is over; its final state (``success`` / ``failed``)."""
        deadline = time.monotonic() + timeout
        state: str | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_RUN_STATES:
                return state
            time.sleep(0.5)
        raise TimeoutError(f"run {dag_id}/{run_id} still {state} after {timeout:.0f}s")

    def backfill(
        self,
        dag_id: str,
        from_date: str,
        to_date: str,
        *,
        conf: Mapping[str, Any] | None = None,
        reprocess: str | None = None,
    ) -> int:
        """``airflow backfill create`` (dates inclusive); the new backfill's id."""
        args = ["backfill", "create", "--dag-id", dag_id]
        args += ["--from-date", from_date, "--to-date", to_date]
        if conf:
            args += ["--dag-run-conf", json.dumps(dict(conf))]
        if reprocess:
            args += ["--reprocess-behavior", reprocess]
        self.airflow(*args)
        rows = self.query("SELECT max(id) FROM backfill WHERE dag_id = %s", (dag_id,))
        if not rows or rows[0][0] is None:
            raise RuntimeError(f"airflow backfill create made no backfill of {dag_id}")
        return int(rows[0][0])

    def wait_for_backfill(self, backfill_id: int, timeout: float = 180.0) -> list[dict[str, Any]]:
        """Wait until the scheduler marks the backfill complete; its runs (run_id, state)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            done = self.query("SELECT completed_at FROM backfill WHERE id = %s", (backfill_id,))
            if done and done[0][0] is not None:
                break
            time.sleep(0.5)
        else:
            runs = self.query(
                "SELECT run_id, state FROM dag_run WHERE backfill_id = %s", (backfill_id,)
            )
            raise TimeoutError(
                f"backfill {backfill_id} not complete after {timeout:.0f}s; runs: {runs}; "
                f"tasks not done: {self._unfinished(backfill_id)}"
            )
        rows = self.query(
            "SELECT dr.run_id, dr.state, dr.logical_date FROM backfill_dag_run b "
            "JOIN dag_run dr ON dr.id = b.dag_run_id WHERE b.backfill_id = %s "
            "ORDER BY b.sort_ordinal",
            (backfill_id,),
        )
        return [{"run_id": r, "state": s, "logical_date": d} for r, s, d in rows]

    def _unfinished(self, backfill_id: int) -> list[tuple[Any, ...]]:
        return self.query(
            "SELECT ti.run_id, ti.task_id, ti.map_index, ti.state, ti.try_number "
            "FROM task_instance ti JOIN dag_run dr ON dr.dag_id = ti.dag_id "
            "AND dr.run_id = ti.run_id WHERE dr.backfill_id = %s "
            "AND ti.state IS DISTINCT FROM 'success' AND ti.state IS DISTINCT FROM 'skipped'",
            (backfill_id,),
        )

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, oldest logical date first."""
        rows = self.query(
            "SELECT run_id, run_type, state, logical_date, start_date, end_date FROM dag_run "
            "WHERE dag_id = %s ORDER BY logical_date, id",
            (dag_id,),
        )
        keys = ("run_id", "run_type", "state", "logical_date", "start_date", "end_date")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def task_instances(self, dag_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
        """The task instances of a run (or of every run), with state and try number."""
        statement = (
            "SELECT run_id, task_id, map_index, state, try_number, start_date, end_date "
            "FROM task_instance WHERE dag_id = %s"
        )
        params: list[Any] = [dag_id]
        if run_id is not None:
            statement += " AND run_id = %s"
            params.append(run_id)
        keys = ("run_id", "task_id", "map_index", "state", "try_number", "start_date", "end_date")
        rows = self.query(statement + " ORDER BY run_id, task_id, map_index", params)
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def task_processes(self) -> list[Any]:
        """The running tasks' own processes (``psutil.Process``), whose title is
        ``airflow worker -- <task instance id>``: the child each LocalExecutor worker
        (the task supervisor) forks. Killing one fails that try; the supervisor reports it."""
        import psutil

        found = []
        for process in self._processes.values():
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(process.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        title = " ".join(child.cmdline())
                        if title.startswith(TASK_TITLE) and "LocalExecutor" not in title:
                            found.append(child)
        return found

    # -- diagnostics ----------------------------------------------------------------------------

    def component_log(self, name: str, tail: int = 8000) -> str:
        """The end of one service's output."""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return "(no output)"
        return path.read_text(errors="replace")[-tail:]

    def task_logs(self, tail: int = 4000) -> str:
        """The end of every task log under ``home/logs``."""
        parts = []
        for path in sorted((self.home / "logs").glob("dag_id=*/**/*.log")):
            parts.append(
                f"--- {path.relative_to(self.home)}\n{path.read_text(errors='replace')[-tail:]}"
            )
        return "\n".join(parts) or "(no task logs)"

    def diagnostics(self, tail: int = 6000) -> str:
        """Every service's and task's log ends: what to print when a system test fails."""
        parts = [f"===== airflow {n}\n{self.component_log(n, tail)}" for n in COMPONENTS]
        parts.append(f"===== task logs\n{self.task_logs(tail)}")
        return "\n".join(parts)
