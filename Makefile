# Two commands set everything up: `make run` and `make test` (each creates .venv on first use).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OUT ?= runs/default
PACKAGES := common server clients simulations

.PHONY: install run test lint format clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run: the default federated-distillation simulation on the real EuroSAT RGB data
run: $(STAMP)
	$(BIN)/skydistill simulate --out $(OUT)

## lint: ruff and mypy on the packages
lint: $(STAMP)
	$(BIN)/ruff check $(PACKAGES) tests
	$(BIN)/ruff format --check $(PACKAGES) tests
	$(BIN)/mypy

## test: lint, then the whole test suite (unit and integration)
test: lint
	$(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff format $(PACKAGES) tests
	$(BIN)/ruff check --fix $(PACKAGES) tests

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
