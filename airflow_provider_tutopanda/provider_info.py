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
                "airflow_provider_tutopanda.hooks.generic",
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
        {
            "connection-type": "tutopanda",
            "hook-class-name": "airflow_provider_tutopanda.hooks.generic.TutopandaHook",
            "hook-name": "Tutopanda provider",
        },
    ],
    "extra-links": [
        "airflow_provider_tutopanda.links.artefact.ArtefactLink",
        "airflow_provider_tutopanda.links.artefact.ArtefactsLink",
    ],
    "config": {
        "tutopanda": {
            "description": "Where tutopanda tasks, triggers and the UI keep artefacts.",
            "options": {
                "store": {
                    "description": (
                        "The artefact store: a directory, file:///dir or s3://bucket/prefix. "
                        "$TUTOPANDA_STORE wins over it; empty: $AIRFLOW_HOME/tutopanda-store."
                    ),
                    "version_added": "0.1.0",
                    "type": "string",
                    "example": "s3://my-bucket/tutopanda",
                    "default": "",
                },
                "preload_sdk": {
                    "description": (
                        "Import the SDK and provider clients once in every Airflow process "
                        "at start, so forked task processes start warm (about a second less "
                        "of worker time per task pass; more memory per process)."
                    ),
                    "version_added": "0.1.0",
                    "type": "boolean",
                    "example": "True",
                    "default": "False",
                },
                "aws_conn_id": {
                    "description": "The Amazon connection an s3:// store uses.",
                    "version_added": "0.1.0",
                    "type": "string",
                    "example": "aws_default",
                    "default": "aws_default",
                },
                "options_file": {
                    "description": (
                        "The deployment's producer options files (comma-separated YAML, TOML "
                        "or JSON), applied over the defaults before a run's params: where "
                        "models, config, templates and attachments are chosen (a run may "
                        "set only its roles' models, inputs and custom attributes). "
                        "$TUTOPANDA_OPTIONS wins over it."
                    ),
                    "version_added": "0.1.0",
                    "type": "string",
                    "example": "/opt/airflow/tutopanda/options.yaml",
                    "default": "",
                },
                "topics_file": {
                    "description": (
                        "The topics file of tutopanda_daily_movie (one topic a line, "
                        "optionally YYYY-MM-DD: topic). $TUTOPANDA_TOPICS wins over it; "
                        "empty: topics.txt in the DAGs folder."
                    ),
                    "version_added": "0.1.0",
                    "type": "string",
                    "example": "/opt/airflow/tutopanda/topics.txt",
                    "default": "",
                },
                "output_hosts": {
                    "description": (
                        "Hosts provider outputs may be downloaded from, besides the API host "
                        "and the provider's delivery hosts (Replicate: replicate.delivery and "
                        "its subdomains): comma-separated host names, a leading . or *. for "
                        "subdomains too. Added to $TUTOPANDA_OUTPUT_HOSTS."
                    ),
                    "version_added": "0.1.0",
                    "type": "string",
                    "example": ".cdn.example.com,files.example.org",
                    "default": "",
                },
                "max_output_bytes": {
                    "description": (
                        "The most bytes one provider output may have; a bigger one is refused "
                        "(malformed_output) and nothing is stored. "
                        "$TUTOPANDA_MAX_OUTPUT_BYTES wins over it; empty: 4 GiB."
                    ),
                    "version_added": "0.1.0",
                    "type": "integer",
                    "example": "1073741824",
                    "default": "",
                },
                "download_deadline": {
                    "description": (
                        "Seconds one download of a provider output may take in all; a slower "
                        "one is refused (malformed_output). $TUTOPANDA_DOWNLOAD_DEADLINE wins "
                        "over it; empty: 1800."
                    ),
                    "version_added": "0.1.0",
                    "type": "float",
                    "example": "600",
                    "default": "",
                },
            },
        }
    },
}
