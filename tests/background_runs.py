"""The long workflow runs the end-to-end tests read, started in the background as a session begins.

A run of the small pipeline takes minutes, mostly in job processes that import torch or wait on
one another, while the unit tests leave one of the two cores idle much of the time. So the session
starts the runs its selected tests need one after another in the background (`start_chain`, from
tests/conftest.py) before the first test, and the tests that read them are ordered last
(`conftest.pytest_collection_modifyitems`): by the time they run, their run has usually ended, and
they only check what it left.

Each run is a `Run`: one `snakemake` process in a workdir of its own, its output in a log file
beside it. A run in the chain starts once the one before it has ended (failed or not: each test
reports its own run's failure) and once its `prepare` step has laid out its workdir.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import SMALL, SNAKEMAKE, copy_workflow, workflow_env


class Run:
    """One `snakemake` process in a workdir; started at once, or after `after` has ended."""

    def __init__(self, workdir: Path, args: list[str], timeout_s: float = 1500,
                 after: Run | None = None, prepare: Callable[[], dict] | None = None):
        self.workdir, self.args, self.timeout_s = workdir, args, timeout_s
        self.log_path = workdir.parent / f"{workdir.name}.snakemake.log"
        self.t0: float | None = None
        self.t1: float | None = None
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}  # what `prepare` made (e.g. paths the test checks)
        self.result: tuple[str, float] | None = None
        self._started = threading.Event()  # set once started, cancelled or failed to start
        self._lock = threading.Lock()  # `stop` vs the cancel check and the start
        self._cancelled = False
        self._error: BaseException | None = None
        if after is None:
            self._start(prepare)
        else:
            threading.Thread(target=self._start_after, args=(after, prepare), daemon=True,
                             name=f"run {workdir.name}").start()

    def _start_after(self, after: Run, prepare: Callable[[], dict] | None) -> None:
        after.end()
        self._start(prepare)

    def _start(self, prepare: Callable[[], dict] | None) -> None:
        """Prepare the workdir, then start the process unless stopped meanwhile; an error is
        kept for `wait()`, in the test that reads this run."""
        try:
            if prepare is not None and not self._cancelled:
                self.info = prepare() or {}
            with self._lock:
                if not self._cancelled:
                    self.t0 = time.monotonic()
                    with open(self.log_path, "w") as log:
                        self.proc = subprocess.Popen([SNAKEMAKE, *self.args], cwd=self.workdir,
                                                     env=workflow_env(), stdout=log,
                                                     stderr=subprocess.STDOUT)
                    threading.Thread(target=self._clock, daemon=True).start()
        except BaseException as exc:
            self._error = exc
        finally:
            self._started.set()

    def _clock(self) -> None:
        """Stop the clock when the process ends, whoever looks at it later."""
        self.proc.wait()
        self.t1 = time.monotonic()

    def end(self) -> None:
        """Block until the process has ended (or never started), whatever its exit status; a
        run past its `timeout_s` is killed."""
        self._started.wait()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=max(1, self.timeout_s - (time.monotonic() - self.t0)))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.t1 is None:
                self.t1 = time.monotonic()

    def wait(self) -> tuple[str, float]:
        """Its log and wall time once it ends; fails the test with the logs if it failed."""
        if self.result is not None:
            return self.result
        self.end()
        if self._error is not None:
            pytest.fail(f"setting up {self.workdir.name} failed: {self._error!r}")
        if self.proc is None:
            pytest.fail(f"{self.workdir.name} was cancelled before it started")
        out = self.log_path.read_text(errors="replace")
        if self.proc.returncode != 0:
            logs = "\n".join(
                f"--- {p}\n{p.read_text(errors='replace')[-2000:]}"
                for d in ("results/logs", ".snakemake/slurm_logs", "jobs")
                if (self.workdir / d).exists()
                for p in sorted((self.workdir / d).rglob("*.log"))
            )
            pytest.fail(f"snakemake {' '.join(self.args)} failed:\n{out[-6000:]}\n{logs[-8000:]}")
        self.result = (out, self.t1 - self.t0)
        return self.result

    def stop(self) -> None:
        """Cancel it if it has not started; terminate it (kill after 2 minutes) if it runs."""
        with self._lock:
            self._cancelled = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the runs ---------------------------------------------------------------------------------
def small_local_run(tmp: Callable[[str], Path], after: Run | None, runs: dict[str, Run]) -> Run:
    """`snakemake --cores 2` on the small overlay: the end-to-end tests' shared run."""
    return Run(copy_workflow(tmp("local-run")), ["--cores", "2", "--configfile", SMALL],
               after=after)


# What each submitted job's wrapper records, then runs the jobscript (a compute node).
SUBMIT = r"""#!/bin/bash
jobscript="${@: -1}"
log="$(dirname "$0")/jobs/$(basename "$jobscript").log"
mkdir -p "$(dirname "$log")"
NS=""
if unshare --net true 2>/dev/null; then NS="unshare --net"; fi
NS="$NS" LONGTHOUGHT_COMPUTE_NODE=1 nohup $NS bash -c \
  'echo "guard=$LONGTHOUGHT_COMPUTE_NODE netns=${NS:-none}"; exec bash "$0"' "$jobscript" \
  > "$log" 2>&1 < /dev/null &
echo $!
"""

LOCAL_TEACHER = {
    "pools": {"mini": {"source": "procedural", "split": "train", "n": 6, "seed": 5,
                       "families": {"addition": {"digits": 2}}}},
    "teachers": {"tiny-teacher": {
        "mode": "local", "model": "results/models/tiny@init",
        "sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 16},
        "local": {"backend": "transformers", "device": "cpu", "chunk_size": 4},
        "resources": {"slurm_partition": "gpu", "gpu": 1, "runtime": 10}}},
    "tasks": {"distill-local": {"teacher": "tiny-teacher", "prompt": "distill", "pool": "mini"}},
}


