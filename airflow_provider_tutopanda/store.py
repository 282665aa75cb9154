"""The artefact store of Airflow tasks, triggers and the UI.

Where: ``$TUTOPANDA_STORE``, else the Airflow setting ``[tutopanda] store``
(``AIRFLOW__TUTOPANDA__STORE``), else ``tutopanda-store`` under ``$AIRFLOW_HOME``.

An ``s3://bucket/prefix`` store talks to S3 through the Amazon provider's connection
(``[tutopanda] aws_conn_id``, default ``aws_default``): its keys, role, region and
``endpoint_url`` (for an S3-compatible store such as MinIO). Without that connection, the
Amazon provider falls back to boto3's own configuration (environment, instance role).

Published movies go to ``[tutopanda] publish_uri`` (``AIRFLOW__TUTOPANDA__PUBLISH_URI``), a
Jinja template rendered with the run's context (``s3://bucket/movies/{{ ds }}/{{ run_id }}/``),
else ``published/<run id>`` under the store; an ``s3://`` one goes through the same Amazon
connection as the store.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from producers.storage.base import ArtefactStore
    from producers.storage.destination import Destination

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
    return S3Store(store.bucket, store.prefix, client=_s3_client())


def _s3_client() -> object:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id()).get_conn()


def publish_template() -> str | None:
    """The ``[tutopanda] publish_uri`` template, or None (publish beside the store)."""
    return setting("publish_uri")


def open_airflow_destination(uri: str) -> Destination:
    """Open a publish location; an ``s3://`` one goes through the Amazon connection.

    Raises:
        ConfigurationError: ``uri`` is not a directory, ``file://`` or ``s3://`` location.
    """
    from producers.storage.destination import S3Destination, open_destination

    destination = open_destination(uri)
    if not isinstance(destination, S3Destination):
        return destination
    return S3Destination(destination.bucket, destination.prefix, client=_s3_client())
