"""LLMs on Replicate, live through the official client against the fake: token lists joined,
structured answers validated, object outputs of media models, a whole movie on Replicate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.clients import default_client_registry
from producers.pipeline.steps import parse_script, script_schema
from producers.replicate.declaration import load_declaration
from producers.replicate.shape import schema_in_prompt
from producers.sdk import ErrorCode, ProviderError
from producers.testing import JobContext, fake_secret_resolver, make_job_request
from producers.testing.fakes import FAKE_TOKEN, FakeReplicate, Fault
from producers.testing.plugin import LiveFakes

pytestmark = pytest.mark.integration
runner = CliRunner()
LLAMA = "meta/meta-llama-3-8b-instruct"
SEEDREAM = "bytedance/seedream-4"


@pytest.fixture
def replicate_fake(live_fakes: LiveFakes) -> FakeReplicate:
    return live_fakes.replicate


async def run_live(model_id: str, **fields: Any) -> Any:
    context = JobContext(
        clients=default_client_registry(),
        secrets=fake_secret_resolver({"REPLICATE_API_TOKEN": FAKE_TOKEN}),
    )
    request = make_job_request(model_id, mode="live", **fields)
    deps = context.deps()
    deps.poll_interval = 0.01
    handler = context.registry.resolve(request.descriptor, "live", deps)
    return await handler.run(request)


def script_config(segments: int) -> dict[str, Any]:
    return {
        "system_prompt": "You write scripts for short explainer movies.",
        "user_prompt": "Write a {{ segments }}-segment script about {{ topic }}",
        "output": "json",
        "schema_name": "script",
        "json_schema": script_schema(segments),
        "split": {"script": "."},
        "reasoning_effort": "low",  # an OpenAI option: ignored here, with a warning
        "max_output_tokens": 3000,
    }


def predictions_of(fake: FakeReplicate, model: str) -> list[dict[str, Any]]:
    found = [fake.prediction(pid) for pid in fake.prediction_ids]
    return [p for p in found if p["model"] == model]


async def test_structured_answer_from_tokens_is_validated_and_split(
    replicate_fake: FakeReplicate,
) -> None:
    result = await run_live(
        f"replicate:{LLAMA}",
        inputs={"prompt": "Tides"},
        custom={"topic": "Tides", "segments": 3, "temperature": 0.2},
        config=script_config(3),
    )
    (artefact,) = result.artefacts
    assert artefact.id == "script" and artefact.mime_type == "application/json"
    script = parse_script(artefact.value, 3)
    assert len(script.segments) == 3
    assert any("reasoning_effort" in w and "ignores" in w for w in result.diagnostics.warnings)
    (prediction,) = predictions_of(replicate_fake, LLAMA)
    # What Replicate saw: the rendered prompts, the schema in the system prompt, the token cap
    # in the model's own field, a model option passed through; no template variable.
    sent = prediction["input"]
    assert sent["prompt"] == "Write a 3-segment script about Tides"
    assert sent["system_prompt"].startswith("You write scripts for short explainer movies.")
    assert schema_in_prompt(sent["system_prompt"]) == script_schema(3)
    assert sent["max_tokens"] == 3000 and sent["temperature"] == 0.2
    assert not {"topic", "segments", "reasoning_effort"} & set(sent)
    # Replicate answered as an LLM does: a list of tokens, joined by the producer.
    assert isinstance(prediction["output"], list) and len(prediction["output"]) > 3
    assert json.loads("".join(prediction["output"])) == artefact.value


async def test_text_answer_is_the_tokens_joined(replicate_fake: FakeReplicate) -> None:
    replicate_fake.inject(
        Fault.output("A misty", " harbour", " at dawn,", " soft light."), route="create"
    )
    result = await run_live(f"replicate:{LLAMA}", inputs={"prompt": "A harbour"})
    (artefact,) = result.artefacts
    assert artefact.mime_type.startswith("text/plain")
    assert artefact.value == "A misty harbour at dawn, soft light."


async def test_answer_in_prose_and_a_fence_is_extracted(replicate_fake: FakeReplicate) -> None:
    answer = {"title": "Tides", "segments": [{"narration": "n", "visual_description": "v"}]}
    replicate_fake.inject(
        Fault.output("Sure! Here is your script:\n```json\n", json.dumps(answer), "\n```\nEnjoy."),
        route="create",
    )
    result = await run_live(
        f"replicate:{LLAMA}",
        inputs={"prompt": "Tides"},
        custom={"topic": "Tides", "segments": 1},
        config=script_config(1),
    )
    assert result.artefacts[0].value == answer


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault.output("I cannot", " write that", " as JSON."), "holds no JSON value"),
        (Fault.output('{"title": "Tides", "segments": [}'), "holds no JSON value"),
        (Fault.output('{"title": "Tides"}'), "does not match its schema"),
        (Fault.object_output({"title": 7, "segments": []}), "does not match its schema"),
    ],
)
async def test_a_bad_structured_answer_is_malformed_and_retryable(
    replicate_fake: FakeReplicate, fault: Fault, words: str
) -> None:
    replicate_fake.inject(fault, route="create")
    with pytest.raises(ProviderError) as caught:
        await run_live(
            f"replicate:{LLAMA}",
            inputs={"prompt": "Tides"},
            custom={"topic": "Tides", "segments": 2},
            config=script_config(2),
        )
    error = caught.value
    assert error.code is ErrorCode.MALFORMED_OUTPUT and error.retryable, error
    assert words in str(error)
    assert len(predictions_of(replicate_fake, LLAMA)) == 1  # one paid request, no hidden retry


async def test_object_output_of_a_media_model_gives_its_urls(
    replicate_fake: FakeReplicate,
) -> None:
    first = await run_live(f"replicate:{SEEDREAM}", inputs={"prompt": "A volcano"})
    (made,) = predictions_of(replicate_fake, SEEDREAM)
    url = made["output"][0] if isinstance(made["output"], list) else made["output"]
    replicate_fake.inject(
        Fault.object_output({"seed": 42, "images": [url], "nsfw": [False]}), route="create"
    )
    second = await run_live(f"replicate:{SEEDREAM}", inputs={"prompt": "A volcano"})
    (artefact,) = second.artefacts
    assert artefact.mime_type.startswith("image/")
    assert artefact.sha256 == first.artefacts[0].sha256  # the file the object pointed at


async def test_object_output_without_a_url_is_refused_naming_keys_not_values(
    replicate_fake: FakeReplicate,
) -> None:
    secret = "sig-0123456789abcdef"
    replicate_fake.inject(
        Fault.object_output({"seed": 42, "status_note": secret, "nsfw": False}), route="create"
    )
    with pytest.raises(ProviderError) as caught:
        await run_live(f"replicate:{SEEDREAM}", inputs={"prompt": "A volcano"})
    error = caught.value
    assert error.code is ErrorCode.MALFORMED_OUTPUT and not error.retryable
    assert "'seed'" in str(error) and "'status_note'" in str(error)
    assert secret not in json.dumps(error.to_dict())


def test_whole_movie_runs_live_with_script_and_image_prompts_on_a_replicate_llm(
    live_fakes: LiveFakes, tmp_path: Path
) -> None:
    replicate_fake, openai_fake = live_fakes
    result = runner.invoke(
        app,
        [
            "movie",
            "--topic",
            "How tides work",
            "--segments",
            "2",
            "--mode",
            "live",
            "--store",
            str(tmp_path),
            "--json",
            "--set",
            f"script.model=replicate:{LLAMA}",
            "--set",
            f"image_prompt.model=replicate:{LLAMA}",
        ],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["movie"] and data["summary"]["failed"] == 0
    by_id = {a["id"]: a for a in data["artefacts"]}
    script = parse_script(by_id["script"]["value"], 2)
    assert len(script.segments) == 2
    llm = predictions_of(replicate_fake, LLAMA)
    assert len(llm) == 1 + 2  # the script, then one image prompt per segment
    assert all(p["status"] == "succeeded" and isinstance(p["output"], list) for p in llm)
    assert sum(schema_in_prompt(p["input"].get("system_prompt", "")) is not None for p in llm) == 1
    assert openai_fake.requests == []  # the whole movie ran on one provider


def test_models_import_of_an_llm_writes_a_text_to_text_declaration(tmp_path: Path) -> None:
    shipped = load_declaration(
        Path(__file__).resolve().parents[2]
        / "producers/replicate/models/meta/meta-llama-3-8b-instruct.json"
    )
    metadata = {
        "owner": "acme",
        "name": "chat-8b",
        "description": "An 8 billion parameter chat model",
        "latest_version": {
            "id": "0" * 64,
            "openapi_schema": {
                "components": {
                    "schemas": {
                        "Input": shipped.input_schema,
                        "Output": {
                            "type": "array",
                            "items": {"type": "string"},
                            "title": "Output",
                            "x-cog-array-type": "iterator",
                            "x-cog-array-display": "concatenate",
                        },
                    }
                }
            },
        },
        "default_example": {"output": ["Hello", "!"], "metrics": {"predict_time": 0.8}},
    }
    source = tmp_path / "chat.json"
    source.write_text(json.dumps(metadata), encoding="utf-8")
    result = runner.invoke(
        app, ["models", "import", str(source), "--into", str(tmp_path / "out"), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert report["kind"] == "text-to-text"
    declaration = load_declaration(report["written"])
    assert declaration.output.media == "text"
    assert declaration.output.system_field == "system_prompt"
    assert declaration.output.max_tokens_field == "max_tokens"
    assert declaration.mapping["prompt"].field == "prompt"


def test_the_script_falls_back_from_openai_to_the_replicate_llm(
    live_fakes: LiveFakes, tmp_path: Path
) -> None:
    replicate_fake, openai_fake = live_fakes
    openai_fake.inject(Fault.status(503), route="responses", times=50)
    result = runner.invoke(
        app,
        [
            "movie",
            "--topic",
            "How tides work",
            "--segments",
            "2",
            "--mode",
            "live",
            "--retries",
            "0",
            "--store",
            str(tmp_path),
            "--json",
            "--set",
            f"script.fallbacks=replicate:{LLAMA}",
            "--set",
            f"image_prompt.fallbacks=replicate:{LLAMA}",
        ],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    by_id = {a["id"]: a for a in data["artefacts"]}
    # The role's own config (OpenAI's reasoning_effort and all) served the fallback as it is.
    assert len(parse_script(by_id["script"]["value"], 2).segments) == 2
    (passed,) = by_id["script"]["passed_over"]
    assert passed["model_id"] == "openai:gpt-5-mini" and passed["code"] == "provider_unavailable"
    assert len(predictions_of(replicate_fake, LLAMA)) == 1 + 2
    assert data["summary"]["fallbacks"] == 3
