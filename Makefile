# llm-gateway: `make run` serves the embedded default; `make test` runs the whole suite;
# `make agents` installs the pinned coding-agent CLIs (agents/package-lock.json) for tests/agents.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CONFIG ?=
ARGS ?=
# Test processes (pytest-xdist); each test file stays in one process (its servers are shared).
JOBS ?= auto
# Hash-locked dependencies (requirements/README.md): installs take exactly these files.
LOCK_RUNTIME := requirements/runtime.txt
LOCK_DEV := requirements/dev.txt
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --quiet

.PHONY: run test install dev lint typecheck bench lock clean agents screenshots

$(BIN)/llm-gateway: pyproject.toml $(LOCK_RUNTIME)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK_RUNTIME)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.dev: $(BIN)/llm-gateway $(LOCK_DEV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK_DEV)
	@touch $@

install: $(BIN)/llm-gateway

dev: $(VENV)/.dev

run: $(BIN)/llm-gateway
	$(BIN)/llm-gateway serve --host $(HOST) --port $(PORT) $(if $(CONFIG),--config $(CONFIG))

test: $(VENV)/.dev
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(ARGS)

# Re-take the UI screenshots in docs/images (the browser tests, writing there).
screenshots: $(VENV)/.dev
	LLM_GATEWAY_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q tests/integration/test_ui_browser.py

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# Claude Code and Codex CLI, exact versions from agents/package-lock.json, into agents/node_modules
# (their native binaries are npm packages too: nothing is downloaded from anywhere else).
agents/node_modules/.installed: agents/package.json agents/package-lock.json
	cd agents && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

agents: agents/node_modules/.installed

bench: $(VENV)/.dev
	$(BIN)/python bench/run.py $(ARGS)

# Re-resolve pyproject.toml's dependencies into the hash-locked files; commit the result.
lock: $(VENV)/.dev
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra tracing $(LOCK_FLAGS) -o $(LOCK_RUNTIME)
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra dev $(LOCK_FLAGS) -o $(LOCK_DEV)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache agents/node_modules
