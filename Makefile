# Two commands set everything up: `make run` and `make test` (each creates .venv on first use).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two stamps: `make run` needs the package and its runtime dependencies only; the linters
# and test tools (the dev extra) are installed by the targets that use them.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-dev
OUT ?= runs/default
PACKAGES := cli simulations server clients onboard common
# torch exactly as pyproject.toml pins it (one place for the version).
TORCH := $(shell sed -n 's/^ *"\(torch==[^"]*\)",*$$/\1/p' pyproject.toml)
$(if $(TORCH),,$(error no "torch==..." pin found in pyproject.toml's dependencies))

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Install into the venv: torch through pip, which reads this machine's pip configuration
# (where a local CPU wheel is; uv does not read it and would fetch a CUDA build of several
# GB), then everything else through uv, which resolves, downloads and unpacks in seconds what
# takes pip over a minute; without uv (it comes from PyPI) pip installs the rest itself.
# Then every module is compiled to bytecode, on both cores: Python would otherwise compile
# what each process imports, every time, where PYTHONDONTWRITEBYTECODE is set (as on this
# machine), and a run starts dozens of processes. A file that does not compile (some
# packages ship such test data) only stays uncompiled. Skipped (NO_COMPILE): the package
# test suites, pip, setuptools, networkx, Ray's libraries this project does not use (RLlib,
# Data, Train, Tune, Serve, LLM, AIR) and three SymPy subpackages, none of which any process
# of `make run` or `make test` imports (traced with PYTHONPYCACHEPREFIX: 4,336 files of
# 12,980): 4,458 files fewer, 17 s instead of 27 s of a fresh install here.
NO_COMPILE := /site-packages/(pip|setuptools|networkx|ray/(rllib|data|train|tune|llm|serve|air)|sympy/(physics|combinatorics|stats))/|/tests?/
PIP = $(BIN)/python -m pip install --quiet --no-compile --disable-pip-version-check
define venv_install
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH)"
	@if $(PIP) uv; then \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -e '$(1)'; \
	else \
	  echo "uv could not be installed: installing with pip (slower)"; \
	  $(PIP) -e '$(1)'; \
	fi
	$(BIN)/python -m compileall -qq -j 0 -x '$(NO_COMPILE)' \
	  "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || true
endef

.PHONY: install run test lint format clean prometheus

$(RUN_STAMP): pyproject.toml
	$(call venv_install,.)
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml
	$(call venv_install,.[dev])
	@touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

## run: the default federated-distillation simulation on the real EuroSAT RGB data
run: $(RUN_STAMP)
	$(BIN)/skydistill simulate --out $(OUT)

## lint: ruff, mypy, and the import layering (import-linter contracts in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check $(PACKAGES) tests
	$(BIN)/ruff format --check $(PACKAGES) tests
	$(BIN)/mypy
	$(BIN)/lint-imports

## prometheus: Debian's prometheus and promtool, which the monitoring tests run for real
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
	  echo "installing Debian's prometheus package (for the monitoring tests)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }

## test: lint, then the whole test suite: the unit tests, then the integration tests, each on
## 2 pytest-xdist workers (integration: a test file per worker at a time, so a file's
## fixtures are built once; every process they start takes free ports and its own Ray);
## both always run, and either failing fails the target. Lint and the prometheus install run
## side by side: mypy keeps one core busy for about 25 s while apt mostly waits on the network.
test: $(STAMP)
	@$(MAKE) --no-print-directory -j 2 lint prometheus
	@status=0; \
	$(BIN)/python -m pytest -n 2 -m "not integration" || status=$$?; \
	$(BIN)/python -m pytest -n 2 --dist loadfile -m integration --no-loadscope-reorder --durations=20 || status=$$?; \
	exit $$status

format: $(STAMP)
	$(BIN)/ruff format $(PACKAGES) tests
	$(BIN)/ruff check --fix $(PACKAGES) tests

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
