"""No API calls and no shared-cache writes from compute nodes, proven without SLURM.

The small pipeline (plus a `mode: local` teacher task: the tiny model as an open teacher) runs
through Snakemake's generic cluster executor, which decides exactly as with SLURM what is a
local rule (run by the Snakemake process) and what is a job (submitted). Every submitted job
runs as a compute-node job would: `LONGTHOUGHT_COMPUTE_NODE=1` (the guard: any API request or
shared-cache write raises) and, where this machine allows it (root), in a network namespace of
its own whose loopback is down, so there is no route to any server at all. The run must
complete, every job must have run that way, and the local teacher's shards must have reached
the traces table through the local merge. The same guard stops the pre-split `generalize` (a
model's answers and the judge's API in one job), so this test fails when any non-local rule
would call an API or write the shared cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import workflow_env

pytestmark = pytest.mark.slow

MUST_BE_JOBS = {"curate", "train", "generate_local", "generalize_local", "traces_generate"}
MUST_BE_LOCAL = {"traces", "traces_plan", "generalize_judge", "generate_api"}


def executed(log: str) -> tuple[set[str], set[str]]:
    """(rules run as jobs, rules run locally) from Snakemake's `rule X:` / `localrule X:` (and
    `checkpoint X:` / `localcheckpoint X:`)."""
    jobs = set(re.findall(r"^(?:rule|checkpoint) (\S+):$", log, re.M))
    local = set(re.findall(r"^local(?:rule|checkpoint) (\S+):$", log, re.M))
    return jobs, local


@pytest.fixture(scope="module")
def cluster_run(compute_node_run):
    """The session's background run through the generic cluster executor
    (tests/background_runs.py): (workdir, Snakemake's log, each submitted job's log)."""
    log, _ = compute_node_run.wait()
    work = compute_node_run.workdir
    job_logs = {p.name: p.read_text(errors="replace") for p in (work / "jobs").glob("*.log")} \
        if (work / "jobs").exists() else {}
    return work, log, job_logs


def test_every_job_ran_as_a_compute_node_job_and_the_run_completed(cluster_run):
    work, log, job_logs = cluster_run
    jobs, local = executed(log)
    assert MUST_BE_JOBS <= jobs, f"expected jobs of {MUST_BE_JOBS}, got {jobs}"
    assert MUST_BE_LOCAL <= local, f"expected local rules {MUST_BE_LOCAL}, got {local}"
    assert not jobs & local
    n_jobs = len(re.findall(r"^(?:rule|checkpoint) \S+:$", log, re.M))
    assert len(job_logs) == n_jobs  # every submitted job went through the wrapper
    netns = shutil.which("unshare") is not None and os.geteuid() == 0
    for name, text in job_logs.items():
        assert "guard=1" in text.splitlines()[0], name
        if netns:
            assert "netns=unshare --net" in text.splitlines()[0], name
    assert (work / "results/results.duckdb").exists()


def test_the_local_teacher_reached_the_table_through_the_merge(cluster_run):
    work, _, _ = cluster_run
    traces = pd.read_parquet(work / "results/traces/distill-local.parquet")
    assert len(traces) == 6 and (traces["status"] == "ok").all()
    assert set(traces["model"]) == {"results/models/tiny@init"}
    shards = work / ".cache/longthought/shards/distill-local"
    assert not list(shards.glob("*.jsonl"))  # merged into the cache, then removed
    # the GPU job's summary was temporary; its log says what it generated
    log = (work / "results/logs/traces_generate/distill-local.log").read_text()
    assert "6 generated" in log


def test_the_guard_stops_an_api_call_in_a_compute_node_job(cluster_run, tmp_path):
    """The negative control: the pre-split form (a model's answers and the judge's API in one
    job) fails in a compute-node job, before any request, naming the reason."""
    work, _, _ = cluster_run
    config = yaml.safe_load((work / "config/config.yaml").read_text())
    judge = {"name": "sim-judge", **config["teachers"]["sim-judge"]}
    spec = {"model": {"name": "tiny", "kind": "local", "path": str(work / "results/models/tiny")},
            "set": {"name": "facts-demo", **config["generalization"]["sets"]["facts-demo"],
                    "path": str(work / "data/generalization/facts_demo.jsonl")},
            "judge": judge, "sampling": {"n": 1, "temperature": 0.0, "top_p": 1.0,
                                         "max_new_tokens": 8, "seed": 0}}
    proc = subprocess.run(
        [sys.executable, "-m", "longthought.cli", "generalize", "--model", "tiny", "--set",
         "facts-demo", "--spec", json.dumps(spec), "--out", str(tmp_path / "f.parquet"),
         "--items", str(tmp_path / "f.items.parquet"), "--cache-dir", str(tmp_path / "cache")],
        env={**workflow_env(), "LONGTHOUGHT_COMPUTE_NODE": "1"}, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode != 0 and "compute-node job" in proc.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "f.parquet").exists()
