"""`snakemake --profile slurm` on a real one-node SLURM cluster (scripts/slurm-up.sh).

The embedded default pipeline (with the small test overlay) runs through the `slurm/` profile
stacked with the CI overlay `profiles/ci-slurm/`, and then once more locally with
`snakemake --cores 2`. From the cluster's own accounting records (`sacct`, slurmdbd) the test
checks that every non-local job ran as a SLURM job and no local rule did, that GPU jobs asked for
GPUs on the `gpu` partition, and that the job made to fail once (config `testing.fail_once`) failed
on SLURM, was resubmitted and completed. Every table the two runs wrote must be equal, apart from
timing columns.

Skips where a cluster cannot be started (not root, no apt-get); with CI=true it is required.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from background_runs import FAULTS
from conftest import REPO

pytestmark = pytest.mark.slurm

# Rules that must run as SLURM jobs and rules that must not, whatever else the workflow grows.
MUST_BE_REMOTE = {"curate", "train", "generate_local"}
MUST_BE_LOCAL = {"problems", "benchmark", "traces", "report", "generalize_judge"}
GPU_RULES = {"train", "generate_local", "generalize_local"}  # resources from config: gpu: 1
# What the job made to fail prints (the shell command echoed in the log does not match: ^).
FAIL_ONCE_MESSAGE = re.compile(r"^testing\.fail_once: .* on purpose$", re.M)
# Top-level keys of JSON cells that say where or when a job ran, not what it computed: the SLURM
# job in the trainer's hparams (test_training_recorded_its_slurm_job checks it instead), the
# `created` clock time of each raw API response in the traces, the clock times of a generation
# run's provenance (the report's `runs` table).
# `model_files` lists the model directory's file sizes, and hparams.json's size depends on how
# many digits the SLURM job id has (null locally).
PROVENANCE_KEYS = ("slurm_job_id", "created", "started", "finished", "timings", "model_files")
# Columns that measure time or memory, not results: they differ between any two runs.
VOLATILE = re.compile(r"(^|_)(latency|wall|elapsed|duration)(_s)?$|_per_s$|^mem_mb$|_at$|time")


Job = tuple[str, str]  # (rule, wildcard values as the SLURM plugin joins them)


def executed_jobs(log: str) -> tuple[set[Job], set[Job]]:
    """Jobs Snakemake started, split into (remote, local), from its `rule X:` / `localrule X:`
    (and `checkpoint X:` / `localcheckpoint X:`) blocks. The wildcard values are joined with '_'
    as the plugin does in the job comment."""
    remote: set[Job] = set()
    local: set[Job] = set()
    current: tuple[str, str, list[str]] | None = None

    def close() -> None:
        if current:
            kind, rule, values = current
            (local if kind else remote).add((rule, "_".join(values).replace("/", "_")))

    # --show-failed-logs embeds each failed job's own log (its inner `localrule` blocks): drop it
    log = re.sub(r"^Logfile [^\n]*:\n(=+)\n.*?^\1$", "", log, flags=re.M | re.S)
    for line in log.splitlines():
        head = re.match(r"^(local)?(?:rule|checkpoint) (\S+):$", line)  # checkpoints too
        if head:
            close()
            current = (head.group(1) or "", head.group(2), [])
        elif current and line.startswith("    wildcards: "):
            pairs = line[len("    wildcards: ") :].split(", ")
            current[2].extend(p.split("=", 1)[1] for p in pairs)
        elif current and not line.startswith(" "):
            close()
            current = None
    close()
    return remote, local


def slurm_comment(job: Job) -> str:
    rule, wildcards = job
    return f"rule_{rule}_wildcards_{wildcards}" if wildcards else f"rule_{rule}"


def run_uuid(log: str) -> str:
    m = re.search(r"SLURM run ID: (\S+)", log)
    assert m, "the SLURM executor did not log its run ID"
    return m.group(1)


def sacct_records(uuid: str, since: dt.datetime, expect: int) -> pd.DataFrame:
    """The cluster's accounting records of one run's jobs (job name = the run's UUID), polled
    until at least `expect` finished jobs are in (slurmdbd receives them asynchronously)."""
    fields = "JobID,JobName,Comment,Partition,Account,ReqTRES,AllocTRES,State,ExitCode"
    cmd = [
        "sacct",
        "-a",
        "-X",
        "-P",
        "-n",
        "--name",
        uuid,
        "-S",
        since.strftime("%Y-%m-%dT%H:%M:%S"),
        "-o",
        fields,
    ]
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows = [line.split("|") for line in out.splitlines() if line.strip()]
        df = pd.DataFrame(rows, columns=fields.split(","))
        done = df[~df["State"].isin(["PENDING", "RUNNING", "REQUEUED"])] if len(df) else df
        if len(done) >= expect or time.monotonic() > deadline:
            return df
        time.sleep(1)


def _without_provenance(value):
    """A JSON object cell without PROVENANCE_KEYS; any other value unchanged."""
    if not (isinstance(value, str) and value.lstrip().startswith("{")):
        return value
    try:
        obj = json.loads(value)
    except ValueError:
        return value
    if not isinstance(obj, dict) or not any(k in obj for k in PROVENANCE_KEYS):
        return value
    return json.dumps({k: v for k, v in obj.items() if k not in PROVENANCE_KEYS}, sort_keys=True)


def results_tables(workdir: Path) -> dict[str, pd.DataFrame]:
    """Every table a run wrote: each parquet file under results/ and each results.duckdb table,
    without timing columns, rows in a canonical order."""
    tables: dict[str, pd.DataFrame] = {}
    res = workdir / "results"
    for path in sorted(res.rglob("*.parquet")):
        tables[str(path.relative_to(res))] = pd.read_parquet(path)
    with duckdb.connect(str(res / "results.duckdb"), read_only=True) as con:
        for (name,) in con.execute("show tables").fetchall():
            tables[f"results.duckdb:{name}"] = con.execute(f'select * from "{name}"').df()
    out = {}
    for name, df in tables.items():
        df = df[[c for c in df.columns if not VOLATILE.search(c)]]
        df = df.apply(
            lambda c: (
                c.map(_without_provenance)
                if c.dtype == object or pd.api.types.is_string_dtype(c)
                else c
            )
        )
        out[name] = (
            df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)
            if len(df.columns)
            else df
        )
    return out


@pytest.fixture(scope="module")
def runs(slurm_run, small_local_run):
    """The same pipeline twice: through SLURM (with the fail-once knob) and locally.

    Both are the session's background runs (tests/background_runs.py), started at once as the
    session began: the SLURM run mostly waits on the queue and its status polls.
    """
    slurm, local = slurm_run, small_local_run
    slurm_dir, local_dir = slurm.workdir, local.workdir
    try:
        slurm_log, slurm_wall = slurm.wait()
        _, local_wall = local.wait()
    finally:  # a failed run leaves no process behind (snakemake cancels its SLURM jobs on TERM)
        slurm.stop()
    print(
        f"snakemake --profile slurm: {slurm_wall:.1f} s; --cores 2 (alongside): {local_wall:.1f} s"
    )
    remote, local_jobs = executed_jobs(slurm_log)
    fail_once = _fail_once_rules(slurm_dir)
    failed = sum(1 for rule, _ in remote if rule in fail_once)
    records = sacct_records(run_uuid(slurm_log), slurm.info["since"],
                            expect=len(remote) + failed)
    return {
        "slurm_dir": slurm_dir,
        "local_dir": local_dir,
        "slurm_log": slurm_log,
        "remote": remote,
        "local": local_jobs,
        "records": records,
    }


def _fail_once_rules(workdir: Path) -> list[str]:
    return (yaml.safe_load((workdir / FAULTS).read_text()).get("testing") or {}).get(
        "fail_once", []
    )


def _localrules(workdir: Path) -> set[str]:
    """The rule names in the Snakefile's `localrules:` directive (the declared source of truth)."""
    text = (workdir / "Snakefile").read_text()
    m = re.search(r"^localrules:(.*(?:\n[ \t]+.*)*)", text, re.M)
    assert m, "no localrules: directive in the Snakefile"
    body = re.sub(r"#.*", "", m.group(1))
    return {n for n in re.split(r"[\s,]+", body) if n}


def test_every_non_local_job_ran_as_a_slurm_job(runs):
    remote, local = runs["remote"], runs["local"]
    declared_local = _localrules(runs["slurm_dir"])
    remote_rules = {r for r, _ in remote}
    local_rules = {r for r, _ in local}
    assert MUST_BE_REMOTE <= remote_rules, f"expected SLURM jobs of {MUST_BE_REMOTE}"
    assert MUST_BE_LOCAL <= local_rules, f"expected local jobs of {MUST_BE_LOCAL}"
    assert not remote_rules & declared_local, "a rule in localrules: was submitted to SLURM"
    assert local_rules <= declared_local, "a non-local rule ran on the login node"

    records = runs["records"]
    completed = Counter(records.loc[records["State"] == "COMPLETED", "Comment"])
    for job in sorted(remote):
        assert completed[slurm_comment(job)] == 1, (
            f"{job}: expected one COMPLETED SLURM job with comment {slurm_comment(job)!r}; "
            f"the cluster recorded:\n{records.to_string()}"
        )
    local_comments = {slurm_comment(j) for j in local}
    assert not local_comments & set(records["Comment"]), "a local job has a SLURM record"
    assert set(records["Account"]) == {"longthought"}, "jobs ran under another account"


def test_gpu_jobs_asked_for_gpus_on_the_gpu_partition(runs):
    records = runs["records"]
    gpu_jobs = [j for j in runs["remote"] if j[0] in GPU_RULES]
    assert {r for r, _ in gpu_jobs} >= {"train", "generate_local"}
    for job in gpu_jobs:
        rows = records[records["Comment"] == slurm_comment(job)]
        assert len(rows) >= 1
        for _, row in rows.iterrows():
            assert row["Partition"] == "gpu", f"{job} ran on partition {row['Partition']}"
            assert "gres/gpu=1" in row["ReqTRES"], f"{job} asked for {row['ReqTRES']}"
    cpu_jobs = records[records["Comment"].str.startswith("rule_curate")]
    assert len(cpu_jobs) and set(cpu_jobs["Partition"]) == {"cpu"}
    assert not cpu_jobs["ReqTRES"].str.contains("gres/gpu").any()


def test_job_failing_once_was_retried_and_the_run_completed(runs):
    rules = _fail_once_rules(runs["slurm_dir"])
    assert rules, f"{FAULTS} sets no testing.fail_once rule"
    records = runs["records"]
    for job in sorted(j for j in runs["remote"] if j[0] in rules):
        states = records.loc[records["Comment"] == slurm_comment(job), ["JobID", "State"]]
        states = states.assign(id=states["JobID"].astype(int)).sort_values("id")["State"].tolist()
        assert states == ["FAILED", "COMPLETED"], (
            f"{job}: expected a FAILED then a COMPLETED SLURM job, the cluster recorded {states}"
        )
        wildcards = job[1]
        failed_logs = [
            p
            for p in (
                runs["slurm_dir"] / ".snakemake/slurm_logs" / f"rule_{job[0]}" / wildcards
            ).glob("*.log")
            if FAIL_ONCE_MESSAGE.search(p.read_text(errors="replace"))
        ]
        assert failed_logs, f"{job}: no SLURM log of the failed attempt"
    assert (runs["slurm_dir"] / "results/results.duckdb").exists()


def test_results_equal_a_local_run(runs):
    got = results_tables(runs["slurm_dir"])
    want = results_tables(runs["local_dir"])
    assert set(got) == set(want)
    assert any(name.startswith("results.duckdb:") for name in got)
    for name in sorted(want):
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=False, rtol=1e-6, obj=name)


