"""Metrics: pass@k estimator, maj@k votes and ties, standard errors, cost scaling, plots."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from longthought.answers import AnswerChecker
from longthought.evaluate.metrics import (
    MathEqual,
    budget_curve,
    compute_metrics,
    cost_curve,
    majority_vote,
    normalize_answer,
    pass_at_k,
)
from longthought.evaluate.paper import canonical_benchmark, reference_points
from longthought.io import validate


def brute_pass_at_k(outcomes: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (4, 1, 1), (4, 1, 2), (5, 2, 3),
                                   (6, 0, 3), (6, 6, 2), (8, 3, 4), (10, 1, 10), (7, 4, 5)])
def test_pass_at_k_matches_brute_force(n, c, k):
    outcomes = [True] * c + [False] * (n - c)
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(outcomes, k), abs=1e-12)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="pass@k"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="pass@k"):
        pass_at_k(3, 1, 4)


def test_normalize_answer_merges_latex_variants_only():
    assert normalize_answer(r"\dfrac{1}{2}") == normalize_answer(r"$\frac{1}{2}$")
    assert normalize_answer(r"\left( 3, \frac{\pi}{2} \right)") == normalize_answer(
        r"(3,\frac{\pi}{2})")
    assert normalize_answer(r"\text{Evelyn}") == normalize_answer("evelyn")
    assert normalize_answer("0.5") != normalize_answer(r"\frac{1}{2}")
    assert normalize_answer(None) is None and normalize_answer("  ") is None
    assert normalize_answer(float("nan")) is None


def test_majority_vote_ties_go_to_earliest_first_vote():
    # 2 votes each for "7" (first at index 1) and "5" (first at index 0): "5" wins
    assert majority_vote(["5", "7", "7", "5"], [False, True, True, False]) == ("5", False)
    assert majority_vote(["7", "5", "7", "5"], [True, False, True, False]) == ("7", True)
    # a clear majority wins whatever its position; no-answer samples do not vote
    assert majority_vote([None, "3", "4", "4"], [False, False, True, True]) == ("4", True)
    assert majority_vote([None, None], [False, False]) == (None, False)
    # correctness comes from the winning group's first sample
    assert majority_vote([r"\dfrac{1}{2}", r"\frac{1}{2}"], [True, False])[1] is True


def test_majority_vote_groups_by_mathematical_equality():
    with AnswerChecker(workers=1, timeout_s=10) as checker:
        equal = MathEqual(checker)
        answers = ["0.5", "1/3", r"\frac{1}{2}", r"\dfrac{2}{6}", "x+1", "1+x", "1+x", None]
        correct = [False, False, False, False, True, True, True, False]
        equal.prime([("0.5", r"\frac{1}{2}"), ("x+1", "1+x")])
        # 0.5 = 1/2 (2 votes), 1/3 = 2/6 (2 votes), x+1 = 1+x (3 votes): x+1 wins
        assert majority_vote(answers, correct, equal) == ("x+1", True)
        # by strings alone the three spellings of 1+x would still win, but 0.5 and 1/2 split
        assert majority_vote(["0.5", "7", r"\frac{1}{2}"], [True, False, True], equal) == \
            ("0.5", True)
        assert majority_vote(["0.5", "7", r"\frac{1}{2}"], [True, False, True]) == ("0.5", True)
        assert majority_vote(["7", "0.5", r"\frac{1}{2}"], [False, True, True], equal) == \
            ("0.5", True)
        assert majority_vote(["7", "0.5", r"\frac{1}{2}"], [False, True, True]) == ("7", False)
        # an unparseable or hostile answer only ever matches its own text
        assert equal("9^{9^{9^{9}}}", "9^{9^{9^{9}}}") is True
        assert equal("9^{9^{9^{9}}}", "1") is False
        calls = checker.parser_calls
        equal.prime([("0.5", r"\frac{1}{2}")] * 5)  # cached: no new parser call
        assert checker.parser_calls == calls


def test_compute_metrics_maj_at_k_votes_by_value():
    rows = [("p1", 0, False, "7", 10, None), ("p1", 1, True, "0.5", 10, None),
            ("p1", 2, True, r"\frac{1}{2}", 10, None), ("p1", 3, False, "7.0", 10, None),
            ("p2", 0, True, r"\sqrt{2}/2", 10, None), ("p2", 1, False, "1", 10, None),
            ("p2", 2, False, "2", 10, None), ("p2", 3, True, r"\frac{\sqrt{2}}{2}", 10, None)]
    m = compute_metrics(gens(rows), ks=[4]).set_index("metric")
    # p1: {7, 7.0} and {0.5, 1/2} tie at 2; 7 came first -> wrong. p2: sqrt2/2 (2 votes) right
    assert m.loc["maj@4", "value"] == pytest.approx(0.5)


def gens(rows: list[tuple], model="m", bench="b", budget=None) -> pd.DataFrame:
    """rows: (problem_id, sample_index, correct, extracted, output_tokens, thinking_tokens)."""
    df = pd.DataFrame(rows, columns=["problem_id", "sample_index", "correct", "extracted_answer",
                                     "output_tokens", "thinking_tokens"])
    df["model"], df["benchmark"], df["budget"] = model, bench, budget
    df["budget"] = df["budget"].astype("Int64")
    df["correct"] = df["correct"].astype("boolean")
    df["thinking_tokens"] = df["thinking_tokens"].astype("Int64")
    return df


def test_compute_metrics_values_stderr_and_cost():
    df = gens([
        ("p1", 0, True, "1", 10, 6), ("p1", 1, True, "1", 20, 12),
        ("p1", 2, False, "2", 30, 18), ("p1", 3, True, "1", 40, 24),
        ("p2", 0, False, "9", 10, None), ("p2", 1, None, "8", 10, None),
        ("p2", 2, False, "8", 10, None), ("p2", 3, True, "5", 10, None),
        ("p3", 3, False, None, 5, None), ("p3", 0, False, "4", 5, None),
        ("p3", 1, False, "4", 5, None), ("p3", 2, False, "6", 5, None),
    ])
    m = compute_metrics(df, ks=[1, 2, 4, 8]).set_index("metric")
    validate(m.reset_index(), "metrics", "test")
    assert set(m.index) == {"pass@1", "pass@2", "maj@2", "pass@4", "maj@4"}  # k=8 > n: skipped
    per_problem = np.array([0.75, 0.25, 0.0])  # a null verdict counts as not correct
    assert m.loc["pass@1", "value"] == pytest.approx(per_problem.mean())
    assert m.loc["pass@1", "stderr"] == pytest.approx(per_problem.std(ddof=1) / math.sqrt(3))
    assert m.loc["pass@2", "value"] == pytest.approx(
        np.mean([pass_at_k(4, 3, 2), pass_at_k(4, 1, 2), 0.0]))
    # maj@2 over samples 0,1 of each problem: p1 "1","1" correct; p2 "9","8" tie -> "9" wrong;
    # p3 "4","4" wrong
    assert m.loc["maj@2", "value"] == pytest.approx(1 / 3)
    # maj@4: p1 "1" x3 correct; p2 "8" x2 (samples 1, 2) -> first is null -> wrong; p3 "4" wrong
    assert m.loc["maj@4", "value"] == pytest.approx(1 / 3)
    mean_tokens = (100 + 40 + 20) / 12
    assert m.loc["pass@1", "avg_output_tokens"] == pytest.approx(mean_tokens)
    assert m.loc["maj@4", "avg_output_tokens"] == pytest.approx(4 * mean_tokens)
    first2 = (10 + 20 + 10 + 10 + 5 + 5) / 6
    assert m.loc["maj@2", "avg_output_tokens"] == pytest.approx(2 * first2)
    # thinking is averaged over the same samples as the output (no thinking counts 0), so it
    # never exceeds the output average; the share that had any thinking is stated beside it
    assert m.loc["pass@1", "avg_thinking_tokens"] == pytest.approx(60 / 12)
    assert m.loc["pass@1", "thinking_share"] == pytest.approx(4 / 12)
    assert m.loc["maj@2", "avg_thinking_tokens"] == pytest.approx(2 * 18 / 6)
    assert m.loc["maj@2", "thinking_share"] == pytest.approx(2 / 6)
    assert (m["avg_thinking_tokens"] <= m["avg_output_tokens"]).all()
    assert m.loc["pass@1", "n_problems"] == 3 and m.loc["pass@1", "n_samples"] == 12
    assert m.loc["maj@2", "n_samples"] == 6


def test_compute_metrics_groups_by_budget_and_model():
    free = gens([("p1", 0, True, "1", 50, 40), ("p2", 0, False, "3", 70, 60)])
    capped = gens([("p1", 0, False, "2", 20, 16), ("p2", 0, False, "3", 20, 16)], budget=16)
    other = gens([("p1", 0, True, "1", 5, None), ("p2", 0, True, "2", 5, None)], model="z")
    m = compute_metrics(pd.concat([free, capped, other], ignore_index=True), ks=[1])
    assert len(m) == 3
    row = m[(m["model"] == "m") & m["budget"].isna()].iloc[0]
    assert row["value"] == 0.5 and row["avg_output_tokens"] == 60
    row = m[m["budget"].eq(16).fillna(False)].iloc[0]
    assert row["value"] == 0.0 and row["avg_thinking_tokens"] == 16
    row = m[m["model"] == "z"].iloc[0]
    assert row["value"] == 1.0 and pd.isna(row["avg_thinking_tokens"])
    assert pd.isna(row["stderr"]) is False and row["stderr"] == 0.0
    assert budget_curve(m)["budget"].tolist() == [16]


def test_single_problem_has_no_stderr_and_missing_columns_fail():
    m = compute_metrics(gens([("p1", 0, True, "1", 3, None)]), ks=[1])
    assert pd.isna(m.iloc[0]["stderr"])
    with pytest.raises(ValueError, match="extracted_answer"):
        compute_metrics(pd.DataFrame({"model": ["m"]}), ks=[1])
    empty = compute_metrics(gens([]).iloc[0:0], ks=[1, 4])
    assert empty.empty and list(empty.columns)[:3] == ["model", "benchmark", "metric"]


def test_cost_curve_orders_points_by_cost():
    df = gens([(f"p{i}", j, (i + j) % 2 == 0, str(j % 2), 10 + j, None)
               for i in range(3) for j in range(4)])
    curve = cost_curve(compute_metrics(df, ks=[2, 4]))
    assert curve["metric"].tolist() == ["pass@1", "maj@2", "maj@4"]
    assert curve["avg_output_tokens"].is_monotonic_increasing


def test_paper_reference_points():
    assert canonical_benchmark("AIME 2024") == "aime2024" == canonical_benchmark("aime24")
    assert canonical_benchmark("math500") == "math500" == canonical_benchmark("math500-local")
    assert canonical_benchmark("heldout") is None and canonical_benchmark("aime25") is None
    ref = reference_points("aime24").set_index("model")
    assert ref.loc["o1-mini", "accuracy"] == pytest.approx(21 / 30)
    assert ref.loc["o1-preview", "avg_output_tokens"] == 9083
    assert reference_points("math500").set_index("model").loc[
        "distilled Qwen2.5-Math-72B", "accuracy"] == pytest.approx(0.872)
    assert reference_points("heldout").empty


def test_plots_write_pngs(tmp_path):
    from longthought.evaluate.metrics import plot_accuracy_vs_tokens
    from longthought.evaluate.plots import plot_accuracy_vs_budget

    rows = []
    for bench in ["aime24", "heldout"]:
        for budget in [None, 8, 32]:
            rows.append(gens([(f"p{i}", j, (i + j) % 3 == 0, str(j % 2), 10 + j, 5)
                              for i in range(3) for j in range(4)], bench=bench, budget=budget))
    m = compute_metrics(pd.concat(rows, ignore_index=True), ks=[1, 4])
    for out in [plot_accuracy_vs_tokens(m, tmp_path / "a.png", paper_reference=True),
                plot_accuracy_vs_budget(m, tmp_path / "b.png"),
                plot_accuracy_vs_budget(m[m["budget"].isna()], tmp_path / "c.png")]:
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
