# Switchboard — the two commands: `make run` and `make test`.
#
# Installs are reproducible: every third-party package comes from a lock in requirements/ (exact versions,
# sha256 hashes, `pip install --require-hashes`); our own packages are installed editable on top, without
# build isolation (the build backend is in the lock too). `make lock` refreshes the locks after a change to a
# pyproject.toml or requirements-test.txt. Each step prints one line with its duration (scripts/step); a failed
# step prints its output, what failed and how to fix it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STEP := scripts/step
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed
TOOLS_STAMP := .venv-tools/.installed
PROTO_SRC := $(wildcard protos/switchboard/v1/*.proto)
PROTO_STAMP := protos/gen/.stamp
PACKAGES := protos libs/common libs/rules libs/translate services/auth services/router services/billing services/facade
PYPROJECTS := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
NETWORK_FIX := PyPI must be reachable (or a mirror set with PIP_INDEX_URL); run the command above by hand to see pip's full answer

.PHONY: run test protos install install-test lint bench clean browser-deps lock

## Start the whole gateway (auth, router, billing, facade) on the embedded default.
run: install protos
	@$(PY) -m switchboard_common.supervisor

## Install test dependencies, lint, and run the whole suite.
test: install-test protos browser-deps lint
	$(PY) -m pytest

## Debian's Chromium for the browser tests (never a browser download of Playwright's own).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || $(STEP) "installing Debian's chromium for the browser tests" \
		"apt-get install chromium by hand; without it the browser tests say they are skipped" \
		bash -c "apt-get update -q && apt-get install -y -q chromium" || true

## Generate the gRPC stubs into protos/gen (an importable package).
protos: $(PROTO_STAMP)

$(PROTO_STAMP): $(PROTO_SRC) $(STAMP)
	@rm -rf protos/gen && mkdir -p protos/gen
	@$(STEP) "generating the gRPC stubs (protos/gen)" "fix the .proto file named above" \
		$(PY) -m grpc_tools.protoc -I protos --python_out=protos/gen --pyi_out=protos/gen \
		--grpc_python_out=protos/gen $(PROTO_SRC)
	@touch protos/gen/switchboard/__init__.py protos/gen/switchboard/v1/__init__.py protos/gen/switchboard/py.typed
	@touch $@

$(VENV)/bin/python:
	@$(STEP) "creating the virtualenv $(VENV) with $(PYTHON)" \
		"Python 3.11 with venv is needed: apt-get install python3-venv, or make PYTHON=/path/to/python3.11" \
		$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/python requirements/gateway.lock $(PYPROJECTS)
	@$(STEP) "installing the locked dependencies (requirements/gateway.lock)" "$(NETWORK_FIX)" \
		$(PIP) install --require-hashes --no-deps -r requirements/gateway.lock
	@mkdir -p protos/gen/switchboard/v1
	@$(STEP) "installing Switchboard's packages (editable)" \
		"a pyproject.toml above is broken, or a dependency is missing from the lock: run make lock" \
		$(PIP) install --no-deps --no-build-isolation $(foreach p,$(PACKAGES),-e ./$(p))
	@touch $@

install: $(STAMP)

install-test: install $(TEST_STAMP) $(TOOLS_STAMP)

$(TEST_STAMP): $(STAMP) requirements/test.lock
	@$(STEP) "installing the test dependencies (requirements/test.lock)" "$(NETWORK_FIX)" \
		$(PIP) install --require-hashes --no-deps -r requirements/test.lock
	@touch $@

# Manifest checkers that cannot share the services' environment (checkov pins an older botocore).
$(TOOLS_STAMP): requirements/tools.lock
	@$(STEP) "creating the virtualenv .venv-tools for the manifest checkers" "see the error above" \
		$(PYTHON) -m venv .venv-tools
	@$(STEP) "installing checkov and kubectl (requirements/tools.lock)" "$(NETWORK_FIX)" \
		.venv-tools/bin/pip install --require-hashes --no-deps -r requirements/tools.lock
	@touch $@

## Refresh requirements/*.lock from requirements/*.in, the pyproject.toml files and requirements-test.txt
## (pins kept; `make lock UPGRADE=1` takes the newest releases). Commit the locks with the change.
lock: install-test
	UV=$(VENV)/bin/uv scripts/lock

## ruff, then mypy (strict; the packages are listed in mypy.ini; its cache in .mypy_cache keeps re-runs short).
lint: install-test protos
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

## Measure the gateway's own cost against no gateway and LiteLLM (prints a table, writes benchmarks/results/).
bench: install-test protos
	$(PIP) install -q -r benchmarks/requirements.txt
	command -v wrk >/dev/null 2>&1 || (apt-get install -y -q wrk >/dev/null 2>&1 || echo "wrk not installed: the asyncio load generator is used")
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-tools protos/gen
