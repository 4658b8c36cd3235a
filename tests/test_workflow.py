"""The workflow end to end: a full small run, then dry runs proving exactly which stages a changed
knob re-runs (content knobs re-run what they reach, operational knobs nothing), real re-runs
proving that what is below a content-addressed boundary re-runs only when content changed, the
protected and partial traces, and bad config stopping before any job with an error naming the
key."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from conftest import REPO, SNAKEMAKE, copy_workflow, workflow_env
from test_database_docs import check_database

from longthought.results.build import REPORT_FILES
from longthought.snakemake_output import planned_jobs, ran_jobs

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
    return planned_jobs(out)


def _ran(log: str) -> Counter:
    """Jobs a real run executed (by rule, `all` left out), from Snakemake's job blocks."""
    return ran_jobs(log)


def _overlay(tmp_path: Path, name: str, overlay: dict) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return str(path)


def _copy_run(run_dir: Path, dest: Path) -> Path:
    """A finished run to change: results (the traces links kept as links), Snakemake's metadata
    and the request cache, modification times kept."""
    shutil.copytree(run_dir, dest, symlinks=True)
    return dest


def _mtimes(workdir: Path, *rel: str) -> dict[str, float]:
    return {r: os.stat(workdir / r).st_mtime for r in rel}


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
    assert budgets == [("tiny", 2)]  # the small overlay's 2 budgets, for budget_models only
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
    # where each number was made: the train rule's 2 threads reach torch (OMP_NUM_THREADS)
    hp = json.loads((run_dir / "results/models/tiny/hparams.json").read_text())
    assert hp["hardware"]["torch_threads"] == 2 and hp["replicate_seed"] == 0
    assert "CPU path" in (run_dir / "results/report/hardware.html").read_text()
    # the self-score's evidence, item by item, names the run's config record; nothing published
    assert "This run's self-score, item by item" in summary
    assert "`results/config.yaml: tti.releases.weights`" in summary


@pytest.mark.slow
def test_report_files_database_docs_and_snakemake_report(run_dir, tmp_path):
    report = run_dir / "results/report"
    for name in REPORT_FILES.values():
        assert (report / name).stat().st_size > 0, name
    summary = (report / "summary.md").read_text()
    assert "| tiny | 1 | format-arith |" in summary  # stages numbered as the paper does
    assert "| tiny | 2 | longthought-arith |" in summary
    assert "stage 0" not in summary and "15 tables" in summary
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


# The dry-run matrix (issue 15, item 9): for every top-level config section, a representative
# content knob and an operational knob, each against the exact set of jobs the dry run plans.
# Every config change re-runs `run_config`, the run's record; an operational change nothing
# else. A content change also re-scores the run's TTI (`tti_self` reads the config's content)
# and so rewrites the report. Below a content-addressed boundary (problems/benchmark -> traces
# -> curate -> train) the consumer is decided when the producer has finished, from the content
# it wrote: a dry run lists the producer, not what follows it (Snakemake leaves jobs below a
# re-running producer unexamined in the first pass); the real-run tests below show the rest.
RECORD = {"run_config": 1}
RESCORED = {"run_config": 1, "tti_self": 1, "report": 1}
STAGE = [{"dataset": "format-arith", "lr": 2.0e-3, "schedule": "cosine", "warmup_ratio": 0.05,
          "epochs": None, "max_steps": 3, "batch_size": 16, "grad_accum": 1, "max_length": 384,
          "packing": True, "weight_decay": 0.0, "seed": 1},
         {"dataset": "longthought-arith", "lr": 1.0e-3, "schedule": "cosine",
          "warmup_ratio": 0.05, "epochs": None, "max_steps": 4, "batch_size": 16,
          "grad_accum": 1, "max_length": 384, "packing": True, "weight_decay": 0.0, "seed": 2}]
