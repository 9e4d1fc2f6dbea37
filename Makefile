# The front door: `make demo` runs the pipeline end to end on embedded defaults,
# `make test` runs the whole test suite. Both install what they need and reuse it next time.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGINS_STAMP := .meltano/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python requirements-dev.txt tap-matomo/pyproject.toml matomo-simulator/pyproject.toml pg-url/pyproject.toml
	$(BIN)/pip install --quiet -r requirements-dev.txt -e ./tap-matomo -e ./matomo-simulator -e ./pg-url
	touch $(STAMP)

$(PLUGINS_STAMP): $(STAMP) meltano.yml $(wildcard plugins/*/*.lock) pg-url/pyproject.toml
	$(BIN)/meltano install
	touch $(PLUGINS_STAMP)

install: $(PLUGINS_STAMP)

demo: install
	$(BIN)/python -m devenv.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .meltano .local .pytest_cache .ruff_cache output
