"""Replicates of a student (issue 16): their seeds and names, the config checks, the workflow's
jobs per replicate, the aggregate rows with a standard error over problems and seeds, the
report's tables and plots, and the honest comparison of two recipes."""

from __future__ import annotations

import copy
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, SNAKEMAKE, copy_workflow, workflow_env

from longthought import replicates as rp
from longthought.configcheck import config_errors
from longthought.evaluate.compare import compare_scores, comparisons
from longthought.evaluate.metrics import metrics_and_scores
from longthought.evaluate.plots import draw_accuracy_vs_budget, draw_accuracy_vs_tokens
from longthought.evaluate.spread import aggregate_rows, two_way_se
from longthought.generalization.report import generalization_markdown
from longthought.results import report

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def config(**students: dict) -> dict:
    """The default config with `students.tiny` updated, and other students added."""
    cfg = copy.deepcopy(DEFAULT)
    for name, spec in students.items():
        base = cfg["students"].get(name) or copy.deepcopy(DEFAULT["students"]["tiny"])
        cfg["students"][name] = {**base, **spec}
    return cfg


# --- seeds and names ---------------------------------------------------------------------------


def test_one_replicate_keeps_the_plain_name_and_its_seed():
    cfg = config()
    assert rp.replicates(cfg, "tiny") == [("tiny", 0)]
    assert rp.trained_models(cfg) == ["tiny"] and rp.init_models(cfg) == ["tiny@init"]
    assert rp.expand(cfg, ["tiny@init", "tiny", "sim-o1"]) == ["tiny@init", "tiny", "sim-o1"]
    # the replicate spec of a config without replicates is the student's block unchanged
    assert rp.replicate_spec(cfg, "tiny") == cfg["students"]["tiny"]
    cfg = config(tiny={"seed": 5, "replicates": 1})
    assert rp.replicates(cfg, "tiny") == [("tiny", 5)]
    assert rp.replicate_spec(cfg, "tiny")["seed"] == 5
    assert "replicates" not in rp.replicate_spec(cfg, "tiny")


def test_replicates_are_seeds_from_the_base_each_a_model_of_its_own():
    cfg = config(tiny={"replicates": 3})
    assert rp.replicates(cfg, "tiny") == [("tiny~s0", 0), ("tiny~s1", 1), ("tiny~s2", 2)]
    assert rp.replicates(config(tiny={"replicates": 2, "seed": 7}), "tiny") == [
        ("tiny~s7", 7), ("tiny~s8", 8)]
    assert rp.replicates(config(tiny={"seeds": [4, 1]}), "tiny") == [("tiny~s4", 4),
                                                                     ("tiny~s1", 1)]
    # a tiny student's init is drawn from the seed: one per replicate
    assert rp.init_models(cfg) == ["tiny~s0@init", "tiny~s1@init", "tiny~s2@init"]
    assert rp.init_name(cfg, "tiny~s1") == "tiny~s1@init"
    assert rp.expand(cfg, ["tiny@init", "tiny", "sim-o1"]) == [
        "tiny~s0@init", "tiny~s1@init", "tiny~s2@init", "tiny~s0", "tiny~s1", "tiny~s2",
        "sim-o1"]
    assert rp.expand(cfg, ["tiny~s1"]) == ["tiny~s1"]  # a replicate's own name: itself
    ref = rp.resolve(cfg, "tiny~s2")
    assert (ref.kind, ref.student, ref.seed) == ("student", "tiny", 2)
    assert rp.resolve(cfg, "tiny~s3") is None and rp.resolve(cfg, "tiny") is None
    assert rp.is_known(cfg, "tiny") and rp.is_known(cfg, "tiny@init")
    # each replicate's training job sees its seed and no replicate keys: adding a replicate
    # leaves the other replicates' jobs as they were
    spec = rp.replicate_spec(cfg, "tiny~s2")
    assert spec["seed"] == 2 and "replicates" not in spec and "seeds" not in spec
    assert "seed" not in rp.replicate_spec(cfg, "tiny~s0")  # seed 0: the configured student
    more = config(tiny={"replicates": 4})
    assert rp.replicate_spec(more, "tiny~s1") == rp.replicate_spec(cfg, "tiny~s1")


