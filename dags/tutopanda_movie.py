"""Narrated explainer movies about a topic, one Airflow task per producer job.

    script -> image_prompt[i] -> review (a person, when `review` is on)
           -> image[i] -> video[i] (the image itself unless `video` is on)
           -> narration[i] -> music
    (video[*], narration[*], music) -> assemble -> the MP4 (Asset ``tutopanda_movie``)

- ``tutopanda_movie``: one movie when triggered (the form asks for the topic).
- ``tutopanda_daily_movie``: one movie a day, its topic the day's line of a topics file
  (``$TUTOPANDA_TOPICS``, else ``topics.txt`` in the DAGs folder); safe to backfill: a day's
  topic never changes, and jobs with unchanged inputs reuse their stored artefacts.

The same jobs as the CLI's flow (``producers/pipeline``). Each provider job is a
``MovieJobOperator``: reused when an identical job was made before, resumed after a retry
(never paid twice), deferred to the triggerer while the provider works, in its provider's pool
(the pool follows a model param that names another provider), with retries and the provider's
retry policy. Parsing this file imports neither ``producers`` nor any provider client.
"""

from __future__ import annotations

import os
from datetime import timedelta

# The Airflow modules this file's operators build on, named here so that the dag-processor
# imports them once, before it forks a parser ([dag_processor] parsing_pre_import_modules),
# instead of in every parse of this file.
import airflow.providers.standard.operators.hitl
import airflow.sdk.bases.operatorlink
import airflow.sdk.definitions.retry_policy  # noqa: F401 (named for the pre-import)
import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_tutopanda import movie_tasks
from airflow_provider_tutopanda.operators.movie import MovieJobOperator
from airflow_provider_tutopanda.operators.review import ScriptReviewOperator
from airflow_provider_tutopanda.pools import pool_for
from airflow_provider_tutopanda.retry import retry_policy_for

MOVIE = Asset(name="tutopanda_movie")
RETRIES = 2
#: The first retry's delay; each next one doubles (a 429 waits its own Retry-After instead).
RETRY_DELAY = timedelta(seconds=30)
MODELS = movie_tasks.default_models()
ROLE_TITLES = {
    "script": "Script model",
    "image_prompt": "Image prompt model",
    "image": "Image model",
    "narration": "Narration model",
    "music": "Music model",
    "video": "Video model",
}


def _params(topic: Param, mode: str) -> dict[str, Param]:
    models = {
        f"{role}_model": Param(
            MODELS[role],
            type="string",
            title=title,
            description=f"The {role} model, provider:model. Its provider's pool is used.",
            pattern=r"^[a-z0-9_-]+:.+$",
        )
        for role, title in ROLE_TITLES.items()
    }
    fallbacks = {
        f"{role}_fallbacks": Param(
            None,
            type=["null", "array"],
            maxItems=5,
            items={"type": "string", "pattern": r"^[a-z0-9_-]+:.+$"},
            title=f"{title} fallbacks",
            description=(
                f"Models to try, in order, when the {role} model fails with a provider-side "
                "error its retries did not cure (provider down, rate limited, model failed, "
                "timed out, out of credit); never after a refused input or a safety block. "
                "Empty: the deployment's options decide."
            ),
        )
        for role, title in ROLE_TITLES.items()
    }
    return {
        "topic": topic,
        "segments": Param(
            3,
            type="integer",
            minimum=1,
            maximum=20,
            title="Segments",
            description="How many segments (one picture and one narration each).",
        ),
        "mode": Param(
            mode,
            type="string",
            enum=["mock", "live"],
            title="Mode",
            description="mock: no provider call, no secret; live: real (paid) provider calls.",
        ),
        "video": Param(
            False,
            type="boolean",
            title="Video",
            description="Set each image in motion with the video model (image-to-video).",
        ),
        "review": Param(
            False,
            type="boolean",
            title="Review the script",
            description=(
                "Wait, after the script and image prompts are written and before any media is "
                "paid for, for a reviewer to approve, edit or reject them (Required actions)."
            ),
        ),
        "refresh": Param(
            False,
            type="boolean",
            title="Refresh all",
            description="Make every artefact again even if an identical job made it before.",
        ),
        "refresh_jobs": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Refresh only",
            description=(
                "Jobs (image[2], narration[0]) or roles (music) to make again; the rest is "
                "reused, and what depends on a remade artefact follows it."
            ),
        ),
        "budget": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Budget (USD)",
            description=(
                "The most the run may spend: it is priced before the script is written and "
                "fails, with nothing paid, when the estimate is over (an upper-bound price "
                "counts at its bound) or a job has no price. Empty: no limit."
            ),
        ),
        "allow_unpriced": Param(
            False,
            type="boolean",
            title="Allow unpriced jobs",
            description=(
                "With a budget: run even if a job's model has no price (it is then not held "
                "to the budget). Off: such a run is refused before anything is paid."
            ),
        ),
        "options": Param(
            [],
            type="array",
            maxItems=50,
            items={
                "type": "string",
                "maxLength": 10_000,
                "pattern": r"^[a-z_]+\.(inputs|custom)\.[A-Za-z0-9_]+=.*$",
            },
            title="Inputs of the roles",
            description=(
                "A role's general inputs or model fields, ROLE.inputs.NAME=VALUE or "
                "ROLE.custom.NAME=VALUE, e.g. narration.inputs.voice=Deep_Voice_Man or "
                "image.custom.size=2K; checked against the model's schema before anything "
                "runs. Config, templates and attachments come only from the deployment."
            ),
        ),
        **models,
        **fallbacks,
    }


