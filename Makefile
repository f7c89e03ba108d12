# The README's commands. `make demo` runs the service on its embedded default;
# `make test` runs the test suite. Both install what they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: install system-deps services test test-all lint format docs demo up bench clean compose-check

install: $(STAMP) system-deps

# uv installs (tools/uv_pip.py hands it pip's configured sources): it unpacks and
# byte-compiles the ~110 wheels on every core, where pip goes one file at a time, in about
# half pip's time (docs/benchmarks.md, bench/install.py). Where uv cannot be installed,
# pip does it all. compileall, like pip, leaves alone the files this Python cannot
# compile (torch ships Python 3.12-only test helpers): `|| true`.
UV_PIN := uv==0.13.9
$(STAMP): pyproject.toml tools/uv_pip.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if $(PY) -m pip install -q $(UV_PIN); then \
	  $(PY) tools/uv_pip.py install --python $(PY) --compile-bytecode $(TORCH_PINS) -e '.[dev]'; \
	else \
	  echo "uv could not be installed: installing with pip (slower)"; \
	  $(PY) -m pip install --no-compile $(TORCH_PINS) -e '.[dev]' && \
	  { $(PY) -m compileall -qq -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || true; }; \
	fi
	touch $@

# RAR backends for the trainer (bsdtar; unar for solid RAR3) and Chromium for the report
# test. Installs missing Debian packages when we can (root or passwordless sudo); otherwise
# says which ones to install and goes on: only the tests that need them will fail.
system-deps:
	@missing=""; \
	command -v bsdtar >/dev/null || missing="$$missing libarchive-tools"; \
	command -v unar >/dev/null || missing="$$missing unar"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" = none ]; then \
	    echo "Please install these Debian packages:$$missing"; \
	  else \
	    $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	  fi; \
	fi

# The tests use real Redis and PostgreSQL on 127.0.0.1; start them when they are down.
# A test that still cannot reach one fails loudly: nothing is skipped.
services:
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
	@pg_isready -h 127.0.0.1 -q 2>/dev/null || \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start || true

# Lint first: CI (.ci/run) runs only `make test`, and a lint error fails it in seconds.
# Four test processes (pytest-xdist) on 2 cores: the suite waits on its services' child
# processes a good part of the time, which the other processes fill
# (docs/benchmarks.md, "The test suite"). Work units are a test file each, except the
# files that share the demonstration training, which go first as one (tests/conftest.py).
# TEST_PROCESSES=0 runs them in this one process.
# The suite starts ~150 Python processes (workers, watchers, the CLI); where
# PYTHONDONTWRITEBYTECODE is set (CI's machines), none of them writes the bytecode of the
# project's modules it compiles, so each compiled them again: compileall writes it once,
# for less than a few processes' starts cost without it (docs/benchmarks.md).
TEST_PROCESSES ?= 4
SOURCES := actiontag decoding timeline model trainer worker watcher storage web launcher tests
test: install services lint
	$(PY) -m compileall -q -j 0 $(SOURCES)
	$(PY) -m pytest -m "not slow" -n $(TEST_PROCESSES) --dist loadgroup --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

test-all: install services
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# The configuration reference, written from the settings' declarations
# (actiontag/settings/spec.py); tests/settings/test_reference.py fails when it is stale.
docs: $(STAMP)
	$(PY) -m actiontag.settings --markdown > docs/configuration.md

# The whole service on sample videos, everything under var/demo/ (launcher/demo.py).
# Only the Python packages are needed: not the trainer's RAR tools, nor Chromium.
# Options go through DEMO_FLAGS, e.g. make demo DEMO_FLAGS="--device cpu"; --serve keeps
# the results served (http://127.0.0.1:8000/) until Ctrl-C.
demo: $(STAMP)
	$(PY) -m launcher demo $(DEMO_FLAGS)

# A watcher, a worker and the web app for real use, with the configured checkpoint
# (ACTIONTAG_* from the environment, else from .env), until Ctrl-C (launcher/up.py).
# UP_FLAGS as above.
up: $(STAMP)
	$(PY) -m launcher up $(UP_FLAGS)

# docker-compose.yml for real (tools/compose_check.py; docs/production.md): build
# the image, start the stack with the CPU override, tag real and broken files and an
# upload, scale, stop, down and up, down -v. Needs root on Debian: tools/docker_engine.sh
# installs Docker's Debian packages and Compose v2 where missing and starts dockerd; the
# base images are local Debian builds (tools/base_images.sh), cached by the engine.
compose-check: $(STAMP)
	tools/docker_engine.sh
	PATH="$(CURDIR)/var/compose/bin:$$PATH" $(PY) tools/compose_check.py

clean:
	rm -rf var/demo .pytest_cache
