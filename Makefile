# llm-gateway: `make run` serves the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CONFIG ?=
ARGS ?=

.PHONY: run test install dev lint typecheck bench clean

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

bench: $(VENV)/.dev
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
