"""One Airflow pool per provider, bounding how many tasks call it at once.

Every provider's pool is ``tutopanda_<provider>``. The built-in providers' sizes are in
``pools.json`` (the ``airflow pools import`` format); a provider an installed package brings
(the ``tutopanda.producers`` / ``tutopanda.clients`` entry points) gets
:data:`DEFAULT_SLOTS` slots. ::

    python -m airflow_provider_tutopanda.pools            # every installed provider
    airflow pools import airflow_provider_tutopanda/pools.json   # the built-ins only

The command creates or updates the pools of the file and creates a plugin provider's pool
only when it is missing (a size set since, in the UI or the CLI, is kept). Deferred tasks keep
their slot (``include_deferred``): a prediction waiting on a trigger is still running at the
provider. A task whose provider pool does not exist in the deployment runs in
``default_pool`` instead, with a warning naming this command (see
:mod:`airflow_provider_tutopanda.policy`).

This module is imported when DAG files are parsed: it imports nothing heavy at the top.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

POOLS_FILE = Path(__file__).with_name("pools.json")
POOL_PREFIX = "tutopanda_"
#: Slots of a plugin provider's pool when it is first created.
DEFAULT_SLOTS = 4
#: The command that creates the pools (named in warnings).
POOLS_COMMAND = "python -m airflow_provider_tutopanda.pools"
#: ``producers.sdk.definition.PROVIDER_PATTERN`` (DAG files import this module: no SDK here).
_PROVIDER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def load_pools(path: Path = POOLS_FILE) -> dict[str, dict[str, Any]]:
    """The pool declarations: ``{name: {"slots", "description", "include_deferred"}}``."""
    pools: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return pools


def pool_for(provider: str) -> str:
    """The pool of ``provider``'s tasks: ``tutopanda_<provider>``, for any provider.

    Raises:
        ValueError: ``provider`` is not a provider name (lower-case letters, digits, - or _).
    """
    name = provider.strip().lower() if isinstance(provider, str) else ""
    if not _PROVIDER.match(name):
        raise ValueError(
            f"{provider!r} is not a provider name (lower-case letters, digits, '-' or '_')"
        )
    return f"{POOL_PREFIX}{name}"


def installed_providers() -> list[str]:
    """Every provider this installation can run: its producers' and its clients', sorted."""
    from producers.clients import client_specs
    from producers.registry import default_registry

    return sorted({*default_registry().providers, *client_specs()})


def planned_pools(path: Path = POOLS_FILE) -> dict[str, dict[str, Any]]:
    """The pools to have: the file's, then one of :data:`DEFAULT_SLOTS` per installed
    provider the file does not size (marked ``"plugin": True``)."""
    pools = load_pools(path)
    for provider in installed_providers():
        name = pool_for(provider)
        if name not in pools:
            pools[name] = {
                "slots": DEFAULT_SLOTS,
                "description": f"tutopanda: concurrent {provider} jobs",
                "include_deferred": True,
                "plugin": True,
            }
    return pools


def create_pools(path: Path = POOLS_FILE) -> list[tuple[str, int, str]]:
    """Create or update the file's pools, and create the missing plugin providers' pools, in
    the metadata DB; ``(name, slots, "created" | "updated" | "kept")`` for each."""
    from airflow.models.pool import Pool

    from airflow_provider_tutopanda import policy

    done = []
    for name, spec in planned_pools(path).items():
        existing = Pool.get_pool(name)
        if spec.get("plugin") and existing is not None:
            done.append((name, int(existing.slots), "kept"))
            continue
        Pool.create_or_update_pool(
            name=name,
            slots=int(spec["slots"]),
            description=str(spec.get("description", "")),
            include_deferred=bool(spec.get("include_deferred", False)),
        )
        done.append((name, int(spec["slots"]), "created" if existing is None else "updated"))
    policy.forget_pools()
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m airflow_provider_tutopanda.pools [pools.json]``: create the pools."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else POOLS_FILE
    for name, slots, what in create_pools(path):
        print(f"pool {name}: {slots} slots ({what})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
