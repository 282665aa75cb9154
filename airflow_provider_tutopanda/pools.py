"""One Airflow pool per provider, bounding how many tasks call it at once.

The pools are declared in ``pools.json`` (the ``airflow pools import`` format), so either::

    airflow pools import airflow_provider_tutopanda/pools.json
    python -m airflow_provider_tutopanda.pools

creates them. Deferred tasks keep their slot (``include_deferred``): a prediction waiting on
a trigger is still running at the provider.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

POOLS_FILE = Path(__file__).with_name("pools.json")
POOL_PREFIX = "tutopanda_"


def load_pools(path: Path = POOLS_FILE) -> dict[str, dict[str, Any]]:
    """The pool declarations: ``{name: {"slots", "description", "include_deferred"}}``."""
    return json.loads(path.read_text(encoding="utf-8"))


def pool_for(provider: str) -> str:
    """The pool name for ``provider`` (``openai`` / ``replicate``)."""
    name = f"{POOL_PREFIX}{provider}"
    if name not in load_pools():
        known = ", ".join(sorted(n.removeprefix(POOL_PREFIX) for n in load_pools()))
        raise ValueError(f"no tutopanda pool for provider {provider!r}; known: {known}")
    return name


def create_pools(path: Path = POOLS_FILE) -> list[str]:
    """Create or update every declared pool in the metadata DB; the names, in file order."""
    from airflow.models.pool import Pool

    names = []
    for name, spec in load_pools(path).items():
        Pool.create_or_update_pool(
            name=name,
            slots=int(spec["slots"]),
            description=str(spec.get("description", "")),
            include_deferred=bool(spec.get("include_deferred", False)),
        )
        names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    """``python -m airflow_provider_tutopanda.pools [pools.json]``: create the pools."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else POOLS_FILE
    for name in create_pools(path):
        print(f"pool {name}: {load_pools(path)[name]['slots']} slots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
