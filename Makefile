# longthought: the two commands a new user runs are `make demo` and `make test`.
# Both create .venv and install everything (torch first, the CPU build on a laptop; override
# TORCH=... for a CUDA build on a GPU machine).

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
# The installer: uv (pinned, itself installed by pip into the venv) resolves and installs the ~130
# packages in seconds where pip takes over a minute on 2 cores. INSTALLER=pip uses plain pip.
# --compile-bytecode as pip does: without .pyc files (or with PYTHONDONTWRITEBYTECODE set) every
# job would compile torch and transformers again at start, ~2x the time of each short job.
INSTALLER ?= uv
UV_VERSION ?= 0.13.9
export PATH := $(CURDIR)/$(BIN):$(PATH)

# uv does not read pip's configuration: hand it pip's find-links (env PIP_FIND_LINKS and pip.conf,
# e.g. a local directory holding a CPU torch wheel) and an index set in the environment.
# (`=`, not `:=`: pip is asked only when an install runs.)
PIP_LINKS = $(strip $(PIP_FIND_LINKS) $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
UV_SOURCES = $(foreach link,$(sort $(PIP_LINKS)),--find-links $(link)) \
	$(if $(PIP_INDEX_URL),--index-url $(PIP_INDEX_URL)) \
	$(foreach url,$(PIP_EXTRA_INDEX_URL),--extra-index-url $(url))
ifeq ($(INSTALLER),uv)
PIP_INSTALL = $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python $(UV_SOURCES)
else
PIP_INSTALL = $(BIN)/pip install -q
endif

.PHONY: install demo test test-slurm test-fast browser-deps lint format bench bench-gpu clean slurm-up slurm-down

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "longthought needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
ifeq ($(INSTALLER),uv)
	$(BIN)/pip install -q "uv==$(UV_VERSION)"
else
	$(BIN)/pip install -q --upgrade pip
endif
	$(PIP_INSTALL) "$(TORCH)"
	$(PIP_INSTALL) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make demo: the whole pipeline on the embedded default config (offline, CPU, minutes)
demo: install
	$(BIN)/snakemake --cores $(CORES) --printshellcmds
	@echo
	@echo "Report:   $(CURDIR)/results/report/summary.md"
	@echo "Database: $(CURDIR)/results/results.duckdb"
	@echo "Browser:  $(CURDIR)/results/report/browser.html"
	@echo "HTML report of the run: $(BIN)/snakemake --report results/report.html"

## browser-deps: Debian's chromium and chromium-driver for the run browser's test
## (tests/test_browser_chromium.py drives them with selenium). Installed when missing and when
## running as root with apt-get (as CI does); elsewhere that test skips, or fails when CI=true.
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and chromium-driver (apt-get) for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver >/dev/null; \
	else echo "chromium/chromedriver missing and not installable here (root + apt-get needed)"; fi

## make test: unit, integration and end-to-end tests (the SLURM test needs root; required in CI)
test: install browser-deps
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

## make test-slurm: only the SLURM integration test (starts/stops a local cluster; needs root)
test-slurm: install
	$(BIN)/pytest -q -ra -s -m slurm $(PYTEST_ARGS)

test-fast: install browser-deps
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
	$(BIN)/python benchmarks/bench_longctx.py
	$(BIN)/python benchmarks/bench_student.py
	$(BIN)/python benchmarks/bench_viewer.py
	$(BIN)/python benchmarks/bench_demo.py

## make bench-gpu: SFT MFU and transformers-vs-vLLM generation of a 0.5B student, batch refill (one GPU, ~9 min)
bench-gpu: install
	$(BIN)/python benchmarks/bench_gpu.py

slurm-up:
	bash scripts/slurm-up.sh

slurm-down:
	bash scripts/slurm-down.sh

clean:
	rm -rf results .snakemake
