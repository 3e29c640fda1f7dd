# The README's commands. Only python3 and pip are assumed; everything else is
# installed into .venv from pyproject.toml's compatible version ranges.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install test localnet lint typecheck bench container-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

localnet: $(STAMP)
	$(BIN)/scpd localnet --nodes 4

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Build the image and run it and the compose stack for real (Docker, or rootful
# podman): not part of `test`. See deploy/container-check.sh for its settings.
container-check: $(STAMP)
	deploy/container-check.sh

clean:
	rm -rf $(VENV) build *.egg-info
