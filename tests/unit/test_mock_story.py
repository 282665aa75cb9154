"""Mock mode tells the topic's story: the script, the image prompts, deterministic bytes."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from producers.clients.mock_json import instance_for, subject_of, text_for
from producers.pipeline.options import ProducerOptions, load_options
from producers.pipeline.steps import (
    JobSpec,
    image_prompt_job,
    parse_script,
    script_job,
    script_schema,
)
from producers.sdk.artefacts import ProducerResult
from producers.testing import JobContext

TOPIC = "How do volcanoes erupt?"


async def _run(spec: JobSpec, context: JobContext | None = None) -> tuple[ProducerResult, bytes]:
    """Run ``spec`` in mock mode as the movie does; the result and its first artefact's bytes."""
    context = context or JobContext()
    request = spec.request(mode="mock", run_id="run-1")
    result = await context.handler(request).run(request)
    return result, await context.store.read_bytes(result.artefacts[0].uri)


@pytest.mark.parametrize("model", ["openai:gpt-5-mini", "replicate:meta/meta-llama-3-8b-instruct"])
async def test_the_mock_script_is_about_the_topic(model: str) -> None:
    options = load_options(overrides=[f"script.model={model}"])
    result, _ = await _run(script_job(options, TOPIC, 4))
    assert result.artefacts[0].diagnostics.mocked is True
    value = result.get("script").value
    jsonschema.Draft202012Validator(script_schema(4)).validate(value)
    script = parse_script(value, 4)
    assert len(script.segments) == 4
    assert "volcanoes erupt" in script.title.lower()
    assert script.title.endswith("(mock)")
    assert "Write a" not in script.title
    for segment in script.segments:
        assert "volcanoes erupt" in segment.narration.lower()
        assert "volcanoes erupt" in segment.visual_description.lower()
    narrations = [segment.narration for segment in script.segments]
    assert len(set(narrations)) == 4
    assert narrations[0].startswith(TOPIC)  # a question opens with the question


async def test_the_same_topic_gives_the_same_bytes_and_another_topic_others() -> None:
    options = load_options()
    first, first_bytes = await _run(script_job(options, TOPIC, 3))
    again, again_bytes = await _run(script_job(options, TOPIC, 3))
    assert first_bytes == again_bytes
    assert first.artefacts[0].sha256 == again.artefacts[0].sha256
    _, other_bytes = await _run(script_job(options, "The water cycle", 3))
    assert other_bytes != first_bytes
    assert "water cycle" in json.loads(other_bytes)["title"].lower()


async def test_the_image_prompt_follows_the_segments_visual_description() -> None:
    options = load_options()
    result, _ = await _run(script_job(options, TOPIC, 3))
    script = parse_script(result.get("script").value, 3)
    prompts = []
    for index, segment in enumerate(script.segments):
        prompt_result, data = await _run(image_prompt_job(options, TOPIC, script, index))
        text = data.decode()
        assert prompt_result.artefacts[0].diagnostics.mocked is True
        assert segment.visual_description in text
        assert "Movie:" not in text and "narration" not in text
        prompts.append(text)
    assert len(set(prompts)) == 3


def _options_with_user_prompt(template: str) -> ProducerOptions:
    options = load_options()
    config = {**options.script.config, "user_prompt": template}
    return options.model_copy(
        update={"script": options.script.model_copy(update={"config": config})}
    )


async def test_another_template_still_names_the_topic() -> None:
    options = _options_with_user_prompt(
        "Topic: {{ topic }}\nSegments: {{ segments }}\nAudience: curious adults"
    )
    result, _ = await _run(script_job(options, "Black holes", 2))
    script = parse_script(result.get("script").value, 2)
    assert script.title == "Black Holes (mock)"
    assert all("black holes" in s.narration for s in script.segments)


@pytest.mark.parametrize(
    ("prompt", "subject"),
    [
        ("Write a 3-segment explainer script about: How do volcanoes erupt?", TOPIC),
        ("Write about: Volcanoes: how they erupt", "Volcanoes: how they erupt"),
        ("Topic: tides\nSegments: 3", "tides"),
        ('Movie: X (mock). Scene 2: A lava river at night (narration: "Lava: hot.")', None),
        ("Write a two sentence narration about volcanoes.", "volcanoes"),
        ("Explain volcanoes to a child", "Explain volcanoes to a child"),
        ("", ""),
    ],
)
def test_subject_of(prompt: str, subject: str | None) -> None:
    expected = "A lava river at night" if subject is None else subject
    assert subject_of(prompt) == expected


@pytest.mark.parametrize(
    ("topic", "words"),
    [
        ("How do volcanoes erupt?", "how volcanoes erupt"),
        ("How volcanoes work", "how volcanoes work"),
        ("Why is the sky blue?", "why the sky is blue"),
        ("What is photosynthesis?", "what photosynthesis is"),
        ("Do fish sleep?", "whether fish sleep"),
        ("Can dogs see colour?", "can dogs see colour"),
        ("The water cycle", "the water cycle"),
        ("Mars", "mars"),
        ("Volcanoes: how they erupt", "how they erupt"),
    ],
)
@pytest.mark.parametrize("segments", [1, 2, 3, 9])
def test_scripts_of_many_topics_read_as_explainers(topic: str, words: str, segments: int) -> None:
    schema = script_schema(segments)
    seed = f"Write a {segments}-segment explainer script about: {topic}"
    value: Any = instance_for(schema, seed_text=seed)
    jsonschema.Draft202012Validator(schema).validate(value)
    assert instance_for(schema, seed_text=seed) == value
    assert value["title"].endswith(" (mock)")
    assert topic.rstrip("?").lower() in value["title"].lower()
    texts = [s["narration"] for s in value["segments"]] + [
        s["visual_description"] for s in value["segments"]
    ]
    # Each names the topic: a question opens the film as it was asked, then is referred to.
    assert all(words in t.lower() or topic.lower() in t.lower() for t in texts), texts
    assert sum(words in t.lower() for t in texts) >= len(texts) - 1, texts
    assert len(set(texts)) == 2 * segments
    # The scene descriptions hold no ': ', which the next prompt would read as a label.
    assert all(": " not in s["visual_description"] for s in value["segments"])


def test_story_strings_keep_the_schema_bounds() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "scenes"],
        "properties": {
            "title": {"type": "string", "maxLength": 12},
            "scenes": {
                "type": "array",
                "minItems": 8,
                "maxItems": 8,
                "uniqueItems": True,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["heading", "voiceover", "image_prompt", "mood"],
                    "properties": {
                        "heading": {"type": "string", "maxLength": 20},
                        "voiceover": {"type": "string", "minLength": 10, "maxLength": 60},
                        "image_prompt": {"type": "string", "pattern": "^[A-Z]"},
                        "mood": {"enum": ["calm", "tense"]},
                    },
                },
            },
        },
    }
    value = instance_for(schema, seed_text="Write a script about: How do volcanoes erupt?")
    jsonschema.Draft202012Validator(schema).validate(value)
    voiceovers = [scene["voiceover"] for scene in value["scenes"]]
    assert len(set(voiceovers)) == 8
    assert [scene["mood"] for scene in value["scenes"]][:2] == ["calm", "tense"]


def test_text_for_answers_with_the_scene() -> None:
    prompt = (
        "Movie: How Do Volcanoes Erupt? (mock). Scene 2: A clear labelled diagram of a "
        'volcano (narration: "To understand it: start here.")'
    )
    answer = text_for(prompt)
    assert answer.startswith("Mock answer: A clear labelled diagram of a volcano. ")
    assert re.search(r"mock provider", answer)
    assert text_for(prompt) == answer