def test_a_hub_student_shares_one_untrained_model():
    cfg = config(tiny={"replicates": 2})
    cfg["students"]["hub"] = {"base_model": "Qwen/Qwen2.5-0.5B-Instruct", "seeds": [1, 2],
                              "stages": cfg["students"]["tiny"]["stages"]}
    assert rp.init_name(cfg, "hub~s1") == rp.init_name(cfg, "hub~s2") == "hub@init"
    assert rp.resolve(cfg, "hub@init").kind == "init"
    assert rp.resolve(cfg, "hub~s1@init") is None
    assert rp.expand(cfg, ["hub@init", "hub"]) == ["hub@init", "hub~s1", "hub~s2"]


def test_names_split_back_to_their_aggregate():
    assert rp.split_name("tiny~s12") == ("tiny", 12)
    assert rp.split_name("tiny~s2@init") == ("tiny@init", 2)
    assert rp.split_name("sim-o1") == ("sim-o1", None)
    assert rp.group_name("a~b") == "a~b"


def test_compare_defaults_to_the_two_students_when_both_are_evaluated():
    cfg = config(two={"stages": DEFAULT["students"]["tiny"]["stages"]})
    assert rp.compare_pairs(cfg) == []  # `two` is not evaluated
    cfg["evaluation"]["models"] = ["tiny", "two"]
    assert rp.compare_pairs(cfg) == [["tiny", "two"]]
    cfg["report"] = {"compare": []}
    assert rp.compare_pairs(cfg) == []
    assert rp.compare_pairs(config()) == []


# --- config checks -----------------------------------------------------------------------------


@pytest.fixture
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("spec,needle", [
    ({"replicates": 0}, "students.tiny.replicates"),
    ({"seeds": []}, "students.tiny.seeds"),
    ({"seeds": [1, 2, 1]}, "students.tiny.seeds: [1] listed more than once"),
    ({"seeds": [1, 2], "replicates": 2}, "students.tiny.replicates: not used with"),
    ({"seeds": [1, 2], "seed": 3}, "students.tiny.seed: not used with"),
    ({"seeds": [-1]}, "students.tiny.seeds[0]"),
])
def test_bad_replicates_are_config_errors(_in_repo, spec, needle):
    errors = config_errors(config(tiny=spec))
    assert any(needle in e for e in errors), errors


def test_replicate_names_and_compare_pairs_are_checked(_in_repo):
    cfg = config(tiny={"replicates": 2})
    assert config_errors(cfg) == []
    cfg["evaluation"]["models"] = ["tiny~s1", "tiny", "tiny@init", "sim-o1"]
    cfg["evaluation"]["budget_models"] = ["tiny~s0"]
    assert config_errors(cfg) == []
    cfg["evaluation"]["models"] = ["tiny~s5"]
    assert any("evaluation.models[0]: 'tiny~s5'" in e for e in config_errors(cfg))
    cfg = config(tiny={"replicates": 2})
    cfg["report"] = {"compare": [["tiny", "sim-o1"], ["tiny", "nope"], ["tiny", "tiny"],
                                 ["tiny", "sim-judge"]]}
    errors = config_errors(cfg)
    assert not any("report.compare[0]" in e for e in errors), errors
    assert any("report.compare[1][1]: 'nope' is not a known model" in e for e in errors)
    assert any("report.compare[2]: compares 'tiny' with itself" in e for e in errors)
    assert any("report.compare[3][1]: 'sim-judge' is not evaluated" in e for e in errors)


