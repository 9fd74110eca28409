# Set-up installs the CPU build of torch 2.13.0 first, so the project's `torch` requirement is
# already met and pip does not fetch a several-GB CUDA build. GPU users: see README.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: setup demo test test-slow bench bench-flows clean

$(BIN)/gen-runner: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(BIN)/gen-runner

demo: setup
	$(BIN)/gen-runner train

test: setup
	$(BIN)/python -m pytest -q -n auto

test-slow: setup
	$(BIN)/python -m pytest -q -n auto -m slow

bench: setup
	$(BIN)/python scripts/bench_overhead.py

# The flow benchmark's reference library lives in .bench/, never in the project's environment
# (--no-deps: it uses the torch already installed).
.bench/zuko:
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --target .bench zuko==1.6.0

bench-flows: setup .bench/zuko
	PYTHONPATH=.bench $(BIN)/python scripts/bench_flows.py

clean:
	rm -rf $(VENV) outputs/train outputs/eval outputs/sample
