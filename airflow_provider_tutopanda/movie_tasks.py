"""What the movie DAGs share at run time: options and topics from the params, the budget
check, the segment list, assembly and the run manifest.

The provider jobs themselves are :class:`~airflow_provider_tutopanda.operators.movie.MovieJobOperator`
tasks (the pipeline's own step functions build each job). Parsing a DAG file imports this
module, so nothing from ``producers`` (nor any provider client) is imported at its top level;
every function imports what it needs when it runs. Tasks return small JSON records (URIs,
ids, texts, durations), never blobs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from producers.pipeline.options import ProducerOptions
    from producers.pipeline.steps import Script
    from producers.storage.manifest import RunManifest

#: The roles whose model is a DAG param (``<role>_model``; the pool policy reads the same).
ROLES = ("script", "image_prompt", "image", "narration", "music", "video")
MODEL_PARAMS = {role: f"{role}_model" for role in ROLES}
#: The topics file of the scheduled DAG: ``$TUTOPANDA_TOPICS``, else ``topics.txt`` beside it.
TOPICS_ENV = "TUTOPANDA_TOPICS"
#: The deployment's producer options files (``[tutopanda] options_file`` in airflow.cfg).
OPTIONS_ENV = "TUTOPANDA_OPTIONS"


# -- parse time: no producers import ------------------------------------------------------------


@cache
def default_models() -> dict[str, str]:
    """``{role: provider:model}`` of the default options, read without importing ``producers``."""
    import yaml

    spec = importlib.util.find_spec("producers")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the producers package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "pipeline" / "default_options.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {role: str(settings["model"]) for role, settings in data.items()}


def provider_of(role: str) -> str:
    """The provider of a role's default model (its pool is chosen at parse time)."""
    from airflow_provider_tutopanda.operators.producer import parse_model_id

    return parse_model_id(default_models()[role])[0]


# -- run time -----------------------------------------------------------------------------------


def options_files() -> list[str]:
    """The deployment's options files: ``$TUTOPANDA_OPTIONS``, else ``[tutopanda] options_file``
    (comma-separated paths, applied in order over the default options)."""
    import os

    from airflow_provider_tutopanda.store import setting

    configured = os.environ.get(OPTIONS_ENV) or setting("options_file") or ""
    return [path.strip() for path in configured.split(",") if path.strip()]


def refuse(error: Exception) -> NoReturn:
    """Fail the task at once (no retry) with ``error``'s message: a refused run param or
    deployment option never gets better by retrying."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(str(getattr(error, "reason", None) or error)) from None


def options_from(params: Mapping[str, Any]) -> ProducerOptions:
    """The run's producer options: the defaults, the deployment's options files, then what
    the run's params may set (checked: see :mod:`producers.pipeline.run_params`).

    A refused param fails the task at once with a message naming it.
    """
    from producers.pipeline.options import load_options
    from producers.pipeline.run_params import check_role_models, check_run_params, run_overrides
    from producers.registry import default_registry
    from producers.sdk.errors import InvalidInputError

    try:
        check_run_params(params)
        options = load_options(options_files(), run_overrides(params))
        check_role_models(options, default_registry().models())
    except InvalidInputError as error:
        refuse(error)
    return options


def topics_file() -> Path:
    """``$TUTOPANDA_TOPICS``, else ``[tutopanda] topics_file``, else ``topics.txt`` in the DAGs
    folder: the deployment's choice only (a run's params never name a file)."""
    import os

    from airflow_provider_tutopanda.store import setting

    explicit = os.environ.get(TOPICS_ENV) or setting("topics_file")
    if explicit:
        return Path(str(explicit)).expanduser()
    from airflow.sdk import conf

    return Path(conf.get("core", "dags_folder")).expanduser() / "topics.txt"


def topic_of(context: Mapping[str, Any]) -> str:
    """The run's topic: the ``topic`` param, else the topics file's line for the run's date."""
    params = context["params"]
    topic = str(params.get("topic") or "").strip()
    if topic:
        return topic
    when = context.get("logical_date") or context.get("data_interval_start")
    if when is None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("no topic: set the topic param (this run has no date)")
    from producers.pipeline.topics import topic_for_date

    return topic_for_date(topics_file(), when.strftime("%Y-%m-%d"))


