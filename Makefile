# The two set-up commands of the README. Both work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

## run: the embedded default (SQLite, tasks in process, demo data) on http://127.0.0.1:8000
run: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	mkdir -p var
	DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DEBUG=1 $(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Admin:    http://$(HOST):$(PORT)/admin/"
	@echo "  API:      http://$(HOST):$(PORT)/api/v1/"
	@echo "  API docs: http://$(HOST):$(PORT)/api/v1/docs/"
	@echo "  Health:   http://$(HOST):$(PORT)/healthz"
	@echo ""
	DEBUG=1 $(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

## test: install runtime and test requirements, run the whole suite against PostgreSQL
test: $(BIN)/python
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium fonts-wqy-zenhei)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest --create-db -n auto

lint: $(BIN)/python
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
