"""Shared fixtures: one small local run of the whole workflow, started once per session.

Both the end-to-end tests (tests/test_workflow.py) and the SLURM comparison (tests/test_slurm.py)
need the same `snakemake --cores 2` run of the small overlay. It starts in the background the
first time a test asks for it, so the SLURM run can go side by side with it, and every later
user waits on the same process.
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


class Run:
    """One `snakemake` process in a workdir, its output kept in a log file next to it."""

    def __init__(self, workdir: Path, args: list[str], timeout_s: float = 1500):
        self.workdir, self.args, self.timeout_s = workdir, args, timeout_s
        self.log_path = workdir.parent / f"{workdir.name}.snakemake.log"
        self.t0, self.t1 = time.monotonic(), None
        self.result: tuple[str, float] | None = None
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([SNAKEMAKE, *args], cwd=workdir, env=workflow_env(),
                                         stdout=log, stderr=subprocess.STDOUT)

    def ended(self) -> bool:
        """Whether it has ended; the first call that sees it ended stops its clock."""
        if self.t1 is None and self.proc.poll() is not None:
            self.t1 = time.monotonic()
        return self.t1 is not None

    def wait(self) -> tuple[str, float]:
        """Its log and wall time once it ends; fails the test with the logs if it failed."""
        if self.result is not None:
            return self.result
        try:
            rc = self.proc.wait(timeout=max(1, self.timeout_s - (time.monotonic() - self.t0)))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.ended()
        out = self.log_path.read_text(errors="replace")
        if rc != 0:
            logs = "\n".join(
                f"--- {p}\n{p.read_text(errors='replace')[-2000:]}"
                for d in ("results/logs", ".snakemake/slurm_logs")
                if (self.workdir / d).exists()
                for p in sorted((self.workdir / d).rglob("*.log"))
            )
            pytest.fail(f"snakemake {' '.join(self.args)} failed:\n{out[-6000:]}\n{logs[-8000:]}")
        self.result = (out, self.t1 - self.t0)
        return self.result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=120)


@pytest.fixture(scope="session")
def small_local_run(tmp_path_factory):
    """`snakemake --cores 2` on the small overlay, started in the background; `.wait()` it."""
    run = Run(copy_workflow(tmp_path_factory.mktemp("local-run")),
              ["--cores", "2", "--configfile", SMALL])
    yield run
    run.stop()


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
