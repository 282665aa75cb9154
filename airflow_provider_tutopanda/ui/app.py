"""The UI's FastAPI app: pages, media and the JSON behind them (see ``__init__``).

Every route answers in this order, and reads nothing before its check passes: no user -> 401;
a DAG that is not a tutopanda DAG -> 404; a DAG the user may not read -> 403; a run the DAG
does not have -> 404; a job or artefact the run did not make -> 404. Artefacts are addressed by
run, job key and artefact id, and served only if the record names a content-addressed blob of
the configured store, so no client string ever becomes a path.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from airflow_provider_tutopanda.ui import charts
from airflow_provider_tutopanda.ui.access import Access, AirflowAccess, forbidden
from airflow_provider_tutopanda.ui.catalogue import catalogue, kinds
from airflow_provider_tutopanda.ui.gallery import (
    find_artefact,
    job_key,
    job_view,
    review_view,
    run_view,
    scrub,
    valid_job_key,
)
from airflow_provider_tutopanda.ui.media import blob_response, blob_uri_in
from airflow_provider_tutopanda.ui.runs import AirflowRuns, RunInfo, RunSource
from producers.storage.base import ArtefactStore

#: Where the api-server mounts the app.
URL_PREFIX = "/tutopanda"
#: The DAGs whose runs the UI shows (``$TUTOPANDA_UI_DAGS``, comma-separated, to change).
DEFAULT_DAGS = ("tutopanda_movie", "tutopanda_daily_movie")
#: How many recent runs the overview, the cost chart and the latency medians look at.
RECENT_RUNS = 30
_HERE = Path(__file__).parent


def _ui_dags() -> tuple[str, ...]:
    configured = os.environ.get("TUTOPANDA_UI_DAGS", "")
    names = tuple(n.strip() for n in configured.split(",") if n.strip())
    return names or DEFAULT_DAGS


def _default_store() -> ArtefactStore:
    from airflow_provider_tutopanda.store import open_airflow_store

    return open_airflow_store()


def replayable(params: Any) -> dict[str, Any]:
    """What Regenerate sends back as the new run's conf: only the params a run may set
    (``producers.pipeline.run_params``), secrets masked; never a hidden option of the old run."""
    from producers.pipeline.run_params import allowed_params

    return dict(scrub(allowed_params(params if isinstance(params, dict) else {})))


def manifest_run_id(dag_run_id: str) -> str:
    """The store's run id of an Airflow run (as ``movie_tasks.manifest_run_id``)."""
    from airflow_provider_tutopanda.movie_tasks import manifest_run_id as of

    return of(dag_run_id)


