# longthought: the two commands a new user runs are `make demo` and `make test`.
# Both create .venv and install everything (torch first, the CPU build on a laptop; override
# TORCH=... for a CUDA build on a GPU machine).

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install demo test test-slurm test-fast lint format bench clean slurm-up slurm-down

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "longthought needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make demo: the whole pipeline on the embedded default config (offline, CPU, minutes)
demo: install
	$(BIN)/snakemake --cores $(CORES) --printshellcmds
	@echo
	@echo "Report:   $(CURDIR)/results/report/summary.md"
	@echo "Database: $(CURDIR)/results/results.duckdb"

## make test: unit, integration and end-to-end tests (the SLURM test needs root; required in CI)
test: install
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

## make test-slurm: only the SLURM integration test (starts/stops a local cluster; needs root)
test-slurm: install
	$(BIN)/pytest -q -ra -s -m slurm $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -q -ra -m "not slow and not slurm" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check workflow tests benchmarks
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint --cores 1

format: install
	$(BIN)/ruff check --fix workflow tests benchmarks
	$(BIN)/snakefmt Snakefile rules

bench: install
	$(BIN)/python benchmarks/bench_collect.py
	$(BIN)/python benchmarks/bench_curate.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_student.py
	$(BIN)/python benchmarks/bench_demo.py

slurm-up:
	bash scripts/slurm-up.sh

slurm-down:
	bash scripts/slurm-down.sh

clean:
	rm -rf results .snakemake
