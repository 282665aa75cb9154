"""A link from a producer task to the first artefact it made."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.sdk import BaseOperator


def first_artefact_uri(records: Any) -> str:
    """The URI of the first artefact record in a task's XCom value, or ``""``."""
    if isinstance(records, dict):
        records = [records]
    if isinstance(records, list):
        for record in records:
            if isinstance(record, dict) and record.get("uri"):
                return str(record["uri"])
    return ""


class ArtefactLink(BaseOperatorLink):
    """ "Artefact": the URI of the first artefact the task returned (from XCom)."""

    name = "Artefact"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The first artefact's URI, or ``""`` before the task has produced anything."""
        from airflow.providers.common.compat.sdk import XCom

        return first_artefact_uri(XCom.get_value(ti_key=ti_key, key="return_value"))
