"""Attacks through the files and values a person gives the CLI: each is one clear line.

A YAML alias bomb, a file that is not UTF-8, a ``$ref`` cycle, JSON nested a hundred thousand
levels, a folder where a file belongs, a number that is infinity: each is refused through the
real CLI with exit code 2 and exactly one ``error:`` line on stderr, no traceback, no request
to either provider (the CLI runs in ``--mode live`` against the fakes) and no blob in the
store.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.registry import default_registry
from producers.testing.plugin import LiveFakes
from tests.security.conftest import blobs_in

pytestmark = pytest.mark.integration
runner = CliRunner()

SEEDREAM = "replicate:bytedance/seedream-4"
SEEDANCE = "replicate:bytedance/seedance-1-lite"
SD = "replicate:stability-ai/stable-diffusion"
GPT = "openai:gpt-5-mini"
REF = "#/components/schemas/"

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)
#: The bomb as an options file: a role whose custom attributes hold 10**9 values.
OPTIONS_BOMB = "lol:\n  " + BILLION_LAUGHS.replace("\n", "\n  ") + "\nimage:\n  custom: *i\n"
DEEP_JSON = "[" * 100_000 + "]" * 100_000
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _declaration(model: str, **fields: Any) -> dict[str, Any]:
    return {
        "model": model,
        "kind": "text-to-image",
        "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}}},
        "output": {"media": "image"},
        "mapping": {"prompt": {"field": "prompt"}},
        **fields,
    }


# A case builds its files under a folder and returns the CLI's arguments (store excepted).
Build = Callable[[Path], list[str]]


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _produce(model: str, *args: str) -> list[str]:
    return ["produce", model, "--set", "prompt=a red panda", *args, "--mode", "live"]


def _movie(*args: str) -> list[str]:
    return ["movie", "--topic", "volcanoes", "--segments", "1", *args, "--mode", "live"]


def _models(folder: Path, declaration: str | bytes) -> list[str]:
    _write(folder / "models" / "acme" / "pic.json", declaration)
    return _produce(SEEDREAM)


# (id, build, words the error line must contain)
CASES: list[tuple[str, Build, list[str]]] = [
    (
        "config-alias-bomb",
        lambda d: _produce(GPT, "--config", str(_write(d / "c.yaml", BILLION_LAUGHS))),
        ["config", "c.yaml", "more than 100,000 values", "alias"],
    ),
    (
        "config-non-utf8",
        lambda d: _produce(GPT, "--config", str(_write(d / "c.yaml", b"user_prompt: caf\xe9"))),
        ["config", "c.yaml", "not UTF-8", "offset 16"],
    ),
    (
        "config-deep-json",
        lambda d: _produce(GPT, "--config", str(_write(d / "c.json", DEEP_JSON))),
        ["config", "c.json", "deeper than 64 levels"],
    ),
    (
        "config-folder",
        lambda d: _produce(GPT, "--config", str((d / "c.json").mkdir() or d / "c.json")),
        ["config", "is a folder", "JSON or TOML or YAML"],
    ),
    (
        "config-over-cap",
        lambda d: _produce(GPT, "--config", str(_write(d / "c.json", " " * (1024 * 1024 + 1)))),
        ["config", "the limit is 1.00 MiB"],
    ),
    (
        "config-binary-garbage",
        lambda d: _produce(GPT, "--config", str(_write(d / "c.toml", bytes(range(256)) * 8))),
        ["config", "not UTF-8", "offset 128"],
    ),
    (
        "config-schema-asks-for-gigabytes",
        lambda d: _produce(
            GPT,
            "--config",
            str(
                _write(
                    d / "c.json",
                    json.dumps(
                        {
                            "output": "json",
                            "strict": False,
                            "json_schema": {"type": "array", "minItems": 10**8},
                        }
                    ),
                )
            ),
        ),
        ["json_schema", "more than 1,000,000 items"],
    ),
    (
        "attach-folder",
        lambda d: _produce(GPT, "--attach", str(d)),
        ["attachment", "is a folder", "JSON, TOML or text file"],
    ),
    (
        "attach-non-utf8",
        lambda d: _produce(GPT, "--attach", str(_write(d / "tone.txt", b"\xff\xfe\x00"))),
        ["attachment", "tone.txt", "UTF-16 byte-order mark"],
    ),
    (
        "attach-deep-json",
        lambda d: _produce(GPT, "--attach", str(_write(d / "a.json", DEEP_JSON))),
        ["model openai:gpt-5-mini", "attachment 'a.json'", "deeper than 64"],
    ),
    (
        "set-count-overflow",
        lambda d: _produce(SEEDREAM, "--set", "count=1e999"),
        ["--set count is inf", "finite"],
    ),
    ("set-count-nan", lambda d: _produce(SEEDREAM, "--set", "count=NaN"), ["--set count is nan"]),
    (
        "set-count-out-of-range",
        lambda d: _produce(SEEDREAM, "--set", "count=99"),
        ["count=99", "max_images", "from 1 to 15", "never adjusted"],
    ),
    (
        "set-count-negative",
        lambda d: _produce(SEEDREAM, "--set", "count=-4"),
        ["count=-4", "at least 1"],
    ),
    (
        "set-count-huge-integer",
        lambda d: _produce(SEEDREAM, "--set", "count=" + "9" * 5000),
        ["--set count", "more than 4300 digits"],
    ),
    (
        "custom-infinity",
        lambda d: _produce(SEEDREAM, "--custom", "max_images=-Infinity"),
        ["--custom max_images is -inf"],
    ),
    (
        "custom-deep-json",
        lambda d: _produce(SEEDREAM, "--custom", "image_input=" + "[" * 5000),
        ["--custom image_input", "deeper than 64"],
    ),
    (
        "seed-of-309-digits",
        lambda d: _produce(SD, "--set", "seed=1e308"),
        ["input.seed", "1025-bit integer", "64-bit"],
    ),
    (
        "aspect-ratio-infinite",
        lambda d: _produce(SD, "--set", "aspect_ratio=1e999:1"),
        ["aspect_ratio", "W:H"],
    ),
    (
        "file-folder",
        lambda d: _produce(SEEDANCE, "--file", f"image={d}"),
        ["--file image", "is a folder"],
    ),
    (
        "file-not-an-image",
        lambda d: _produce(SEEDANCE, "--file", f"image={_write(d / 'x.png', 'secret text')}"),
        ["--file image", "not an image file", "text/plain"],
    ),
    (
        "file-not-a-file-field",
        lambda d: _produce(SEEDANCE, "--file", f"prompt={_write(d / 'p.txt', 'x')}"),
        ["'prompt' is not a file field", "image, last_frame_image"],
    ),
    (
        "declaration-non-utf8",
        lambda d: _models(
            d,
            json.dumps(_declaration("acme/pic", description="caf\xe9"), ensure_ascii=False).encode(
                "latin-1"
            ),
        ),
        ["model declaration", "pic.json", "not UTF-8"],
    ),
    (
        "declaration-ref-cycle",
        lambda d: _models(
            d,
            json.dumps(
                _declaration(
                    "acme/pic",
                    input_schema={"type": "object", "properties": {"prompt": {"$ref": REF + "A"}}},
                    schema_components={
                        "A": {"allOf": [{"$ref": REF + "B"}]},
                        "B": {"$ref": REF + "A"},
                    },
                )
            ),
        ),
        ["pic.json", f"$ref cycle: {REF}A -> {REF}B -> {REF}A"],
    ),
    (
        "declaration-deep-json",
        lambda d: _models(d, DEEP_JSON),
        ["model declaration", "pic.json", "deeper than 64"],
    ),
    (
        "options-alias-bomb",
        lambda d: _movie("--options", str(_write(d / "o.yaml", OPTIONS_BOMB))),
        ["options file", "o.yaml", "more than 100,000 values"],
    ),
    (
        "options-non-utf8",
        lambda d: _movie("--options", str(_write(d / "o.yaml", b"image:\n  model: \xe9"))),
        ["options file", "not UTF-8", "offset 16 (line 2)"],
    ),
    (
        "options-deep",
        lambda d: _movie("--options", str(_write(d / "o.yaml", "image: " + "[" * 5000))),
        ["options file", "deeper than 64 levels"],
    ),
    (
        "options-infinity",
        lambda d: _movie("--options", str(_write(d / "o.yaml", "image:\n  inputs: {count: .inf}"))),
        ["options file", "image.inputs.count is inf"],
    ),
    (
        "override-count-overflow",
        lambda d: _movie("--set", "image.inputs.count=1e999"),
        ["override image.inputs.count is inf", "finite"],
    ),
    (
        "override-too-deep",
        lambda d: _movie("--set", "image" + ".a" * 5000 + "=1"),
        ["has 5001 keys; at most 64"],
    ),
    (
        "concurrency-overflow",
        lambda d: _movie("--concurrency", "replicate=1e999"),
        ["--concurrency replicate is inf"],
    ),
    (
        "role-of-the-wrong-kind",
        lambda d: _movie("--set", f"image.model={GPT}"),
        ["image.model", "text-to-text model", "needs text-to-image"],
    ),
    (
        "import-deep-json",
        lambda d: ["models", "import", str(_write(d / "m.json", DEEP_JSON)), "--into", str(d)],
        ["model metadata", "deeper than 64"],
    ),
    (
        "import-folder",
        lambda d: ["models", "import", str(d), "--into", str(d / "out")],
        ["model metadata", "is a folder", "JSON file"],
    ),
]


@pytest.fixture
def models_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``TUTOPANDA_MODELS_PATH`` pointing at a folder of the test's own; when a case puts a
    declaration there, the process's registry is read again (and again after the test)."""
    folder = tmp_path / "files" / "models"
    folder.mkdir(parents=True)
    monkeypatch.setenv("TUTOPANDA_MODELS_PATH", str(folder))
    yield folder
    if any(folder.iterdir()):
        monkeypatch.delenv("TUTOPANDA_MODELS_PATH")
        default_registry.cache_clear()


