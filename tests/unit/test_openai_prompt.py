"""The OpenAI prompt producer in mock mode, and with a scripted text client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from producers.clients.base import TextRequest, TextResult
from producers.openai.prompt import split_answer
from producers.sdk import ErrorCode, ProviderError
from producers.sdk.jobs import Attachment
from producers.sdk.runtime import ClientContext, ClientRegistry
from producers.testing import JobContext, assert_artefact, make_job_request

SCRIPT_CONFIG: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "docs" / "examples" / "script.yaml").read_text()
)


async def test_text_output_in_mock_mode(tutopanda_context: JobContext) -> None:
    request = make_job_request(
        "openai:gpt-5-mini",
        inputs={"prompt": "volcanoes"},
        config={"system_prompt": "Be brief.", "user_prompt": "Explain {{ prompt }} in one line"},
    )
    result = await tutopanda_context.handler(request).run(request)
    (artefact,) = result.artefacts
    data = await assert_artefact(
        artefact,
        store=tutopanda_context.store,
        kind="inline",
        mime_prefix="text/plain",
        mocked=True,
    )
    assert artefact.id == "text[0]"
    assert data.decode() == artefact.value and "volcanoes" in artefact.value
    diagnostics = artefact.diagnostics
    assert diagnostics.payload is not None
    assert diagnostics.payload["input"] == "Explain volcanoes in one line"
    assert diagnostics.payload["instructions"] == "Be brief."
    assert diagnostics.usage["input_tokens"] > 0 and diagnostics.usage["output_tokens"] > 0
    assert diagnostics.estimated_cost_usd is not None and diagnostics.estimated_cost_usd > 0
    assert diagnostics.cost_usd == 0.0  # mocked: nothing paid


async def test_structured_output_splits_into_named_artefacts_and_collections(
    tutopanda_context: JobContext,
) -> None:
    request = make_job_request(
        "openai:gpt-5-mini", inputs={"prompt": "How volcanoes work"}, config=SCRIPT_CONFIG
    )
    result = await tutopanda_context.handler(request).run(request)
    ids = [a.id for a in result.artefacts]
    assert ids == [
        "script",
        "title",
        "narration[0]",
        "narration[1]",
        "narration[2]",
        "image_prompt[0]",
        "image_prompt[1]",
        "image_prompt[2]",
    ]
    script = result.get("script")
    assert script.mime_type == "application/json"
    jsonschema.validate(script.value, SCRIPT_CONFIG["json_schema"])
    assert result.get("narration[1]").value == script.value["segments"][1]["narration"]
    assert result.get("image_prompt[2]").value == script.value["segments"][2]["visual_description"]
    assert len({result.get(f"narration[{i}]").value for i in range(3)}) == 3
    payload = script.diagnostics.payload
    assert payload is not None
    assert payload["reasoning_effort"] == "low" and payload["max_output_tokens"] == 4000
    assert payload["json_schema"] == SCRIPT_CONFIG["json_schema"]
    assert payload["input"] == "Write a 3-segment explainer script about: How volcanoes work"


async def test_attachments_are_template_variables(tutopanda_context: JobContext) -> None:
    request = make_job_request(
        "openai:gpt-5-mini",
        inputs={"prompt": "lava"},
        config={"user_prompt": "Tone: {{ attachments['style.toml'].tone }}. Topic: {{ prompt }}"},
        attachments=(
            Attachment(name="style.toml", content='tone = "calm"\napi_key = "sk-should-not-show"'),
        ),
    )
    result = await tutopanda_context.handler(request).run(request)
    diagnostics = result.diagnostics
    assert (
        diagnostics.payload is not None
        and diagnostics.payload["input"] == "Tone: calm. Topic: lava"
    )
    (summary,) = diagnostics.attachments
    assert summary["content"] == {"tone": "calm", "api_key": "***"}


class ScriptedText:
    """A text client answering with a fixed text (to test what the producer does with answers)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.requests: list[TextRequest] = []

    async def generate(self, request: TextRequest) -> TextResult:
        self.requests.append(request)
        return TextResult(
            text=self.text,
            model="gpt-5-mini-2025-08-07",
            response_id="resp_1",
            usage={"input_tokens": 1000, "output_tokens": 500},
        )

    async def aclose(self) -> None:
        pass


