# Rialto: the two commands a newcomer needs are `make run` and `make test`.
# Everything else here is what those two are made of.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CARGO ?= cargo
export PYTHONPATH := $(CURDIR)

.PHONY: test build cython rust lint check bench clean run run-local web web-test

# The whole test suite from a fresh clone: venv, both native builds, lint, the web UI's tests, Rust and Python tests.
test: build lint web-test
	cd ext && $(CARGO) test --release --quiet
	$(PY) -m pytest -q
	RIALTO_E2E_PROFILE=local $(PY) -m pytest -q tests/e2e --deselect tests/e2e/test_recovery.py

check: test

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

build: cython rust

# The reference engine's hot modules, compiled from the same source (see setup.py).
cython: $(VENV)/.installed
	$(PY) setup.py build_ext --inplace -j2 >/dev/null

# The Rust engine (ext/), installed into the venv as `rialto_native`.
rust: $(VENV)/.installed
	cd ext && VIRTUAL_ENV=$(CURDIR)/$(VENV) ../$(VENV)/bin/maturin develop --release --quiet

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check core control services bench tests setup.py
	$(VENV)/bin/mypy core control services

# The venue, embedded profile: one process on http://127.0.0.1:8000, data in ./data (Ctrl-C stops it cleanly).
# Settings: RIALTO_* variables or RUN_ARGS, e.g. `make run RUN_ARGS="--port 8001 --engine python"`.
run: build web
	$(PY) -m control up --profile embedded $(RUN_ARGS)

# The local profile: several processes on this machine's Redis (durable: appendonly yes, appendfsync always)
# and PostgreSQL (RIALTO_POSTGRES_DSN, default postgresql://postgres@127.0.0.1:5432/rialto, created if missing).
run-local: build web
	$(PY) -m control up --profile local $(RUN_ARGS)

# The web UI (web/): TypeScript built by Vite into web/dist, which the gateway serves at /.
NPM ?= npm
CHROMIUM ?= /usr/bin/chromium

web: web/node_modules/.installed
	cd web && $(NPM) run build

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && $(NPM) ci --no-audit --no-fund
	touch $@

# Unit tests (Vitest), then the browser tests: headless Chromium (Debian's package) against a real venue.
web-test: web $(VENV)/.installed $(CHROMIUM)
	cd web && $(NPM) test
	cd web && CHROMIUM_PATH=$(CHROMIUM) node --test --test-reporter=spec tests/e2e/

$(CHROMIUM):
	apt-get update && apt-get install -y chromium

bench: build
	$(PY) -m bench.engine

clean:
	rm -rf core_cython build ext/target $(VENV) .pytest_cache .mypy_cache .ruff_cache web/dist web/node_modules
