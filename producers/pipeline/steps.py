"""The steps between producers: plain functions from earlier artefacts to the next jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from producers.openai.prompt import template_variables
from producers.pipeline.options import ProducerOptions, Role, RoleOptions
from producers.sdk.attachments import attachment_from_path
from producers.sdk.errors import ErrorCode, ProviderError
from producers.sdk.jobs import Descriptor, JobRequest, Mode
from producers.sdk.secrets import redact
from producers.sdk.templates import render

#: Seconds of silence after each narration.
PAUSE_SECONDS = 0.5
#: The music prompt's template when the options give none.
DEFAULT_MUSIC_PROMPT = "Instrumental background music about {{ topic }}"


#: Provider-side failures that move a job to its role's next model once retries did not cure
#: them. Never a failure of what was asked (``invalid_input``, ``safety_blocked``): another
#: model would be asked the same thing.
FALLBACK_CODES = frozenset(
    {
        ErrorCode.PROVIDER_UNAVAILABLE,
        ErrorCode.RATE_LIMITED,
        ErrorCode.MODEL_FAILED,
        ErrorCode.TIMEOUT,
        ErrorCode.QUOTA_EXCEEDED,
    }
)


def falls_back(error: ProviderError) -> bool:
    """Whether ``error`` (final: after the client's retries) moves a job to a fallback model."""
    return error.code in FALLBACK_CODES and not error.caused_by_user


class Alternative(BaseModel):
    """A fallback model of a job, with the inputs and custom attributes it would be given."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    custom: dict[str, Any] = Field(default_factory=dict)


class JobSpec(BaseModel):
    """One job of the pipeline, before it becomes a request: what both clients schedule.

    ``fallbacks`` are the models to try, in order, when this one fails with a provider-side
    error (:func:`falls_back`); ``passed_over`` records why the models tried before this one
    did not make the artefact (model, code, reason, status code, provider job id).
    """

    model_config = ConfigDict(frozen=True)

    key: str
    role: Role
    index: int | None = None
    model_id: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    custom: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    attachments: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    refresh: bool = False
    fallbacks: tuple[Alternative, ...] = ()
    passed_over: tuple[dict[str, Any], ...] = ()

    def fallback(self, error: ProviderError) -> JobSpec | None:
        """The same job on the next fallback model after ``error``, or None when ``error``
        does not fall back (:func:`falls_back`) or no fallback is left."""
        if not self.fallbacks or not falls_back(error):
            return None
        following, *rest = self.fallbacks
        return self.model_copy(
            update={
                "model_id": following.model_id,
                "inputs": dict(following.inputs),
                "custom": dict(following.custom),
                "fallbacks": tuple(rest),
                "passed_over": (*self.passed_over, passed_over_record(self.model_id, error)),
            }
        )

    def moved_to(self, passed_over: Sequence[Mapping[str, Any]]) -> JobSpec:
        """This job on the model after those ``passed_over`` (a client that keeps the list
        across retries, e.g. an Airflow task, rebuilds its job with it); ``self`` when empty.

        Raises:
            ValueError: more models were passed over than the job has fallbacks.
        """
        position = len(passed_over)
        if position == 0:
            return self
        if position > len(self.fallbacks):
            raise ValueError(
                f"{self.key}: {position} models passed over, but it has "
                f"{len(self.fallbacks)} fallback(s)"
            )
        current = self.fallbacks[position - 1]
        return self.model_copy(
            update={
                "model_id": current.model_id,
                "inputs": dict(current.inputs),
                "custom": dict(current.custom),
                "fallbacks": self.fallbacks[position:],
                "passed_over": tuple(dict(item) for item in passed_over),
            }
        )

    @property
    def provider(self) -> str:
        """The provider that runs this job."""
        return Descriptor.parse(self.model_id).provider

    def request(
        self, *, mode: Mode, run_id: str | None = None, environment: str = "local"
    ) -> JobRequest:
        """The job request (attachments read and size-checked here)."""
        return JobRequest(
            job_id=f"{run_id}.{self.key}" if run_id else self.key,
            run_id=run_id,
            descriptor=Descriptor.parse(self.model_id, environment=environment),
            mode=mode,
            inputs=self.inputs,
            custom=self.custom,
            config=self.config,
            attachments=tuple(
                attachment_from_path(path, owner=self.model_id) for path in self.attachments
            ),
            produces=self.produces,
        )


class ScriptSegment(BaseModel):
    """One segment of the script."""

    model_config = ConfigDict(frozen=True)

    narration: str
    visual_description: str


class Script(BaseModel):
    """The script: a title and the segments."""

    model_config = ConfigDict(frozen=True)

    title: str
    segments: tuple[ScriptSegment, ...]


def script_schema(segments: int) -> dict[str, Any]:
    """The structured-output schema of the script (strict mode), with exactly N segments."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "segments"],
        "properties": {
            "title": {"type": "string", "description": "The movie's title"},
            "segments": {
                "type": "array",
                "minItems": segments,
                "maxItems": segments,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["narration", "visual_description"],
                    "properties": {
                        "narration": {"type": "string", "description": "What the narrator says"},
                        "visual_description": {"type": "string", "description": "The picture"},
                    },
                },
            },
        },
    }


