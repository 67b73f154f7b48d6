# The two commands: `make run` serves the API, `make test` runs every check and test.
# Both build the virtualenv first; nothing needs installing by hand but Python 3.11+.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format types pytest migrate bench docker clean

run: $(STAMP)
	$(BIN)/ontime serve

# every check, then the tests: a lint or type error fails CI before pytest runs
test: lint pytest

pytest: $(STAMP)
	@echo "== pytest"
	$(BIN)/pytest

lint: $(STAMP)
	@echo "== ruff (lint, format) and import-linter (layers)"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

types: $(STAMP)
	@echo "== mypy --strict (domain/, api/)"
	$(BIN)/mypy

migrate: $(STAMP)
	$(BIN)/ontime migrate

bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "installing wrk (load generator) from Debian's packages"; \
		apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench.core

docker:
	docker build -t ontime .

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ontime needs Python 3.11 or newer; set PYTHON=python3.11")'
	@echo "making the virtualenv in $(VENV) and installing ontime with its test tools"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[test]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
