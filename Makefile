# Each target creates the virtualenv .venv when it is missing, so both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test venv clean

$(BIN)/robustprune: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/robustprune

venv: $(BIN)/robustprune

# The main job on the default CPU preset (inverted_pendulum, 4 sparsities x 3 seeds, 5 values of eps, all eight attacks).
demo: venv
	$(BIN)/robustprune run --preset default

# The whole test suite (skips tests marked slow).
test: venv
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
