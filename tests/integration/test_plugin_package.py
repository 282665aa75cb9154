"""A provider package from outside, installed beside tutopanda: examples/tutopanda-acme.

A fresh virtual environment sees this project's environment (tutopanda, Airflow) through a
``.pth`` file; the example package is built and installed into it with ``uv pip install
--no-deps --no-build-isolation --offline`` (no network). Everything then runs in that
environment's interpreter, in a folder outside this repository: the package's own tests on
the shipped pytest plugin, docs/authoring.md's files as written, ``tutopanda models list``,
the DAGs' model params check and the UI catalogue, ``tutopanda produce`` (mock, and live
against a local Acme), and a user's DAG with
``ProducerOperator`` through ``dag.test()`` (mock, and live through the generic ``tutopanda``
connection), where the producer declared for the ``airflow`` environment is the one chosen.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tutopanda-acme"
GUIDE = ROOT / "docs" / "authoring.md"
ACME_KEY = "acme-live-key-never-printed-8f3a"
#: Variables of the parent process that must not leak into the environment under test.
_FOREIGN = ("AIRFLOW", "TUTOPANDA_", "ACME_", "PYTHONPATH", "REPLICATE_", "OPENAI_")


@dataclass
class AcmeEnv:
    """The environment with the example installed, and a folder outside the repository."""

    python: Path
    home: Path
    package: Path
    timings: dict[str, float] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
        return {**base, "NO_COLOR": "1", "COLUMNS": "200", **extra}

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            cwd=cwd or self.home,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("-m", "producers.cli", *args, **env)


@pytest.fixture(scope="module")
def acme_env(tmp_path_factory: pytest.TempPathFactory) -> AcmeEnv:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (make setup installs it)")
    started = time.perf_counter()
    root = tmp_path_factory.mktemp("acme-env")
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The project's environment, as if tutopanda were installed here: its .pth files too.
    here = sysconfig.get_paths()["purelib"]
    Path(purelib, "_tutopanda_base.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    package = root / "tutopanda-acme"
    shutil.copytree(EXAMPLE, package, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    done = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--python",
            str(python),
            "--no-deps",
            "--no-build-isolation",
            "--offline",
            str(package),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    home = root / "outside"
    home.mkdir()
    env = AcmeEnv(python=python, home=home, package=package)
    env.timings["install"] = time.perf_counter() - started
    return env


class AcmeServer:
    """Acme's API on a local port: jobs done at the first look, one PNG per image.

    Records each request as ``(method, path, key)`` where key is True when the request carried
    the right key, False for another one, None for none.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bool | None]] = []
        png = io.BytesIO()
        Image.new("RGB", (16, 9), "orange").save(png, format="PNG")
        self.png = png.getvalue()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any, content_type: str = "application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> bool | None:
                auth = self.headers.get("Authorization")
                key = None if auth is None else auth == f"Bearer {ACME_KEY}"
                server.requests.append((self.command, self.path, key))
                return key

            def do_POST(self) -> None:
                key = self._record()
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if key is not True:
                    return self._answer(401, {"message": "bad key"})
                match = re.fullmatch(r"/v1/models/([\w.-]+)/jobs", self.path)
                if match:
                    job = f"j{len(server.requests)}-{body.get('n', 1)}"
                    return self._answer(201, {"id": job, "state": "queued"})
                return self._answer(200, {"id": self.path.split("/")[-2], "state": "error"})

            def do_GET(self) -> None:
                key = self._record()
                if self.path.startswith("/files/"):
                    return self._answer(200, server.png, "image/png")
                if key is not True:
                    return self._answer(401, {"message": "bad key"})
                if self.path == "/v1/account":
                    return self._answer(200, {"name": "tutopanda tests"})
                match = re.fullmatch(r"/v1/jobs/([\w-]+)", self.path)
                if not match:
                    return self._answer(404, {"message": "no such route"})
                job = match.group(1)
                count = int(job.rsplit("-", 1)[1])
                files = [f"{server.url}/files/{job}/{i}.png" for i in range(count)]
                return self._answer(200, {"id": job, "state": "done", "files": files})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> AcmeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def acme_server() -> Iterator[AcmeServer]:
    with AcmeServer() as server:
        yield server


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    return json.loads(done.stdout)


