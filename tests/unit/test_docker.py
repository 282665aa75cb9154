"""docker/: the compose file and the image, checked without a Docker engine.

The compose file is parsed and interpolated as compose does it (YAML first, then ``${VAR}``,
``${VAR:-default}``, ``${VAR:?error}`` and ``$$`` in every string) with ``.env.example``;
``docker compose config`` (or a standalone ``docker-compose config``) runs too when installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from airflow_provider_tutopanda import pools
from tests.system import distributed

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
#: The Airflow settings every Airflow container runs with, shared with the distributed test.
AIRFLOW_ENV = DOCKER / "airflow.env"
DOCKERFILE = DOCKER / "Dockerfile"
MAKE_TARGET = "install-system"

REQUIRED_SERVICES = {
    "postgres",
    "redis",
    "minio",
    "minio-init",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
#: Long-running services, each with a health check.
DAEMONS = REQUIRED_SERVICES - {"minio-init", "airflow-init"}
#: What every machine must agree on.
SHARED_SETTINGS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "TUTOPANDA_STORE",
)
_TOKEN = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(KeyError):
    """A ``${VAR:?error}`` whose variable is unset or empty."""


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (quotes around the value removed); commented-out keys are skipped."""
    env = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=value: {raw!r}"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def documented_variables(path: Path) -> set[str]:
    """Every key of an env file, commented-out examples (``# KEY=value``) included."""
    pattern = re.compile(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)
    return set(pattern.findall(path.read_text(encoding="utf-8")))


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation over a parsed document."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        current = env.get(name)
        missing = (current is None) if op in ("-", "?") else not current
        if op and missing:
            if op.endswith("?"):
                raise MissingVariable(f"{name}: {arg}")
            return arg
        return current or ""

    return _TOKEN.sub(substitute, value)


def variables_used(text: str) -> set[str]:
    return {m.group("name") for m in _TOKEN.finditer(text) if m.group("name")}


def filled_env() -> dict[str, str]:
    """``.env.example`` with a made-up value for every secret left empty."""
    env = read_env_file(ENV_EXAMPLE)
    for key, value in env.items():
        if not value and not key.startswith("AIRFLOW_CONN_"):
            env[key] = f"test{key.lower().replace('_', '')}"
    return env


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(raw, filled_env())


def effective_env(spec: dict[str, Any]) -> dict[str, str]:
    """A service's environment as compose gives it: its env files, then ``environment``."""
    env: dict[str, str] = {}
    for name in spec.get("env_file", []):
        env.update(distributed.read_env_file(COMPOSE.parent / name))
    env.update({k: str(v) for k, v in spec.get("environment", {}).items()})
    return env


def airflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: spec
        for name, spec in compose["services"].items()
        if name.startswith("airflow-") or name == "flower"
    }


