# `make demo` installs nerftune into a virtual environment and runs the demo sweep; `make test` runs the tests.
# VENV picks the environment (CI reuses one across runs: VENV=~/.venvs/nerftune).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test

install:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'

demo: install
	$(PY) -m nerftune.sweep search_spaces/demo.yaml

test: install
	$(PY) -m pytest