class UI:
    """The app's collaborators: who may see what, where runs and artefacts are read."""

    def __init__(
        self,
        *,
        access: Access | None = None,
        runs: RunSource | None = None,
        store: Callable[[], ArtefactStore] | None = None,
        dags: tuple[str, ...] | None = None,
    ) -> None:
        self.access = access or AirflowAccess()
        self.runs = runs or AirflowRuns()
        self._store_factory = store or _default_store
        self._store: ArtefactStore | None = None
        self.dags = dags or _ui_dags()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    @property
    def store(self) -> ArtefactStore:
        """The configured artefact store (opened on first use)."""
        if self._store is None:
            self._store = self._store_factory()
        return self._store

    # -- checks ---------------------------------------------------------------------------

    async def user_for(self, request: Request) -> Any:
        """The signed-in user (401 otherwise)."""
        return await self.access.user(request)

    async def readable_run(self, request: Request, dag_id: str, run_id: str) -> tuple[Any, RunInfo]:
        """The user and the run, after every check (401, 404, 403, 404)."""
        user = await self.user_for(request)
        if dag_id not in self.dags:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{dag_id} is not a tutopanda DAG")
        if not self.access.can_read(user, dag_id):
            raise forbidden()
        run = await run_in_threadpool(self.runs.get_run, dag_id, run_id)
        if run is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{dag_id} has no run {run_id}")
        return user, run

    async def manifest_of(self, run: RunInfo) -> dict[str, Any] | None:
        """The run's manifest, if it wrote one and it is this DAG's."""
        try:
            manifest = await self.store.read_manifest(manifest_run_id(run.run_id))
        except ValueError:
            return None
        if manifest is None or manifest.get("command") != run.dag_id:
            return None
        return manifest

    async def records_of(
        self, run: RunInfo, manifest: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """The run's job records: the manifest's, else its tasks' XComs."""
        if manifest is not None:
            return [r for r in manifest.get("jobs") or [] if isinstance(r, dict)]
        return await run_in_threadpool(self.runs.job_records, run.dag_id, run.run_id)

    # -- rendering ------------------------------------------------------------------------

    def page(
        self, request: Request, template: str, *, code: int = 200, **values: Any
    ) -> HTMLResponse:
        """A rendered page, with the app's and Airflow's base URLs."""
        base = str(request.scope.get("root_path", "")).rstrip("/")
        airflow_base = base[: -len(URL_PREFIX)] if base.endswith(URL_PREFIX) else ""
        html = self.templates.get_template(template).render(
            base=base, airflow_base=airflow_base, **values
        )
        return HTMLResponse(html, status_code=code, headers={"Cache-Control": "no-store"})


def create_app(ui: UI | None = None) -> FastAPI:
    """The FastAPI app the plugin mounts at :data:`URL_PREFIX`."""
    ui = ui or UI()
    app = FastAPI(title="tutopanda", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ui = ui
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    @app.exception_handler(HTTPException)
    async def refused(request: Request, error: HTTPException) -> Response:
        detail = str(error.detail)
        if "text/html" in request.headers.get("accept", ""):
            login = ui.access.login_url() if error.status_code == 401 else None
            return ui.page(
                request, "error.html", code=error.status_code, detail=detail, login=login
            )
        return JSONResponse({"detail": detail}, status_code=error.status_code)

    @app.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> Response:
        user = await ui.user_for(request)
        readable = [d for d in ui.dags if ui.access.can_read(user, d)]
        runs = await run_in_threadpool(ui.runs.recent_runs, readable, RECENT_RUNS)
        rows = []
        for run in runs:
            manifest = await ui.manifest_of(run)
            view = run_view(manifest, []) if manifest else None
            rows.append({"run": run, "cost": view.cost if view else None})
        return ui.page(request, "overview.html", rows=rows, **_cost_charts(rows))

    @app.get("/catalogue", response_class=HTMLResponse)
    async def catalogue_page(request: Request, kind: str | None = None) -> Response:
        user = await ui.user_for(request)
        if kind and kind not in kinds():
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no model kind {kind!r}")
        readable = [d for d in ui.dags if ui.access.can_read(user, d)]
        runs = await run_in_threadpool(ui.runs.recent_runs, readable, RECENT_RUNS)
        manifests = [m for m in [await ui.manifest_of(r) for r in runs] if m]
        rows = await run_in_threadpool(catalogue, kind or None, manifests)
        return ui.page(request, "catalogue.html", rows=rows, kinds=kinds(), kind=kind or "")

    @app.get("/dags/{dag_id}/runs/{run_id}", response_class=HTMLResponse)
    async def gallery(request: Request, dag_id: str, run_id: str) -> Response:
        user, run = await ui.readable_run(request, dag_id, run_id)
        manifest = await ui.manifest_of(run)
        records = await ui.records_of(run, manifest)
        outputs = None
        if manifest is None:
            outputs = await run_in_threadpool(ui.runs.return_value, dag_id, run_id, "assemble")
        view = run_view(manifest, records, outputs if isinstance(outputs, dict) else None)
        review = review_view(
            await run_in_threadpool(ui.runs.return_value, dag_id, run_id, "review", "review")
        )
        timeline_svg = await _timeline(ui, view.outputs, records)
        conf = replayable(view.parameters or run.conf)
        return ui.page(
            request,
            "gallery.html",
            run=run,
            view=view,
            review=review,
            timeline_svg=timeline_svg,
            can_trigger=ui.access.can_trigger(user, dag_id),
            conf_json=json.dumps(conf),
        )

    @app.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/{map_index}")
    async def task_tab(
        request: Request, dag_id: str, run_id: str, task_id: str, map_index: str
    ) -> Response:
        user, run = await ui.readable_run(request, dag_id, run_id)
        index = int(map_index) if map_index.lstrip("-").isdigit() else -1
        manifest = await ui.manifest_of(run)
        records = await ui.records_of(run, manifest)
        mine = [
            r
            for r in records
            if r.get("role") == task_id
            and (r.get("segment") == index or (index < 0 and r.get("segment") is None))
        ]
        return ui.page(
            request,
            "task.html",
            run=run,
            task_id=task_id,
            map_index=index,
            jobs=[job_view(r) for r in mine],
            can_trigger=ui.access.can_trigger(user, dag_id),
            conf_json=json.dumps(replayable((manifest or {}).get("parameters") or run.conf)),
        )

    @app.api_route(
        "/dags/{dag_id}/runs/{run_id}/media/{key}/{artefact_id}", methods=["GET", "HEAD"]
    )
    async def media(
        request: Request, dag_id: str, run_id: str, key: str, artefact_id: str
    ) -> Response:
        _, run = await ui.readable_run(request, dag_id, run_id)
        if not valid_job_key(key):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {key!r}")
        manifest = await ui.manifest_of(run)
        records = await ui.records_of(run, manifest)
        artefact = find_artefact(manifest, records, key, artefact_id)
        if artefact is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {key} made no {artefact_id!r}")
        return await _serve(ui, request, artefact.get("uri"))

    @app.api_route("/dags/{dag_id}/runs/{run_id}/movie", methods=["GET", "HEAD"])
    async def movie(request: Request, dag_id: str, run_id: str) -> Response:
        _, run = await ui.readable_run(request, dag_id, run_id)
        manifest = await ui.manifest_of(run)
        outputs = (manifest or {}).get("outputs")
        if outputs is None:
            outputs = await run_in_threadpool(ui.runs.return_value, dag_id, run_id, "assemble")
        uri = outputs.get("movie") if isinstance(outputs, dict) else None
        if uri is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "this run has no movie (yet)")
        return await _serve(ui, request, uri)

    @app.get("/api/dags/{dag_id}/runs/{run_id}")
    async def run_json(request: Request, dag_id: str, run_id: str) -> Response:
        _, run = await ui.readable_run(request, dag_id, run_id)
        manifest = await ui.manifest_of(run)
        view = run_view(manifest, await ui.records_of(run, manifest))
        return JSONResponse(
            {
                "dag_id": dag_id,
                "run_id": run_id,
                "state": run.state,
                "source": view.source,
                "cost_usd": view.cost,
                "estimated_cost_usd": view.estimated_cost,
                "jobs": [
                    {
                        "key": j.key,
                        "status": j.status,
                        "reused": j.reused,
                        "model": j.model,
                        "artefacts": [a.artefact_id for a in j.artefacts],
                        "error": j.failure.code if j.failure else None,
                    }
                    for j in view.jobs
                ],
            }
        )

    return app


async def _serve(ui: UI, request: Request, uri: Any) -> Response:
    blob = blob_uri_in(ui.store, uri)
    if blob is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this artefact is not a stored blob")
    try:
        return await blob_response(
            ui.store, blob, request.headers.get("range"), head=request.method == "HEAD"
        )
    except FileNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the blob is not in the store") from None


async def _timeline(ui: UI, outputs: dict[str, Any], records: list[dict[str, Any]]) -> str | None:
    blob = blob_uri_in(ui.store, outputs.get("timeline"))
    if blob is None:
        return None
    try:
        timeline = json.loads(await ui.store.read_bytes(blob))
    except (FileNotFoundError, ValueError):
        return None
    by_uri = {
        a.get("uri"): job_key(r) for r in records for a in r.get("artefacts") or [] if a.get("uri")
    }
    return charts.timeline_svg(timeline, by_uri.get)


def _cost_charts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    priced = [r for r in reversed(rows) if r["cost"] is not None]
    per_run = [
        charts.Bar(label=_day(r["run"].start_date, "%m-%d %H:%M"), value=r["cost"]) for r in priced
    ]
    days: dict[str, float] = defaultdict(float)
    for r in priced:
        days[_day(r["run"].start_date, "%Y-%m-%d")] += r["cost"]
    per_day = [charts.Bar(label=d, value=v) for d, v in sorted(days.items())]
    return {
        "runs_chart": charts.bar_chart_svg("Cost per run (USD)", per_run),
        "days_chart": charts.bar_chart_svg("Cost per day (USD)", per_day),
    }


def _day(when: datetime | None, fmt: str) -> str:
    return (when or datetime.now(UTC)).astimezone(UTC).strftime(fmt)
