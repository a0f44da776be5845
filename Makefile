# Every target bootstraps .venv from the project's own files: a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PURE := refurb/scoring refurb/telemetry/parsing.py refurb/telemetry/analysis.py refurb/consulting/sla.py dashboards/figures.py

.PHONY: demo test lint bench serve clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/refurb demo

serve: $(STAMP)
	$(BIN)/refurb serve

lint: $(STAMP)
	$(BIN)/ruff check refurb dashboards tests $(wildcard bench)
	$(BIN)/mypy $(wildcard $(PURE))

system-deps:
	@bash .ci/system-deps.sh

test: lint system-deps
	$(BIN)/python -m pytest --doctest-modules $(wildcard $(PURE)) tests -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
