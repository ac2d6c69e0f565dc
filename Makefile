# Set-up and the two jobs: `make bench` (the default benchmark) and `make test`.
# TORCH pins the CPU wheel this machine has on disk; elsewhere e.g. `make bench TORCH=torch`.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: bench test install perf clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test,cluster]"
	touch $@

bench: install
	$(BIN)/discograd -m experiment=benchmark

test: install
	$(BIN)/python -m pytest -q

perf: install
	$(BIN)/python benchmarks/probe_throughput.py
	$(BIN)/python benchmarks/vae_step.py

clean:
	rm -rf $(VENV) outputs multirun *.egg-info