def test_slurm_up_reuses_a_running_cluster(cluster):
    proc = subprocess.run(
        ["bash", "scripts/slurm-up.sh"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "already up" in proc.stderr
    check = subprocess.run(["bash", "scripts/slurm-up.sh", "--check"], cwd=REPO)
    assert check.returncode == 0
    info = subprocess.run(
        ["sinfo", "-h", "-o", "%P %G"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert {line.split()[0] for line in info if line} == {"cpu*", "gpu"}
    assert all("gpu:fake:" in line for line in info if line)


def test_training_recorded_its_slurm_job(runs):
    """The trainer's provenance names the SLURM job that trained the model, and none locally."""
    records = runs["records"]
    for student in sorted(w for r, w in runs["remote"] if r == "train"):
        hparams = json.loads(
            (runs["slurm_dir"] / f"results/models/{student}/hparams.json").read_text()
        )
        local = json.loads(
            (runs["local_dir"] / f"results/models/{student}/hparams.json").read_text()
        )
        assert "slurm_job_id" in hparams, "the trainer no longer records slurm_job_id"
        done = records[
            (records["Comment"] == slurm_comment(("train", student)))
            & (records["State"] == "COMPLETED")
        ]
        assert str(hparams["slurm_job_id"]) == done["JobID"].iloc[0]
        assert local.get("slurm_job_id") is None
