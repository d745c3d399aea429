# docsort: `make demo` runs the main job on embedded defaults; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: install services lint typecheck test test-fast demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

services:
	bash scripts/ensure-services.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: install
	$(VENV)/bin/mypy

test: install services lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install services
	$(PY) -m pytest -m "not slow and not faults" $(PYTEST_ARGS)

# The demo needs no service: it uses the local Redis if one answers, else starts a private redis-server
# if one is installed, else runs the worker embedded in its own process (it says which).
demo: install
	$(VENV)/bin/docsort demo $(if $(ONCE),--once,) $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts docsort-data
