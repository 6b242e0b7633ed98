# `make pipeline` runs the whole pipeline; `make test` runs the tests. Both set up .venv first.
VENV ?= .venv
BIN := $(VENV)/bin
# Snakemake's shell rules call `wmil`, so the venv's bin must be on PATH.
export PATH := $(abspath $(BIN)):$(PATH)


# The coder model's hash-pinned chunks are fetched (once) and the assembled file's sha256 checked.
setup:
	@WMIL_VENV=$(VENV) scripts/setup-env.sh
	@$(BIN)/wmil fetch-model >/dev/null

# Through DVC, so that dvc.lock and its cache always describe what was built (`dvc exp run` then
# reruns only what a change touches); a stale lock of a killed Snakemake is removed first.
pipeline: setup
	@scripts/unlock-if-idle.sh $(BIN)/snakemake
	$(BIN)/dvc repro

# Two pytest workers, one per core, handed one test at a time (pytest-xdist's default first chunk
# would give one worker every integration test); the Slurm test takes the one local
# cluster (a file lock).
PYTEST_WORKERS := -n 2 --maxschedchunk 1

test: setup
	@scripts/install-chromium.sh
	WMIL_VENV=$(VENV) scripts/run-tests.sh $(PYTEST_WORKERS)

test-fast: setup
	WMIL_VENV=$(VENV) scripts/run-tests.sh $(PYTEST_WORKERS) -m "not integration"

bench: setup
	$(BIN)/wmil bench

# ruff and mypy read their settings from pyproject.toml; Snakemake lints the workflow.
lint: setup
	$(BIN)/ruff check wmil tests
	$(BIN)/mypy
	$(BIN)/snakemake --lint

# After `git checkout` + `dvc checkout`/`dvc pull`, file times disagree with Snakemake's records
# and it would retrain; this marks the restored outputs as up to date instead.
realign:
	$(BIN)/snakemake --touch --cores 1 all
