# GAS developer commands. Everything runs through uv; `make` installs uv with pip if missing.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PORT ?= 8000
# pytest arguments, e.g. `make test PYTEST_ARGS="-k worker -x"`
PYTEST_ARGS ?=

.PHONY: run test lint bench chart sync uv clean images chaos

uv:
	@command -v uv >/dev/null 2>&1 || test -x "$(UV)" || python3 -m pip install --user --quiet uv

# Bytecode is compiled at install (as in the images): otherwise every cold process, e.g. each
# `gas annotate`, compiles the engine's imports again where PYTHONDONTWRITEBYTECODE is set.
sync: uv
	@$(UV) sync --frozen --all-packages --compile-bytecode

## run: the whole system locally (web UI on http://127.0.0.1:$(PORT)), Ctrl-C stops it
run: sync
	@$(UV) run --frozen gas dev --port $(PORT)

## test: the whole test suite (unit, services, end-to-end, browser, chart)
test: sync
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

## lint: ruff, mypy and actionlint (the GitHub workflows), all must be clean
lint: sync
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen mypy
	@$(UV) run --frozen actionlint -oneline

## bench: performance benchmarks (ratios against a baseline run in the same process)
bench: sync
	@for script in benchmarks/*.py; do echo "== $$script"; $(UV) run --frozen python $$script || exit 1; done

## chart: render, lint and schema-validate the Helm chart (the tests in tests/chart)
chart: sync
	@$(UV) run --frozen pytest tests/chart

## chaos: the long chaos test (40+4 jobs, ~120 SIGKILLs over 5 minutes; a short one runs in
## `make test`). SEED=N repeats a run's random choices; logs go to test-artifacts/chaos.
chaos: sync
	@GAS_CHAOS_PROFILE=long GAS_CHAOS_LOG_DIR=test-artifacts/chaos $(if $(SEED),GAS_CHAOS_SEED=$(SEED)) \
	  $(UV) run --frozen pytest tests/chaos -q -s -p no:cacheprovider $(PYTEST_ARGS)

## images: build the six service images with buildah, as root (no Docker). The bases are made
## locally unless PYTHON_IMAGE and UV_IMAGE name public ones; CA_BUNDLE=FILE trusts a TLS proxy
## in the local base only; SERVICES="web notifier" builds some. See docs/operations.md#images.
images: uv
	@python3 images/build.py --uv-binary "$(UV)" \
	  $(if $(PYTHON_IMAGE),--python-image $(PYTHON_IMAGE)) $(if $(UV_IMAGE),--uv-image $(UV_IMAGE)) \
	  $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE)) $(SERVICES)

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .gas test-artifacts
