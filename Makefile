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

# `make search`: train a small supernet of the nas-bench-macro space on the built-in CIFAR-10 images
# (experiments/supernet_macro.yaml), then run the bayes controller and the equal-budget random baseline on it, every
# candidate of both verified against the converged NAS-Bench-Macro table (experiments/quickstart.yaml): report.md says
# whether the search beat random on that truth (rank, percentile, regret of both) and how well the supernet ranked;
# bench/discovery.py asks the same over many seeds.
# Each `make search` starts a new pair of run dirs, runs/quickstart-<time> (search, baseline/, report.md) and
# runs/quickstart-<time>-supernet; continue an interrupted one with
# `nas supernet train runs/quickstart-<time>-supernet --resume` / `nas search runs/quickstart-<time> --resume`.
# The MnasNet-space supernet search is experiments/supernet_search_mnasnet.yaml + quickstart_mnasnet.yaml.
SEARCH_STAMP := quickstart-$(shell date +%Y%m%d-%H%M%S)
SEARCH_NAME ?= $(SEARCH_STAMP)
search: install
	OMP_NUM_THREADS=1 $(VENV)/bin/nas supernet train experiments/supernet_macro.yaml \
		--set output.name=$(SEARCH_NAME)-supernet
	OMP_NUM_THREADS=1 $(VENV)/bin/nas search experiments/quickstart.yaml --set output.name=$(SEARCH_NAME) \
		--set evaluator.checkpoint=runs/$(SEARCH_NAME)-supernet/supernet.pt
	@echo "report: runs/$(SEARCH_NAME)/report.md   summary again: $(VENV)/bin/nas results runs/$(SEARCH_NAME)"

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
