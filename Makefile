# Set-up, tests and checks. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin
STORE ?= tutopanda-store
TOPIC ?= How volcanoes work
SEGMENTS ?= 3

.PHONY: help setup test test-real test-unit lint format movie movie-cli ui demo bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup:  ## Install uv if missing, then the locked environment into .venv/
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --locked --all-extras

.PHONY: install-system
install-system:  ## Install the locked `airflow` extra and tutopanda into the `python` on PATH, no .venv (docker/Dockerfile runs this)
	uv export --locked --extra airflow --no-dev --no-emit-project --quiet --output-file /tmp/tutopanda-requirements.txt && uv pip install --python python --requirement /tmp/tutopanda-requirements.txt .

test: setup  ## Run the test suite (unit, integration, airflow), as CI does
	$(BIN)/pytest -q

test-real: setup  ## Opt-in, paid (a few cents): one real OpenAI response, one Replicate prediction, one cancel; needs OPENAI_API_KEY and REPLICATE_API_TOKEN
	TUTOPANDA_REAL_API=1 $(BIN)/pytest -q -rs tests/real_api

test-unit: setup  ## Run the fast unit tests only
	$(BIN)/pytest -q tests/unit

lint: setup  ## ruff (lint + format check) and mypy --strict on producers/ and airflow_provider_tutopanda/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

movie: setup  ## The main job: the tutopanda_movie DAG on an embedded Airflow (SQLite), mock mode
	TUTOPANDA_STORE=$(STORE) $(BIN)/python -m airflow_provider_tutopanda.run_local \
		--topic "$(TOPIC)" --segments $(SEGMENTS) --mode mock

UI_PORT ?= 8080

ui: setup  ## The Airflow UI on the `make movie` setup (standalone, SQLite); prints the URL and login (UI_PORT=8080)
	TUTOPANDA_STORE=$(STORE) $(BIN)/python -m airflow_provider_tutopanda.run_ui --port $(UI_PORT)

movie-cli: setup  ## The same movie with the CLI client (no Airflow), mock mode
	$(BIN)/tutopanda movie --topic "$(TOPIC)" --segments $(SEGMENTS) --mode mock --store $(STORE)

demo: setup  ## Single producers in mock mode: a script, then an image
	$(BIN)/tutopanda produce openai:gpt-5-mini --config docs/examples/script.yaml \
		--set prompt="How volcanoes work" --store $(STORE)
	$(BIN)/tutopanda produce replicate:bytedance/seedream-4 --store $(STORE) \
		--set prompt="Cross-section of an erupting volcano, textbook illustration" --set aspect_ratio=16:9

BENCH_OUT ?= /tmp/tutopanda-bench

bench: setup  ## Benchmarks, not tests (~8 min): SDK overhead, 512 MiB download memory, movie vs ideal, DAG parse vs stock operators, quick Airflow deferral, 500 triggers on one triggerer
	@mkdir -p $(BENCH_OUT) && rm -f $(BENCH_OUT)/sdk_overhead.json $(BENCH_OUT)/download_memory.json
	$(BIN)/python -m benchmarks.sdk_overhead --json $(BENCH_OUT)/sdk_overhead.json
	$(BIN)/python -m benchmarks.download_memory --json $(BENCH_OUT)/download_memory.json
	$(BIN)/python -m benchmarks.movie_concurrency --json $(BENCH_OUT)/movie_concurrency.json
	$(BIN)/python -m benchmarks.dag_parse --runs 9 --json $(BENCH_OUT)/dag_parse.json
	$(BIN)/python -m benchmarks.airflow_deferral --quick --json $(BENCH_OUT)/airflow_deferral_quick.json
	$(BIN)/python -m benchmarks.triggerer_scale --json $(BENCH_OUT)/triggerer_scale.json
	@$(BIN)/python -m benchmarks.summary $(BENCH_OUT)/sdk_overhead.json $(BENCH_OUT)/download_memory.json

.PHONY: bench-airflow
bench-airflow: setup  ## Airflow deferral benchmark, full size (~13 min; needs PostgreSQL): 40 image tasks of 30 s on 2 slots
	@mkdir -p $(BENCH_OUT)
	$(BIN)/python -m benchmarks.airflow_deferral --json $(BENCH_OUT)/airflow_deferral.json

clean:  ## Remove the local store and caches (not .venv)
	rm -rf $(STORE) .airflow .pytest_cache .mypy_cache .ruff_cache