OPERATIONAL_KNOBS = [
    ("top level", {"cache_dir": ".cache/elsewhere"}),
    ("top level", {"seed": 99}),
    ("teachers", {"teachers": {"sim-o1": {"limits": {"max_concurrency": 8}}}}),
    ("teachers", {"teachers": {"sim-o1": {"budget_usd": 20.0, "pricing": {"input": 5.0}}}}),
    ("teachers", {"teachers": {"sim-o1": {"api_key_env": "OTHER_KEY",
                                          "sim": {"latency_ms": 3}}}}),
    ("teachers", {"teachers": {"sim-judge": {"limits": {"timeout_s": 30}}}}),
    ("tasks", {"tasks": {"distill-arith": {"allow_partial": False}}}),
    ("students", {"students": {"tiny": {"checkpoint_every": 50}}}),
    ("students", {"students": {"tiny": {"resources": {"mem_mb": 16000, "runtime": 120}}}}),
    ("evaluation", {"evaluation": {"batch_size": 7, "refill": True, "checker": {"workers": 1}}}),
    ("evaluation", {"evaluation": {"resources": {"runtime": 90}}}),
    ("generalization", {"generalization": {"batch_size": 3, "refill": False}}),
    # prompts, datasets, report, tti: every key there decides what a job writes
]
# A set's `description` changes no table, but the TTI self-score cites it.
R = RESCORED
CONTENT_KNOBS = [
    # problems/benchmark are checkpoints read by content: what is below them (traces, curation,
    # evaluation, and the TTI self-score below those) is decided when they have finished
    # the report shows every problem: it reads the pools and benchmarks too
    ("pools", {"pools": {"arith": {"n": 170}}}, {**RECORD, "problems": 1, "report": 1}),
    ("pools", {"pools": {"arith": {"description": "why this pool"}}}, R),
    ("benchmarks", {"benchmarks": {"heldout": {"n": 13}}},
     {**RECORD, "benchmark": 1, "report": 1}),
    ("benchmarks", {"benchmarks": {"heldout": {"description": "another reason"}}}, R),
    ("teachers", {"teachers": {"sim-o1": {"sampling": {"temperature": 0.8}}}},
     {**R, "traces": 1, "generate_api": 1}),
    ("teachers", {"teachers": {"sim-o1": {"sim": {"slip_rate": 0.2}}}},
     {**R, "traces": 1, "generate_api": 1}),
    ("prompts", {"prompts": {"distill": {"user": "Solve: {problem}"}}}, {**R, "traces": 1}),
    ("tasks", {"tasks": {"distill-arith": {"samples_per_problem": 2}}}, {**R, "traces": 1}),
    ("datasets", {"datasets": {"longthought-arith": {"decontaminate": {"ngram": 13}}}},
     {**R, "curate": 1}),
    ("students", {"students": {"tiny": {"stages": STAGE}}},
     {**R, "train": 1, "generate_local": 1, "generalize_local": 1, "generalize_judge": 1}),
    ("students", {"students": {"tiny": {"tiny": {"hidden_size": 96}}}},
     {**R, "init_student": 1, "train": 1, "generate_local": 2, "generalize_local": 2,
      "generalize_judge": 2}),
    # two replicates: each its own init (a tiny student's weights come from the seed), training
    # job, generations and generalization answers, for the trained and the untrained model
    ("students", {"students": {"tiny": {"replicates": 2}}},
     {**R, "init_student": 2, "train": 2, "generate_local": 4, "generalize_local": 4,
      "generalize_judge": 4}),
    ("models", {"models": {"o1-api": {"kind": "api", "teacher": "sim-o1"}},
                "evaluation": {"models": ["tiny@init", "tiny", "sim-o1", "o1-api"]}},
     {**R, "generate_api": 1}),
    ("evaluation", {"evaluation": {"sampling": {"temperature": 0.6}}},
     {**R, "generate_local": 2, "generate_api": 1}),
    ("evaluation", {"evaluation": {"k": [1]}}, R),
    ("report", {"report": {"paper_reference": False}}, R),
    ("report", {"report": {"compare": [["tiny@init", "tiny"]]}}, R),
    ("generalization", {"generalization": {"sampling": {"max_new_tokens": 24}}},
     {**R, "generalize_local": 2, "generalize_judge": 2}),
    ("tti", {"tti": {"project": "longthought-fork"}}, R),
]


@pytest.mark.slow
@pytest.mark.parametrize("section,overlay", OPERATIONAL_KNOBS,
                         ids=[repr(o)[:60] for _, o in OPERATIONAL_KNOBS])
