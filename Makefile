# Switchboard — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard protos/switchboard/v1/*.proto)
PROTO_STAMP := protos/gen/.stamp
PACKAGES := protos libs/common libs/rules libs/translate services/auth services/router services/billing services/facade

.PHONY: run test protos install install-test lint bench clean ui-assets browser-deps

## Start the whole gateway (auth, router, billing, facade) on the embedded default.
run: install protos ui-assets
	$(PY) -m switchboard_common.supervisor

## Install test dependencies and run the whole suite.
test: install-test protos ui-assets browser-deps
	$(PY) -m pytest

## The dashboard's chart library, from the npm registry (the Usage page shows tables without it).
ui-assets:
	@command -v npm >/dev/null 2>&1 && $(PY) services/facade/switchboard_facade/ui/build_assets.py \
		|| echo "npm missing: the Usage page shows tables instead of a chart"

## Debian's Chromium for the browser tests (never a browser download of Playwright's own).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q chromium) \
		|| echo "chromium could not be installed: the browser tests will say so"

## Generate the gRPC stubs into protos/gen (an importable package).
protos: $(PROTO_STAMP)

$(PROTO_STAMP): $(PROTO_SRC) $(STAMP)
	rm -rf protos/gen && mkdir -p protos/gen
	$(PY) -m grpc_tools.protoc -I protos --python_out=protos/gen --pyi_out=protos/gen --grpc_python_out=protos/gen $(PROTO_SRC)
	touch protos/gen/switchboard/__init__.py protos/gen/switchboard/v1/__init__.py protos/gen/switchboard/py.typed
	touch $@

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(VENV)/bin/python $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	$(PIP) install -q grpcio-tools==1.85.1
	mkdir -p protos/gen/switchboard/v1
	$(PIP) install -q $(foreach p,$(PACKAGES),-e ./$(p))
	touch $@

install: $(STAMP)

install-test: install $(VENV)/.test-installed .venv-tools/.installed

$(VENV)/.test-installed: $(STAMP) requirements-test.txt
	$(PIP) install -q -r requirements-test.txt
	touch $@

# Manifest checkers that cannot share the services' environment (checkov pins an older botocore).
.venv-tools/.installed: deploy/requirements-tools.txt
	$(PYTHON) -m venv .venv-tools
	.venv-tools/bin/pip install -q --upgrade pip
	.venv-tools/bin/pip install -q -r deploy/requirements-tools.txt
	touch $@

lint: install-test
	$(VENV)/bin/ruff check .

## Measure the gateway's own cost against no gateway and LiteLLM (prints a table, writes benchmarks/results/).
bench: install-test protos
	$(PIP) install -q -r benchmarks/requirements.txt
	command -v wrk >/dev/null 2>&1 || (apt-get install -y -q wrk >/dev/null 2>&1 || echo "wrk not installed: the asyncio load generator is used")
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-tools protos/gen