def _job(role: str, **kwargs: object) -> dict[str, object]:
    """The arguments every job task of ``role`` shares: its provider's pool (the default
    model's, or the run's model param's: see ``airflow_provider_tutopanda.policy``), retries
    and the provider's retry policy (a safety block fails at once, a 429 waits its delay)."""
    provider = movie_tasks.provider_of(role)
    return {
        "task_id": role,
        "role": role,
        "pool": pool_for(provider),
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": 2.0,
        "retry_policy": retry_policy_for(provider),
        "deferrable": True,
        **kwargs,
    }


def movie_pipeline() -> None:
    """The movie's tasks, in the DAG being defined."""
    script = MovieJobOperator(**_job("script"))
    indexes = task(task_id="segment_indexes")(movie_tasks.segment_indexes)()
    script >> indexes
    prompts = MovieJobOperator.partial(**_job("image_prompt", script=script.output)).expand(
        index=indexes
    )
    # Before any media is paid for: a reviewer approves, edits or rejects (when `review`).
    review = ScriptReviewOperator(task_id="review", script=script.output, prompts=prompts.output)
    approved_script, approved_prompts = review.output["script"], review.output["prompts"]
    images = MovieJobOperator.partial(**_job("image", prompts=approved_prompts)).expand(
        index=indexes
    )
    narrations = MovieJobOperator.partial(**_job("narration", script=approved_script)).expand(
        index=indexes
    )
    visuals = MovieJobOperator.partial(
        **_job("video", prompts=approved_prompts, narrations=narrations.output)
    ).expand(image=images.output)
    music = MovieJobOperator(**_job("music", script=approved_script, narrations=narrations.output))
    task(task_id="assemble", outlets=[MOVIE])(movie_tasks.assemble)(
        script=approved_script,
        visuals=visuals.output,
        narrations=narrations.output,
        music=music.output,
    )


with DAG(
    "tutopanda_movie",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["tutopanda"],
    doc_md=__doc__,
    params=_params(
        Param(
            "How do red pandas keep warm?",
            type="string",
            minLength=1,
            maxLength=1000,
            title="Topic",
            description="What the movie explains.",
        ),
        mode="mock",
    ),
) as dag:
    movie_pipeline()


with DAG(
    "tutopanda_daily_movie",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    tags=["tutopanda"],
    doc_md=__doc__,
    params=_params(
        Param(
            "",
            type="string",
            maxLength=1000,
            title="Topic",
            description="Empty: the day's line of the topics file.",
        ),
        # A schedule runs with the defaults: live only where the deployment says so.
        mode=os.environ.get("TUTOPANDA_DAILY_MODE", "mock"),
    ),
) as daily_dag:
    movie_pipeline()