def test_the_package_is_listed_in_the_catalogue(acme_env: AcmeEnv) -> None:
    started = time.perf_counter()
    listed = {m["model_id"]: m for m in _json(acme_env.cli("models", "list", "--json"))}
    assert listed["acme:pixel-1"]["producer"] == "acme.images"
    assert listed["acme:pixel-2"]["kind"] == "text-to-image"
    assert listed["replicate:acme/pixel-lite"]["producer"] == "replicate.media"  # its models folder
    assert "replicate:bytedance/seedream-4" in listed and "openai:gpt-5-mini" in listed
    table = acme_env.cli("models", "list", "--kind", "text-to-image")
    assert table.returncode == 0 and "acme:pixel-1" in table.stdout
    show = acme_env.cli("models", "show", "acme:pixel-1")
    assert show.returncode == 0 and "style" in show.stdout and "watercolour" in show.stdout
    acme_env.timings["models list/show"] = time.perf_counter() - started


CHECK_PARAMS = """\
import json
from producers.pipeline.options import load_options
from producers.pipeline.run_params import RefusedParam, check_role_models, run_overrides
from producers.registry import default_registry
from airflow_provider_tutopanda.ui.catalogue import catalogue

models = default_registry().models()
check_role_models(load_options(overrides=run_overrides({"image_model": "acme:pixel-1"})), models)
try:
    options = load_options(overrides=run_overrides({"narration_model": "acme:pixel-1"}))
    check_role_models(options, models)
    refused = None
except RefusedParam as exc:
    refused = str(exc)
rows = [row.model_id for row in catalogue("text-to-image", [])]
print(json.dumps({"refused": refused, "ui": rows}))
"""


def test_the_dags_model_params_and_the_ui_catalogue_see_the_package(acme_env: AcmeEnv) -> None:
    result = _json(acme_env.run("-c", CHECK_PARAMS))
    assert "acme:pixel-1" in result["refused"] and "text-to-image" in result["refused"]
    assert {"acme:pixel-1", "acme:pixel-2", "replicate:acme/pixel-lite"} <= set(result["ui"])


def test_produce_in_mock_mode(acme_env: AcmeEnv) -> None:
    store = acme_env.home / "store-mock"
    data = _json(
        acme_env.cli(
            "produce",
            "acme:pixel-1",
            "--set",
            "prompt=A kite over a volcano",
            "--set",
            "count=2",
            "--store",
            str(store),
            "--json",
        )
    )
    assert [a["id"] for a in data["artefacts"]] == ["image[0]", "image[1]"]
    for artefact in data["artefacts"]:
        diagnostics = artefact["diagnostics"]
        assert (diagnostics["producer"], diagnostics["mocked"]) == ("acme.images", True)
        assert diagnostics["payload"]["queue"] == "interactive"
        assert artefact["mime_type"] == "image/png"
        assert Path(artefact["uri"].removeprefix("file://")).stat().st_size == artefact["size"]


def test_produce_live_against_a_local_acme(acme_env: AcmeEnv, acme_server: AcmeServer) -> None:
    store = acme_env.home / "store-live"
    done = acme_env.cli(
        "produce", "acme:pixel-2", "--mode", "live", "--set", "prompt=A red panda",
        "--store", str(store), "--json",
        ACME_API_KEY=ACME_KEY, ACME_BASE_URL=f"{acme_server.url}/v1",
    )  # fmt: skip
    (artefact,) = _json(done)["artefacts"]
    assert artefact["diagnostics"]["producer"] == "acme.images"
    assert artefact["diagnostics"]["mocked"] is False
    assert artefact["sha256"] and artefact["size"] == len(acme_server.png)
    requests = acme_server.requests
    assert requests[0] == ("POST", "/v1/models/pixel-2/jobs", True)  # ACME_API_KEY, once
    assert [r for r in requests if r[0] == "POST"] == requests[:1]
    downloads = [r for r in requests if r[1].startswith("/files/")]
    assert len(downloads) == 1 and downloads[0][2] is None  # fetched without the key
    assert ACME_KEY not in done.stdout + done.stderr


def test_the_packages_own_tests_pass_on_the_shipped_pytest_plugin(acme_env: AcmeEnv) -> None:
    started = time.perf_counter()
    done = acme_env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=acme_env.package)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b7 passed\b", done.stdout), done.stdout[-500:]
    acme_env.timings["package tests"] = time.perf_counter() - started


