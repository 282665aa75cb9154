"""A stored mock run for the UI tests: real blobs in a local store, a manifest, job records."""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from dataclasses import dataclass
from typing import Any

from PIL import Image

from airflow_provider_tutopanda.movie_tasks import manifest_run_id
from airflow_provider_tutopanda.ui.runs import RunInfo
from producers.storage import LocalStore

DAG = "tutopanda_movie"
RUN = "manual__2026-01-02T03:04:05+00:00"
#: Planted where a careless page would print it: none of these may appear in a response.
SECRETS = ("hunter2-planted-password", "r8_planted_api_token_123")


def png(width: int = 64, height: int = 36) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def wav(seconds: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        frames = int(8000 * seconds)
        out.writeframes(
            b"".join(struct.pack("<h", int(3000 * math.sin(i / 5))) for i in range(frames))
        )
    return buffer.getvalue()


def artefact(stored: Any, artefact_id: str, **diagnostics: Any) -> dict[str, Any]:
    return {
        "id": artefact_id,
        "kind": "blob",
        "mime_type": stored.mime_type,
        "uri": stored.uri,
        "size": stored.size,
        "sha256": stored.sha256,
        "value": None,
        "diagnostics": {
            "producer": "replicate-media",
            "model": "bytedance/seedream-4",
            "mocked": True,
            "duration_ms": 1234.0,
            "estimated_cost_usd": 0.03,
            "cost_usd": 0.0,
            "payload": {"prompt": "a red panda", "api_token": SECRETS[1]},
            "prompt": "a red panda",
            **diagnostics,
        },
    }


def record(key: str, role: str, segment: int | None, artefacts: list, **more: Any) -> dict:
    return {
        "job_id": f"job-{key}",
        "model_id": "replicate:bytedance/seedream-4",
        "mode": "mock",
        "status": "succeeded",
        "key": key,
        "role": role,
        "segment": segment,
        "reused": False,
        "attempts": 1,
        "inputs": {},
        "custom": {},
        "artefacts": artefacts,
        "error": None,
        **more,
    }


@dataclass
class StoredRun:
    """What :func:`stored_run` made."""

    store: LocalStore
    manifest: dict[str, Any]
    image: dict[str, Any]
    movie_bytes: bytes


async def stored_run(store: LocalStore) -> StoredRun:
    """A finished mock run of ``tutopanda_movie`` with a failed image, in ``store``."""
    image = await store.put_bytes(png(), mime_type="image/png")
    narration = await store.put_bytes(wav(), mime_type="audio/wav")
    movie_bytes = bytes(range(256)) * 40
    movie = await store.put_bytes(movie_bytes, mime_type="video/mp4")
    script_value = {"title": "Red pandas", "segments": [{"narration": "Fur."}]}
    script = await store.put_bytes(json.dumps(script_value).encode(), mime_type="application/json")
    timeline = {
        "title": "Red pandas",
        "segments": [
            {
                "index": 0,
                "start": 0.0,
                "duration": 1.0,
                "visual_uri": image.uri,
                "visual_kind": "image",
                "narration_uri": narration.uri,
                "narration_text": "Fur.",
            }
        ],
        "music_uri": None,
    }
    timeline_blob = await store.put_bytes(
        json.dumps(timeline).encode(), mime_type="application/json"
    )
    script_artefact = artefact(script, "script")
    script_artefact.update(kind="inline", value=script_value)
    image_record = record(
        "image[0]",
        "image",
        0,
        [artefact(image, "image")],
        passed_over=[
            {
                "model_id": "replicate:google/nano-banana",
                "code": "provider_unavailable",
                "reason": "The service is temporarily unavailable.",
                "status_code": 503,
                "provider_job_id": None,
            }
        ],
    )
    failed = record(
        "image[1]",
        "image",
        1,
        [],
        status="failed",
        error={
            "code": "safety_blocked",
            "reason": "The prompt was flagged by the provider's safety filter",
            "provider": "replicate",
            "model": "bytedance/seedream-4",
            "producer": "replicate-media",
            "prompt": "a scary red panda",
            "status_code": 200,
            "provider_job_id": "pred-7f3a",
            "hint": "the provider's safety filter refused the prompt; change the prompt",
            "raw": {"status": "failed", "detail": "NSFW <script>alert(1)</script> detected"},
        },
    )
    manifest = {
        "manifest_version": 1,
        "run_id": manifest_run_id(RUN),
        "client": "airflow",
        "command": DAG,
        "parameters": {"topic": "Red pandas", "segments": 2, "password": SECRETS[0]},
        "outputs": {"movie": movie.uri, "timeline": timeline_blob.uri, "duration": 1.0},
        "jobs": [
            record("script", "script", None, [script_artefact]),
            image_record,
            failed,
            record(
                "narration[0]",
                "narration",
                0,
                [
                    artefact(
                        narration,
                        "narration",
                        estimated_cost_usd=0.0421,
                        estimated_cost_upper_bound=True,
                    )
                ],
            ),
        ],
    }
    await store.write_manifest(manifest_run_id(RUN), manifest)
    return StoredRun(store=store, manifest=manifest, image=image_record, movie_bytes=movie_bytes)


class FakeRuns:
    """A :class:`RunSource` over a dict, instead of Airflow's metadata DB."""

    def __init__(
        self,
        runs: dict[tuple[str, str], RunInfo],
        records: dict | None = None,
        values: dict[tuple[str, str, str, str], Any] | None = None,
    ) -> None:
        self.runs = runs
        self.records = records or {}
        #: XComs by ``(dag_id, run_id, task_id, key)``.
        self.values = values or {}

    def get_run(self, dag_id: str, run_id: str) -> RunInfo | None:
        return self.runs.get((dag_id, run_id))

    def job_records(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.records.get((dag_id, run_id), []))

    def return_value(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value"
    ) -> Any:
        return self.values.get((dag_id, run_id, task_id, key))

    def recent_runs(self, dag_ids: Any, limit: int) -> list[RunInfo]:
        wanted = set(dag_ids)
        return [r for (d, _), r in self.runs.items() if d in wanted][:limit]
