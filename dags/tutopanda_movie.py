"""tutopanda_movie: a narrated explainer movie about a topic, one Airflow task per producer job.

    script -> image_prompt[i] -> image[i]
           -> narration[i] -> music
    (image[*], narration[*], music) -> assemble -> the MP4 (Asset ``tutopanda_movie``)

The same jobs as the CLI's flow (``producers/pipeline/flow.py``); each runs through the
provider's ``ProducerOperator`` logic (reuse, resume, retry policy) in its provider's pool.
Parsing this file imports neither ``producers`` nor any provider client.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_tutopanda import movie_tasks
from airflow_provider_tutopanda.pools import pool_for
from airflow_provider_tutopanda.retry import retry_policy_for

MOVIE = Asset(name="tutopanda_movie")
RETRIES = 2
MODELS = movie_tasks.default_models()


def _provider_task(role: str, **kwargs: object):
    """``@task`` for a job of ``role``: its provider's pool (the default model's), retries,
    and the provider's retry policy (a safety block fails at once, a 429 waits its delay)."""
    provider = movie_tasks.provider_of(role)
    return task(
        pool=pool_for(provider),
        retries=RETRIES,
        retry_policy=retry_policy_for(provider),
        **kwargs,
    )


def _model_param(role: str, title: str) -> Param:
    return Param(
        MODELS[role],
        type="string",
        title=title,
        description=f"The {role} model, provider:model (default from the default options).",
        pattern=r"^[a-z0-9_-]+:.+$",
    )


with DAG(
    "tutopanda_movie",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["tutopanda"],
    doc_md=__doc__,
    params={
        "topic": Param(
            "How do red pandas keep warm?",
            type="string",
            minLength=1,
            title="Topic",
            description="What the movie explains.",
        ),
        "segments": Param(
            3,
            type="integer",
            minimum=1,
            maximum=20,
            title="Segments",
            description="How many segments (one picture and one narration each).",
        ),
        "mode": Param(
            "mock",
            type="string",
            enum=["mock", "live"],
            title="Mode",
            description="mock: no provider call, no secret; live: real (paid) provider calls.",
        ),
        "refresh": Param(
            False,
            type="boolean",
            title="Refresh",
            description="Make every artefact again even if an identical job made it before.",
        ),
        "budget": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Budget (USD)",
            description="The most the run may spend; empty for no limit (not enforced yet).",
        ),
        "script_model": _model_param("script", "Script model"),
        "image_model": _model_param("image", "Image model"),
        "narration_model": _model_param("narration", "Narration model"),
        "music_model": _model_param("music", "Music model"),
    },
) as dag:
    script = _provider_task("script", multiple_outputs=True)(movie_tasks.script)()
    indexes = task(task_id="segment_indexes")(movie_tasks.segment_indexes)()
    prompts = (
        _provider_task("image_prompt", task_id="image_prompt")(movie_tasks.image_prompt)
        .partial(script=script["script"])
        .expand(index=indexes)
    )
    images = _provider_task("image", task_id="image")(movie_tasks.image).expand(prompt=prompts)
    narrations = (
        _provider_task("narration", task_id="narration")(movie_tasks.narration)
        .partial(script=script["script"])
        .expand(index=indexes)
    )
    music = _provider_task("music", task_id="music")(movie_tasks.music)(
        script=script["script"], narrations=narrations
    )
    movie = task(task_id="assemble", outlets=[MOVIE])(movie_tasks.assemble)(
        script=script["script"], images=images, narrations=narrations, music=music
    )
