"""Start the Airflow UI on the embedded setup of ``make movie`` (``make ui``).

``python -m airflow_provider_tutopanda.run_ui [--port 8080]`` runs ``airflow standalone``
(scheduler, dag-processor, triggerer and api-server, on the SQLite database under
``AIRFLOW_HOME``, default ``./.airflow``) with the same environment as
:mod:`airflow_provider_tutopanda.run_local`: the repository's dags folder, no examples, the
store ``TUTOPANDA_STORE`` (default ``./tutopanda-store``); the tutopanda plugin comes with the
installed distribution. The venv's ``bin`` goes first on ``PATH``, because standalone starts
each component as ``airflow ...`` from ``PATH``. When the api-server answers its health check
it prints the URL and the login of the simple auth manager (the admin password Airflow
generated into ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``).

Airflow runs in a process group of its own; Ctrl-C (or SIGTERM) stops that whole group,
with SIGTERM, then SIGKILL for what is left after 20 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from pathlib import Path

from airflow_provider_tutopanda.run_local import environment

#: The health endpoint of the Airflow 3 api-server.
HEALTH_PATH = "/api/v2/monitor/health"
#: Seconds the components get to stop on SIGTERM before SIGKILL.
STOP_GRACE = 20.0
DEFAULT_PORT = 8080
#: Task slots of the local scheduler unless AIRFLOW__CORE__PARALLELISM says otherwise.
LOCAL_PARALLELISM = 8


def default_port() -> int:
    """``UI_PORT`` from the environment, else 8080."""
    raw = os.environ.get("UI_PORT", "").strip()
    return int(raw) if raw else DEFAULT_PORT


def ui_environment(airflow_home: Path, store: Path, port: int, host: str) -> dict[str, str]:
    """The environment of ``airflow standalone``: :func:`run_local.environment`, the venv's
    ``bin`` first on ``PATH``, the api-server on ``host:port`` and the tasks' execution API
    on that port (Airflow's default is 8080 whatever the port)."""
    env = environment(airflow_home, store)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        [bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p)]
    )
    env["AIRFLOW__API__PORT"] = str(port)
    env["AIRFLOW__API__HOST"] = host
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://localhost:{port}/execution/"
    # The LocalExecutor starts one worker process per slot up front (32 by default).
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(LOCAL_PARALLELISM))
    # A pytest run's setting must not leak into the UI (it changes the config Airflow reads).
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return env


def port_problem(host: str, port: int) -> str | None:
    """Why the api-server could not listen on ``host:port`` (None: it can)."""
    probe_host = "127.0.0.1" if host in ("", "0.0.0.0", "localhost") else host
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        if sock.connect_ex((probe_host, port)) == 0:
            return f"port {port} is taken: something already answers on {probe_host}:{port}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As uvicorn does: a closed connection's TIME_WAIT does not make the port taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "0.0.0.0", port))
        except OSError as exc:
            return f"port {port} is taken on {host or '0.0.0.0'} ({exc.strerror})"
    return None


def password_file(env: dict[str, str]) -> Path:
    """Where the simple auth manager keeps the generated passwords."""
    configured = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    if configured:
        return Path(configured)
    return Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"


def read_login(path: Path, user: str = "admin") -> str | None:
    """The generated password of ``user`` in ``path`` (None if not written yet)."""
    try:
        passwords = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    value = passwords.get(user) if isinstance(passwords, dict) else None
    return value if isinstance(value, str) and value else None


def healthy(base_url: str) -> bool:
    """True when the api-server's health endpoint answers 200 with a healthy database."""
    try:
        with urllib.request.urlopen(base_url + HEALTH_PATH, timeout=2) as answer:
            body = json.loads(answer.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False
    status = body.get("metadatabase", {}).get("status") if isinstance(body, dict) else None
    return bool(status == "healthy")


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: a signal 0 tells whether anyone is left
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def stop_group(process: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> int:
    """Stop ``process`` and every process of its group: SIGTERM to the group (each Airflow
    component shuts down gracefully on it; standalone itself just exits), then SIGKILL to
    whatever is left after ``grace`` seconds.

    Returns:
        The process's exit code.
    """
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(process.pid) and time.monotonic() < deadline:
        process.poll()
        time.sleep(0.2)
    if group_members(process.pid):
        _signal_group(process.pid, signal.SIGKILL)
    return process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def main(argv: list[str] | None = None) -> int:
    """Start ``airflow standalone``, print the URL and login once it answers, run until
    stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=default_port(), help="default: UI_PORT or 8080")
    parser.add_argument(
        "--host",
        default=os.environ.get("AIRFLOW__API__HOST", "127.0.0.1"),
        help="the address the api-server listens on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--airflow-home", type=Path, default=Path(os.environ.get("AIRFLOW_HOME", ".airflow"))
    )
    parser.add_argument(
        "--store", type=Path, default=Path(os.environ.get("TUTOPANDA_STORE", "tutopanda-store"))
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=300.0, help="seconds to wait for the api-server"
    )
    args = parser.parse_args(argv)
    home, store = args.airflow_home.resolve(), args.store.resolve()
    problem = port_problem(args.host, args.port)
    if problem is not None:
        print(
            f"cannot start the Airflow UI: {problem}; choose another port, "
            f"e.g. make ui UI_PORT={args.port + 1}",
            file=sys.stderr,
        )
        return 2
    home.mkdir(parents=True, exist_ok=True)
    env = ui_environment(home, store, args.port, args.host)
    airflow = str(Path(sys.executable).with_name("airflow"))
    url = f"http://localhost:{args.port}"
    print(f"Airflow home {home} (SQLite); store {store}; starting the UI on {url}", flush=True)
    process = subprocess.Popen([airflow, "standalone"], env=env, start_new_session=True)

    def _stop(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt

    # Both, explicitly: a shell without job control starts background commands with SIGINT
    # ignored, and Python then leaves it ignored.
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        deadline = time.monotonic() + args.ready_timeout
        while not healthy(f"http://127.0.0.1:{args.port}"):
            if process.poll() is not None:
                print(f"airflow standalone stopped (exit {process.returncode})", file=sys.stderr)
                return process.returncode or 1
            if time.monotonic() > deadline:
                print(f"the api-server did not answer on {url} in time", file=sys.stderr)
                stop_group(process)
                return 1
            time.sleep(0.5)
        login = password_file(env)
        password = read_login(login)
        lines = [f"Airflow UI: {url}"]
        if password is not None:
            lines.append(f"login: admin / {password}  (kept in {login})")
        else:
            lines.append(
                f"login: no generated password in {login}; see [core] simple_auth_manager_*"
            )
        lines.append("the movie DAG: tutopanda_movie; Ctrl-C stops every component")
        width = max(len(line) for line in lines)
        print("\n".join(["=" * width, *lines, "=" * width]), flush=True)
        return process.wait()
    except KeyboardInterrupt:
        print("stopping Airflow...", file=sys.stderr, flush=True)
        stop_group(process)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None or group_members(process.pid):
            stop_group(process)


if __name__ == "__main__":
    raise SystemExit(main())