def store_uri() -> str:
    """``$TUTOPANDA_STORE``, else ``tutopanda-store`` under ``$AIRFLOW_HOME``."""
    from airflow_provider_tutopanda.store import default_store

    return default_store()


def script_of(record: Mapping[str, Any]) -> Script:
    """The script from the script task's record (or the bare script)."""
    from producers.pipeline.steps import Script

    return Script.model_validate(record.get("script", record))


def duration(uri: str) -> float:
    """The probed length of a stored audio or video, in seconds."""
    from airflow_provider_tutopanda.operators.producer import _run
    from airflow_provider_tutopanda.store import open_airflow_store
    from producers.sdk.errors import ErrorCode, ProviderError
    from producers.sdk.media import probe

    path = _run(open_airflow_store(store_uri()).local_path(uri))
    seconds = probe(path).duration_seconds
    if not seconds:
        raise ProviderError(
            ErrorCode.MALFORMED_OUTPUT, f"{uri} has no measurable duration", retryable=False
        )
    return seconds


def check_run(params: Mapping[str, Any], topic: str) -> float:
    """Before any job: check the run's params, then prepare every job of the movie (mapped
    and validated against its model's schema, no provider call) and price it. Fail the task
    at once, with nothing paid, when a param is refused (the message names it), a role's
    inputs do not fit its model, or a ``budget`` param is set and the estimate is over or a
    job has no price (unless the ``allow_unpriced`` param is on).

    Returns the estimate in US dollars.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_tutopanda.operators.producer import ENVIRONMENT, _run
    from producers.pipeline.cost import BudgetExceeded, check_budget, estimate, mock_prepare
    from producers.registry import default_registry
    from producers.sdk.errors import InvalidInputError

    options = options_from(params)
    prepare = mock_prepare(default_registry(), environment=ENVIRONMENT)
    try:
        cost = _run(estimate(options, topic, int(params["segments"]), prepare))
    except InvalidInputError as error:
        refuse(
            InvalidInputError(
                f"the run is refused before any job: {error.reason} (check the run's param "
                "options and the deployment's options files)"
            )
        )
    budget = params.get("budget")
    try:
        check_budget(
            cost,
            None if budget is None else float(budget),
            allow_unpriced=bool(params.get("allow_unpriced")),
            allow_hint="the allow_unpriced param",
        )
    except BudgetExceeded as error:
        raise AirflowFailException(str(error)) from None
    return cost.total


def segment_indexes() -> list[int]:
    """``[0, ..., segments - 1]``: what the per-segment tasks map over (the script has exactly
    that many segments, or the script task fails)."""
    from airflow.sdk import get_current_context

    return list(range(int(get_current_context()["params"]["segments"])))


def assemble(
    script: dict[str, Any],
    visuals: list[dict[str, Any]],
    narrations: list[dict[str, Any]],
    music: dict[str, Any] | None,
) -> dict[str, Any]:
    """Build the timeline from the probed narrations and render the MP4; write the run's
    manifest (parameters, every job's record from XCom ``tutopanda_job``, the outputs); publish
    the movie's human layout (see :func:`publish_location`) and record it in the manifest.

    ``visuals`` are the records of the ``video`` tasks (a clip, or the image itself when the
    video role is off). Returns ``{"movie": uri, "timeline": uri, "duration": seconds,
    "published": {"dir": ..., "movie": ...}}`` (the published movie: a path or ``s3://``).
    """
    from airflow.sdk import get_current_context

    from airflow_provider_tutopanda.operators.producer import _run
    from airflow_provider_tutopanda.store import open_airflow_destination, open_airflow_store
    from producers.pipeline import steps
    from producers.pipeline.assembly import assemble as render
    from producers.pipeline.assembly import store_timeline
    from producers.pipeline.publish import publish_movie
    from producers.pipeline.timeline import NarrationClip, Visual, build_timeline

    shown = [
        Visual(uri=v["uri"], kind=v.get("kind", "image"))
        for v in sorted(visuals, key=lambda v: v["index"])
    ]
    clips = [
        # the narration task probed its length already (its record's "seconds")
        NarrationClip(uri=n["uri"], duration=float(n["seconds"]), text=n.get("text", ""))
        for n in sorted(narrations, key=lambda n: n["index"])
    ]
    timeline = build_timeline(
        script_of(script).title,
        shown,
        clips,
        music_uri=music["uri"] if music else None,
        pause=steps.PAUSE_SECONDS,
    )
    context = get_current_context()
    store = open_airflow_store(store_uri())
    destination = open_airflow_destination(publish_location(context, store.root_uri))

    async def everything() -> dict[str, Any]:
        stored_timeline = await store_timeline(timeline, store)
        movie = await render(timeline, store)
        outputs = {"movie": movie.uri, "timeline": stored_timeline.uri}
        manifest = _manifest(context, {**outputs, "duration": timeline.duration})
        await manifest.save(store)
        published = await publish_movie(
            destination,
            store,
            manifest,
            script=script_of(script),
            prompts=_prompts(context, len(shown)),
            timeline=timeline,
            movie_uri=movie.uri,
        )
        return {**outputs, "published": {"dir": published.dir, "movie": published.movie}}

    return {**_run(everything()), "duration": timeline.duration}


def publish_location(context: Mapping[str, Any], store_root: str) -> str:
    """Where this run publishes: ``[tutopanda] publish_uri`` rendered with the run's context
    (``ds``, ``run_id``, ``logical_date``, ``params``... and ``dag_id``) one path segment at a time (a value such as a run id ``../../x`` stays one folder below
    the template's prefix: see :func:`producers.pipeline.publish.render_location`), else
    ``published/<store run id>`` under the store.

    A template that does not render fails the task at once.
    """
    from airflow_provider_tutopanda.store import publish_template
    from producers.pipeline.publish import render_location

    template = publish_template()
    run_id = manifest_run_id(str(context["run_id"]))
    if template is None:
        return f"{store_root.rstrip('/')}/published/{run_id}"
    task = context["task"]
    # The run's context, and ``dag_id`` (Airflow 3's context has only the ``dag`` itself).
    variables: Any = {"dag_id": context["dag"].dag_id, **context}
    try:
        return render_location(template, lambda part: task.render_template(part, variables))
    except Exception as error:  # a boundary: Jinja's errors, undefined names, our refusal
        refuse(ValueError(f"[tutopanda] publish_uri {template!r} does not render: {error}"))


def _prompts(context: Mapping[str, Any], count: int) -> list[str | None]:
    """Each segment's image prompt as approved (the ``review`` task's), else as made."""
    ti = context["ti"]
    records: Any = None
    if "review" in context["dag"].task_ids:
        records = ti.xcom_pull(task_ids="review", key="prompts")
    if not records and "image_prompt" in context["dag"].task_ids:
        records = ti.xcom_pull(task_ids="image_prompt")
    prompts: list[str | None] = [None] * count
    for record in records or []:
        if isinstance(record, Mapping) and isinstance(record.get("prompt"), str):
            index = record.get("index")
            if isinstance(index, int) and 0 <= index < count:
                prompts[index] = record["prompt"]
    return prompts


def manifest_run_id(dag_run_id: str) -> str:
    """The store's run id for an Airflow run: ``airflow-`` and the run id, escaped one-to-one
    (two Airflow runs never write one manifest; see ``producers.storage.layout.run_id_for``)."""
    from producers.storage.layout import run_id_for

    return run_id_for(dag_run_id, prefix="airflow")


def _manifest(context: Mapping[str, Any], outputs: dict[str, Any]) -> RunManifest:
    """The run's manifest: its params, every job's record (XCom ``tutopanda_job``), outputs."""
    from airflow_provider_tutopanda import JOB_XCOM_KEY
    from producers.pipeline.run_params import allowed_params
    from producers.storage.manifest import JobRecord, RunManifest

    job_tasks = [t for t in ROLES if t in context["dag"].task_ids]
    pulled = context["ti"].xcom_pull(task_ids=job_tasks, key=JOB_XCOM_KEY) or []
    jobs = [JobRecord.model_validate(record) for record in pulled if isinstance(record, dict)]
    jobs.sort(key=lambda j: (ROLES.index(j.role) if j.role in ROLES else 99, j.segment or 0))
    return RunManifest(
        run_id=manifest_run_id(str(context["run_id"])),
        client="airflow",
        command=str(context["dag"].dag_id),
        parameters={**allowed_params(context["params"]), "topic": topic_of(context)},
        outputs=outputs,
        jobs=jobs,
    )
