"""Every declared model, in mock mode, makes media that real decoders open with the promised
kind and shape (PNG dimensions match the aspect ratio, WAV duration matches, MP4 has video)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from producers.registry import default_registry
from producers.replicate.catalogue import Catalogue
from producers.replicate.shape import media_hints
from producers.sdk.media import probe
from producers.storage.local import LocalStore
from producers.testing import JobContext, assert_artefact, make_job_request

pytestmark = pytest.mark.integration

CATALOGUE = Catalogue.load()
MODELS = CATALOGUE.models()


def test_catalogue_has_every_shared_model() -> None:
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "models"
    if not shared.is_dir():
        pytest.skip("shared/models is not beside the checkout")
    import json

    names = {json.loads(p.read_text())["model"] for p in shared.rglob("*.json")}
    assert names <= set(MODELS), sorted(names - set(MODELS))
    assert {"google/imagen-4", "tencent/hunyuan-image-3"} <= set(MODELS)


def _inputs(model: str) -> dict[str, object]:
    declaration = CATALOGUE.get(model)
    assert declaration is not None
    inputs: dict[str, object] = {"prompt": f"Mock test of {model}: a volcano erupting"}
    if "aspect_ratio" in declaration.mapping:
        inputs["aspect_ratio"] = "16:9"
    if "duration_seconds" in declaration.mapping and declaration.output.media != "image":
        inputs["duration_seconds"] = 6
    image = declaration.mapping.get("image")
    if image is not None and image.targets[0] in declaration.required:
        inputs["image"] = "https://example.invalid/start-frame.png"
    return inputs


# Text-to-text models make no media: tests/unit/test_replicate_outputs.py runs them in mock mode.
@pytest.mark.parametrize("model", CATALOGUE.models(domain="media"))
async def test_model_makes_decodable_media_in_mock_mode(model: str, tmp_path: Path) -> None:
    declaration = CATALOGUE.get(model)
    assert declaration is not None
    store = LocalStore(tmp_path / "store")
    context = JobContext(registry=default_registry(), store=store)
    request = make_job_request(f"replicate:{model}", inputs=_inputs(model))
    result = await context.handler(request).run(request)
    assert result.artefacts, "no artefact"
    payload = result.diagnostics.payload
    assert payload is not None
    hints = media_hints(declaration, payload)
    assert len(result.artefacts) == hints.count
    for artefact in result.artefacts:
        data = await assert_artefact(
            artefact,
            store=store,
            kind="blob",
            mime_prefix=f"{declaration.output.media}/",
            mocked=True,
        )
        path = await store.local_path(artefact.uri)
        if declaration.output.media == "image":
            width, height = Image.open(io.BytesIO(data)).size
            if hints.aspect_ratio:
                w, h = (float(x) for x in hints.aspect_ratio.split(":"))
                assert width / height == pytest.approx(w / h, rel=0.02), (
                    width,
                    height,
                    hints.aspect_ratio,
                )
            elif hints.width and hints.height:
                assert width / height == pytest.approx(hints.width / hints.height, rel=0.02)
        elif declaration.output.media == "audio":
            info = probe(path)
            assert info.has_audio and not info.has_video
            assert hints.duration_seconds is not None
            assert info.duration_seconds == pytest.approx(hints.duration_seconds, abs=0.1)
        else:
            info = probe(path)
            assert info.has_video and info.video_codec == "h264"
            assert hints.duration_seconds is not None
            assert info.duration_seconds == pytest.approx(hints.duration_seconds, abs=0.2)
    if "duration_seconds" in declaration.mapping and declaration.output.media != "image":
        # The request asked for 6 s; the model's field shows it, possibly snapped to what is allowed.
        assert hints.duration_seconds is not None and hints.duration_seconds > 0
