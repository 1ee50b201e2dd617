# `make demo` installs nerftune into a virtual environment and runs the demo sweep; `make test` runs the whole
# test suite (fast tier, then slow tier), `make test-fast` only the tier without real sweeps or training.
# VENV picks the environment (CI reuses one across runs: VENV=~/.venvs/nerftune).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-fast lint

# the install ends by removing jsonschema's IRI checker, rfc3987-syntax, which nerfstudio's notebook tooling
# (jupyter-events) brings and pip puts back on each install: it compiles 38 grammars whenever jsonschema is imported,
# as every Ray process does, and made each sweep's first trial start about 9 s later on 2 cores (benchmarks/launch.py).
# nerftune validates no IRIs
install:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,server]'
	$(PY) -m pip uninstall -q -y rfc3987-syntax

demo: install
	$(PY) -m nerftune.sweep search_spaces/demo.yaml

# the fast tier runs its files on 2 workers (pytest-xdist; a file's tests stay together, with their module
# fixtures): its subprocesses and imports left a core idle half the time. The slow tier keeps one: its sweeps keep
# both cores busy already (2 workers there were no faster, and less steady)
FAST_TIER := -m "not slow" -n 2 --dist loadfile

test-fast: install
	$(PY) -m pytest $(FAST_TIER)

# the fast tier first, so that a broken house fails in minutes; then the real sweeps and training, with the
# slowest tests and fixtures listed at the end (where the suite's time goes). First the system programs the slow
# tier drives (Chromium, Tesseract, ffmpeg, PostgreSQL): apt-get installs the missing ones where it runs as root
test: install
	bash tests/system_packages.sh
	$(PY) -m pytest $(FAST_TIER)
	$(PY) -m pytest -m slow --durations=30

# the docker/ files, which no Docker engine here can build: every Dockerfile by hadolint (no findings at all), every
# compose file against the Compose specification's JSON schema (vendored by check-jsonschema, offline)
lint: install
	$(VENV)/bin/hadolint --failure-threshold info docker/*.Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker/compose*.yaml
