# rnnkit: `make demo` sets everything up in .venv and runs the main job; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Anything that changes what `pip install -e .` builds re-runs the install.
INSTALL_INPUTS := requirements.txt pyproject.toml $(wildcard setup.py) $(wildcard src/rnnkit/engine/csrc/*)

.PHONY: setup demo test test-all lint format bench clean

setup: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $(STAMP)

demo: setup
	$(PY) examples/demo.py

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: setup
	$(PY) bench/layers.py

clean:
	rm -rf $(VENV) build src/*.egg-info
