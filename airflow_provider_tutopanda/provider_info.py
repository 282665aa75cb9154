"""The provider metadata ``get_provider_info()`` hands to Airflow's ProvidersManager.

It follows ``provider_info.schema.json`` shipped inside apache-airflow (the runtime schema).
``package-name`` must equal the distribution name (``tutopanda``): Airflow checks it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_tutopanda import __version__

_INTEGRATION = "Tutopanda"

PROVIDER_INFO: dict[str, Any] = {
    "package-name": "tutopanda",
    "name": "Tutopanda",
    "description": (
        "Hooks, operators and triggers running tutopanda producers (OpenAI and Replicate) "
        "to make narrated explainer movies."
    ),
    "versions": [__version__],
    "integrations": [
        {
            "integration-name": _INTEGRATION,
            "tags": ["ai"],
        }
    ],
    "hooks": [
        {
            "integration-name": _INTEGRATION,
            "python-modules": [
                "airflow_provider_tutopanda.hooks.openai",
                "airflow_provider_tutopanda.hooks.replicate",
            ],
        }
    ],
    "operators": [
        {
            "integration-name": _INTEGRATION,
            "python-modules": ["airflow_provider_tutopanda.operators"],
        }
    ],
    "triggers": [
        {
            "integration-name": _INTEGRATION,
            "python-modules": ["airflow_provider_tutopanda.triggers"],
        }
    ],
    "connection-types": [
        {
            "connection-type": "replicate",
            "hook-class-name": "airflow_provider_tutopanda.hooks.replicate.ReplicateHook",
            "hook-name": "Replicate",
        },
        {
            "connection-type": "openai",
            "hook-class-name": "airflow_provider_tutopanda.hooks.openai.OpenAIHook",
            "hook-name": "OpenAI",
        },
    ],
    "extra-links": ["airflow_provider_tutopanda.links.artefact.ArtefactLink"],
}