def scripted(text: str) -> tuple[JobContext, ScriptedText]:
    client = ScriptedText(text)
    registry = ClientRegistry()

    def factory(context: ClientContext) -> ScriptedText:
        return client

    registry.register("openai", "mock", factory)
    return JobContext(clients=registry), client


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("not json at all", ["not JSON"]),
        ('{"title": "x"}', ["does not match its schema", "segments", "required"]),
        (
            '{"title": "x", "segments": [{"narration": "a", "visual_description": "b"}]}',
            ["does not match its schema", "too short"],
        ),
    ],
    ids=["not-json", "missing-field", "too-few-segments"],
)
async def test_answer_that_breaks_the_schema_is_malformed_output(
    answer: str, words: list[str]
) -> None:
    context, client = scripted(answer)
    request = make_job_request("openai:gpt-5-mini", inputs={"prompt": "p"}, config=SCRIPT_CONFIG)
    with pytest.raises(ProviderError) as caught:
        await context.handler(request).run(request)
    assert caught.value.code is ErrorCode.MALFORMED_OUTPUT
    assert caught.value.retryable is False
    for word in words:
        assert word in str(caught.value)
    assert len(client.requests) == 1


async def test_cost_comes_from_usage_and_the_snapshot_model_name() -> None:
    context, _ = scripted("An answer.")
    request = make_job_request("openai:gpt-5-mini", inputs={"prompt": "p"})
    result = await context.handler(request).run(request)
    # 1000 input tokens at $0.25/M plus 500 output tokens at $2/M, priced by the dated snapshot's base.
    assert result.diagnostics.cost_usd == 0.0  # mock mode: nothing paid, even with real usage
    assert result.diagnostics.usage == {"input_tokens": 1000, "output_tokens": 500}
    assert result.diagnostics.extra["answer_model"] == "gpt-5-mini-2025-08-07"
    from producers.openai.pricing import cost

    assert cost("gpt-5-mini-2025-08-07", 1000, 500) == pytest.approx(0.00125)
    assert cost("unknown-model", 1, 1) is None


def test_split_paths() -> None:
    answer = {"title": "T", "segments": [{"n": "a"}, {"n": "b"}]}
    assert split_answer(
        answer, {"all": ".", "t": "title", "n[]": "segments[*].n", "first": "segments[0].n"}
    ) == [("all", answer), ("t", "T"), ("n[0]", "a"), ("n[1]", "b"), ("first", "a")]
    with pytest.raises(ProviderError, match="no 'nope'"):
        split_answer(answer, {"x": "nope"})
    with pytest.raises(ProviderError, match="not a list"):
        split_answer(answer, {"x[]": "title[*]"})


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        (
            {"type": "object", "properties": {"a": {"$ref": "https://evil.example/s.json"}}},
            "refers outside itself",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "file:///etc/passwd"}}},
            "refers outside itself",
        ),
        (
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["n"],
                "properties": {"n": {"$ref": "#"}},
            },
            "cannot be answered",
        ),
    ],
    ids=["url-ref", "file-ref", "infinite-recursion"],
)
async def test_an_output_schema_that_reaches_outside_or_never_ends_is_invalid_input(
    tutopanda_context: JobContext, schema: dict[str, Any], words: str
) -> None:
    config = {"output": "json", "json_schema": schema, "strict": False}
    request = make_job_request("openai:gpt-5-mini", inputs={"prompt": "x"}, config=config)
    with pytest.raises(ProviderError) as caught:
        await tutopanda_context.handler(request).run(request)
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert words in caught.value.reason and len(caught.value.reason) < 1200
