"""The pipeline's plain functions: options, job specs, script parsing, timeline, cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.pipeline.cost import estimate
from producers.pipeline.options import load_options, parse_override
from producers.pipeline.steps import (
    Script,
    ScriptSegment,
    image_job,
    image_prompt_job,
    music_job,
    narration_job,
    parse_script,
    script_job,
    video_job,
)
from producers.pipeline.timeline import NarrationClip, Visual, build_timeline
from producers.sdk import InvalidInputError, ProviderError
from producers.testing import JobContext


def test_default_options_use_the_seed_models() -> None:
    options = load_options()
    assert options.script.model.startswith("openai:")
    assert options.image_prompt.model.startswith("openai:")
    assert options.image.model == "replicate:bytedance/seedream-4"
    assert options.narration.model == "replicate:minimax/speech-02-hd"
    assert options.music.model == "replicate:stability-ai/stable-audio-2.5"
    assert options.video.model == "replicate:bytedance/seedance-1-lite"
    assert options.video.enabled is False


def test_files_and_overrides_replace_parts(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text('[narration.inputs]\nvoice = "Deep_Voice_Man"\n\n[video]\nenabled = true\n')
    options = load_options(
        [user],
        [
            "image.model=replicate:google/nano-banana",
            "music.refresh=true",
            "image.inputs.aspect_ratio=4:3",
        ],
    )
    assert options.narration.inputs == {"voice": "Deep_Voice_Man", "language": "en"}
    assert options.video.enabled is True
    assert options.image.model == "replicate:google/nano-banana"
    assert options.image.custom == {}  # seedream's custom attributes do not follow a new model
    assert options.image.inputs["aspect_ratio"] == "4:3"
    assert options.music.refresh is True


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("colour.model=x", ["unknown role 'colour'", "image_prompt"]),
        ("image=1", ["ROLE.KEY=VALUE"]),
        ("image.model=seedream", ["provider:model"]),
        ("image.temperature=1", ["image.temperature", "Extra inputs"]),
    ],
    ids=["unknown-role", "no-key", "bad-model-id", "unknown-key"],
)
def test_bad_overrides_say_what_is_allowed(override: str, words: list[str]) -> None:
    with pytest.raises((InvalidInputError, Exception)) as caught:
        load_options([], [override])
    for word in words:
        assert word in str(caught.value)


def test_parse_override_types() -> None:
    assert parse_override("video.enabled=true") == {"video": {"enabled": True}}
    assert parse_override("image.custom.max_images=2") == {"image": {"custom": {"max_images": 2}}}
    assert parse_override("image.model=replicate:x/y") == {"image": {"model": "replicate:x/y"}}


SCRIPT = Script(
    title="Volcanoes",
    segments=(
        ScriptSegment(narration="Magma rises.", visual_description="A cross-section"),
        ScriptSegment(narration="It erupts.", visual_description="Lava flows"),
    ),
)


def test_job_specs_carry_the_earlier_artefacts() -> None:
    options = load_options()
    script = script_job(options, "volcanoes", 2)
    assert script.config["json_schema"]["properties"]["segments"]["minItems"] == 2
    assert script.config["system_prompt"] == options.script.config["system_prompt"]
    assert script.custom == {"topic": "volcanoes", "segments": 2}
    prompt = image_prompt_job(options, "volcanoes", SCRIPT, 1)
    assert prompt.key == "image_prompt[1]" and prompt.custom["visual_description"] == "Lava flows"
    image = image_job(options, "A red lava river", 1)
    assert image.inputs == {
        "aspect_ratio": "16:9",
        "prompt": "A red lava river",
        "count": 1,
    } and image.custom == {"size": "1K"}
    narration = narration_job(options, "It erupts.", 1)
    assert narration.inputs["prompt"] == "It erupts." and narration.inputs["voice"] == "Wise_Woman"
    music = music_job(options, "volcanoes", "Volcanoes", 21.2)
    assert music.inputs["duration_seconds"] == 22 and "volcanoes" in music.inputs["prompt"]
    video = video_job(options, "lava", "file:///x.png", 4.6, 0)
    assert video.inputs["image"] == "file:///x.png" and video.inputs["duration_seconds"] == 5


def test_parse_script_checks_the_segment_count() -> None:
    value = SCRIPT.model_dump()
    assert parse_script(value, 2) == SCRIPT
    with pytest.raises(ProviderError, match="3 were asked for"):
        parse_script(value, 3)
    with pytest.raises(ProviderError, match="not usable"):
        parse_script({"title": "x"}, 2)


def test_timeline_follows_the_narration_durations() -> None:
    timeline = build_timeline(
        "T",
        [Visual(uri="i0"), Visual(uri="v1", kind="video")],
        [NarrationClip(uri="n0", duration=2.25), NarrationClip(uri="n1", duration=3.0)],
        music_uri="m",
        pause=0.5,
    )
    assert [(s.start, s.duration) for s in timeline.segments] == [(0.0, 2.75), (2.75, 3.5)]
    assert timeline.duration == pytest.approx(6.25)
    assert timeline.segments[1].visual_kind == "video"
    with pytest.raises(ValueError, match="pair one to one"):
        build_timeline("T", [Visual(uri="i0")], [], pause=0.5)


async def test_cost_estimate_prices_every_role_before_anything_runs() -> None:
    context = JobContext()
    options = load_options()

    async def prepare(spec):  # type: ignore[no-untyped-def]
        request = spec.request(mode="mock")
        return await context.handler(request).prepare(request)

    cost = await estimate(options, "volcanoes", 3, prepare)
    assert set(cost.roles) == {"script", "image_prompt", "image", "narration", "music"}
    assert cost.roles["image"] == pytest.approx(0.09)  # 3 x $0.03 per seedream image
    assert cost.roles["music"] == pytest.approx(0.2)  # stable-audio: per file
    assert cost.total == pytest.approx(sum(cost.roles.values()))
    with_video = await estimate(load_options([], ["video.enabled=true"]), "volcanoes", 3, prepare)
    assert with_video.roles["video"] == pytest.approx(3 * 12 * 0.018)  # 480p, 12 s typical
    assert context.client_requests == {}
