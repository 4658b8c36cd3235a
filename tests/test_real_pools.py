"""Real pools through the front half, offline: problems -> traces (the sim over HTTP) -> curate.

MATH500, AIME 2024 and AMC 2023 from ../shared (skipped without it), and NuminaMath-style rows
(no answer column: the gold is the solution's last box). The sim's rewriter rewrites each given
reference solution and keeps its final answer; where there is no solution the sim refuses, and
curation must call that `no_answer` (filter final_answer), never a wrong answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import BENCH_DIR

from longthought.answers import normalize_gold
from longthought.cli import main
from longthought.io import read_table

pytestmark = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared benchmarks absent")

REWRITER = {"base_url": "sim", "model": "sim-4o-mini", "api_key_env": "LONGTHOUGHT_SIM_API_KEY",
            "sampling": {"temperature": 0.3, "top_p": 1.0, "max_tokens": 4096},
            "samples_per_problem": 1,
            "limits": {"max_concurrency": 32, "requests_per_minute": 60000,
                       "tokens_per_minute": None, "timeout_s": 60, "max_retries": 6},
            "pricing": {"input": 0.15, "output": 0.6, "reasoning": 0.6}, "budget_usd": 1.0,
            "sim": {"slip_rate": 0.0, "wrong_rate": 0.0, "truncate_rate": 0.0, "latency_ms": 0,
                    "seed": 8}}
SOLVER = {**REWRITER, "model": "sim-o1", "sim": {**REWRITER["sim"], "seed": 7}}
REWRITE = {"system": None, "user": "Rewrite the reference solution below into a step-by-step, "
           "very detailed and longer solution that reasons carefully before answering. Keep the "
           "same final answer and put it in \\boxed{}.\n\nProblem: {problem}\n\n"
           "Reference solution: {solution}"}
DISTILL = {"system": None, "user": "Solve the following math problem. Think it through step by "
           "step, check your work, and put the final answer in \\boxed{}.\n\n{problem}"}
DATASET = {"filters": {"truncated": True, "thought_markers": False, "final_answer": True,
                       "correct": True, "repetition": {"ngram": 8, "max_ratio": 0.5}},
           "dedup": {"exact": True, "near": None, "keep": "all", "k": 1},
           "decontaminate": None, "format": {"thinking": "think", "system": None}}


def front_half(tmp: Path, name: str, pool: dict, teacher: dict, prompt: dict,
               dataset: dict | None = None) -> dict[str, pd.DataFrame]:
    """problems -> traces -> curate through the CLI verbs the rules call."""
    p, t = tmp / f"{name}.problems.parquet", tmp / f"{name}.traces.parquet"
    assert main(["problems", "--name", name, "--spec", json.dumps(pool), "--out", str(p),
                 "--rejected", str(tmp / f"{name}.problems.rejected.parquet")]) == 0
    spec = {"task": {"teacher": teacher["model"], "prompt": "p", "pool": name},
            "teacher": teacher, "prompt": prompt, "teacher_name": teacher["model"],
            "prompt_name": "p"}
    assert main(["traces", "--task", name, "--spec", json.dumps(spec), "--problems", str(p),
                 "--cache-dir", str(tmp / "cache"), "--out", str(t), "--quiet"]) == 0
    out = {k: tmp / f"{name}.{k}.parquet" for k in ("data", "rejected", "funnel")}
    ds = {"tasks": [name], **DATASET, **(dataset or {})}
    assert main(["curate", "--dataset", name, "--spec", json.dumps(ds), "--traces", str(t),
                 "--out", str(out["data"]), "--rejected", str(out["rejected"]),
                 "--funnel", str(out["funnel"]), "--workers", "2"]) == 0
    return {"problems": read_table(p, "problems"), "traces": read_table(t, "traces"),
            "data": read_table(out["data"], "dataset"),
            "rejected": read_table(out["rejected"], "rejected")}


def math500(**extra) -> dict:
    return {"source": "file", "path": str(BENCH_DIR / "math500.jsonl"),
            "columns": {"problem_id": "unique_id"}, "meta": ["subject", "level"],
            "filters": {"figures": True, "proofs": True, "no_answer": True}, **extra}


@pytest.mark.slow
def test_math500_rewritten_by_the_sim_passes_the_correctness_filter(tmp_path):
    out = front_half(tmp_path, "math500", math500(), REWRITER, REWRITE)
    traces, rej = out["traces"], out["rejected"]
    assert len(out["problems"]) == 457  # the figure filter drops 43 of 500
    assert (traces["status"] == "ok").all()
    assert traces["content"].str.contains("Step 1:").all()
    wrong = rej[rej["filter"] == "correct"]
    for r in wrong.itertuples():  # the README lists these
        print(f"rejected {r.problem_id}: {r.reason}: {r.detail}")
    assert len(wrong) <= 0.01 * len(traces), wrong[["problem_id", "reason", "detail"]]
    assert len(out["data"]) + len(rej) == len(traces)


def test_rewriter_keeps_the_reference_answer_and_boxes_only_it(tmp_path):
    pool = math500(limit=40, seed=3)
    out = front_half(tmp_path, "m40", pool, REWRITER, REWRITE)
    traces = out["traces"].set_index("problem_id")
    problems = out["problems"].set_index("problem_id")
    for pid, text in traces["content"].items():
        assert text.count("\\boxed{") == 1, text  # intermediate boxes of the solution unboxed
        assert text.rstrip().endswith(f"$\\boxed{{{problems.loc[pid, 'answer']}}}$.") or \
            "\\boxed" in str(problems.loc[pid, "solution"])
        assert len(text) > 0.8 * len(str(problems.loc[pid, "solution"]))
    assert len(out["data"]) == len(traces)


def test_numina_style_rows_take_the_gold_from_the_solution(tmp_path):
    # NuminaMath publishes problem + solution only: no answer column
    pool = math500(limit=30, seed=5, columns={"problem_id": "unique_id", "answer": None})
    out = front_half(tmp_path, "numina", pool, REWRITER, REWRITE)
    src = {json.loads(x)["unique_id"]: json.loads(x)["answer"]
           for x in (BENCH_DIR / "math500.jsonl").read_text().splitlines()}
    same = [a == src[pid] for pid, a in zip(out["problems"]["problem_id"],
                                            out["problems"]["answer"], strict=True)]
    assert sum(same) >= 0.9 * len(same)  # the solution's box is the published answer
    assert len(out["data"]) == len(out["traces"])


def test_aime_rewrite_and_amc_refusals_are_never_wrong_answers(tmp_path):
    aime = {"source": "file", "path": str(BENCH_DIR / "aime24.jsonl"),
            "columns": {"problem_id": "id"}, "answer_type": "integer"}
    out = front_half(tmp_path, "aime", aime, REWRITER, REWRITE)
    rej, problems = out["rejected"], out["problems"].set_index("problem_id")
    assert len(out["data"]) >= 25
    for r in rej.itertuples():
        solution = str(problems.loc[r.problem_id, "solution"])
        if r.filter == "final_answer":  # a solution without a box: a rewrite without an answer
            assert "\\boxed" not in solution
        elif r.filter == "correct":  # the reference's last box is not the published answer
            assert r.reason == "wrong answer"
            assert normalize_gold(solution) != problems.loc[r.problem_id, "answer"]
        else:
            assert r.filter == "truncated"
    amc = {"source": "file", "path": str(BENCH_DIR / "amc23.jsonl"),
           "columns": {"problem_id": "id"}}
    out = front_half(tmp_path, "amc", amc, SOLVER, DISTILL)
    rej = out["rejected"]
    # the sim cannot solve AMC problems: it refuses, and curation says so (no wrong answers)
    assert len(out["data"]) == 0 and len(rej) == 40
    assert set(rej["filter"]) == {"final_answer"}, rej["reason"].value_counts()
    assert (rej["reason"] == "no \\boxed{} answer after the thought").all()
    # the same with math-verify's full extraction: the refusal's $12 + 34$ is still no answer
    out = front_half(tmp_path, "amc_full", amc, SOLVER, DISTILL, {"answer_extraction": "full"})
    assert set(out["rejected"]["filter"]) == {"final_answer"}
    assert out["rejected"]["reason"].str.contains("refusal|question").all()
