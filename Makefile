# effnas: the two commands for a fresh machine are `make search` and `make test`.
# Everything installs into $(VENV) (default .venv).  A user who already has a (CUDA) torch
# can point VENV at that environment, e.g. `make test VENV=$$CONDA_PREFIX`: torch is only
# installed when none is importable there, so an existing build is kept.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.effnas-installed
TORCH_CPU ?= torch==2.13.0
export RAY_AUTH_MODE ?= disabled

.PHONY: install search test test-fast bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(STAMP)

$(STAMP): pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_CPU)
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# Each `make search` starts a new run dir (runs/quickstart-<time>); continue an interrupted one with
# `nas search runs/quickstart-<time> --resume`.
SEARCH_NAME ?= quickstart-$(shell date +%Y%m%d-%H%M%S)
search: install
	$(VENV)/bin/nas search experiments/quickstart.yaml --set output.name=$(SEARCH_NAME)

# One intra-op thread a process: the tests run Ray workers beside the test process on 2 cores,
# and oversubscribed OpenMP threads made the suite 5-10x slower there.
test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -m "not gpu" -q --durations=15

test-fast: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

bench: install
	$(PY) bench/cost_speed.py

clean:
	rm -rf runs build *.egg-info
