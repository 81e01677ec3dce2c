# The two set-up commands of README.md: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install lint typecheck bench

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/clickme demo

test: install
	bash scripts/test.sh

lint: install
	$(BIN)/ruff check backend tests benchmarks
	$(BIN)/ruff format --check backend tests benchmarks

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/bench_reveal.py