@pytest.mark.parametrize(("build", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_file_or_value_is_one_line_and_no_request(
    live_fakes: LiveFakes,
    models_path: Path,
    tmp_path: Path,
    build: Build,
    words: list[str],
) -> None:
    store = tmp_path / "store"
    args = build(models_path.parent)
    if any(models_path.iterdir()):
        default_registry.cache_clear()
    if args[0] != "models":
        args += ["--store", str(store)]
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = runner.invoke(app, args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stdout + result.stderr
    assert live_fakes.replicate.count() == 0 and live_fakes.openai.count() == 0
    assert blobs_in(store) == []
    assert time.monotonic() - started < 20
    assert peak < 200 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_a_local_file_for_a_file_field_goes_through_the_store(
    live_fakes: LiveFakes, tmp_path: Path
) -> None:
    """The legitimate way to send one's own image: ``--file image=PATH`` stores it and the
    prediction gets it inline, never as a path."""
    photo = _write(tmp_path / "photo.png", PNG)
    store = tmp_path / "store"
    result = runner.invoke(
        app,
        [
            *_produce(SEEDANCE, "--file", f"image={photo}", "--json"),
            "--store",
            str(store),
        ],
    )
    assert result.exit_code == 0, result.stderr
    (create,) = [r for r in live_fakes.replicate.requests if r.route == "create"]
    assert create.json["input"]["image"].startswith("data:image/png;base64,")
    assert str(tmp_path) not in json.dumps(create.json)
    assert any(p.read_bytes() == PNG for p in blobs_in(store))
