"""Attacks through a prompt template: one expression that asks for gigabytes.

Templates come from trusted places only (options files, DAG authors, the CLI's user), but one
careless or hostile line must still not take the worker's memory. Each blow-up is refused
quickly, as one ``invalid_input`` error naming the template, with a small memory peak (measured
with ``tracemalloc``), before anything is requested.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from producers.cli.app import app
from producers.sdk.errors import ErrorCode, TemplateError
from producers.sdk.limits import TEMPLATE_MAX_OUTPUT_CHARS, TEMPLATE_MAX_SOURCE_CHARS
from producers.sdk.templates import render
from producers.testing.plugin import LiveFakes
from tests.security.conftest import blobs_in

#: Well under what any of these would take unchecked (0.5 to 100 GB).
PEAK_LIMIT = 50 * 1024 * 1024

# (id, template, words the refusal must contain)
BLOW_UPS: list[tuple[str, str, str]] = [
    ("repeat-string", "{{ 'x' * 500000000 }}", "'*' repetition"),
    ("repeat-string-reversed", "{{ 500000000 * 'x' }}", "'*' repetition"),
    ("repeat-list", "{{ ['x'] * 500000000 }}", "'*' repetition"),
    ("power", "{{ 2 ** 100000000 }}", "bits"),
    ("product-of-powers", "{% set n = 2 ** 90000 %}{{ n * n }}", "bits"),
    ("concat-tilde", "{% set a = 'x' * 900000 %}{{ a ~ a }}", "'~' concatenation"),
    ("concat-plus", "{% set a = 'x' * 900000 %}{{ a + a }}", "'+' concatenation"),
    (
        "doubling-loop",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "concatenation",
    ),
    ("filter-center", "{{ 'x'|center(500000000) }}", "center"),
    ("method-center", "{{ 'x'.center(500000000) }}", "str.center"),
    ("method-ljust", "{{ 'x'.ljust(500000000) }}", "str.ljust"),
    ("method-zfill", "{{ 'x'.zfill(500000000) }}", "str.zfill"),
    ("method-expandtabs", "{{ '\t'.expandtabs(500000000) }}", "expandtabs"),
    ("filter-indent", "{{ 'a\nb'|indent(500000000) }}", "indent"),
    ("filter-format", "{{ '%0500000000d'|format(1) }}", "format"),
    ("printf-width", "{{ '%0500000000d' % 1 }}", "format"),
    ("printf-precision", "{{ '%.500000000f' % 1.0 }}", "format"),
    ("printf-star", "{{ '%*d' % (500000000, 1) }}", "width"),
    ("str-format-width", "{{ '{:>500000000}'.format('x') }}", "format spec"),
    ("str-format-nested", "{{ '{:{}}'.format('x', 500000000) }}", "format spec"),
    ("str-format-map", "{{ '{x:>500000000}'.format_map({'x': 1}) }}", "format spec"),
    ("filter-wordwrap", "{{ 'a b c'|wordwrap(1, wrapstring='x' * 900000) }}", "wordwrap"),
    ("filter-replace", "{{ ('x' * 900000)|replace('', 'yy') }}", "replace"),
    ("method-replace", "{{ 'abc'.replace('', 'y' * 900000) }}", "replace"),
    ("method-translate", "{{ ('x' * 1000).translate({120: 'y' * 999999}) }}", "translate"),
    ("filter-join", "{{ range(100000)|join('x' * 900) }}", "join"),
    ("lazy-list", "{{ range(100000)|map('center', 999999)|list|length }}", "list"),
    ("shared-list", "{{ [range(100000)|list] * 1000 }}", "'*' repetition"),
    ("filter-batch", "{{ [1]|batch(500000000, 'x')|list }}", "batch"),
    ("filter-slice", "{{ [1]|slice(500000000)|list }}", "slice"),
    ("filter-tojson", "{{ {'a': [1]}|tojson(indent=500000000) }}", "tojson"),
    ("lipsum", "{{ lipsum(n=100000) }}", "lipsum"),
    (
        "exponential-macro",
        (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% else %}{{ 'x' * 1000 }}"
            "{% endif %}{% endmacro %}{{ f(40) }}"
        ),
        "block",
    ),
    ("many-outputs", "{{ 'x' * 100000 }}" * 11, "output would be longer"),
    ("output-loop", "{% for i in range(100000) %}{{ 'x' * 99 }}{% endfor %}", "output"),
]


@pytest.mark.parametrize(
    ("template", "words"), [c[1:] for c in BLOW_UPS], ids=[c[0] for c in BLOW_UPS]
)
def test_a_blow_up_is_refused_quickly_with_bounded_memory(template: str, words: str) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(TemplateError) as caught:
            render(template, {"topic": "volcanoes"}, name="user_prompt")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.0f} MB"
    error = caught.value
    assert error.code is ErrorCode.INVALID_INPUT and not error.retryable
    assert "'user_prompt'" in error.reason and words in error.reason
    assert "\n" not in error.reason


# (id, template, words the one-line refusal must contain)
FAILURES: list[tuple[str, str, str]] = [
    ("too-long-source", "x" * (TEMPLATE_MAX_SOURCE_CHARS + 1), "the limit is 100,000"),
    ("deep-parentheses", "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "cannot be compiled"),
    ("endless-recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
    ("division-by-zero", "{{ 1 / 0 }}", "ZeroDivisionError"),
    ("include", "{% include 'x' %}", "failed"),
    ("mutation", "{% set l = [] %}{{ l.append(1) }}", "not allowed"),
    ("private-attribute", "{{ ''.__class__.__mro__ }}", "not allowed"),
    ("syntax", "{{ topic ", "syntax error on line 1"),
    ("undefined", "{{ nope }}", "undefined variable 'nope'"),
]


@pytest.mark.parametrize(
    ("template", "words"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES]
)
def test_a_broken_template_is_one_clear_error(template: str, words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, {"topic": "volcanoes"}, name="user_prompt")
    assert "'user_prompt'" in caught.value.reason and words in caught.value.reason
    assert "\n" not in caught.value.reason


# (id, template, expected output): what prompt templates do keeps working.
LEGITIMATE: list[tuple[str, str, str]] = [
    ("variables", "About {{ topic }}.", "About volcanoes."),
    ("filters", "{{ topic|upper|center(12) }}|{{ [1, 2]|join(', ') }}", " VOLCANOES  |1, 2"),
    ("format", "{{ '{}: {:>4}'.format(topic, 7) }} {{ '%03d' % 7 }}", "volcanoes:    7 007"),
    ("repeat-small", "{{ '-' * 3 }}{{ [0] * 2 }}{{ 2 ** 10 }}", "---[0, 0]1024"),
    (
        "loops-and-macros",
        (
            "{% macro item(x) %}<{{ x }}>{% endmacro %}"
            "{% for i in range(3) %}{{ item(i) }}{% endfor %}"
        ),
        "<0><1><2>",
    ),
    (
        "namespace",
        (
            "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
            "{% endfor %}{{ ns.n }}"
        ),
        "6",
    ),
    ("tojson", "{{ {'a': [1, 2]}|tojson }}", '{"a": [1, 2]}'),
]


@pytest.mark.parametrize(
    ("template", "expected"), [c[1:] for c in LEGITIMATE], ids=[c[0] for c in LEGITIMATE]
)
def test_legitimate_templates_still_render(template: str, expected: str) -> None:
    assert render(template, {"topic": "volcanoes"}) == expected


def test_the_output_limit_is_exact_and_configurable() -> None:
    exact = "{{ 'x' * " + str(TEMPLATE_MAX_OUTPUT_CHARS) + " }}"
    assert len(render(exact, {})) == TEMPLATE_MAX_OUTPUT_CHARS
    with pytest.raises(TemplateError, match="longer than 10 characters"):
        render("{{ 'x' * 11 }}", {}, max_chars=10)


def test_a_template_blow_up_in_a_cli_config_requests_nothing(
    live_fakes: LiveFakes, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("user_prompt = \"{{ 'x' * 500000000 }}\"\n")
    store = tmp_path / "store"
    result = CliRunner().invoke(
        app,
        [
            "produce",
            "openai:gpt-5-mini",
            "--config",
            str(config),
            "--set",
            "prompt=volcanoes",
            "--mode",
            "live",
            "--store",
            str(store),
        ],
    )
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "user_prompt" in lines[0] and "repetition" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert live_fakes.openai.count() == 0
    assert blobs_in(store) == []
