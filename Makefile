# Fresh machine: `make demo` sets everything up and trains on the bundled digits;
# `make test` sets everything up and runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast bench clean

$(BIN)/softreg: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of torch first, where this index has it, so no CUDA packages are pulled.
	$(BIN)/python -m pip install -q torch==2.13.0 || echo "torch==2.13.0 not available here; pip will pick a torch that fits"
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/softreg

demo: setup
	$(BIN)/softreg train --out runs/digits-softmax
	$(BIN)/softreg predict runs/digits-softmax --index 0 --show runs/digits-softmax/prediction.png

# the KServe SDK for the serving tests, in a venv of its own (.ci/kserve.txt says why)
KSERVE_VENV ?= .ci-venvs/kserve

$(KSERVE_VENV)/installed: .ci/kserve.txt
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/python -m pip install -q --upgrade pip
	$(KSERVE_VENV)/bin/python -m pip install -q -r .ci/kserve.txt
	touch $@

test: setup $(KSERVE_VENV)/installed
	SOFTREG_KSERVE_PYTHON=$(KSERVE_VENV)/bin/python $(BIN)/python -m pytest -q

# the suite without the process-level runs marked slow (distributed, kill and resume, fuzzing,
# the browser, server lifecycle, end to end): for the edit-test loop; `make test` runs everything
test-fast: setup $(KSERVE_VENV)/installed
	SOFTREG_KSERVE_PYTHON=$(KSERVE_VENV)/bin/python $(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .ci-venvs dist runs .pytest_cache .hypothesis build *.egg-info src/*.egg-info
