"""Links from a producer task to what it made, served by the tutopanda UI plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from airflow_provider_tutopanda import JOB_XCOM_KEY

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: Where the UI plugin's app is mounted in the api-server.
UI_PREFIX = "/tutopanda"


def first_artefact_uri(records: Any) -> str:
    """The URI of the first artefact record in a task's XCom value, or ``""``."""
    if isinstance(records, dict):
        records = [records]
    if isinstance(records, list):
        for record in records:
            if isinstance(record, dict) and record.get("uri"):
                return str(record["uri"])
    return ""


def _q(value: object) -> str:
    return quote(str(value), safe="")


def artefact_href(dag_id: str, run_id: str, job: Any) -> str:
    """The UI's URL of the first artefact of a job record (``tutopanda_job``), or ``""``."""
    if not isinstance(job, dict) or not job.get("key"):
        return ""
    for artefact in job.get("artefacts") or ():
        if isinstance(artefact, dict) and artefact.get("id"):
            return (
                f"{UI_PREFIX}/dags/{_q(dag_id)}/runs/{_q(run_id)}/media/"
                f"{_q(job['key'])}/{_q(artefact['id'])}"
            )
    return ""


def artefacts_href(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The UI's page of everything a task instance made."""
    return f"{UI_PREFIX}/dags/{_q(dag_id)}/runs/{_q(run_id)}/tasks/{_q(task_id)}/{map_index}"


def _xcom(ti_key: TaskInstanceKey, key: str) -> Any:
    from airflow.providers.common.compat.sdk import XCom

    return XCom.get_value(ti_key=ti_key, key=key)


class ArtefactLink(BaseOperatorLink):
    """ "Artefact": the task's (first) artefact, played or shown by the UI plugin; before the
    plugin knows the task, the artefact's store URI."""

    name = "Artefact"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The artefact's URL, or ``""`` before the task has produced anything."""
        href = artefact_href(ti_key.dag_id, ti_key.run_id, _xcom(ti_key, JOB_XCOM_KEY))
        return href or first_artefact_uri(_xcom(ti_key, "return_value"))


class ArtefactsLink(BaseOperatorLink):
    """ "Artefacts": the UI plugin's page of everything the task made, with its payload,
    cost and diagnostics."""

    name = "Artefacts"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The task instance's artefact page, or ``""`` before it has a job record."""
        if not _xcom(ti_key, JOB_XCOM_KEY):
            return ""
        return artefacts_href(ti_key.dag_id, ti_key.run_id, ti_key.task_id, ti_key.map_index)
