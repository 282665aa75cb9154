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
from airflow_provider_tutopanda.operators.producer import ProducerOperator, TaskJob

if TYPE_CHECKING:
    from airflow.sdk import Context

    from producers.pipeline.steps import JobSpec
    from producers.sdk.errors import ProviderError


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
        #: The run's estimated cost (the script task checks the run before its job).
        self._estimated: float | None = None

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
                steps.PAUSE_SECONDS,
            )
            title = movie_tasks.script_of(self.script).title
            return steps.music_job(options, topic, title, seconds)
        # video: the segment's image set in motion, as long as its narration and pause
        if not options.video.enabled:
            return None
        index = int(self.image["index"])
        narration = _find(self.narrations, index)
        prompt = _find(self.prompts, index)["prompt"]
        seconds = float(narration["seconds"]) + steps.PAUSE_SECONDS
        return steps.video_job(options, prompt, self.image["uri"], seconds, index)

    # -- which job, what result ----------------------------------------------------------------

    def task_job(self, context: Context) -> TaskJob | None:
        """This task's job (the script's also checks the run first: params, schemas, budget);
        None when the video role is off (the image stays on screen)."""

        params: Mapping[str, Any] = context["params"]
        if self.role == "script":
            self._estimated = movie_tasks.check_run(params, movie_tasks.topic_of(context))
        spec = self._spec(context)
        if spec is None:
            return None
        try:
            spec = spec.moved_to(self.passed_over(context))
        except ValueError as error:  # the run's fallbacks changed under a kept record
            self.log.warning("tutopanda: %s; starting again from the role's model", error)
        return self._task_job_of(context, spec)

    def _task_job_of(self, context: Context, spec: JobSpec) -> TaskJob:
        from airflow_provider_tutopanda.operators.producer import ENVIRONMENT, mode_of

        params: Mapping[str, Any] = context["params"]
        request = spec.request(
            mode=mode_of(self.mode), run_id=context.get("run_id"), environment=ENVIRONMENT
        )
        ti = context.get("ti")
        request = request.model_copy(update={"attempt": int(getattr(ti, "try_number", None) or 1)})
        refresh_jobs = {str(k) for k in params.get("refresh_jobs") or ()}

        def fallback(error: ProviderError) -> TaskJob | None:
            following = spec.fallback(error)
            return None if following is None else self._task_job_of(context, following)

        return TaskJob(
            request=request,
            refresh=bool(params.get("refresh"))
            or bool({spec.key, spec.role} & refresh_jobs)
            or spec.refresh,
            key=spec.key,
            role=spec.role,
            segment=spec.index,
            fallback=fallback,
            passed_over=spec.passed_over,
        )

    def task_result(
        self, context: Context, job: TaskJob | None, records: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The record the next tasks read (see the class docstring)."""
        from producers.pipeline import steps

        if job is None:  # the video role is off: the image itself
            return {"index": int(self.image["index"]), "uri": self.image["uri"], "kind": "image"}
        values = {r["id"]: r.get("value") for r in records}
        first = records[0]["uri"] if records else ""
        if job.role == "script":
            segments = int(context["params"]["segments"])
            script = steps.parse_script(values.get("script"), segments)
            return {
                "script": script.model_dump(mode="json"),
                "topic": movie_tasks.topic_of(context),
                "uri": first,
                "estimated_cost_usd": self._estimated,
            }
        if job.role == "image_prompt":
            return {"index": job.segment, "prompt": steps.text_of(values, str(job.key))}
        if job.role == "narration":
            text = job.request.inputs.get("prompt", "")
            seconds = movie_tasks.duration(first)
            return {"index": job.segment, "uri": first, "text": text, "seconds": seconds}
        if job.role == "music":
            return {"uri": first, "seconds": movie_tasks.duration(first)}
        kind = "video" if job.role == "video" else "image"
        return {"index": job.segment, "uri": first, "kind": kind}


def _by_index(records: Any) -> list[dict[str, Any]]:
    return sorted((dict(r) for r in records or ()), key=lambda r: int(r["index"]))


def _find(records: Any, index: Any) -> dict[str, Any]:
    for record in records or ():
        if int(record["index"]) == int(index):
            return dict(record)
    raise KeyError(f"no upstream record for segment {index}")
