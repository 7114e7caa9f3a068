# The two commands a newcomer needs:  make run   |   make test
VENV ?= .venv
PY := $(VENV)/bin/python
# the operator command (infra/ops/cli.py), installed by `make install`
SHOP := $(VENV)/bin/shop

.PHONY: install run test test-fast test-unit lint format verify reconcile soak bench services

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

services:
	infra/ops/ensure-services.sh

## run the whole system locally: command API :8080, query API :8081 (Ctrl-C stops)
run: install services
	$(SHOP) run

## lint, then every test (unit, integration, end-to-end) against the real Postgres and RabbitMQ
test: lint services
	$(PY) -m pytest

## the same without the slow scenarios (broker restart, soak)
test-fast: install services
	$(PY) -m pytest -m "not slow"

## every test that needs no service (passes with Postgres and RabbitMQ stopped), on every core
test-unit: install
	$(PY) -m pytest -n auto $(wildcard tests/unit tests/contract) -m "not services"

## the gates (docs/architecture.md): ruff (with the complexity limit), its format check,
## mypy (strict on the core), the import contracts (.importlinter)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## check a running system end to end (health, a product, an order, analytics, sync-status)
verify: install
	$(SHOP) verify

## compare the read models with the write database (exit 1 on any drift)
reconcile: install
	$(SHOP) reconcile

## three minutes of orders under random faults in a sandbox; reports the drift
soak: install services
	$(SHOP) soak

## the benchmark suite, medians of 3 runs (4-10 minutes; needs wrk and pgbench)
bench: install services
	$(VENV)/bin/pip install --quiet -e '.[bench]'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(SHOP) bench --runs 3
