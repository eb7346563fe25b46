# Hotline: `make run` and `make test` are the two set-up commands (see README).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Rasa 3.6 supports Python 3.10 and no newer: find one, on PATH or under pyenv.
PYTHON310 := $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 \
	/usr/local/bin/python3.10 /usr/bin/python3.10; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1 \
	&& { command -v "$$p"; break; }; done)

.PHONY: install train run eval bench soak test lint typecheck

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "Python 3.10 is required (Rasa 3.6 supports no newer): install it, e.g. 'apt-get install python3.10 python3.10-venv' or 'pyenv install 3.10'."; \
	  exit 1; fi
	@[ -x $(BIN)/python ] || $(PYTHON310) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

train: install
	$(BIN)/hotline train

run: train
	$(BIN)/hotline run

eval: install
	$(BIN)/hotline eval

bench: train
	$(BIN)/python bench/triage_speed.py
	$(BIN)/python -m bench.load --conversations 20
	$(BIN)/python -m bench.faults

soak: train
	$(BIN)/python -m bench.soak --minutes 30

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

test: train lint typecheck
	$(BIN)/python -m pytest
