# IoT Care — `make demo` runs the whole system, `make test` runs the whole test suite.
# Both create .venv and install the pinned dependencies (requirements.lock) when needed.
SHELL := /bin/bash
# The first Python 3.11+ on PATH.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# Test processes (pytest-xdist): one per CPU, at most 4 (each starts its own Prefect server).
# A module's tests stay in one process, so its module fixtures (a seeded database) are made once.
TEST_JOBS ?= $(shell n=$$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))
PYTEST := $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadscope

.PHONY: install demo test test-fast lint format lock clean help

help:
	@echo "make demo   run IoT Care locally (embedded database and broker)"
	@echo "make test   run the whole test suite (HTML report in reports/)"
	@echo "make test-fast   the suite without the system tests (demo, durability, benchmarks, notebooks, browser)"
	@echo "make lint   ruff"
	@echo "make lock   re-resolve requirements.lock from pyproject.toml"

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "IoT Care needs Python 3.11 or newer on PATH (python3.11, python3.12 or python3.13)." >&2; exit 1; }
	@test -x $(BIN)/python || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing pinned dependencies into $(VENV) (the first time takes a few minutes)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

install: $(STAMP)

demo: install
	@$(BIN)/iotcare demo

test: install
	@mkdir -p reports
	$(PYTEST) $(PYTEST_ARGS)

test-fast: install
	@mkdir -p reports
	$(PYTEST) -m "not system" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 \
		--no-header -o requirements.lock

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache
