# llm-gateway: `make run` serves the embedded default; `make test` runs the whole suite;
# `make agents` installs the pinned coding-agent CLIs (agents/package-lock.json) for tests/agents.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CONFIG ?=
ARGS ?=

.PHONY: run test install dev lint typecheck bench clean agents

$(BIN)/llm-gateway: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev: $(BIN)/llm-gateway
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/llm-gateway

dev: $(VENV)/.dev

run: $(BIN)/llm-gateway
	$(BIN)/llm-gateway serve --host $(HOST) --port $(PORT) $(if $(CONFIG),--config $(CONFIG))

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(ARGS)

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache agents/node_modules
