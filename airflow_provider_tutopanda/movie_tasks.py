"""The task callables of the ``tutopanda_movie`` DAG: the CLI's movie flow, one task per job.

Each provider-calling callable builds its :class:`~producers.pipeline.steps.JobSpec` with the
pipeline's own step functions and runs it through :func:`run_spec`, i.e. through
:meth:`ProducerOperator.execute <airflow_provider_tutopanda.operators.ProducerOperator.execute>`
(reuse, resume from the task state store, provider retry policy), inline.

Parsing a DAG file imports this module, so nothing from ``producers`` (nor any provider
client) is imported at its top level; every callable imports what it needs when it runs.
Callables return small JSON records (URIs, ids, texts, durations), never blobs.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producers.pipeline.options import ProducerOptions
    from producers.pipeline.steps import JobSpec, Script
    from producers.sdk.artefacts import Artefact

#: The roles whose model is a DAG param, and the param naming each.
MODEL_PARAMS = {
    "script": "script_model",
    "image": "image_model",
    "narration": "narration_model",
    "music": "music_model",
}
#: Seconds of silence after each narration (as in the CLI's flow).
PAUSE_SECONDS = 0.5


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


def options_from(params: dict[str, Any]) -> ProducerOptions:
    """The default producer options with each role's model from the DAG params."""
    from producers.pipeline.options import load_options

    overrides = [
        f"{role}.model={params[name]}" for role, name in MODEL_PARAMS.items() if params.get(name)
    ]
    return load_options(overrides=overrides)


def _params() -> dict[str, Any]:
    from airflow.sdk import get_current_context

    return dict(get_current_context()["params"])


def run_spec(spec: JobSpec, params: dict[str, Any]) -> list[Artefact]:
    """Run one job as :class:`ProducerOperator` does (inline) in the current task."""
    from airflow.sdk import get_current_context

    from airflow_provider_tutopanda.operators.producer import ProducerOperator
    from producers.sdk.artefacts import Artefact

    context = get_current_context()
    operator = ProducerOperator(
        task_id=context["ti"].task_id,
        model=spec.model_id,
        inputs=spec.inputs,
        custom=spec.custom,
        config=spec.config,
        attachments=spec.attachments,
        produces=spec.produces,
        mode=params["mode"],
        store=store_uri(),
        refresh=bool(params.get("refresh")) or spec.refresh,
        deferrable=False,
    )
    records = operator.execute(context)
    return [Artefact.model_validate(record) for record in records]


def store_uri() -> str:
    """``$TUTOPANDA_STORE``, else ``tutopanda-store`` under ``$AIRFLOW_HOME``."""
    from airflow_provider_tutopanda.operators.producer import default_store

    return default_store()


def _script(record: dict[str, Any]) -> Script:
    from producers.pipeline.steps import Script

    return Script.model_validate(record)


def _value(artefacts: list[Artefact], artefact_id: str) -> Any:
    for artefact in artefacts:
        if artefact.id == artefact_id:
            return artefact.value
    raise KeyError(f"no artefact {artefact_id!r}; have {[a.id for a in artefacts]}")


def _duration(uri: str) -> float:
    from airflow_provider_tutopanda.operators.producer import _run
    from producers.sdk.errors import ErrorCode, ProviderError
    from producers.sdk.media import probe
    from producers.storage import open_store

    path = _run(open_store(store_uri()).local_path(uri))
    seconds = probe(path).duration_seconds
    if not seconds:
        raise ProviderError(
            ErrorCode.MALFORMED_OUTPUT, f"{uri} has no measurable duration", retryable=False
        )
    return seconds


