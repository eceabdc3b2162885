# The two commands: `make demo` and `make test`. Both build the environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint types unit compiled clean-compiled proto docs bench bench-full clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,research]'
	touch $@

demo: compiled
	$(BIN)/los demo

test: lint types compiled
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(BIN)/.installed
	$(BIN)/mypy

unit: compiled
	$(BIN)/pytest tests/unit tests/contract

# The rule engine compiled with mypyc, in place; a no-op while its sources are unchanged
# (services/outcomes/build.py). clean-compiled goes back to plain Python.
compiled: $(BIN)/.installed
	$(BIN)/python services/outcomes/build.py

clean-compiled:
	$(PYTHON) services/outcomes/build.py remove

# Regenerate the gRPC code in services/rpc and the schemas in docs/ (both are committed).
proto: $(BIN)/.installed
	$(BIN)/python -m services.kernel.codegen

docs: $(BIN)/.installed
	$(BIN)/python -m services.kernel.schemas docs/schemas
	$(BIN)/python -m services.kernel.asyncapi docs/asyncapi.json

# Benchmarks with their baselines, written to BENCHMARKS.md and bench/results/ (see bench/).
bench: compiled
	$(BIN)/python -m bench.run

bench-full: compiled
	$(BIN)/python -m bench.run --full

clean: clean-compiled
	rm -rf $(VENV) build .los .mypy_cache .ruff_cache .pytest_cache
