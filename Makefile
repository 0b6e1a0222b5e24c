# hpbench: two commands for a newcomer.
#   make up    set up everything and run the platform on the embedded default (SQLite + a local worker);
#              PORT=8001 serves it on another port
#   make test  run the test suite (PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379)
#   make lint  ruff, then mypy with the Django and DRF plugins (configured in pyproject.toml)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint install chromium

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

PORT ?= 8000

up: $(STAMP)
	$(BIN)/python manage.py up --port $(PORT)

chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: $(STAMP) chromium
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