def check_budget(params: dict[str, Any]) -> float:
    """Price the whole movie from the model declarations (no provider call); fail the task
    at once, before anything is paid, when a ``budget`` param is set and the estimate is over.

    Returns the estimate in US dollars.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_tutopanda.operators.producer import _run
    from producers.pipeline.cost import estimate
    from producers.registry import default_registry
    from producers.sdk.definition import Prepared
    from producers.sdk.handler import HandlerDeps
    from producers.storage.memory import MemoryStore

    registry = default_registry()
    deps = HandlerDeps(store=MemoryStore())

    async def prepare(spec: JobSpec) -> Prepared:
        # Pricing needs the mapped payload only: the mock handler prepares the same payload
        # with no key and no network.
        request = spec.request(mode="mock")
        return await registry.resolve(request.descriptor, "mock", deps).prepare(request)

    cost = _run(estimate(options_from(params), params["topic"], int(params["segments"]), prepare))
    budget = params.get("budget")
    if budget is not None and cost.total > float(budget):
        raise AirflowFailException(
            f"the estimated cost ${cost.total:,.4f} is over the budget ${float(budget):,.4f}; "
            f"nothing was run\n{cost.describe()}"
        )
    return cost.total


def script() -> dict[str, Any]:
    """The Script job: ``{"script": {title, segments}, "uri", "estimated_cost_usd"}``."""
    from producers.pipeline.steps import parse_script, script_job

    params = _params()
    estimated = check_budget(params)
    segments = int(params["segments"])
    spec = script_job(options_from(params), params["topic"], segments)
    artefacts = run_spec(spec, params)
    parsed = parse_script(_value(artefacts, "script"), segments)
    return {
        "script": parsed.model_dump(mode="json"),
        "uri": artefacts[0].uri,
        "estimated_cost_usd": estimated,
    }


def segment_indexes() -> list[int]:
    """``[0, ..., segments - 1]``: what the per-segment tasks map over (the script has exactly
    that many segments, or the script task fails)."""
    return list(range(int(_params()["segments"])))


def image_prompt(script: dict[str, Any], index: int) -> dict[str, Any]:
    """The ImagePrompt job of one segment: ``{"index", "prompt"}``."""
    from producers.pipeline.steps import image_prompt_job, text_of

    params = _params()
    spec = image_prompt_job(options_from(params), params["topic"], _script(script), index)
    artefacts = run_spec(spec, params)
    prompt = text_of({a.id: a.value for a in artefacts}, f"image_prompt[{index}]")
    return {"index": index, "prompt": prompt}


def image(prompt: dict[str, Any]) -> dict[str, Any]:
    """The Image job of one segment: ``{"index", "uri", "kind"}``."""
    from producers.pipeline.steps import image_job

    params = _params()
    index = int(prompt["index"])
    artefacts = run_spec(image_job(options_from(params), prompt["prompt"], index), params)
    return {"index": index, "uri": artefacts[0].uri, "kind": "image"}


def narration(script: dict[str, Any], index: int) -> dict[str, Any]:
    """The Narration job of one segment: ``{"index", "uri", "text"}``."""
    from producers.pipeline.steps import narration_job

    params = _params()
    text = _script(script).segments[index].narration
    artefacts = run_spec(narration_job(options_from(params), text, index), params)
    return {"index": index, "uri": artefacts[0].uri, "text": text}


def music(script: dict[str, Any], narrations: list[dict[str, Any]]) -> dict[str, Any]:
    """The Music job, as long as the narrations (probed) plus pauses: ``{"uri", "seconds"}``."""
    from producers.pipeline.steps import music_job, total_seconds

    params = _params()
    durations = [_duration(n["uri"]) for n in narrations]
    seconds = total_seconds(durations, PAUSE_SECONDS)
    title = _script(script).title
    artefacts = run_spec(music_job(options_from(params), params["topic"], title, seconds), params)
    return {"uri": artefacts[0].uri, "seconds": seconds}


def assemble(
    script: dict[str, Any],
    images: list[dict[str, Any]],
    narrations: list[dict[str, Any]],
    music: dict[str, Any] | None,
) -> dict[str, Any]:
    """Build the timeline from the probed narrations and render the MP4.

    Returns ``{"movie": uri, "timeline": uri, "duration": seconds}``.
    """
    from airflow_provider_tutopanda.operators.producer import _run
    from producers.pipeline.assembly import assemble as render
    from producers.pipeline.assembly import store_timeline
    from producers.pipeline.timeline import NarrationClip, Visual, build_timeline
    from producers.storage import open_store

    visuals = [
        Visual(uri=i["uri"], kind=i.get("kind", "image"))
        for i in sorted(images, key=lambda i: i["index"])
    ]
    clips = [
        NarrationClip(uri=n["uri"], duration=_duration(n["uri"]), text=n.get("text", ""))
        for n in sorted(narrations, key=lambda n: n["index"])
    ]
    timeline = build_timeline(
        _script(script).title,
        visuals,
        clips,
        music_uri=music["uri"] if music else None,
        pause=PAUSE_SECONDS,
    )
    store = open_store(store_uri())

    async def both() -> tuple[str, str]:
        stored_timeline = await store_timeline(timeline, store)
        movie = await render(timeline, store)
        return stored_timeline.uri, movie.uri

    timeline_uri, movie_uri = _run(both())
    outputs = {"movie": movie_uri, "timeline": timeline_uri, "duration": timeline.duration}
    _run(_write_manifest(store, outputs))
    return outputs


def manifest_run_id(dag_run_id: str) -> str:
    """The store's run id for an Airflow run (store names allow ``[A-Za-z0-9._-]``)."""
    return "airflow-" + re.sub(r"[^A-Za-z0-9._-]", "-", dag_run_id)


async def _write_manifest(store: Any, outputs: dict[str, Any]) -> None:
    from airflow.sdk import get_current_context

    from producers.storage.manifest import RunManifest

    context = get_current_context()
    manifest = RunManifest(
        run_id=manifest_run_id(str(context["run_id"])),
        client="airflow",
        command=str(context["dag"].dag_id),
        parameters=dict(context["params"]),
        outputs=outputs,
    )
    await manifest.save(store)
