"""What the attack suite shares: another host on the network that must never be contacted,
and a look at everything a job leaves behind (store, logs) for a secret or a file's text.

Each test in ``tests/security/`` plays one attack and asserts two things: the refusal (one
clear message, no traceback) and that the attack's target (a file's text, a token, the other
host's answer) reached nothing: not the store, not the logs, not a request to the provider,
and the other host saw no connection.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# AIRFLOW_HOME must be set before anything imports ``airflow``; the Airflow and UI tests'
# conftests set a temporary one too, and whichever is first is kept.
if "tutopanda-airflow-home-" not in os.environ.get("AIRFLOW_HOME", ""):
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="tutopanda-airflow-home-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

#: The answer the other host would give: if it shows up anywhere, the attack worked.
OTHER_HOST_SECRET = b"tutopanda-other-host-secret-7f3a9c"
OTHER_HOST_ADDRESS = "127.0.0.2"


@dataclass
class OtherHost:
    """A listener on another loopback address (``127.0.0.2``) standing for a host on the
    network that no provider answer may make us contact (a metadata service, an internal
    API). It records every connection and answers any request with ``OTHER_HOST_SECRET``."""

    host: str
    port: int
    connections: list[tuple[str, int]] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        """``http://127.0.0.2:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def https_url(self) -> str:
        """``https://127.0.0.2:<port>`` (it speaks no TLS: a connection is all it needs)."""
        return f"https://{self.host}:{self.port}"


def _serve(sock: socket.socket, other: OtherHost, stop: threading.Event) -> None:
    sock.settimeout(0.1)
    while not stop.is_set():
        try:
            conn, peer = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        other.connections.append(peer)
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)
                body = OTHER_HOST_SECRET
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            except OSError:
                pass


@pytest.fixture
def other_host() -> Iterator[OtherHost]:
    """Another host on the network (``127.0.0.2``) that must see no connection."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((OTHER_HOST_ADDRESS, 0))
    sock.listen(16)
    other = OtherHost(OTHER_HOST_ADDRESS, sock.getsockname()[1])
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(sock, other, stop), daemon=True)
    thread.start()
    try:
        yield other
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()


def tree_contains(root: Path, needle: bytes) -> list[Path]:
    """The files under ``root`` whose bytes contain ``needle`` (a store, a log folder)."""
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def blobs_in(root: Path) -> list[Path]:
    """The blobs a local store holds (``blobs/sha256/..``)."""
    blobs = root / "blobs"
    return [p for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The session's temporary AIRFLOW_HOME."""
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata DB in the session's AIRFLOW_HOME."""
    from airflow.utils.db import initdb

    initdb()
    return airflow_home / "airflow.db"