def passed_over_record(model_id: str, error: ProviderError) -> dict[str, Any]:
    """Why ``model_id`` did not make a job's artefact (what the job's record keeps)."""
    return {
        "model_id": model_id,
        "code": error.code.value,
        "reason": redact(error.reason),
        "status_code": error.status_code,
        "provider_job_id": error.provider_job_id,
    }


def _spec(role: Role, options: RoleOptions, key: str, **fields: Any) -> JobSpec:
    given_inputs = fields.pop("inputs", {})
    given_custom = fields.pop("custom", {})
    return JobSpec(
        key=key,
        role=role,
        model_id=options.model,
        inputs={**options.inputs, **given_inputs},
        custom={**options.custom, **given_custom},
        config={**options.config, **fields.pop("config", {})},
        attachments=tuple(options.attachments),
        refresh=options.refresh,
        fallbacks=tuple(
            Alternative(
                model_id=fallback.model,
                inputs={**options.inputs, **fallback.inputs, **given_inputs},
                custom={**fallback.custom, **given_custom},
            )
            for fallback in options.fallbacks
        ),
        **fields,
    )


def _offered(options: RoleOptions, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The offered template variables the role's templates use (the prompt producer refuses
    a custom attribute that is neither an option of its model nor used by a template)."""
    used = template_variables(options.config)
    return {name: value for name, value in variables.items() if name in used}


def script_job(options: ProducerOptions, topic: str, segments: int) -> JobSpec:
    """The Script job: structured output split into title, narrations and visuals."""
    return _spec(
        "script",
        options.script,
        "script",
        inputs={"prompt": topic},
        custom=_offered(options.script, {"topic": topic, "segments": segments}),
        config={
            "output": "json",
            "schema_name": "script",
            "json_schema": script_schema(segments),
            "split": {"script": "."},
        },
        produces=("script",),
    )


def parse_script(value: Any, segments: int) -> Script:
    """The Script artefact's JSON as a :class:`Script`; N segments or ``malformed_output``."""
    try:
        script = Script.model_validate(value)
    except ValueError as exc:
        raise ProviderError(
            ErrorCode.MALFORMED_OUTPUT, f"the script is not usable: {exc}", retryable=False
        ) from None
    if len(script.segments) != segments:
        raise ProviderError(
            ErrorCode.MALFORMED_OUTPUT,
            f"the script has {len(script.segments)} segments; {segments} were asked for",
            retryable=False,
        )
    return script


def image_prompt_job(options: ProducerOptions, topic: str, script: Script, index: int) -> JobSpec:
    """The ImagePrompt job of one segment: a prompt for the image model, as text."""
    segment = script.segments[index]
    return _spec(
        "image_prompt",
        options.image_prompt,
        f"image_prompt[{index}]",
        index=index,
        inputs={"prompt": segment.visual_description},
        custom=_offered(
            options.image_prompt,
            {
                "topic": topic,
                "title": script.title,
                "index": index,
                "narration": segment.narration,
                "visual_description": segment.visual_description,
            },
        ),
        config={"output": "text"},
        produces=(f"image_prompt[{index}]",),
    )


def image_job(options: ProducerOptions, prompt: str, index: int) -> JobSpec:
    """The Image job of one segment."""
    return _spec(
        "image",
        options.image,
        f"image[{index}]",
        index=index,
        inputs={"prompt": prompt, "count": 1},
        produces=(f"image[{index}]",),
    )


def narration_job(options: ProducerOptions, text: str, index: int) -> JobSpec:
    """The Narration job of one segment."""
    return _spec(
        "narration",
        options.narration,
        f"narration[{index}]",
        index=index,
        inputs={"prompt": text},
        produces=(f"narration[{index}]",),
    )


def music_job(options: ProducerOptions, topic: str, title: str, seconds: float) -> JobSpec:
    """The Music job: one bed as long as the narration (rounded up to a whole second).

    The prompt is ``music.inputs.prompt`` as given (data, never rendered), else the
    ``music.config.prompt_template`` template (trusted options only) rendered with the topic
    and the title.
    """
    given = options.music.inputs.get("prompt")
    if given is not None:
        prompt = str(given)
    else:
        template = str(options.music.config.get("prompt_template", DEFAULT_MUSIC_PROMPT))
        prompt = render(
            template, {"topic": topic, "title": title}, name="music.config.prompt_template"
        )
    return _spec(
        "music",
        options.music,
        "music",
        inputs={"prompt": prompt, "duration_seconds": int(-(-seconds // 1))},
        produces=("music",),
    )


def video_job(
    options: ProducerOptions, prompt: str, image_uri: str, seconds: float, index: int
) -> JobSpec:
    """The Video job of one segment: the segment's image set in motion."""
    return _spec(
        "video",
        options.video,
        f"video[{index}]",
        index=index,
        inputs={"prompt": prompt, "image": image_uri, "duration_seconds": round(seconds)},
        produces=(f"video[{index}]",),
    )


def text_of(values: Mapping[str, Any], key: str) -> str:
    """A text artefact's value; ``malformed_output`` if it is missing or empty."""
    value = values.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ProviderError(ErrorCode.MALFORMED_OUTPUT, f"{key} is empty", retryable=False)
    return value.strip()


def total_seconds(durations: Sequence[float], pause: float) -> float:
    """The movie's length: every narration plus a pause after each."""
    return sum(durations) + pause * len(durations)
