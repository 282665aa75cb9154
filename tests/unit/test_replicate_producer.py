"""The schema-driven Replicate producer: mapping, transforms, secrets, cost estimates."""

from __future__ import annotations

from typing import Any

import pytest

from producers.sdk import ProviderError
from producers.testing import JobContext, fake_secret_resolver, make_job_request


async def prepare(
    model: str,
    inputs: dict[str, Any],
    custom: dict[str, Any] | None = None,
    context: JobContext | None = None,
) -> Any:
    context = context or JobContext()
    request = make_job_request(f"replicate:{model}", inputs=inputs, custom=custom)
    return await context.handler(request).prepare(request)


@pytest.mark.parametrize(
    ("model", "inputs", "custom", "expected"),
    [
        (
            "bytedance/seedream-4",
            {"prompt": "p", "aspect_ratio": "16:9", "count": 3, "image": "https://x/y.png"},
            {},
            {
                "prompt": "p",
                "aspect_ratio": "16:9",
                "max_images": 3,
                "image_input": ["https://x/y.png"],
                "sequential_image_generation": "auto",
            },
        ),
        (
            "elevenlabs/music",
            {"prompt": "drums", "duration_seconds": 30},
            {},
            {"prompt": "drums", "music_length_ms": 30000},
        ),
        (
            "google/veo-3.1-fast",
            {"prompt": "p", "duration_seconds": 7},
            {},
            {"prompt": "p", "duration": 6},
        ),
        (
            "minimax/speech-02-hd",
            {"prompt": "Hello", "voice": "Deep_Voice_Man"},
            {"emotion": "happy"},
            {"text": "Hello", "voice_id": "Deep_Voice_Man", "emotion": "happy"},
        ),
        (
            "stability-ai/stable-diffusion",
            {"prompt": "p", "aspect_ratio": "16:9"},
            {},
            {"prompt": "p", "width": 1024, "height": 576},
        ),
        (
            "bytedance/seedance-1-lite",
            {"prompt": "p", "aspect_ratio": "16:9"},
            {"aspect_ratio": "1:1"},
            {"prompt": "p", "aspect_ratio": "1:1"},
        ),
    ],
    ids=[
        "seedream-list-and-count",
        "music-ms-scale",
        "veo-duration-snap",
        "speech-voice-and-custom",
        "sd-size-fields",
        "custom-wins",
    ],
)
async def test_general_attributes_map_to_model_fields(
    model: str, inputs: dict[str, Any], custom: dict[str, Any], expected: dict[str, Any]
) -> None:
    prepared = await prepare(model, inputs, custom)
    assert prepared.payload == expected


async def test_adjusted_values_and_unmapped_inputs_are_reported() -> None:
    context = JobContext()
    request = make_job_request(
        "replicate:google/veo-3.1-fast",
        inputs={"prompt": "p", "duration_seconds": 7, "voice": "Rachel", "aspect_ratio": "4:3"},
    )
    result = await context.handler(request).run(request)
    diagnostics = result.diagnostics
    assert diagnostics.payload is not None
    assert diagnostics.payload["duration"] == 6 and diagnostics.payload["aspect_ratio"] == "16:9"
    assert any("duration_seconds=7" in w and "used 6" in w for w in diagnostics.warnings)
    assert any("aspect_ratio='4:3'" in w and "16:9" in w for w in diagnostics.warnings)
    assert diagnostics.ignored_inputs == {"voice": "Rachel"}


async def test_secret_field_comes_from_the_resolver_and_is_masked() -> None:
    key = "sk-proj-SECRET-for-gpt-image-0123456789"
    context = JobContext(secrets=fake_secret_resolver({"OPENAI_API_KEY": key}))
    request = make_job_request("replicate:openai/gpt-image-1-mini", inputs={"prompt": "a fox"})
    handler = context.handler(request)
    prepared = await handler.prepare(request)
    assert prepared.payload["openai_api_key"] == key  # sent to the provider
    assert prepared.safe_payload["openai_api_key"] == "***"
    result = await handler.run(request)
    assert key not in result.model_dump_json()
    assert key not in str(await context.store.read_bytes(result.artefacts[0].uri))
    with pytest.raises(ProviderError, match="is a secret"):
        await prepare("openai/gpt-image-1-mini", {"prompt": "x"}, {"openai_api_key": "sk-typed-in"})


async def test_missing_secret_is_auth_failed_before_any_request() -> None:
    context = JobContext(secrets=fake_secret_resolver({"OPENAI_API_KEY": ""}))
    request = make_job_request("replicate:openai/gpt-image-1-mini", inputs={"prompt": "a fox"})
    with pytest.raises(ProviderError) as caught:
        await context.handler(request).run(request)
    assert caught.value.code.value == "auth_failed"
    assert "OPENAI_API_KEY" in str(caught.value)
    assert context.client_requests == {}


@pytest.mark.parametrize(
    ("model", "inputs", "custom", "usd"),
    [
        ("bytedance/seedream-4", {"prompt": "p", "count": 4}, {}, 0.12),
        ("bytedance/seedance-1-lite", {"prompt": "p", "duration_seconds": 10}, {}, 0.36),
        (
            "bytedance/seedance-1-lite",
            {"prompt": "p", "duration_seconds": 10},
            {"resolution": "480p"},
            0.18,
        ),
        ("google/veo-3.1-fast", {"prompt": "p"}, {}, 1.2),
        ("google/veo-3.1-fast", {"prompt": "p"}, {"generate_audio": False}, 0.8),
        ("elevenlabs/music", {"prompt": "p", "duration_seconds": 60}, {}, 0.498),
        ("minimax/speech-02-hd", {"prompt": "x" * 1000}, {}, 0.1),
        ("stability-ai/stable-audio-2.5", {"prompt": "p"}, {}, 0.2),
    ],
    ids=[
        "per-output",
        "per-second-by-resolution-default",
        "per-second-480p",
        "veo-with-audio",
        "veo-without-audio",
        "music-per-second",
        "speech-per-char",
        "per-run",
    ],
)
async def test_cost_estimates_follow_the_declared_formula(
    model: str, inputs: dict[str, Any], custom: dict[str, Any], usd: float
) -> None:
    prepared = await prepare(model, inputs, custom)
    assert prepared.estimated_cost_usd == pytest.approx(usd)


async def test_fingerprint_depends_only_on_what_is_sent() -> None:
    context = JobContext()
    one = make_job_request(
        "replicate:bytedance/seedream-4", inputs={"prompt": "p", "aspect_ratio": "16:9"}
    )
    same = make_job_request(
        "replicate:bytedance/seedream-4", inputs={"prompt": "p"}, custom={"aspect_ratio": "16:9"}
    )
    other = make_job_request(
        "replicate:bytedance/seedream-4", inputs={"prompt": "q", "aspect_ratio": "16:9"}
    )
    handler = context.handler(one)
    fingerprints = [handler.fingerprint(await handler.prepare(r)) for r in (one, same, other)]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
