"""The artefact store of Airflow tasks, triggers and the UI.

Where: ``$TUTOPANDA_STORE``, else the Airflow setting ``[tutopanda] store``
(``AIRFLOW__TUTOPANDA__STORE``), else ``tutopanda-store`` under ``$AIRFLOW_HOME``.

An ``s3://bucket/prefix`` store talks to S3 through the Amazon provider's connection
(``[tutopanda] aws_conn_id``, default ``aws_default``): its keys, role, region and
``endpoint_url`` (for an S3-compatible store such as MinIO). Without that connection, the
Amazon provider falls back to boto3's own configuration (environment, instance role).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from producers.storage.base import ArtefactStore

SECTION = "tutopanda"
DEFAULT_AWS_CONN_ID = "aws_default"


def setting(key: str) -> str | None:
    """The ``[tutopanda] key`` Airflow setting (``AIRFLOW__TUTOPANDA__KEY``), or None if unset."""
    from airflow.sdk import conf

    value = conf.get(SECTION, key, fallback=None)
    return str(value).strip() or None if value is not None else None


def default_store() -> str:
    """``$TUTOPANDA_STORE``, else ``[tutopanda] store``, else ``$AIRFLOW_HOME/tutopanda-store``."""
    explicit = os.environ.get("TUTOPANDA_STORE") or setting("store")
    if explicit:
        return explicit
    home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return os.path.join(os.path.expanduser(home), "tutopanda-store")


def aws_conn_id() -> str:
    """The Amazon connection an S3 store uses (``[tutopanda] aws_conn_id``)."""
    return setting("aws_conn_id") or DEFAULT_AWS_CONN_ID


def open_airflow_store(uri: str | None = None) -> ArtefactStore:
    """Open ``uri`` (default :func:`default_store`); S3 goes through the Amazon provider."""
    from producers.storage import open_store
    from producers.storage.s3 import S3Store

    store = open_store(uri or default_store())
    if not isinstance(store, S3Store):
        return store
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = S3Hook(aws_conn_id=aws_conn_id()).get_conn()
    return S3Store(store.bucket, store.prefix, client=client)
