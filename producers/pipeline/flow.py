"""The movie, job by job: what runs after what. Clients supply how one job runs.

The CLI runs this flow on asyncio with its own job runner (concurrency, retries, reuse,
progress); every independent job starts as soon as what it needs exists, and a failed job
stops only the jobs that need its artefacts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from producers.pipeline.options import ProducerOptions
from producers.pipeline.steps import (
    PAUSE_SECONDS,
    JobSpec,
    Script,
    image_job,
    image_prompt_job,
    music_job,
    narration_job,
    parse_script,
    script_job,
    text_of,
    total_seconds,
    video_job,
)
from producers.pipeline.timeline import NarrationClip, Timeline, Visual, build_timeline
from producers.sdk.artefacts import Artefact, ProducerResult
from producers.sdk.errors import ErrorCode, ProviderError
from producers.sdk.media import probe
from producers.storage.base import ArtefactStore, StoredBlob

RunJob = Callable[[JobSpec], Awaitable[ProducerResult]]


class Skipped(Exception):
    """A job that did not run because a job it needs failed."""

    def __init__(self, key: str, because: str) -> None:
        super().__init__(f"{key} skipped: {because} failed")
        self.key = key
        self.because = because


@dataclass
class MovieOutcome:
    """Everything a movie run made or failed to make."""

    topic: str
    results: dict[str, ProducerResult] = field(default_factory=dict)
    failures: dict[str, ProviderError] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    specs: dict[str, JobSpec] = field(default_factory=dict)
    script: Script | None = None
    timeline: Timeline | None = None
    timeline_blob: StoredBlob | None = None
    movie: StoredBlob | None = None

    @property
    def ok(self) -> bool:
        """True if the movie was made."""
        return self.movie is not None and not self.failures

    def artefacts(self) -> list[Artefact]:
        """Every artefact made, in job order."""
        return [a for result in self.results.values() for a in result.artefacts]


class _Flow:
    def __init__(self, outcome: MovieOutcome, run_job: RunJob) -> None:
        self.outcome = outcome
        self.run_job = run_job

    async def run(self, spec: JobSpec) -> ProducerResult:
        self.outcome.specs[spec.key] = spec
        try:
            result = await self.run_job(spec)
        except ProviderError as error:
            self.outcome.failures[spec.key] = error
            raise
        self.outcome.results[spec.key] = result
        return result

    def skip(self, spec_key: str, because: str) -> Skipped:
        self.outcome.skipped[spec_key] = because
        return Skipped(spec_key, because)


async def _duration(store: ArtefactStore, artefact: Artefact) -> float:
    path = await store.local_path(artefact.uri)
    info = await asyncio.to_thread(probe, path)
    if not info.duration_seconds:
        raise ProviderError(
            ErrorCode.MALFORMED_OUTPUT, f"{artefact.id} has no measurable duration", retryable=False
        )
    return info.duration_seconds


async def make_movie(
    topic: str,
    segments: int,
    options: ProducerOptions,
    run_job: RunJob,
    store: ArtefactStore,
    *,
    pause: float = PAUSE_SECONDS,
    size: tuple[int, int] = (1280, 720),
) -> MovieOutcome:
    """Run the whole pipeline; never raises for a failed job (see ``outcome.failures``)."""
    from producers.pipeline.assembly import assemble, store_timeline

    outcome = MovieOutcome(topic=topic)
    flow = _Flow(outcome, run_job)
    try:
        script_result = await flow.run(script_job(options, topic, segments))
        script = parse_script(script_result.get("script").value, segments)
    except ProviderError as error:
        outcome.failures.setdefault("script", error)
        return outcome
    outcome.script = script
    narrations: list[asyncio.Future[NarrationClip]] = [
        asyncio.get_running_loop().create_future() for _ in range(segments)
    ]

    async def narration(index: int) -> NarrationClip:
        try:
            result = await flow.run(narration_job(options, script.segments[index].narration, index))
            artefact = result.artefacts[0]
            clip = NarrationClip(
                uri=artefact.uri,
                duration=await _duration(store, artefact),
                text=script.segments[index].narration,
            )
        except BaseException as error:
            narrations[index].set_exception(error)
            narrations[index].exception()  # retrieved here; awaited by others
            raise
        narrations[index].set_result(clip)
        return clip

    async def visual(index: int) -> Visual:
        prompt_result = await flow.run(image_prompt_job(options, topic, script, index))
        prompt = text_of({a.id: a.value for a in prompt_result.artefacts}, f"image_prompt[{index}]")
        image = (await flow.run(image_job(options, prompt, index))).artefacts[0]
        if not options.video.enabled:
            return Visual(uri=image.uri, kind="image")
        try:
            clip = await narrations[index]
        except BaseException:
            raise flow.skip(f"video[{index}]", f"narration[{index}]") from None
        video = (
            await flow.run(video_job(options, prompt, image.uri, clip.duration + pause, index))
        ).artefacts[0]
        return Visual(uri=video.uri, kind="video")

    async def music() -> str:
        try:
            clips = [await future for future in narrations]
        except BaseException:
            raise flow.skip("music", "a narration") from None
        seconds = total_seconds([c.duration for c in clips], pause)
        return (await flow.run(music_job(options, topic, script.title, seconds))).artefacts[0].uri

    results = await asyncio.gather(
        *(narration(i) for i in range(segments)),
        *(visual(i) for i in range(segments)),
        music(),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, ProviderError | Skipped):
            raise result
    if outcome.failures or outcome.skipped:
        return outcome
    clips = [r for r in results[:segments] if isinstance(r, NarrationClip)]
    visuals = [r for r in results[segments : 2 * segments] if isinstance(r, Visual)]
    music_uri = results[-1] if isinstance(results[-1], str) else None
    timeline = build_timeline(
        script.title,
        visuals,
        clips,
        music_uri=music_uri,
        pause=pause,
        width=size[0],
        height=size[1],
    )
    outcome.timeline = timeline
    outcome.timeline_blob = await store_timeline(timeline, store)
    outcome.movie = await assemble(timeline, store)
    return outcome
