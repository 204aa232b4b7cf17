# Entry points for people and CI. Every target that runs code first makes sure the checkout is
# set up (scripts/setup.sh is idempotent and fast when nothing changed).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON := .venv/bin/python

.PHONY: help setup run demo test screenshots bench clean

help:
	@echo "Targets:"
	@echo "  make setup   create .venv, install requirements.txt and livekit-server (.tools/bin)"
	@echo "  make run     start the dashboard (and a local livekit-server unless LIVEKIT_* are set)"
	@echo "  make demo    like run, plus the traffic simulator (synthetic rooms and participants)"
	@echo "  make test    install test tools (requirements-dev.txt, chromium), then run pytest"
	@echo "  make screenshots  run the browser tests and copy their screenshots into docs/screenshots"
	@echo "  make bench   run the benchmarks (they print numbers)"
	@echo "  make clean   remove .venv and .tools (data/ is kept)"
	@echo "Variables: DASHBOARD_PORT (8501), DASHBOARD_HOST (127.0.0.1), PYTEST_ARGS"

setup:
	bash scripts/setup.sh

run: setup
	$(PYTHON) scripts/run.py

demo: setup
	$(PYTHON) scripts/run.py --demo

test:
	bash scripts/setup.sh --test
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# Tests write screenshots to test-artifacts/ (git-ignored); the README's come from here, on purpose.
screenshots:
	bash scripts/setup.sh --test
	rm -rf test-artifacts/screenshots
	$(PYTHON) -m pytest tests/e2e $(PYTEST_ARGS)
	mkdir -p docs/screenshots
	cp test-artifacts/screenshots/*.png docs/screenshots/
	@echo "docs/screenshots/ refreshed from this run: review with git diff --stat docs/screenshots"

bench: setup
	$(PYTHON) -m bench

clean:
	rm -rf .venv .tools
