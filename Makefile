# Two commands for a fresh machine with python3 (>= 3.11.4) and make:
#   make demo   create .venv/, install the locked stack, run the whole DVC pipeline
#   make test   create/refresh .venv/ with the test extras, run the test suite
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
# Stage commands call `python`, `dvc` and `mlflow`: take them from the project's environment.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: install install-test demo test test-fast lint ui app notebooks experiments gpu-carry

$(UV):
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --frozen: exactly uv.lock; --inexact: keep uv itself in the environment; --compile-bytecode:
# write every .pyc now, so imports do not compile from source each time (they would wherever
# PYTHONDONTWRITEBYTECODE is set, as in many containers: importing the training stage took 17.1 s
# instead of 7.3 s on 2 cores, see benchmarks/startup.py).
SYNC := $(UV) sync --frozen --inexact --compile-bytecode

install: $(UV)
	$(SYNC)

install-test: $(UV)
	$(SYNC) --extra test

demo: install
	dvc repro
	@echo "Scores: reports/scores.json (all: reports/metrics.json); experiments: make experiments;"
	@echo "plots: dvc plots show; runs: mlflow ui (from this folder), then"
	@echo "  http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"

# `dvc exp show` at 200 columns: params, best epoch, validation and test accuracy, macro F1 and
# specificity. Dropped: the hashes of every dependency of every stage, intervals, run ids, the
# other scores (all in reports/scores.json; `dvc exp show` shows everything).
experiments: install
	dvc exp show --drop '^(fer_pipeline|conf|data)/|^models$$|^reports/package\.json$$|^ci\.|tracking_uri|best_checkpoint|mlflow_|.*_weighted|.*top2|.*precision|.*recall|occlusion'


test: install-test
	pytest

# Everything not marked slow (the end-to-end stages, DVC, multirun sweeps): for development.
test-fast: install-test
	pytest -m "not slow"

lint: install-test
	ruff check fer_pipeline tests
	ruff format --check fer_pipeline tests

ui: install
	mlflow ui

app: install
	python -m fer_pipeline.app

notebooks: $(UV)
	$(SYNC) --extra notebooks
	jupyter lab notebooks/

# What benchmarks/gpu_check.sh needs on a GPU machine without network, in .carry/ (git-ignored):
# benchmarks/gpu/wheels.txt as Python 3.12 wheels and the FER2013 archive (docs/training.md).
gpu-carry: $(UV)
	PYTHON=python bash benchmarks/gpu/carry.sh $(ARCHIVE)
