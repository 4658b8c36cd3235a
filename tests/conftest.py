"""Shared fixtures: the long workflow runs, started in the background as the session begins.

The end-to-end tests (tests/test_workflow.py, test_compute_nodes.py, test_workflow_hub.py), the
SLURM comparison (tests/test_slurm.py) and the umask check read a few long `snakemake` runs. The
session starts the ones its selected tests need one after another in the background before the
first test (tests/background_runs.py), and orders the tests that read them last, so the unit
tests run meanwhile; every reader waits on the same process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
SMALL = "tests/configs/small.yaml"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# the real AIME 2024 / AMC 2023 / MATH500 files beside the checkout (absent for users: those
# tests skip); LONGTHOUGHT_SHARED points elsewhere (a worktree, a CI cache)
SHARED = Path(os.environ.get("LONGTHOUGHT_SHARED", REPO.parent / "shared"))
BENCH_DIR = SHARED / "data" / "benchmarks"
# What a run of the workflow needs from the repo (the package itself is installed in the venv).
WORKFLOW_FILES = ["Snakefile", "rules", "report", "config", "envs", "data", "slurm", "profiles",
                  "tests/configs"]


def workflow_env() -> dict[str, str]:
    """The venv's tools first on PATH; no SLURM_* variables leaking in from an allocation."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return dict(env, PATH=f"{BIN}:{env['PATH']}")


def copy_workflow(dest: Path) -> Path:
    """The files a run needs, copied into `dest` (a fresh working directory)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src, dst = REPO / name, dest / name
        if not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dest


@pytest.fixture(scope="session", autouse=True)
def background(request, tmp_path_factory) -> dict:
    """The long runs the selected tests read, started one after another in the background
    before the first test (tests/background_runs.py); stopped at the end of the session."""
    import background_runs

    runs: dict = {}
    request.addfinalizer(lambda: [run.stop() for run in runs.values()])
    wanted = {name for item in request.session.items
              for name in getattr(item, "fixturenames", ())}
    runs.update(background_runs.start_chain(wanted & set(background_runs.RUNS),
                                            tmp_path_factory.mktemp))
    if "slurm_run" in wanted:  # the cluster first (here, so a skip reaches only its tests)
        try:
            request.getfixturevalue("cluster")
        except (Exception, pytest.skip.Exception, pytest.fail.Exception):
            pass  # every test that needs the cluster gets the same skip, failure or error
        else:
            runs["slurm_run"] = background_runs.slurm_run(tmp_path_factory.mktemp, None, runs)
    return runs


@pytest.fixture(scope="module")
def one_torch_thread():
    """One CPU thread for a module's generation comparisons: MKL may change its thread count
    under load, which perturbs float sums; with one thread every run is bit-reproducible (and
    faster on a busy 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_local_run(background):
    """`snakemake --cores 2` on the small overlay (a background `Run`); `.wait()` it."""
    return background["small_local_run"]


@pytest.fixture(scope="session")
def slurm_run(cluster, background):
    return background["slurm_run"]


@pytest.fixture(scope="session")
def compute_node_run(background):
    return background["compute_node_run"]


@pytest.fixture(scope="session")
def hub_run(background):
    return background["hub_run"]


@pytest.fixture(scope="session")
def replicates_run(background):
    return background["replicates_run"]


LAST = ("cluster", *("small_local_run", "compute_node_run", "hub_run", "replicates_run"))


def pytest_collection_modifyitems(config, items):
    """Tests that read a background run (or need the SLURM cluster) go last, in the order their
    runs start (a test reading two waits with the later one): the unit tests run while those
    runs do."""
    def rank(item) -> int:
        names = set(getattr(item, "fixturenames", ()))
        return max((i + 1 for i, name in enumerate(LAST) if name in names), default=0)

    items.sort(key=rank)  # stable: the order within each group is kept


def _unavailable() -> str | None:
    """Why a cluster cannot be started on this machine, or None."""
    if os.geteuid() != 0:
        return "needs root to start a local SLURM cluster (scripts/slurm-up.sh)"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "no SLURM installed and no apt-get to install slurm-wlm"
    return None


def _skip_or_fail(reason: str) -> None:
    if CI:
        pytest.fail(f"CI=true: the SLURM integration test is required, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster():
    """A running local SLURM cluster for the session: reused when already up (and then left
    up), else started here and stopped at the end. Skips where none can start; CI=true fails."""
    reason = _unavailable()
    if reason:
        _skip_or_fail(reason)
    up = subprocess.run(
        ["bash", "scripts/slurm-up.sh", "--check"], cwd=REPO, capture_output=True, text=True
    )
    was_up = up.returncode == 0
    if not was_up:
        t0 = time.monotonic()
        proc = subprocess.run(
            ["bash", "scripts/slurm-up.sh"], cwd=REPO, capture_output=True, text=True, timeout=600
        )
        print(f"slurm-up.sh: {time.monotonic() - t0:.1f} s\n{proc.stderr}")
        if proc.returncode == 3:
            _skip_or_fail(proc.stderr.strip().splitlines()[-1])
        assert proc.returncode == 0, f"scripts/slurm-up.sh failed:\n{proc.stderr[-4000:]}"
    yield
    if not was_up:
        subprocess.run(["bash", "scripts/slurm-down.sh"], cwd=REPO, capture_output=True)
