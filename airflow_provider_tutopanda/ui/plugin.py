"""The Airflow plugin: mounts the UI's app in the api-server and adds its views to the UI.

Registered under the ``airflow.plugins`` entry point, so installing the distribution enables
it; ``plugins/tutopanda_ui.py`` does the same for a plugins-folder deployment (Airflow keeps
the first plugin of a name, and that file steps aside when the entry point is installed).
Importing this module imports neither FastAPI nor ``producers``: Airflow loads plugins in
every component, and only the api-server serves the app (built on its first request).
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

#: The URL prefix of the app in the api-server (see ``ui.app.URL_PREFIX``).
URL_PREFIX = "/tutopanda"


class LazyApp:
    """An ASGI app that builds :func:`~airflow_provider_tutopanda.ui.app.create_app` on its
    first request."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_provider_tutopanda.ui.app import create_app

                    self._app = create_app()
        await self._app(scope, receive, send)


class TutopandaUIPlugin(AirflowPlugin):
    """Run gallery (DAG run tab), artefacts (task instance tab), runs and costs, catalogue."""

    name = "tutopanda_ui"
    # Airflow declares these as instance attributes of AirflowPlugin; set them as it does.
    fastapi_apps = [  # noqa: RUF012
        {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "tutopanda UI"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "Movie gallery",
            "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "tutopanda-gallery",
        },
        {
            "name": "Artefacts",
            "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}/tasks/{{TASK_ID}}/{{MAP_INDEX}}",
            "destination": "task_instance",
            "url_route": "tutopanda-artefacts",
        },
        {
            "name": "Movie runs and costs",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "tutopanda-runs",
        },
        {
            "name": "Model catalogue",
            "href": f"{URL_PREFIX}/catalogue",
            "destination": "nav",
            "category": "browse",
            "url_route": "tutopanda-catalogue",
        },
    ]
