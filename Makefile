# rnnkit: `make demo` sets everything up in .venv and runs the main job; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Anything that changes what `pip install -e .` builds re-runs the install.
INSTALL_INPUTS := requirements.txt pyproject.toml $(wildcard setup.py) $(wildcard src/rnnkit/engine/csrc/*)

.PHONY: setup browser demo test test-all lint format bench fuzz clean

setup: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $(STAMP)

# The report's browser test needs Debian's Chromium: installed here when we are root with apt,
# otherwise that one test is skipped with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && timeout 900 apt-get update -qq && timeout 900 apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the report's browser test will be skipped"

demo: setup
	$(VENV)/bin/rnnkit train --out runs/demo --overwrite
	$(VENV)/bin/rnnkit generate runs/demo --prime "Ham." --length 400 --temperature 0.8 --seed 0

test: setup browser
	$(PY) -m ruff check .
	$(PY) -m pytest -q

test-all: setup browser
	$(PY) -m pytest -q -m "slow or not slow"

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: setup
	$(PY) bench/layers.py

# Coverage-guided fuzzing (atheris) of every reader, the config loader, vocabulary and model
# JSON, FUZZ_SECONDS each; crashes land in fuzz/crashes/. The test suite replays fuzz/corpus/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= text csv word_tag conll conllu pairs series long_series tsf config overrides vocab tokenizer metadata
fuzz: setup
	@mkdir -p fuzz/work
	@for target in $(FUZZ_TARGETS); do \
	  echo "fuzzing $$target for $(FUZZ_SECONDS) s (log: fuzz/work/$$target.log)"; \
	  $(PY) fuzz/run.py $$target --seconds $(FUZZ_SECONDS) > fuzz/work/$$target.log 2>&1 \
	    || { tail -n 40 fuzz/work/$$target.log; exit 1; }; \
	  grep -E "DONE|number_of_executed_units" fuzz/work/$$target.log; \
	done

clean:
	rm -rf $(VENV) build src/*.egg-info
