"""The workflow end to end: a full small run, then dry runs proving only changed stages re-run,
and bad config stopping before any job with an error naming the key."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import REPO, SNAKEMAKE, copy_workflow, workflow_env
from test_database_docs import check_database

from longthought.results.build import REPORT_FILES

SMALL = REPO / "tests" / "configs" / "small.yaml"




def _snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "--configfile", str(SMALL), *args],
        cwd=workdir, env=workflow_env(), capture_output=True, text=True, timeout=1500,
    )
    if check and proc.returncode != 0:
        logs = "\n".join(
            f"--- {p}\n{p.read_text()[-3000:]}" for p in (workdir / "results/logs").rglob("*.log")
        ) if (workdir / "results/logs").exists() else ""
        raise AssertionError(f"snakemake {args} failed:\n{proc.stderr[-6000:]}\n{logs}")
    return proc


def _planned_jobs(workdir: Path, *overlays: dict, tmp_path: Path) -> dict[str, int]:
    """Rules a dry run would execute (and how often), with config overlays applied."""
    args = ["-n"]
    for i, overlay in enumerate(overlays):
        path = tmp_path / f"overlay{i}.yaml"
        path.write_text(yaml.safe_dump(overlay))
        args += ["--configfile", str(SMALL), str(path)]
    out = _snakemake(workdir, *args).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            jobs[m.group(1)] = int(m.group(2))
        elif jobs and not line.strip():
            break
    return jobs


@pytest.fixture(scope="module")
def run_dir(small_local_run) -> Path:
    """The session's shared small run (tests/conftest.py): this module only reads it."""
    small_local_run.wait()
    return small_local_run.workdir


@pytest.mark.slow
def test_full_run_writes_database_and_report(run_dir):
    db = run_dir / "results/results.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    tables = {r[0] for r in con.execute("show tables").fetchall()}
    assert {"generations", "metrics", "funnel", "train_log", "tti_scores"} <= tables
    models = {r[0] for r in con.execute("select distinct model from generations").fetchall()}
    assert models == {"tiny@init", "tiny", "sim-o1"}
    n = con.execute(
        "select count(*) from generations where model='tiny' and benchmark='heldout'"
        " and budget is null"
    ).fetchone()[0]
    assert n == 12 * 2  # problems x samples
    budgets = con.execute(
        "select model, count(distinct budget) from generations where budget is not null"
        " group by model"
    ).fetchall()
    assert budgets == [("tiny", 3)]  # evaluation.budget_models: the trained student only
    pass1 = dict(con.execute(
        "select model, value from metrics where metric='pass@1' and budget is null"
    ).fetchall())
    assert pass1["sim-o1"] > 0.7  # the teacher answers its own families
    # kept + rejected = input for every curated dataset
    for ds, rows_in, rows_out, removed in con.execute(
        "select dataset, max(rows_in), min(rows_out), sum(removed) from funnel group by dataset"
    ).fetchall():
        assert rows_in == rows_out + removed, ds
    con.close()
    summary = (run_dir / "results/report/summary.md").read_text()
    for heading in ["Table 1", "Curation funnel", "Training", "Transparency"]:
        assert heading in summary
    assert "±" in summary


@pytest.mark.slow
def test_report_files_database_docs_and_snakemake_report(run_dir, tmp_path):
    report = run_dir / "results/report"
    for name in REPORT_FILES.values():
        assert (report / name).stat().st_size > 0, name
    summary = (report / "summary.md").read_text()
    assert "| tiny | 1 | format-arith |" in summary  # stages numbered as the paper does
    assert "| tiny | 2 | longthought-arith |" in summary
    assert "stage 0" not in summary and "14 tables" in summary
    assert "samples with thinking" in summary and "% of judged" in summary
    check_database(str(run_dir / "results/results.duckdb"))  # docs/database.md, on a real run
    browser = (report / "browser.html").read_text()
    assert "sim-o1" in browser and "distill-arith/" in browser

    out = tmp_path / "report.html"
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "1", "--configfile", str(SMALL), "--report", str(out)],
        cwd=run_dir, env=workflow_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    html = out.read_text()
    for category in ["Accuracy", "Curation", "Training", "Beyond math", "Transparency",
                     "Browser"]:
        assert f'"{category}"' in html, category
    assert "Budget forcing (s1)" in html and "distils long-thought reasoning" in html
    assert "accuracy_vs_tokens.png" in html and "browser.html" in html


@pytest.mark.slow
def test_after_a_full_run_nothing_is_left_to_do(run_dir, tmp_path):
    assert _planned_jobs(run_dir, tmp_path=tmp_path) == {}


@pytest.mark.slow
def test_curation_knob_reruns_curate_train_and_its_evaluation_only(run_dir, tmp_path):
    overlay = {"datasets": {"longthought-arith": {"decontaminate": {"ngram": 13}}}}
    jobs = _planned_jobs(run_dir, overlay, tmp_path=tmp_path)
    assert jobs.get("curate") == 1 and jobs.get("train") == 1
    assert jobs.get("generate_local") == 1  # the trained student only, not tiny@init
    assert "report" in jobs
    for untouched in ["problems", "benchmark", "traces", "init_student", "generate_api"]:
        assert untouched not in jobs, untouched


@pytest.mark.slow
def test_evaluation_knob_reruns_no_training_and_no_collection(run_dir, tmp_path):
    overlay = {"evaluation": {"sampling": {"n": 3}}}
    jobs = _planned_jobs(run_dir, overlay, tmp_path=tmp_path)
    assert jobs.get("generate_local") == 2 and jobs.get("generate_api") == 1
    for untouched in ["problems", "traces", "curate", "init_student", "train"]:
        assert untouched not in jobs, untouched


@pytest.mark.slow
def test_report_knob_reruns_only_the_report(run_dir, tmp_path):
    jobs = _planned_jobs(run_dir, {"evaluation": {"k": [1]}}, tmp_path=tmp_path)
    # the resolved config and the TTI self-score read the whole config: cheap, local, honest
    assert set(jobs) <= {"report", "all", "run_config", "tti_self"} and "report" in jobs


BAD_CONFIGS = [
    ({"pools": {"arith": {"colour": "blue"}}}, "colour"),
    ({"evaluation": {"sampling": {"n": "four"}}}, "four"),
    ({"datasets": {"longthought-arith": {"tasks": ["no-such-task"]}}}, "no-such-task"),
    ({"tasks": {"distill-arith": {"pool": "no-such-pool"}}}, "tasks.distill-arith.pool"),
    ({"evaluation": {"models": ["gpt-7"]}}, "gpt-7"),
]


@pytest.mark.parametrize("overlay,needle", BAD_CONFIGS)
def test_bad_config_stops_before_any_job_naming_the_key(tmp_path, overlay, needle):
    workdir = copy_workflow(tmp_path / "wf")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(overlay))
    proc = _snakemake(workdir, "--configfile", str(SMALL), str(bad), check=False)
    assert proc.returncode != 0
    assert needle in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()  # nothing ran