def test_the_workflow_plans_one_training_job_per_replicate(tmp_path):
    """A dry run: `replicates: 3` plans three inits, three trainings and the evaluation of each
    replicate; the first replicate's training job is the configured student's (same spec)."""
    work = copy_workflow(tmp_path / "wf")
    (work / "reps.yaml").write_text(yaml.safe_dump({"students": {"tiny": {"replicates": 3}}}))
    out = subprocess.run(
        [SNAKEMAKE, "-n", "-p", "--cores", "1", "--configfile", "config/config.yaml",
         "reps.yaml"], cwd=work, env=workflow_env(), capture_output=True, text=True,
        timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for seed in (0, 1, 2):
        assert f"--student tiny~s{seed} " in text
        assert f"--out results/models/tiny~s{seed} " in text
        assert f"--init results/models/tiny~s{seed}@init" in text
        assert f"results/generations/tiny~s{seed}/heldout.parquet" in text
        assert f"results/generalization/tiny~s{seed}@init/syco-probe.parquet" in text
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", text.split("Job stats:")[1], re.M))
    assert stats["init_student"] == "3" and stats["train"] == "3", stats
    jobs = {p.name.split(".")[0]: p for p in (work / "results/jobs/train").glob("*.json")}
    spec = {k: yaml.safe_load(p.read_text()) for k, p in jobs.items()}
    assert spec["tiny~s2"]["seed"] == 2 and "replicates" not in spec["tiny~s2"]


# --- the aggregate and its standard error ------------------------------------------------------


def _draw(rng, r: int, p: int, seed_sd: float, problem_sd: float, noise_sd: float) -> np.ndarray:
    return (rng.normal(0, seed_sd, (r, 1)) + rng.normal(0, problem_sd, (1, p))
            + rng.normal(0, noise_sd, (r, p)))


def test_two_way_se_counts_seeds_and_problems_once_each():
    """Monte Carlo: the estimator's mean matches the true spread of the grand mean over new
    seeds and new problems; the naive SE of the replicates' means misses the problems."""
    rng = np.random.default_rng(0)
    r, p = 3, 40
    means, ses, naive = [], [], []
    for _ in range(3000):
        x = _draw(rng, r, p, seed_sd=0.05, problem_sd=0.3, noise_sd=0.2)
        means.append(x.mean())
        ses.append(two_way_se(x))
        naive.append(np.std(x.mean(axis=1), ddof=1) / np.sqrt(r))
    true_sd = float(np.std(means))
    assert abs(np.sqrt(np.mean(np.square(ses))) - true_sd) / true_sd < 0.08
    assert np.mean(naive) < 0.6 * true_sd


def test_two_way_se_reduces_to_the_single_run_se():
    x = np.random.default_rng(1).random((1, 25))
    single = np.std(x[0], ddof=1) / np.sqrt(25)
    assert two_way_se(x) == pytest.approx(single)
    assert two_way_se(np.vstack([x, x, x])) == pytest.approx(single)  # identical replicates
    assert two_way_se(np.ones((2, 1))) is None


def _generations(rates: dict[str, float], problems: int = 30, n: int = 4,
                 seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    difficulty = rng.random(problems)
    rows = []
    for model, rate in rates.items():
        for p in range(problems):
            for i in range(n):
                right = bool(rng.random() < rate * (0.5 + difficulty[p]))
                rows.append({"model": model, "benchmark": "heldout", "budget": None,
                             "problem_id": f"p{p:02d}", "sample_index": i, "correct": right,
                             "extracted_answer": "1" if right else "2",
                             "output_tokens": 100 + i, "thinking_tokens": 80})
    df = pd.DataFrame(rows)
    df["budget"] = df["budget"].astype("Int64")
    return df


def test_metrics_keep_each_replicate_and_add_the_aggregate():
    gens = _generations({"tiny~s0": 0.5, "tiny~s1": 0.6, "tiny~s2": 0.55, "sim-o1": 0.8})
    metrics, scores = metrics_and_scores(gens, [1, 2])
    p1 = metrics[metrics["metric"].eq("pass@1")].set_index("model")
    assert set(p1.index) == {"tiny~s0", "tiny~s1", "tiny~s2", "sim-o1", "tiny"}
    reps = p1.loc[["tiny~s0", "tiny~s1", "tiny~s2"]]
    assert list(reps["replicate_of"]) == ["tiny"] * 3 and list(reps["seed"]) == [0, 1, 2]
    assert not reps["aggregate"].any() and (reps["n_replicates"] == 1).all()
    agg = p1.loc["tiny"]
    assert agg["aggregate"] and agg["n_replicates"] == 3 and pd.isna(agg["replicate_of"])
    assert agg["value"] == pytest.approx(reps["value"].mean())
    assert agg["sd_replicates"] == pytest.approx(reps["value"].std(ddof=1))
    matrix = scores[scores["model"].str.startswith("tiny~") & scores["metric"].eq("pass@1")]
    x = matrix.pivot(index="model", columns="problem_id", values="score").to_numpy()
    assert agg["stderr"] == pytest.approx(two_way_se(x))
    assert agg["n_samples"] == reps["n_samples"].sum() and agg["n_problems"] == 30
    assert {"maj@2", "pass@2"} <= set(metrics.loc[metrics["aggregate"], "metric"])
    assert not p1.loc["sim-o1", "aggregate"] and pd.isna(p1.loc["sim-o1", "replicate_of"])


def test_generalization_rows_aggregate_with_the_conservative_se():
    rows = pd.DataFrame({"model": ["tiny~s0", "tiny~s1", "tiny~s0@init", "tiny~s1@init"],
                         "category": "safety", "benchmark": "safety-demo",
                         "metric": "safe_judged", "value": [60.0, 70.0, 40.0, 44.0],
                         "stderr": [5.0, 5.0, 4.0, 4.0], "n": [10, 9, 10, 10],
                         "judge": "sim-judge"})
    out = aggregate_rows(rows, ["category", "benchmark", "metric", "judge"]).set_index("model")
    tiny = out.loc["tiny"]
    assert tiny["value"] == 65.0 and tiny["n"] == 9 and tiny["n_replicates"] == 2
    assert tiny["stderr"] == pytest.approx(np.sqrt(np.var([60, 70], ddof=1) / 2 + 25.0))
    assert out.loc["tiny@init", "value"] == 42.0
    text = generalization_markdown(out.reset_index(), ["tiny@init", "tiny"])
    assert "`tiny` (mean of 2 replicates)" in text and "delta per replicate" in text
    assert "s0 +20.0, s1 +26.0; sd 4.2" in text  # each replicate against its own init
    assert "(seed sd 7.1)" in text


# --- comparisons -------------------------------------------------------------------------------


def test_a_gain_from_one_run_each_is_not_called_signal():
    """One run each, a few points apart on 30 problems: the paired test and the interval say
    it is within noise, and the seed spread is reported as unknown."""
    gens = _generations({"one-stage": 0.55, "two-stage": 0.58}, seed=3)
    _, scores = metrics_and_scores(gens, [1])
    row = comparisons(scores, [["one-stage", "two-stage"]]).iloc[0]
    assert row["verdict"] == "within noise" and not row["seeds_known"]
    assert pd.isna(row["se_seeds"]) and pd.isna(row["p_seeds"])
    assert row["ci_low"] < 0 < row["ci_high"] and row["p_paired"] > 0.05
    assert row["diff"] == pytest.approx(row["mean_b"] - row["mean_a"])


def test_a_large_gain_with_replicates_is_signal_and_identical_models_are_not():
    gens = _generations({"a~s0": 0.3, "a~s1": 0.32, "b~s0": 0.75, "b~s1": 0.72})
    _, scores = metrics_and_scores(gens, [1])
    row = comparisons(scores, [["a", "b"]]).iloc[0]
    assert row["verdict"] == "b higher" and row["seeds_known"]
    assert row["replicates_a"] == row["replicates_b"] == 2
    assert row["ci_paired_low"] > 0 and row["p_paired"] < 0.01 and row["se_seeds"] > 0
    assert row["se_total"] >= row["se_paired"]
    x = np.random.default_rng(0).random((2, 20))
    same = compare_scores(x, x.copy())
    assert same["diff"] == 0 and same["p_paired"] == 1.0 and same["p_seeds"] == 1.0
    assert same["ci_low"] <= 0 <= same["ci_high"]


def test_the_report_shows_aggregates_replicates_and_comparisons():
    gens = _generations({"tiny~s0": 0.5, "tiny~s1": 0.6, "sim-o1": 0.8})
    metrics, scores = metrics_and_scores(gens, [1, 2])
    t1 = report.table1(metrics)
    lines = [line for line in t1.splitlines() if "| pass@1 |" in line]
    assert [line.split(" | ")[0] for line in lines] == [
        "| sim-o1", "| **tiny** (mean of 2 replicates)", "| tiny~s0", "| tiny~s1"]
    assert "(seed sd " in lines[1] and "counting both the problems and the seeds" in t1
    comp = comparisons(scores, [["tiny", "sim-o1"]])
    text = report.comparison_section(comp, [["tiny", "sim-o1"]])
    assert "**`sim-o1` against `tiny`**" in text and "2 replicates" in text
    assert "unknown: `sim-o1` one run" in text
    assert "No pairs to compare" in report.comparison_section(comp.iloc[0:0], [])


def test_plots_draw_each_replicate_and_the_mean():
    gens = _generations({"tiny~s0": 0.5, "tiny~s1": 0.6, "sim-o1": 0.8})
    gens = pd.concat([gens, gens.assign(budget=64)], ignore_index=True)
    gens["budget"] = gens["budget"].astype("Int64")
    metrics, _ = metrics_and_scores(gens, [1, 2])
    for fig in (draw_accuracy_vs_tokens(metrics, paper_reference=False),
                draw_accuracy_vs_budget(metrics)):
        _, labels = fig.axes[0].get_legend_handles_labels()
        assert "tiny (mean of 2)" in labels and "tiny: each replicate" in labels
        assert "tiny~s0" not in labels and "sim-o1" in labels
