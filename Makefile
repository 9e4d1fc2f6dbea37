# The front door: `make demo` runs the pipeline end to end on embedded defaults,
# `make test` runs the whole test suite. Both install what they need and reuse it next time.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGINS_STAMP := .meltano/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo psql dashboards dagster test test-clock test-fast lint install clean

# uv installs the dev venv (Meltano installs the plugins' venvs with uv too): several times faster than pip.
UV_VERSION := 0.13.9
UV := $(BIN)/uv
# uv (and Meltano's uv) trusts the machine's certificate store, as pip does, not only its built-in one: a
# company proxy's certificate authority is in the former.
export UV_SYSTEM_CERTS := 1
# Every venv (this one and Meltano's plugin venvs, installed by uv) gets its bytecode at install: where
# PYTHONDONTWRITEBYTECODE is set, as in many container images, each process would otherwise compile
# every module it imports from source, at every start (Dagster's step, Meltano, dbt: about 2x the start).
export UV_COMPILE_BYTECODE := 1

$(BIN)/python:
	@echo "tap-matomo: creating the virtual environment $(VENV) (step 1 of 3)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The project's packages in the dev venv; the loader (target-postgres-matomo/) lives only in its plugin
# venv (meltano.yml), whose pins (target-postgres' psycopg) differ from the dev tools'.
PACKAGES := tap-matomo matomo-simulator pg-url orchestrate dashboards
PLUGIN_PACKAGES := $(PACKAGES) target-postgres-matomo

$(STAMP): $(BIN)/python requirements-dev.txt $(PACKAGES:%=%/pyproject.toml)
	@echo "tap-matomo: installing the development tools and the project's packages (step 2 of 3)"
	$(UV) pip install --quiet --python $(BIN)/python -r requirements-dev.txt $(PACKAGES:%=-e ./%)
	touch $(STAMP)

$(PLUGINS_STAMP): $(STAMP) meltano.yml $(wildcard plugins/*/*.lock) $(PLUGIN_PACKAGES:%=%/pyproject.toml) dashboards/superset-constraints.txt
	@echo "tap-matomo: installing the Meltano plugins: the tap, the loader, dbt, Superset (step 3 of 3)"
	$(BIN)/meltano --log-level=warning install
	touch $(PLUGINS_STAMP)

install: $(PLUGINS_STAMP)

demo: install
	$(BIN)/python -m devenv.demo

# psql on the demo's database (its PostgreSQL in .local/ started again if stopped).
psql: install
	$(BIN)/python -m devenv.demo psql

# Matomo's dashboards in a local Superset on the demo's database (after `make demo`) or PGDATABASE's
# (docs/dashboards.md).
dashboards: install
	$(BIN)/python -m devenv.dashboards

# Dagster's UI on the demo setup: the shard jobs and schedules of orchestrate/ (docs/scale-out.md).
dagster: install
	$(BIN)/python -m devenv.dagster_ui

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two workers, a test file each at a time (module fixtures load once); every Meltano run has its own
# run directory (tests/pipeline.py), so runs on both workers cannot collide.
test: lint install
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25
	$(MAKE) --no-print-directory test-clock

# The tests that depend on the time of day (marker `clock`) again as if it were each of these UTC times
# (MATOMO_TEST_CLOCK, tests/conftest.py): sites in New York and Kolkata are on another day than UTC's
# for hours, days and weeks close at different instants.
TEST_CLOCKS := 00:30 04:45 18:45 23:30
test-clock: install
	@for at in $(TEST_CLOCKS); do \
		echo "tap-matomo: the time-of-day tests at $$at UTC"; \
		MATOMO_TEST_CLOCK=$$at $(BIN)/python -m pytest -n 2 --dist loadfile -m clock -q || exit 1; \
	done

# The inner loop: lint and the tests marked `unit` (no PostgreSQL, Meltano, dbt or Dagster), in under a minute.
test-fast: lint
	$(BIN)/python -m pytest -n 2 -m unit

# Everything the demo, the tests and the builds made: in the clone, and the demo server's data and the copy
# of PostgreSQL's binaries a root run keeps in the temporary folder (devenv/postgres.py).
clean:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devenv.postgres clean .local/pgdata; fi
	rm -rf $(VENV) .meltano .local .pytest_cache .ruff_cache .mypy_cache output transform/target transform/logs
	rm -rf */build */*.egg-info
