"""Who may see what: Airflow's own auth manager, never a login of ours.

The api-server mounts a plugin's FastAPI app without authentication, so every route of the
UI asks for the user here: the JWT the Airflow UI keeps in its ``_token`` cookie, or an
``Authorization: Bearer`` header, checked by Airflow's ``get_user``; then the auth manager's
``is_authorized_dag`` for reading the DAG's runs (GET) and for triggering one (POST).
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import HTTPException, Request, status


class Access(Protocol):
    """The checks the UI makes (Airflow's auth manager in the api-server)."""

    async def user(self, request: Request) -> Any:
        """The signed-in user; HTTP 401 when there is none."""

    def can_read(self, user: Any, dag_id: str) -> bool:
        """True if ``user`` may read the runs of ``dag_id``."""

    def can_trigger(self, user: Any, dag_id: str) -> bool:
        """True if ``user`` may start a run of ``dag_id``."""

    def login_url(self) -> str | None:
        """Where a user signs in, if known."""


class AirflowAccess:
    """:class:`Access` through Airflow's ``get_user`` and its configured auth manager."""

    async def user(self, request: Request) -> Any:
        """The user of the request's token (bearer header first, then the UI's cookie).

        Raises:
            HTTPException: 401 without a token or with an expired one, 403 with a bad one.
        """
        from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

        credentials = await bearer_scheme(request)
        return await get_user(request, _oauth_token=None, bearer_credentials=credentials)

    def can_read(self, user: Any, dag_id: str) -> bool:
        """``is_authorized_dag(GET, RUN)`` for the DAG."""
        return self._authorized("GET", user, dag_id)

    def can_trigger(self, user: Any, dag_id: str) -> bool:
        """``is_authorized_dag(POST, RUN)`` for the DAG: what triggering a run needs."""
        return self._authorized("POST", user, dag_id)

    def login_url(self) -> str | None:
        """The auth manager's login page."""
        from airflow.api_fastapi.app import get_auth_manager

        try:
            return str(get_auth_manager().get_url_login())
        except Exception:  # a manager without a login page: just no link
            return None

    @staticmethod
    def _authorized(method: Any, user: Any, dag_id: str) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import (
            DagAccessEntity,
            DagDetails,
        )

        return bool(
            get_auth_manager().is_authorized_dag(
                method=method,
                access_entity=DagAccessEntity.RUN,
                details=DagDetails(id=dag_id, team_name=_team_of(dag_id)),
                user=user,
            )
        )


def _team_of(dag_id: str) -> str | None:
    """The DAG's team when Airflow runs multi-team, else None (no DB query)."""
    from airflow.configuration import conf

    if not conf.getboolean("core", "multi_team", fallback=False):
        return None
    from airflow.models.dag import DagModel

    return DagModel.get_team_name(dag_id)


def forbidden() -> HTTPException:
    """The refusal for a DAG the user may not read."""
    return HTTPException(status.HTTP_403_FORBIDDEN, "You may not read this DAG's runs")
