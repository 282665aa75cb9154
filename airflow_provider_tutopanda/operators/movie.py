"""One job of the movie pipeline as an Airflow task: :class:`MovieJobOperator`.

The job (model, inputs, config) is built when the task runs, from the run's params and the
upstream tasks' records, by the pipeline's own step functions (``producers.pipeline.steps``),
exactly as the CLI builds it; then it runs as any :class:`ProducerOperator` job: reused when an
identical one was made, resumed after a retry, and deferred to the triggerer while the provider
works. The task returns a small record for the next tasks (texts, URIs, durations).

Parsing a DAG that uses it imports nothing from ``producers``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_tutopanda import movie_tasks
from airflow_provider_tutopanda.operators.producer import ProducerOperator, parse_model_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from producers.pipeline.steps import JobSpec


class MovieJobOperator(ProducerOperator):
    """The ``role`` job of the movie pipeline (one segment's, for per-segment roles).

    The model is the run's ``<role>_model`` param (default: the default options' model; the
    task's pool follows it, see :mod:`airflow_provider_tutopanda.policy`); the mode is the
    ``mode`` param; ``refresh`` (all) and ``refresh_jobs`` (job keys like ``image[2]`` or roles)
    make a job again instead of reusing it.

    Args:
        role: ``script``, ``image_prompt``, ``image``, ``narration``, ``music`` or ``video``.
        script: The script task's record (roles after the script).
        index: The segment (``image_prompt``, ``narration``, ``image``).
        prompt: The segment's ``image_prompt`` record (``image``; else taken from ``prompts``).
        image: The segment's ``image`` record (``video``).
        prompts: Every ``image_prompt`` record (``image``, ``video``).
        narrations: Every ``narration`` record (``music``, ``video``).

    Returns (XCom): ``script``: ``{"script", "topic", "uri", "estimated_cost_usd"}``;
    ``image_prompt``: ``{"index", "prompt"}``; ``image``: ``{"index", "uri", "kind"}``;
    ``narration``: ``{"index", "uri", "text", "seconds"}``; ``music``: ``{"uri", "seconds"}``;
    ``video``: ``{"index", "uri", "kind"}`` (the image itself when the video role is off).
    """

    template_fields: Sequence[str] = (
        *ProducerOperator.template_fields,
        "script",
        "index",
        "prompt",
        "image",
        "prompts",
        "narrations",
    )

    def __init__(
        self,
        *,
        role: str,
        script: Any = None,
        index: Any = None,
        prompt: Any = None,
        image: Any = None,
        prompts: Any = None,
        narrations: Any = None,
        **kwargs: Any,
    ) -> None:
        if role not in movie_tasks.ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(movie_tasks.ROLES)}")
        kwargs.setdefault("mode", "{{ params.mode }}")
        # the task shapes its record for the next tasks after collecting: back on a worker
        kwargs.setdefault("collect_in_trigger", False)
        kwargs.setdefault("job_key", role)
        super().__init__(model=movie_tasks.default_models()[role], role=role, **kwargs)
        self.script = script
        self.index = index
        self.prompt = prompt
        self.image = image
        self.prompts = prompts
        self.narrations = narrations

    # -- the job ------------------------------------------------------------------------------

    def _spec(self, context: Context) -> JobSpec | None:
        """This task's job, from the params and the upstream records; None: nothing to run."""
        from producers.pipeline import steps

        params: Mapping[str, Any] = context["params"]
        options = movie_tasks.options_from(params)
        topic = movie_tasks.topic_of(context)
        segments = int(params["segments"])
        role = self.role
        if role == "script":
            return steps.script_job(options, topic, segments)
        if role == "image_prompt":
            script = movie_tasks.script_of(self.script)
            return steps.image_prompt_job(options, topic, script, int(self.index))
        if role == "image":
            prompt = self.prompt if self.prompt is not None else _find(self.prompts, self.index)
            return steps.image_job(options, prompt["prompt"], int(prompt["index"]))
        if role == "narration":
            index = int(self.index)
            text = movie_tasks.script_of(self.script).segments[index].narration
            return steps.narration_job(options, text, index)
        if role == "music":
            seconds = steps.total_seconds(
                [float(n["seconds"]) for n in _by_index(self.narrations)],
                movie_tasks.PAUSE_SECONDS,
            )
            title = movie_tasks.script_of(self.script).title
            return steps.music_job(options, topic, title, seconds)
        # video: the segment's image set in motion, as long as its narration and pause
        if not options.video.enabled:
            return None
        index = int(self.image["index"])
        narration = _find(self.narrations, index)
        prompt = _find(self.prompts, index)["prompt"]
        seconds = float(narration["seconds"]) + movie_tasks.PAUSE_SECONDS
        return steps.video_job(options, prompt, self.image["uri"], seconds, index)

    def _use(self, spec: JobSpec, params: Mapping[str, Any]) -> None:
        """Make this task run ``spec``."""
        refresh_jobs = {str(k) for k in params.get("refresh_jobs") or ()}
        self.model = spec.model_id
        self.provider = parse_model_id(spec.model_id)[0]
        self.inputs = dict(spec.inputs)
        self.custom = dict(spec.custom)
        self.config = dict(spec.config)
        self.attachments = list(spec.attachments)
        self.produces = list(spec.produces)
        self.segment = spec.index
        self.job_key = spec.key
        self.refresh = bool(params.get("refresh")) or bool(
            {spec.key, spec.role} & refresh_jobs or spec.refresh
        )

    def execute(self, context: Context) -> Any:
        """Check the run (script: params, schemas, budget), build the job, run it (maybe
        deferring), shape the record."""
        params = context["params"]
        estimated = None
        if self.role == "script":
            estimated = movie_tasks.check_run(params, movie_tasks.topic_of(context))
        spec = self._spec(context)
        if spec is None:  # the video role is off: the image stays on screen
            return {"index": int(self.image["index"]), "uri": self.image["uri"], "kind": "image"}
        self._use(spec, params)
        records = super().execute(context)
        return self._shape(context, spec, records, estimated)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Back from the trigger: collect the job's artefacts and shape the record."""
        spec = self._spec(context)
        if spec is None:
            raise RuntimeError(f"{self.task_id} resumed from a trigger but has no job")
        self._use(spec, context["params"])
        records = super().execute_complete(context, event)
        return self._shape(context, spec, records, None)

    def _shape(
        self,
        context: Context,
        spec: JobSpec,
        records: list[dict[str, Any]],
        estimated: float | None,
    ) -> dict[str, Any]:
        from producers.pipeline import steps

        values = {r["id"]: r.get("value") for r in records}
        first = records[0]["uri"] if records else ""
        if spec.role == "script":
            segments = int(context["params"]["segments"])
            script = steps.parse_script(values.get("script"), segments)
            return {
                "script": script.model_dump(mode="json"),
                "topic": movie_tasks.topic_of(context),
                "uri": first,
                "estimated_cost_usd": estimated,
            }
        if spec.role == "image_prompt":
            return {"index": spec.index, "prompt": steps.text_of(values, spec.key)}
        if spec.role == "narration":
            text = spec.inputs.get("prompt", "")
            seconds = movie_tasks.duration(first)
            return {"index": spec.index, "uri": first, "text": text, "seconds": seconds}
        if spec.role == "music":
            return {"uri": first, "seconds": movie_tasks.duration(first)}
        kind = "video" if spec.role == "video" else "image"
        return {"index": spec.index, "uri": first, "kind": kind}


def _by_index(records: Any) -> list[dict[str, Any]]:
    return sorted((dict(r) for r in records or ()), key=lambda r: int(r["index"]))


def _find(records: Any, index: Any) -> dict[str, Any]:
    for record in records or ():
        if int(record["index"]) == int(index):
            return dict(record)
    raise KeyError(f"no upstream record for segment {index}")
