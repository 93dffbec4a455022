# Nexa developer entry points (ARCHITECTURE §8). `make run` / `make test` work on a fresh clone.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Python 3.12: $(PYTHON) if given, else python3.12 on PATH when it really runs, else pyenv's.
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
PROD_ENV := docker/production.env

.PHONY: help venv node_modules chromium run test check lint format bench seed services clean-state smoke messages console-assets

help:
	@echo "make run      start PostgreSQL+Redis (embedded unless DATABASE_URL/REDIS_URL), migrate, seed,"
	@echo "              ASGI server on 127.0.0.1:\$${PORT:-8000}, Celery worker + beat; Ctrl-C stops all"
	@echo "make test     the whole suite against the same services (ARGS='-k foo' for pytest args)"
	@echo "make check    quality gates: ruff, ruff format --check, lint-imports, check --deploy, makemigrations --check"
	@echo "make bench    bench/baseline.py: authenticated ping at increasing concurrency"
	@echo "make node_modules  npm ci: socket.io-client for the presence-channel tests (make test does it)"
	@echo "make chromium Debian's chromium for the browser tests, when /usr/bin/chromium is missing (make test does it)"
	@echo "make smoke    start make run on a free port, check it, Ctrl-C it, fail if anything is left (.ci/smoke_run.py)"
	@echo "make seed     (re)load demo data (embedded services unless DATABASE_URL/REDIS_URL)"
	@echo "make format   ruff format + ruff check --fix"
	@echo "make messages the console's Spanish catalogue: makemessages + compilemessages (nexa/locale)"
	@echo "make console-assets  copy htmx and socket.io-client from node_modules into the console's static files"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: Python 3.12 not found. Install it (e.g. 'pyenv install 3.12') or run 'make PYTHON=/path/to/python3.12'." >&2; \
		exit 1; fi
	@if ! $(VPY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; then \
		echo "creating $(VENV) with $(PYTHON)"; \
		"$(PYTHON)" -m venv --clear $(VENV); fi
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

# socket.io-client for the presence-channel interop tests, exactly as package-lock.json pins it. The stamp
# makes reruns free; it is redone when package.json or the lock file changes.
NODE_STAMP := node_modules/.package-lock-installed

node_modules: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
		echo "error: npm not found. Install Node.js >= 18 with npm (the presence-channel tests run socket.io-client under node)." >&2; \
		exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

# Debian's chromium for the browser tests (tests/e2e, Playwright pointed at it; never `playwright install`).
# Skipped when it is already there; needs root or sudo for apt-get.
CHROMIUM := /usr/bin/chromium

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		command -v apt-get >/dev/null 2>&1 || { \
			echo "error: $(CHROMIUM) missing and no apt-get: install Debian's chromium package for the browser tests." >&2; \
			exit 1; }; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "installing Debian's chromium for the browser tests"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; \
	fi

run: venv
	$(VPY) -m nexa.devstack run

test: venv node_modules chromium
	$(VPY) -m nexa.devstack test $(ARGS)

smoke: venv
	$(VPY) .ci/smoke_run.py

services: venv
	$(VPY) -m nexa.devstack services

check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	# production.env carries no secret: a one-off random SECRET_KEY (production refuses the examples).
	set -a && . ./$(PROD_ENV) && set +a && SECRET_KEY=$$($(VPY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
		$(VPY) manage.py check --deploy --fail-level WARNING
	DATABASE_URL=$${DATABASE_URL:-sqlite:///:memory:} $(VPY) manage.py makemigrations --check --dry-run

lint: check

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv
	$(VPY) -m bench.baseline $(ARGS)

seed: venv
	$(VPY) -m nexa.devstack manage seed_demo

# Deletes the embedded PostgreSQL/Redis data and the dev signing key.
# The console's Spanish catalogue (nexa/locale): extract the strings, then compile the .mo that is committed.
messages: venv
	cd nexa && DATABASE_URL=sqlite:///:memory: PYTHONPATH=.. DJANGO_SETTINGS_MODULE=nexa.settings \
		../$(VENV)/bin/django-admin makemessages -l es -i platform --no-location
	cd nexa && DATABASE_URL=sqlite:///:memory: PYTHONPATH=.. DJANGO_SETTINGS_MODULE=nexa.settings \
		../$(VENV)/bin/django-admin compilemessages -l es

# The console's browser libraries, copied from node_modules (package-lock.json pins them) into its static files,
# which are committed: the app serves them itself, no CDN, and the Docker image needs no npm.
console-assets: node_modules
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/socket.io-client/dist/socket.io.min.js \
		node_modules/socket.io-client/dist/socket.io.min.js.map nexa/console/static/console/vendor/

clean-state:
	rm -rf .nexa