def test_the_guides_files_run_as_written_outside_the_repository(acme_env: AcmeEnv) -> None:
    started = time.perf_counter()
    folder = acme_env.home / "guide"
    blocks = re.findall(r"```python\n# file: (\S+)\n(.*?)```", GUIDE.read_text(), re.S)
    written = []
    for name, source in blocks:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        written.append(name)
    assert {"my_producer.py", "test_my_producer.py", "me_client.py", "test_me_client.py"} <= set(
        written
    )
    (folder / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    done = acme_env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=folder)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    tests = len([n for n in written if Path(n).name.startswith("test_")])
    assert re.search(rf"\b{tests} passed\b", done.stdout), done.stdout[-500:]
    acme_env.timings["guide files"] = time.perf_counter() - started


LIVE_DAG = """\
import pendulum
from airflow.sdk import DAG

from airflow_provider_tutopanda.operators import ProducerOperator

with DAG("acme_live", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    ProducerOperator(
        task_id="picture", model="acme:pixel-2", inputs={{"prompt": "A red panda"}},
        mode="live", store={store!r}, poll_interval=0.05, deferrable={deferrable},
    )
"""

RUN_DAGS = """\
import json, sys
from pathlib import Path

from airflow.utils.db import initdb

initdb()
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from sqlalchemy import select

results = {}
for path in sorted(Path(sys.argv[1]).glob("*.py")):
    namespace = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    (dag,) = [v for v in namespace.values() if type(v).__name__ == "DAG"]
    run = dag.test()
    with create_session() as session:
        values = {
            x.task_id: XComModel.deserialize_value(x)
            for x in session.scalars(
                select(XComModel).where(
                    XComModel.dag_id == run.dag_id,
                    XComModel.run_id == run.run_id,
                    XComModel.key == "return_value",
                )
            )
        }
        results[dag.dag_id] = {
            ti.task_id: {"state": str(ti.state), "pool": ti.pool, "value": values.get(ti.task_id)}
            for ti in run.get_task_instances(session=session)
        }
print("RESULTS " + json.dumps(results, default=str))
"""


@pytest.mark.airflow
def test_a_users_dag_runs_the_airflow_producer(
    acme_env: AcmeEnv, acme_server: AcmeServer, tmp_path: Path
) -> None:
    """The guide's DAG (mock) and a live one on the generic connection, through dag.test()."""
    started = time.perf_counter()
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    guide_dag = re.search(
        r"```python\n# file: dags/acme_pictures.py\n(.*?)```", GUIDE.read_text(), re.S
    )
    assert guide_dag is not None
    (dags / "acme_pictures.py").write_text(guide_dag.group(1))
    store = tmp_path / "store"
    (dags / "acme_live.py").write_text(LIVE_DAG.format(store=str(store), deferrable=True))
    script = tmp_path / "run_dags.py"
    script.write_text(RUN_DAGS)
    connection = {"conn_type": "tutopanda", "password": ACME_KEY, "host": f"{acme_server.url}/v1"}
    done = acme_env.run(
        str(script),
        str(dags),
        timeout=180,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW_CONN_TUTOPANDA_ACME=json.dumps(connection),
        TUTOPANDA_STORE=str(tmp_path / "default-store"),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULTS "))
    results = json.loads(line.removeprefix("RESULTS "))

    mock = results["acme_pictures"]["picture"]
    assert mock["state"] == "success"
    assert len(mock["value"]) == 2
    for record in mock["value"]:
        assert record["diagnostics"]["producer"] == "acme.images.airflow"  # chosen in Airflow
        assert record["diagnostics"]["payload"]["queue"] == "batch"
        assert record["diagnostics"]["mocked"] is True
    # no tutopanda_acme pool in this deployment: the task ran in default_pool, with a warning
    assert mock["pool"] == "default_pool"
    assert "'tutopanda_acme' does not exist" in output
    assert "python -m airflow_provider_tutopanda.pools" in output

    live = results["acme_live"]["picture"]
    assert live["state"] == "success", output[-4000:]
    (record,) = live["value"]
    assert record["diagnostics"]["producer"] == "acme.images.airflow"
    assert record["diagnostics"]["mocked"] is False
    assert record["size"] == len(acme_server.png)
    creates = [r for r in acme_server.requests if r[0] == "POST"]
    assert creates == [("POST", "/v1/models/pixel-2/jobs", True)]  # the connection's key, once
    assert all(key is None for _, path, key in acme_server.requests if path.startswith("/files"))
    assert ACME_KEY not in output
    acme_env.timings["airflow dag.test (mock + live)"] = time.perf_counter() - started
    print(textwrap.indent(json.dumps(acme_env.timings, indent=1), "timings "))
