# The two commands: `make run` serves the API, `make test` runs every check and test.
# Both build the virtualenv first; nothing needs installing by hand but Python 3.11+.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format types pytest chromium fuzz migrate bench docker hadolint lock clean

run: $(STAMP)
	$(BIN)/ontime serve

# every check, then the tests: a lint or type error fails CI before pytest runs
test: lint types hadolint pytest

pytest: $(STAMP) chromium
	@echo "== pytest"
	$(BIN)/pytest

# the browser tests (tests/browser) drive Debian's Chromium; never a downloaded browser
chromium:
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium for the browser tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

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

# schemathesis for longer than `make test` does: about 300 cases per operation and role
# (17 operations x 4 roles, over 20,000 requests), then the server's count of answers by status
fuzz: $(STAMP)
	ONTIME_FUZZ_EXAMPLES=$${ONTIME_FUZZ_EXAMPLES:-300} $(BIN)/pytest tests/fuzz -p no:cacheprovider -q -s

migrate: $(STAMP)
	$(BIN)/ontime migrate

bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "installing wrk (load generator) from Debian's packages"; \
		apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench.core

docker:
	docker build -t ontime .

hadolint: $(STAMP)
	@echo "== hadolint (Dockerfile; ignores and their reasons in .hadolint.yaml)"
	$(BIN)/hadolint Dockerfile

# The locks, every file by its hash: requirements-test.lock (ontime and its test
# tools: CI and this Makefile), requirements.lock (ontime alone: the image, pinned
# as the test lock is, so the image runs what the tests ran) and
# requirements-build.lock (what builds ontime's wheel in the image). One universal
# resolution for Python 3.11 serves Linux x86_64 and aarch64 alike. pyproject.toml
# keeps the ranges; after editing them, `make lock` is all it takes. Pins that
# still fit are kept; `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest.
UV_VERSION := 0.13.8
LOCK_FLAGS ?=
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(LOCK_FLAGS)

lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --progress-bar off 'uv==$(UV_VERSION)'
	$(UV_COMPILE) pyproject.toml --extra test -o requirements-test.lock
	$(UV_COMPILE) pyproject.toml -c requirements-test.lock -o requirements.lock
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(UV_COMPILE) - -o requirements-build.lock

# an edited lock (or pyproject.toml) reinstalls; every file is checked against its hash
$(STAMP): pyproject.toml requirements-test.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ontime needs Python 3.11 or newer; set PYTHON=python3.11")'
	@echo "making the virtualenv in $(VENV) and installing ontime with its test tools (requirements-test.lock)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off --require-hashes -r requirements-test.lock
	$(BIN)/python -m pip install --quiet --progress-bar off --no-deps -e .
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
