"""The provider metadata, its discovery by Airflow, and the pools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow

ENTRY_POINT = "airflow_provider_tutopanda:get_provider_info"


def _schema() -> dict:
    import airflow

    return json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())


def test_provider_info_validates_against_the_shipped_schema() -> None:
    import jsonschema

    from airflow_provider_tutopanda import get_provider_info

    info = get_provider_info()
    jsonschema.validate(info, _schema())
    assert info["package-name"] == "tutopanda"
    types = {c["connection-type"]: c["hook-class-name"] for c in info["connection-types"]}
    assert types == {
        "replicate": "airflow_provider_tutopanda.hooks.replicate.ReplicateHook",
        "openai": "airflow_provider_tutopanda.hooks.openai.OpenAIHook",
        "tutopanda": "airflow_provider_tutopanda.hooks.generic.TutopandaHook",
    }
    assert info["extra-links"] == [
        "airflow_provider_tutopanda.links.artefact.ArtefactLink",
        "airflow_provider_tutopanda.links.artefact.ArtefactsLink",
    ]
    assert {
        "store",
        "aws_conn_id",
        "preload_sdk",
        "options_file",
        "topics_file",
    } <= set(info["config"]["tutopanda"]["options"])


def test_connection_types_name_importable_hooks_with_matching_attributes() -> None:
    from airflow.sdk import BaseHook

    from airflow_provider_tutopanda import get_provider_info

    for entry in get_provider_info()["connection-types"]:
        module, _, name = entry["hook-class-name"].rpartition(".")
        hook = getattr(__import__(module, fromlist=[name]), name)
        assert issubclass(hook, BaseHook)
        assert hook.conn_type == entry["connection-type"]
        assert hook.hook_name == entry["hook-name"]


def _entry_point_installed() -> bool:
    return any(
        e.value == ENTRY_POINT for e in metadata.entry_points(group="apache_airflow_provider")
    )


def test_providers_manager_sees_tutopanda(tmp_path: Path) -> None:
    """A fresh process discovers the provider through its entry point.

    If the installed ``tutopanda`` metadata predates the entry point (no reinstall since it
    was added to pyproject.toml), a stand-in dist-info on PYTHONPATH declares it.
    """
    env = dict(os.environ)
    if not _entry_point_installed():
        dist = tmp_path / "tutopanda-0.1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tutopanda\nVersion: 0.1.0\n")
        (dist / "entry_points.txt").write_text(
            f"[apache_airflow_provider]\nprovider_info = {ENTRY_POINT}\n"
        )
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    script = (
        "import json\n"
        "from airflow.providers_manager import ProvidersManager\n"
        "pm = ProvidersManager()\n"
        "info = pm.providers.get('tutopanda')\n"
        "hooks = pm.hooks\n"
        "print(json.dumps({'found': info is not None,\n"
        "  'openai': getattr(hooks.get('openai'), 'hook_class_name', None),\n"
        "  'replicate': getattr(hooks.get('replicate'), 'hook_class_name', None),\n"
        "  'tutopanda': getattr(hooks.get('tutopanda'), 'hook_class_name', None),\n"
        "  'links': list(pm.extra_links_class_names)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["found"]
    assert seen["replicate"] == "airflow_provider_tutopanda.hooks.replicate.ReplicateHook"
    assert seen["openai"] == "airflow_provider_tutopanda.hooks.openai.OpenAIHook"
    assert seen["tutopanda"] == "airflow_provider_tutopanda.hooks.generic.TutopandaHook"


def test_pools_json_sizes_both_built_in_pools() -> None:
    from airflow_provider_tutopanda.pools import POOLS_FILE, load_pools, pool_for

    pools = json.loads(POOLS_FILE.read_text())
    assert {name: spec["slots"] for name, spec in pools.items()} == {
        "tutopanda_replicate": 8,
        "tutopanda_openai": 4,
    }
    # the shape ``airflow pools import`` accepts: slots and description on every pool
    assert all({"slots", "description"} <= set(spec) for spec in pools.values())
    assert load_pools() == pools
    assert pool_for("replicate") == "tutopanda_replicate"
    assert pool_for("openai") == "tutopanda_openai"
    # any other provider has a pool too (tests/airflow/test_pools.py), made by the command
    assert pool_for("elevenlabs") == "tutopanda_elevenlabs"


def test_main_creates_the_pools_in_the_metadata_db(airflow_db: Path, capsys) -> None:
    from airflow.models.pool import Pool

    from airflow_provider_tutopanda.pools import main

    assert main([]) == 0
    assert main([]) == 0  # idempotent: create or update
    assert Pool.get_pool("tutopanda_replicate").slots == 8
    assert Pool.get_pool("tutopanda_openai").slots == 4
    assert Pool.get_pool("tutopanda_openai").include_deferred
    assert "tutopanda_openai: 4 slots" in capsys.readouterr().out