def compute_node_run(tmp: Callable[[str], Path], after: Run | None,
                     runs: dict[str, Run]) -> Run:
    """The small pipeline plus a local-teacher task through the generic cluster executor, every
    job wrapped as a compute-node job (tests/test_compute_nodes.py)."""
    work = tmp("compute-nodes")

    def prepare() -> dict:
        copy_workflow(work)
        (work / "submit.sh").write_text(SUBMIT)
        (work / "local-teacher.yaml").write_text(yaml.safe_dump(LOCAL_TEACHER))
        return {}

    args = ["--executor", "cluster-generic", "--cluster-generic-submit-cmd",
            f"bash {work / 'submit.sh'}", "--jobs", "2", "--local-cores", "2",
            "--latency-wait", "5", "--configfile", SMALL, str(work / "local-teacher.yaml")]
    return Run(work, args, timeout_s=2400, after=after, prepare=prepare)


HUB_FAMILIES = {"qwen25": "qwen2.5-instruct", "qwen25-math": "qwen2.5-math",
                "llama3": "llama-3-instruct"}


def hub_run(tmp: Callable[[str], Path], after: Run | None, runs: dict[str, Run]) -> Run:
    """Hub-shaped students (tests/hub_models.py) through init, two stages, evaluation, report."""
    root = tmp("hub")
    work = root / "wf"

    def prepare() -> dict:
        copy_workflow(work)
        # in a process of its own: building draws weights from torch's global generator (and
        # transformers patches torch.nn.init while loading), which the unit tests running in
        # the main thread meanwhile share
        models = {}
        for name, family in HUB_FAMILIES.items():
            models[name] = root / "hub" / family
            subprocess.run([sys.executable, str(Path(__file__).with_name("hub_models.py")),
                            family, str(models[name])], check=True, capture_output=True,
                           timeout=600)
        stages = [{"dataset": "format-arith", "lr": 2.0e-3, "max_steps": 2, "batch_size": 8,
                   "max_length": 384, "seed": 1},
                  {"dataset": "longthought-arith", "lr": 2.0e-3, "max_steps": 2,
                   "batch_size": 8, "max_length": 384, "seed": 2}]
        overlay = {
            "students": {name: {"base_model": str(path), "precision": "fp32",
                                "attn_implementation": "sdpa", "checkpoint_every": 0,
                                "stages": stages} for name, path in models.items()},
            "evaluation": {"models": [*models, "qwen25@init"],
                           "sampling": {"n": 2, "temperature": 0.7, "top_p": 0.95,
                                        "max_new_tokens": 48, "seed": 0, "system": None},
                           "budgets": [], "budget_models": None},
            "generalization": {"models": ["tiny@init", "tiny"]},
        }
        (root / "hub.yaml").write_text(yaml.safe_dump(overlay))
        return {"models": models}

    return Run(work, ["--cores", "2", "--configfile", SMALL, str(root / "hub.yaml")],
               timeout_s=1800, after=after, prepare=prepare)


REPLICATES = {"students": {"tiny": {"replicates": 2}},
              "report": {"compare": [["tiny@init", "tiny"]]}}


def replicates_run(tmp: Callable[[str], Path], after: Run | None,
                   runs: dict[str, Run]) -> Run:
    """The finished small run again with `replicates: 2` (tests/test_workflow.py)."""
    root = tmp("replicates")
    work = root / "reps"
    small = runs["small_local_run"]

    def prepare() -> dict:
        small.end()
        if small.proc is None or small.proc.returncode != 0:
            raise RuntimeError("the small run did not complete (its own test says why)")
        shutil.copytree(small.workdir, work, symlinks=True)  # traces links kept as links
        (root / "reps.yaml").write_text(yaml.safe_dump(REPLICATES))
        return {}

    return Run(work, ["--cores", "2", "--configfile", SMALL, str(root / "reps.yaml")],
               after=after, prepare=prepare)


CI_PROFILE = "profiles/ci-slurm"
FAULTS = "profiles/ci-slurm/faults.yaml"  # the SLURM run only


def slurm_run(tmp: Callable[[str], Path], after: Run | None, runs: dict[str, Run]) -> Run:
    """The small pipeline through `--profile slurm` (plus the CI profile and its fail-once
    knob) on the local cluster (tests/test_slurm.py). It starts beside the chain, since it
    mostly waits on the queue and its status polls; `info["since"]` bounds its sacct query."""
    since = dt.datetime.now() - dt.timedelta(minutes=1)
    run = Run(copy_workflow(tmp("slurm-run")),
              ["--profile", "slurm", "--workflow-profile", CI_PROFILE, "--configfile", SMALL,
               FAULTS], after=after)
    run.info["since"] = since
    return run


# in start order; each starts once the one before it has ended
RUNS = {"small_local_run": small_local_run, "compute_node_run": compute_node_run,
        "hub_run": hub_run, "replicates_run": replicates_run}
NEEDS = {"replicates_run": {"small_local_run"}}


def start_chain(wanted: set[str], tmp: Callable[[str], Path]) -> dict[str, Run]:
    """Start the runs of `RUNS` in `wanted` (and what they need), one after another in the
    background."""
    wanted = wanted | {n for w in wanted for n in NEEDS.get(w, ())}
    runs: dict[str, Run] = {}
    prev: Run | None = None
    for name, start in RUNS.items():
        if name in wanted:
            runs[name] = prev = start(tmp, prev, runs)
    return runs