def make_recipe(target: str) -> str:
    """The shell command of a one-line Makefile target."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().lstrip("@-"))
    assert len(recipe) == 1, f"make {target} should be one command, got {recipe}"
    return recipe[0]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw_line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        words = (pending + line).split(None, 1)
        pending = ""
        instructions.append((words[0].upper(), words[1] if len(words) > 1 else ""))
    return instructions


def locked_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    return next(p["version"] for p in lock["package"] if p["name"] == package)


# -- the compose file ---------------------------------------------------------------------


def test_compose_has_every_service(raw: dict[str, Any]) -> None:
    assert REQUIRED_SERVICES - set(raw["services"]) == set()
    assert raw["services"]["flower"]["profiles"] == ["flower"]


def test_every_variable_is_in_the_env_example() -> None:
    used = variables_used(COMPOSE.read_text(encoding="utf-8"))
    assert used, "compose.yaml reads no variable?"
    assert used - documented_variables(ENV_EXAMPLE) == set()


def test_the_env_example_commits_no_secret_and_compose_requires_them(raw: dict[str, Any]) -> None:
    example = read_env_file(ENV_EXAMPLE)
    secrets = {k for k in example if re.search(r"PASSWORD|SECRET|FERNET|AIRFLOW_CONN_", k)}
    assert {"POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY"} <= secrets
    assert {k: example[k] for k in secrets if example[k]} == {}
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(raw, example)


def test_airflow_services_share_the_image_and_the_executor(
    raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    common = compose["x-airflow-common"]
    services = airflow_services(compose)
    assert set(services) >= {s for s in REQUIRED_SERVICES if s.startswith("airflow-")}
    assert common["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert (COMPOSE.parent / common["build"]["context"] / common["build"]["dockerfile"]).is_file()
    for name, spec in services.items():
        assert spec["image"] == common["image"], name
        assert spec["build"] == common["build"], name
        assert spec["env_file"] == ["airflow.env"], name
        assert effective_env(spec)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        for key in SHARED_SETTINGS:
            assert spec["environment"][key] == common["environment"][key], (name, key)
        # DAGs are baked into the image: no bind mount may hide them.
        assert "volumes" not in spec, name
    env = common["environment"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == filled_env()["AIRFLOW_JWT_SECRET"]
    # The raw file reads the secret from one variable, for every service.
    raw_env = raw["x-airflow-common"]["environment"]
    assert raw_env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?")


def test_the_execution_api_is_the_api_server(compose: dict[str, Any]) -> None:
    url = compose["x-airflow-common"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url == "http://airflow-apiserver:8080/execution/"
    api = compose["services"]["airflow-apiserver"]
    assert api["command"] == "api-server"
    assert any(str(port).endswith(":8080:8080") for port in api["ports"])


def test_health_checks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in DAEMONS:
        assert services[name].get("healthcheck", {}).get("test"), name
    for name, spec in airflow_services(compose).items():
        if name in ("airflow-init", "airflow-cli"):
            continue
        assert spec["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"
        }, name
        assert spec["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
    init = services["airflow-init"]["depends_on"]
    assert init["minio-init"] == {"condition": "service_completed_successfully"}
    assert services["minio-init"]["depends_on"]["minio"] == {"condition": "service_healthy"}
    worker = services["airflow-worker"]
    assert worker["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}
    # Scalable: nothing that two replicas could not share.
    assert not {"container_name", "ports", "hostname"} & set(worker)


def test_init_migrates_then_creates_the_pools_from_pools_json(compose: dict[str, Any]) -> None:
    init = compose["services"]["airflow-init"]
    script = "\n".join(init["command"])
    migrate = script.index("airflow db migrate")
    create = re.search(
        r"python -m airflow_provider_tutopanda\.pools\b|airflow pools import \S*pools\.json",
        script,
    )
    assert create, script
    assert migrate < create.start()
    assert "set -e" in script
    # The module's default file is the package's pools.json, shipped in the wheel.
    assert pools.POOLS_FILE.name == "pools.json"
    assert pools.POOLS_FILE.parent == ROOT / "airflow_provider_tutopanda"
    assert pools.load_pools()
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_the_store_is_the_bucket_minio_init_creates(compose: dict[str, Any]) -> None:
    env = compose["x-airflow-common"]["environment"]
    bucket = filled_env()["S3_BUCKET"]
    assert env["TUTOPANDA_STORE"].startswith(f"s3://{bucket}/")
    assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"].startswith(f"s3://{bucket}/")
    # the CLI in a container uses boto3's default configuration: the AWS_* variables.
    assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    mc = compose["services"]["minio-init"]
    assert mc["environment"]["S3_BUCKET"] == bucket
    assert 'mc mb --ignore-existing "store/${S3_BUCKET}"' in " ".join(mc["command"])
    aws = yaml.safe_load(env["AIRFLOW_CONN_AWS_DEFAULT"])  # JSON is YAML
    assert aws["conn_type"] == "aws"
    assert aws["extra"]["endpoint_url"] == env["AWS_ENDPOINT_URL_S3"]


def test_provider_connections_come_from_the_env_file(raw: dict[str, Any]) -> None:
    env = raw["x-airflow-common"]["environment"]
    for conn in ("AIRFLOW_CONN_OPENAI_DEFAULT", "AIRFLOW_CONN_REPLICATE_DEFAULT"):
        assert env[conn] == f"${{{conn}:-}}"


# -- one source for compose and the distributed system test -------------------------------


def test_the_shared_settings_file_holds_constants_compose_does_not_repeat(
    raw: dict[str, Any],
) -> None:
    shared = distributed.read_env_file(AIRFLOW_ENV)
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert shared["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "true"
    assert shared["AIRFLOW__TUTOPANDA__PRELOAD_SDK"] == "true"
    # Constants only: no interpolation, secret or address (those are per deployment).
    for key, value in shared.items():
        assert "$" not in value and "://" not in value, key
        assert not re.search(r"PASSWORD|SECRET|FERNET|_CONN$|_CONN_ASYNC$|BROKER|BACKEND", key), key
    # Set in one place: compose's own environment repeats none of them.
    assert set(shared) & set(raw["x-airflow-common"]["environment"]) == set()
    assert raw["x-airflow-common"]["env_file"] == ["airflow.env"]


def test_compose_and_the_distributed_test_run_the_same_commands(raw: dict[str, Any]) -> None:
    services = raw["services"]
    for name, command in distributed.SERVICE_COMMANDS.items():
        assert tuple(str(services[name]["command"]).split()) == command, name
    assert set(distributed.SERVICE_COMMANDS) == {
        name for name in airflow_services(raw) if name not in ("airflow-init", "airflow-cli")
    } - {"flower"}
    # The test's init runs airflow-init's commands, in the same order.
    lines = [line.strip() for line in "\n".join(services["airflow-init"]["command"]).splitlines()]
    positions = [lines.index(" ".join(command)) for command in distributed.INIT_COMMANDS]
    assert positions == sorted(positions), lines


def test_the_distributed_test_runs_with_the_shared_settings(
    tmp_path: Path, compose: dict[str, Any]
) -> None:
    shared = distributed.read_env_file(AIRFLOW_ENV)
    database = "postgresql+psycopg://postgres@127.0.0.1:5432/tp_distributed_x"
    system = distributed.DistributedAirflow(
        tmp_path, database, "redis://127.0.0.1:6379/13", dag_files=[]
    )
    hosts = [
        system.add_host(service, service, *(["--queues", "q"] if "worker" in service else []))
        for service in distributed.SERVICE_COMMANDS
    ]
    for host in hosts:
        assert {k: host.env[k] for k in shared} == shared, host.name
        assert (
            host.args[: len(distributed.SERVICE_COMMANDS[host.service])]
            == (distributed.SERVICE_COMMANDS[host.service])
        )
        assert host.env["AIRFLOW_HOME"] == str(tmp_path / host.name)
    # The test only adds speed-ups; it never changes a shared setting.
    assert set(distributed.TEST_SPEEDUPS) & set(shared) == set()
    # The addresses and secrets compose sets, the test sets too (its own values), and the
    # executor talks to the same kinds of services.
    compose_env = compose["x-airflow-common"]["environment"]
    deployment = {k for k in compose_env if k.startswith("AIRFLOW__")} - {
        "AIRFLOW__CORE__AUTH_MANAGER",  # FAB in the official image; the venv's default here
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER",  # the test's bucket, set by the test
    }
    env = hosts[0].env
    assert deployment <= set(env), deployment - set(env)
    for key, scheme in (
        ("AIRFLOW__CELERY__BROKER_URL", "redis://"),
        ("AIRFLOW__CELERY__RESULT_BACKEND", "db+postgresql"),
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+"),
    ):
        assert compose_env[key].startswith(scheme) and env[key].startswith(scheme), key
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")


def _docker_compose() -> list[str] | None:
    """``docker compose`` (the plugin), else a standalone ``docker-compose``; None if neither runs."""
    candidates = []
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        candidates.append([standalone])
    for command in candidates:
        try:
            probe = subprocess.run(
                [*command, "version"], capture_output=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return command
    return None


def test_docker_compose_config(tmp_path: Path) -> None:
    command = _docker_compose()
    if command is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI installs docker-compose (.ci/run): the compose file is checked there")
        pytest.skip("neither docker compose nor docker-compose is installed here")
    env_file = tmp_path / "filled.env"
    env_file.write_text("".join(f"{k}={v!r}\n" for k, v in filled_env().items()))
    base = [*command, "-f", str(COMPOSE)]
    # Only the env file counts: no variable of this shell may fill a missing secret.
    clean = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    ok = subprocess.run(
        [*base, "--env-file", str(env_file), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=clean,
    )
    assert ok.returncode == 0, ok.stderr
    # As compose resolves it: every Airflow service runs with the shared settings file.
    resolved = subprocess.run(
        [*base, "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env=clean,
    )
    services = yaml.safe_load(resolved.stdout)["services"]
    shared = distributed.read_env_file(AIRFLOW_ENV)
    for name, spec in airflow_services({"services": services}).items():
        env = {k: str(v) for k, v in spec["environment"].items()}
        assert {k: env.get(k) for k in shared} == shared, name
    missing = subprocess.run(
        [*base, "--env-file", str(ENV_EXAMPLE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=clean,
    )
    assert missing.returncode != 0
    assert "docker/.env" in missing.stderr


# -- the image ----------------------------------------------------------------------------


def test_the_image_is_the_official_one_of_the_locked_airflow() -> None:
    froms = [args for instruction, args in dockerfile_instructions() if instruction == "FROM"]
    assert len(froms) == 1
    match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+)\.(\d+)", froms[0])
    assert match, froms[0]
    airflow_version, major, minor = match.group(1), int(match.group(2)), int(match.group(3))
    assert airflow_version == locked_version("apache-airflow")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pinned = next(
        r for r in project["optional-dependencies"]["airflow"] if r.startswith("apache-airflow")
    )
    assert Version(airflow_version) in SpecifierSet(pinned.removeprefix("apache-airflow"))
    assert Version(f"{major}.{minor}") in SpecifierSet(project["requires-python"])


def test_the_image_installs_with_the_make_target_command() -> None:
    command = make_recipe(MAKE_TARGET)
    assert "$(" not in command, "the recipe must be a plain shell command, without make variables"
    assert command.startswith("uv export --locked --extra airflow --no-dev --no-emit-project")
    runs = [args for instruction, args in dockerfile_instructions() if instruction == "RUN"]
    assert command in runs, f"no RUN line is exactly `{command}`"
    readme = (DOCKER / "README.md").read_text(encoding="utf-8")
    assert command in readme
    assert f"make {MAKE_TARGET}" in readme


def test_the_image_bakes_in_the_dags_and_the_build_context_has_what_it_copies() -> None:
    instructions = dockerfile_instructions()
    copies = [args.split() for instruction, args in instructions if instruction == "COPY"]
    assert ["--chown=airflow:0", "dags/", "/opt/airflow/dags/"] in copies
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[[line.startswith("#") for line in ignore].index(False)] == "*"
    for args in copies:
        for source in (a for a in args[:-1] if not a.startswith("--")):
            assert f"!{source}" in ignore, f"{source} is copied but .dockerignore leaves it out"
            assert (ROOT / source).exists(), source
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users in ([], ["airflow"]), "pip/uv installs must run as the image's airflow user"
