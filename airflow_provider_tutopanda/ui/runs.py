"""Where the UI reads Airflow runs: the metadata DB of the api-server it runs in.

A run's artefacts come from its manifest in the store when the run wrote one (the ``assemble``
task), else from the job records its tasks pushed (XCom ``tutopanda_job``), so a running or
failed run shows what it made and how it failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from airflow_provider_tutopanda import JOB_XCOM_KEY

__all__ = ["JOB_XCOM_KEY"]


@dataclass(frozen=True)
class RunInfo:
    """One DAG run, as the UI needs it."""

    dag_id: str
    run_id: str
    state: str
    conf: dict[str, Any] = field(default_factory=dict)
    start_date: datetime | None = None
    end_date: datetime | None = None


class RunSource(Protocol):
    """Reads DAG runs and what their tasks pushed."""

    def get_run(self, dag_id: str, run_id: str) -> RunInfo | None:
        """The run, or None if the DAG has no such run."""

    def job_records(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The job records (XCom ``tutopanda_job``) of the run's tasks."""

    def return_value(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value"
    ) -> Any:
        """A task's return value (XCom ``key``, default ``return_value``, unmapped), or None."""

    def recent_runs(self, dag_ids: Iterable[str], limit: int) -> list[RunInfo]:
        """The newest runs of these DAGs, newest first."""


class AirflowRuns:
    """:class:`RunSource` over Airflow's metadata DB (the api-server's own session)."""

    def get_run(self, dag_id: str, run_id: str) -> RunInfo | None:
        """The run, or None if the DAG has no such run."""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            run = session.scalar(
                select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            )
            return None if run is None else _info(run)

    def job_records(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The job records of the run's tasks, in task and map-index order."""
        rows = self._xcoms(dag_id, run_id, JOB_XCOM_KEY)
        return [value for _, _, value in rows if isinstance(value, dict)]

    def return_value(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value"
    ) -> Any:
        """A task's return value (XCom ``key``, unmapped), or None."""
        for found_task, map_index, value in self._xcoms(dag_id, run_id, key, task_id):
            if found_task == task_id and map_index == -1:
                return value
        return None

    def recent_runs(self, dag_ids: Iterable[str], limit: int) -> list[RunInfo]:
        """The newest runs of these DAGs, newest first."""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        wanted = list(dag_ids)
        if not wanted:
            return []
        with create_session() as session:
            runs = session.scalars(
                select(DagRun)
                .where(DagRun.dag_id.in_(wanted))
                .order_by(DagRun.run_after.desc(), DagRun.id.desc())
                .limit(limit)
            )
            return [_info(run) for run in runs]

    def _xcoms(
        self, dag_id: str, run_id: str, key: str, task_id: str | None = None
    ) -> list[tuple[str, int, Any]]:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        query = select(XComModel.task_id, XComModel.map_index, XComModel.value).where(
            XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == key
        )
        if task_id is not None:
            query = query.where(XComModel.task_id == task_id)
        with create_session() as session:
            rows = session.execute(query.order_by(XComModel.task_id, XComModel.map_index))
            return [
                (task, index, XComModel.deserialize_value(_Row(value)))
                for task, index, value in rows
            ]


@dataclass(frozen=True)
class _Row:
    """What :meth:`XComModel.deserialize_value` reads (``.value``)."""

    value: Any


def _info(run: Any) -> RunInfo:
    return RunInfo(
        dag_id=run.dag_id,
        run_id=run.run_id,
        state=str(run.state.value if hasattr(run.state, "value") else run.state),
        conf=dict(run.conf or {}),
        start_date=run.start_date,
        end_date=run.end_date,
    )