def test_an_operational_knob_plans_no_job_but_the_record(run_dir, tmp_path, section, overlay):
    jobs = _planned_jobs(run_dir, overlay, tmp_path=tmp_path)
    jobs.pop("all", None)
    assert jobs == RECORD, f"{section}: {overlay}"


@pytest.mark.slow
@pytest.mark.parametrize("section,overlay,want", CONTENT_KNOBS,
                         ids=[repr(o)[:60] for _, o, _ in CONTENT_KNOBS])
def test_a_content_knob_plans_exactly_the_jobs_it_reaches(run_dir, tmp_path, section, overlay,
                                                          want):
    jobs = _planned_jobs(run_dir, overlay, tmp_path=tmp_path)
    jobs.pop("all", None)
    assert jobs == want, f"{section}: {overlay}"


@pytest.mark.slow
def test_two_replicates_run_and_aggregate(run_dir, replicates_run, tmp_path):
    """The small run with `replicates: 2` (issue 16; the session's background run of the finished
    small run, tests/background_runs.py): each replicate trained and evaluated as a model of its
    own, traces and curation untouched; the database keeps one metrics row per replicate and
    adds the aggregate; replicate seed 0 is the configured student; a third replicate then plans
    only its own jobs."""
    out, _ = replicates_run.wait()
    wd = replicates_run.workdir
    ran = _ran(out)
    assert ran["init_student"] == 2 and ran["train"] == 2, ran
    assert not {"traces", "curate", "problems", "benchmark", "generate_api"} & set(ran), ran
    con = duckdb.connect(str(wd / "results/results.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT model, replicate_of, seed, aggregate, n_replicates, value, stderr, "
        "sd_replicates FROM metrics WHERE metric = 'pass@1' AND budget IS NULL "
        "ORDER BY model").fetchall()
    by = {r[0]: r for r in rows}
    assert set(by) == {"tiny", "tiny@init", "tiny~s0", "tiny~s1", "tiny~s0@init",
                       "tiny~s1@init", "sim-o1"}
    assert by["tiny~s1"][1:4] == ("tiny", 1, False) and by["tiny~s0@init"][1:3] == (
        "tiny@init", 0)
    tiny = by["tiny"]
    assert tiny[3] and tiny[4] == 2 and tiny[1] is None
    assert tiny[5] == pytest.approx((by["tiny~s0"][5] + by["tiny~s1"][5]) / 2)
    assert tiny[6] is not None and tiny[7] is not None
    budgets = con.execute("SELECT count(*) FROM metrics WHERE aggregate AND model = 'tiny' "
                          "AND budget IS NOT NULL AND metric = 'pass@1'").fetchone()[0]
    assert budgets == 2  # the small overlay's 2 budgets; budget_models: [tiny] = both replicates
    gen = con.execute("SELECT count(*) FROM generalization WHERE aggregate AND "
                      "model IN ('tiny', 'tiny@init') AND n_replicates = 2").fetchone()[0]
    assert gen > 0
    comp = con.execute("SELECT replicates_a, replicates_b, seeds_known, verdict FROM "
                       "comparisons WHERE metric = 'pass@1' AND budget IS NULL").fetchall()
    assert comp and comp[0][:3] == (2, 2, True)
    seeds = dict(con.execute("SELECT student, hparams::JSON->>'replicate_seed' FROM hparams")
                 .fetchall())
    assert seeds == {"tiny~s0": "0", "tiny~s1": "1"}
    con.close()
    check_database(str(wd / "results/results.duckdb"))
    # seed 0 is the student as configured: the same losses as the single run's `tiny`
    log = pd.read_parquet(wd / "results/models/tiny~s0/train_log.parquet")
    single = pd.read_parquet(wd / "results/models/tiny/train_log.parquet")
    assert log["loss"].tolist() == pytest.approx(single["loss"].tolist(), rel=1e-6)
    other = pd.read_parquet(wd / "results/models/tiny~s1/train_log.parquet")
    assert other["loss"].tolist() != pytest.approx(single["loss"].tolist(), rel=1e-6)
    summary = (wd / "results/report/summary.md").read_text()
    assert "**tiny** (mean of 2 replicates)" in summary and "| tiny~s1 | pass@1 |" in summary
    assert "delta per replicate" in summary and "against `tiny@init`" in summary
    # adding a third replicate trains and evaluates only the new one
    more = _overlay(tmp_path, "more", {"students": {"tiny": {"replicates": 3}},
                                       "report": {"compare": [["tiny@init", "tiny"]]}})
    jobs = _planned_jobs(wd, yaml.safe_load(Path(more).read_text()), tmp_path=tmp_path)
    jobs.pop("all", None)
    assert jobs == {**RESCORED, "init_student": 1, "train": 1, "generate_local": 2,
                    "generalize_local": 2, "generalize_judge": 2}, jobs


@pytest.mark.slow
def test_evaluation_batch_size_does_not_change_generations(run_dir, tmp_path):
    """Why `evaluation.batch_size` and `refill` are operational: each sample has its own seed
    and its own random numbers, so the verb writes the same generations at any batch size, with
    or without refilling the batch (one thread: the float sums of a padded batch may differ in
    the last bits across thread counts)."""
    import torch

    from longthought.evaluate.run import run_generate

    spec = {"model": {"name": "tiny", "kind": "local", "path": str(run_dir / "results/models/tiny"),
                      "backend": "transformers"},
            "sampling": {"n": 2, "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 96,
                         "seed": 0, "system": None},
            "budgets": [], "checker": {"timeout_s": 5, "workers": 1}, "prompt": None,
            "benchmark": "heldout"}
    bench = str(run_dir / "results/benchmarks/heldout.parquet")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tables = [run_generate("tiny", {**spec, "batch_size": b, "refill": refill}, bench,
                               str(tmp_path / f"b{b}-{refill}.parquet"), None)
                  for b, refill in ((1, False), (5, False), (256, False), (5, True))]
    finally:
        torch.set_num_threads(threads)
    volatile = [c for c in tables[0].columns if "latency" in c or c.endswith("_s")]
    first = tables[0].drop(columns=volatile)
    assert len(first) == 24
    for other in tables[1:]:
        pd.testing.assert_frame_equal(other.drop(columns=volatile), first)


@pytest.mark.slow
def test_a_recollection_served_by_the_cache_leaves_curate_and_train_untouched(run_dir, tmp_path):
    """Content-addressed boundaries in a real run: re-collecting every trace (all answered by the
    request cache) re-runs traces (and the TTI self-score and report, which read the traces
    themselves), and neither curation nor training."""
    wd = _copy_run(run_dir, tmp_path / "wd")
    below = ["results/datasets/longthought-arith.parquet", "results/models/tiny",
             "results/models/tiny/hparams.json", "results/models/tiny@init",
             "results/generations/tiny/heldout.parquet"]
    before = _mtimes(wd, *below)
    version = os.readlink(wd / "results/traces/distill-arith.parquet")
    proc = _snakemake(wd, "--forcerun", "traces")
    ran = _ran(proc.stdout + proc.stderr)
    # the TTI self-score and the report read the traces files themselves (cheap, local): they
    # may follow; nothing that reads the traces by content does
    assert ran["traces"] == 2 and set(ran) <= {"traces", "tti_self", "report"}, ran
    assert _mtimes(wd, *below) == before
    assert os.readlink(wd / "results/traces/distill-arith.parquet") == version
    log = (wd / "results/logs/traces/distill-arith.log").read_text()
    assert re.search(r"ok 160 \(cached 160\)", log) and "; 0 HTTP attempts" in log
    assert _planned_jobs(wd, tmp_path=tmp_path) == {}


@pytest.mark.slow
def test_protected_traces_recollect_without_unprotecting(run_dir, tmp_path):
    """The traces stay protected (a read-only version no re-run or deletion of the table removes)
    and a legitimate re-collection (new problems in the pool) just runs, asking only for the new
    requests; deleting the table by hand and running again restores it from the cache."""
    wd = _copy_run(run_dir, tmp_path / "wd")
    table = wd / "results/traces/distill-arith.parquet"
    old = table.resolve()
    assert not os.stat(old).st_mode & 0o222, "the collected traces are not read-only"

    more = _overlay(tmp_path, "more", {"pools": {"arith": {"n": 170}}})
    proc = _snakemake(wd, "--configfile", str(SMALL), more, "--until", "curate")
    assert _ran(proc.stdout + proc.stderr) == {"problems": 1, "traces": 2, "curate": 2}
    log = (wd / "results/logs/traces/distill-arith.log").read_text()
    assert re.search(r"ok 170 \(cached 160\)", log) and "; 10 HTTP attempts" in log
    assert table.resolve() != old and old.exists() and not os.stat(old).st_mode & 0o222
    assert len(pd.read_parquet(table)) == 170

    version = os.readlink(table)
    table.unlink()  # an accident
    proc = _snakemake(wd, "--configfile", str(SMALL), more, "--until", "curate")
    assert _ran(proc.stdout + proc.stderr) == {"traces": 1}  # same content: curate untouched
    assert os.readlink(table) == version


@pytest.mark.slow
def test_a_partial_collection_is_visible_and_the_next_run_completes_it(run_dir, tmp_path):
    """A budget that cuts a collection short leaves a visibly partial table (job log,
    traces-status, the curation funnel), curation proceeds on it by default, and the next run
    asks for exactly the missing rows; what is below re-runs because rows were added."""
    wd = _copy_run(run_dir, tmp_path / "wd")
    fresh = {"cache_dir": ".cache/partial"}  # an empty request cache: every answer costs
    low = _overlay(tmp_path, "low", {**fresh, "teachers": {"sim-4o-mini": {"budget_usd": 0.02}}})
    proc = _snakemake(wd, "--configfile", str(SMALL), low, "--forcerun", "traces",
                      "--until", "curate")
    # the distilled traces came back the same (the sim answers alike), so only the dataset of
    # the partial rewrites is curated again
    assert _ran(proc.stdout + proc.stderr) == {"traces": 2, "curate": 1}
    log = (wd / "results/logs/traces/rewrite-arith.log").read_text()
    m = re.search(r"PARTIAL collection: (\d+) of 160 rows missing", log)
    assert m, log[-3000:]
    missing = int(m.group(1))
    assert 0 < missing < 160 and "raise teachers.sim-4o-mini.budget_usd" in log
    status = subprocess.run(
        ["longthought", "traces-status", "results/traces/rewrite-arith.parquet"],
        cwd=wd, env=workflow_env(), capture_output=True, text=True, check=True)
    line = next(x for x in status.stdout.splitlines() if x.startswith("rewrite-arith "))
    assert line.split()[-1] == "PARTIAL" and line.split()[5] == str(missing)
    funnel = pd.read_parquet(wd / "results/datasets/format-arith.funnel.parquet")
    assert funnel.set_index("filter").loc["missing", "removed"] == missing

    back = _overlay(tmp_path, "back", fresh)  # the budget as before; nothing forced
    assert _planned_jobs(wd, fresh, tmp_path=tmp_path).get("traces") == 1
    proc = _snakemake(wd, "--configfile", str(SMALL), back, "--until", "curate")
    assert _ran(proc.stdout + proc.stderr) == {"traces": 1, "curate": 1}
    log = (wd / "results/logs/traces/rewrite-arith.log").read_text()
    assert re.search(rf"ok 160 \(cached {160 - missing}\)", log)
    assert f"; {missing} HTTP attempts" in log and "complete, 160 rows" in log
    funnel = pd.read_parquet(wd / "results/datasets/format-arith.funnel.parquet")
    assert funnel.set_index("filter").loc["missing", "removed"] == 0
    proc = _snakemake(wd, "-n", "--configfile", str(SMALL), back, "--until", "curate")
    assert "Nothing to be done" in proc.stdout


@pytest.mark.slow
def test_a_new_benchmark_redoes_decontamination_but_no_training(run_dir, tmp_path):
    """Adding a benchmark re-runs decontamination against it (as it must); no training row
    overlaps it, so the curated tables keep their content and nothing retrains."""
    wd = _copy_run(run_dir, tmp_path / "wd")
    more = _overlay(tmp_path, "bench", {
        "benchmarks": {"heldout2": {"source": "procedural", "split": "heldout", "n": 6, "seed": 9,
                                    "families": {"addition": {"digits": 3}}}},
        "evaluation": {"benchmarks": ["heldout", "heldout2"]}})
    before = _mtimes(wd, "results/models/tiny/hparams.json")
    proc = _snakemake(wd, "--configfile", str(SMALL), more, "--until", "train")
    ran = _ran(proc.stdout + proc.stderr)
    assert ran == {"benchmark": 1, "curate": 2}, ran
    assert _mtimes(wd, "results/models/tiny/hparams.json") == before


def _dry_run_fresh(tmp_path: Path, *args: str) -> str:
    """A dry run of a fresh copy of the workflow (nothing run yet), printing shell commands."""
    wd = copy_workflow(tmp_path / "fresh")
    proc = subprocess.run([SNAKEMAKE, "-n", "-p", *args], cwd=wd, env=workflow_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def test_job_commands_are_short(tmp_path):
    """Each job's config slice reaches its verb as a small JSON file: no printed shell line
    carries JSON, and none is long (the demo's used to reach 8,500 characters)."""
    out = _dry_run_fresh(tmp_path, "--cores", "2")
    commands = [c for c in re.findall(r"^Shell command: (.*)$", out, re.M) if c != "None"]
    assert len(commands) >= 15
    for cmd in commands:
        assert len(cmd) < 600 and "{" not in cmd, cmd
        assert re.search(r"--specs? results/jobs/\S+\.json", cmd), cmd
    # the job files hold the whole slice, operational keys included (they reach the job)
    jobs = tmp_path / "fresh" / "results" / "jobs"
    [generate] = (jobs / "generate" / "tiny").glob("heldout.*.json")
    assert {"batch_size": 256, "refill": "auto"}.items() <= json.loads(
        generate.read_text()).items()
    [generalize] = (jobs / "generalize").glob("tiny.*.json")
    for gset, spec in json.loads(generalize.read_text()).items():
        assert {"batch_size": 256, "refill": "auto"}.items() <= spec.items(), gset


def _resources(out: str) -> dict[tuple[str, str], dict[str, str]]:
    """(rule, wildcards) -> the resources a dry run shows for that job."""
    jobs = {}
    for block in re.split(r"\n(?=\[)", out):
        rule = re.search(r"^(?:local)?(?:rule|checkpoint) (\S+):$", block, re.M)
        res = re.search(r"^    resources: (.*)$", block, re.M)
        if rule and res:
            wc = re.search(r"^    wildcards: (.*)$", block, re.M)
            pairs = dict(kv.split("=", 1) for kv in res.group(1).split(", "))
            jobs[(rule.group(1), wc.group(1) if wc else "")] = pairs
    return jobs


def test_resources_fall_back_to_the_profile_and_local_rules_ask_no_gpu(tmp_path):
    """A resource set for one student is not handed to another as 0 or "": where a student's
    block leaves a key unset, the profile's default applies. API jobs (local rules) carry no GPU
    request, and no job inherits Snakemake's 50 GB disk default."""
    two = _overlay(tmp_path, "two", {"students": {"tiny2": {
        "base_model": "tiny",
        "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "num_kv_heads": 1,
                 "intermediate_size": 128, "vocab_size": 320, "tokenizer_tasks": ["distill-arith"]},
        "stages": [{"dataset": "longthought-arith", "lr": 2.0e-3, "max_steps": 2}],
        "resources": {"gpu": 1}}}})
    out = _dry_run_fresh(tmp_path, "--profile", "slurm", "--configfile", "config/config.yaml", two)
    jobs = _resources(out)
    tiny = jobs[("train", "student=tiny")]
    assert tiny["slurm_partition"] == "gpu" and tiny["mem_mb"] == "8000"
    other = jobs[("train", "student=tiny2")]
    assert other["gpu"] == "1" and other["mem_mb"] == "4000" and other["runtime"] == "60"
    assert "slurm_partition" not in other and "gpu_model" not in other
    api = jobs[("generate_api", "model=sim-o1, bench=heldout")]
    assert "gpu" not in api and "slurm_partition" not in api
    assert jobs[("generate_local", "model=tiny, bench=heldout")]["gpu"] == "1"
    assert all(r.get("disk_mb") != "50000" for r in jobs.values())


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
