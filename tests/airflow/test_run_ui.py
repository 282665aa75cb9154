"""``make ui``: the Airflow UI on the ``make movie`` setup, its login, and a clean stop."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_provider_tutopanda import run_ui

pytestmark = pytest.mark.airflow

#: Starting every component on a busy 2-core machine can take a while; the test fails after.
START_TIMEOUT = 180.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _processes_of(airflow_home: Path) -> list[int]:
    """Every process whose environment has ``AIRFLOW_HOME=airflow_home``."""
    needle = f"AIRFLOW_HOME={airflow_home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != "Z":
            found.append(int(entry.name))
    return found


class _Lines:
    """The lines a process prints, read on a thread (a full pipe would stall Airflow)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._stream = process.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line.rstrip("\n"))

    def find(self, pattern: str) -> re.Match[str] | None:
        for line in list(self.lines):
            match = re.search(pattern, line)
            if match:
                return match
        return None

    def tail(self) -> str:
        return "\n".join(self.lines[-60:])


@pytest.fixture
def ui_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    for pid in _processes_of(home):  # only if the test failed before its own checks
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_make_ui_serves_the_movie_dag_with_the_printed_login_and_stops_every_process(
    tmp_path: Path, ui_home: Path
) -> None:
    port = _free_port()
    # A fresh clone's shell: the venv's bin is not on PATH, and no AIRFLOW_* from the tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_tutopanda.run_ui",
            "--port",
            str(port),
            "--airflow-home",
            str(ui_home),
            "--store",
            str(tmp_path / "store"),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out = _Lines(process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while (login := out.find(r"^login: (\S+) / (\S+)")) is None:
            assert process.poll() is None, f"run_ui stopped early:\n{out.tail()}"
            assert time.monotonic() < deadline, f"no login printed:\n{out.tail()}"
            time.sleep(0.5)
        url = out.find(r"^Airflow UI: (http://\S+)")
        assert url is not None, out.tail()
        assert url.group(1) == f"http://localhost:{port}"
        user, password = login.groups()
        assert user == "admin"
        assert out.find("FileNotFoundError") is None, out.tail()

        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            health = client.get(run_ui.HEALTH_PATH)
            assert health.status_code == 200
            assert health.json()["metadatabase"]["status"] == "healthy"

            wrong = client.post("/auth/token", json={"username": user, "password": "x" + password})
            assert wrong.status_code == 401
            token = client.post("/auth/token", json={"username": user, "password": password})
            assert token.status_code == 201, token.text
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            assert client.get("/api/v2/dags").status_code == 401

            dag_ids: list[str] = []
            while "tutopanda_movie" not in dag_ids:
                assert time.monotonic() < deadline, f"DAGs listed: {dag_ids}\n{out.tail()}"
                dags = client.get("/api/v2/dags", headers=headers, params={"limit": 100})
                assert dags.status_code == 200, dags.text
                dag_ids = [dag["dag_id"] for dag in dags.json()["dags"]]
                time.sleep(1)
            plugins = client.get("/api/v2/plugins", headers=headers)
            assert plugins.status_code == 200
            assert "tutopanda_ui" in [p["name"] for p in plugins.json()["plugins"]]

        running = _processes_of(ui_home)
        assert len(running) >= 5, "standalone and its four components"
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=run_ui.STOP_GRACE + 15) == 0, out.tail()
        left = _processes_of(ui_home)
        assert left == [], f"processes left running: {left}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_taken_port_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = run_ui.main(
            [
                "--port",
                str(port),
                "--airflow-home",
                str(tmp_path / "home"),
                "--store",
                str(tmp_path / "store"),
            ]
        )
    assert code == 2
    err = capsys.readouterr().err
    assert f"port {port} is taken" in err
    assert f"UI_PORT={port + 1}" in err
    assert not (tmp_path / "home").exists()


def test_the_environment_puts_the_venv_first_and_follows_the_port(tmp_path: Path) -> None:
    env = run_ui.ui_environment(tmp_path / "home", tmp_path / "store", 18123, "127.0.0.1")
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["AIRFLOW__API__PORT"] == "18123"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:18123/execution/"
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home")
    assert env["TUTOPANDA_STORE"] == str(tmp_path / "store")
    assert "AIRFLOW__CORE__UNIT_TEST_MODE" not in env
