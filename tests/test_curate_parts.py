"""Curation parts in isolation: repetition, scripts, dedup, near-dup LSH, decontamination."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import BENCH_DIR

from longthought.curate.decontaminate import BenchmarkIndex, words
from longthought.curate.dedup import Candidate, cluster_problems, keep_policy, normalize_problem
from longthought.curate.formatting import assistant_text, build_messages, split_trace
from longthought.curate.tracefilters import repetition_ratio, script_share
from longthought.problems.loaders import load_problems

needs_shared = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared benchmarks absent")


def test_repetition_ratio():
    varied = " ".join(f"word{i}" for i in range(500))
    assert repetition_ratio(varied, 8) == 0.0
    loop = " ".join(["wait let me check that again"] * 100)
    assert repetition_ratio(loop, 8) > 0.95
    half = varied + " " + " ".join(["again and again"] * 200)
    assert 0.3 < repetition_ratio(half, 8) < 0.7
    assert repetition_ratio("too short", 8) == 0.0


def test_script_share():
    assert script_share("All latin letters here", ["latin"]) == 1.0
    assert script_share("中文中文 ab", ["latin"]) == pytest.approx(2 / 6)
    assert script_share("中文中文 ab", ["latin", "cjk"]) == 1.0
    assert script_share("123 + 456 = 579", ["latin"]) is None


def test_exact_and_near_duplicate_clusters():
    problems = [
        ("a", "Find the sum of all positive divisors of 360 that are odd."),
        ("b", "find  the sum of all positive divisors of 360 that are odd"),
        ("c", "Find the sum of all positive divisors of 360 which are odd."),
        ("d", "How many primes are less than 100?"),
    ]
    exact = cluster_problems(problems, exact=True)
    assert (exact["b"].rep, exact["b"].how) == ("a", "exact")
    assert exact["c"].rep == "c" and exact["d"].rep == "d"
    near = cluster_problems(problems, exact=True, near={"threshold": 0.6, "num_perm": 128,
                                                        "ngram": 5})
    assert (near["c"].rep, near["c"].how) == ("a", "near") and near["c"].score >= 0.6
    assert near["d"].rep == "d"
    assert normalize_problem("  Hello   World?? ") == "hello world"


def test_keep_policies():
    clusters = cluster_problems([("p", "x"), ("q", "x")], exact=True)
    cands = [Candidate(0, "s0", "p", 300, "h0"), Candidate(1, "s1", "p", 100, "h1"),
             Candidate(2, "s2", "p", 200, "h0"), Candidate(3, "s3", "q", 50, "h9"),
             Candidate(4, "s4", "p", None, "h4")]
    removed = keep_policy(cands, clusters, "all")
    assert removed == {2: ("identical response", "same as s0"),
                       3: ("duplicate problem of p", "same text")}
    removed = keep_policy(cands, clusters, "first", 2)
    assert set(removed) == {2, 3, 4}
    removed = keep_policy(cands, clusters, "shortest", 1)
    assert set(removed) == {0, 2, 3, 4}  # s1 (100 tokens) stays; unknown length sorts last
    with pytest.raises(ValueError, match="dedup.keep"):
        keep_policy(cands, clusters, "longest")


def test_decontamination_index_and_short_problems():
    bench = pd.DataFrame({"problem_id": ["b1", "b2"], "problem": [
        "The quick brown fox jumps over the lazy dog near the river bank today.",
        "Compute $12 + 34$."]})
    index = BenchmarkIndex({"toy": bench}, n=8)
    m = index.match("Warm-up: the QUICK brown fox jumps over the lazy dog near a river.")
    assert (m.benchmark, m.problem_id) == ("toy", "b1")
    assert m.ngram == "the quick brown fox jumps over the lazy"
    assert index.match("A quick brown fox ran over a dog.") is None
    assert index.match("compute 12+34").problem_id == "b2"  # short: whole-text match
    assert index.match("Compute $12 + 35$.") is None
    assert words("\\frac{1}{2} of X") == ["frac", "1", "2", "of", "x"]


@needs_shared
def test_decontamination_finds_planted_benchmark_problems():
    tables = {
        name: load_problems({"source": "file", "path": str(BENCH_DIR / f"{name}.jsonl"),
                             "columns": {"problem_id": key}})
        for name, key in (("aime24", "id"), ("math500", "unique_id"), ("amc23", "id"))
    }
    index = BenchmarkIndex(tables, n=8)
    for name, df in tables.items():
        for text in df["problem"].iloc[:20]:
            planted = f"Here is a practice question. {text} Show your work."
            m = index.match(planted)
            assert m is not None, (name, text)
        long_one = max(df["problem"], key=len)
        m = index.match("Warm-up. " + long_one[: len(long_one) * 2 // 3])
        assert m is not None and m.benchmark == name
    assert index.match("Compute $123 + 456$.") is None
    assert index.match("Solve for $x$: $3x + 4 = 19$") is None


def test_formatting_helpers():
    rec = {"content": "<think>\nplan\n</think>\n\nfinal \\boxed{1}", "reasoning_content": None}
    assert split_trace(rec) == ("plan", "final \\boxed{1}")
    assert assistant_text("plan", "ans", "plain") == "plan\n\nans"
    assert assistant_text(None, "ans", "think") == "ans"  # nothing invented
    msgs = build_messages("P?", rec, {"thinking": "think", "system": None, "user": None})
    assert msgs == [{"role": "user", "content": "P?"},
                    {"role": "assistant", "content": "<think>\nplan\n</think>\n\nfinal \\boxed{1}"}]
    braces = build_messages("Is {x} in {problem}?", rec, {"thinking": "plain", "user":
                                                          "Q: {problem}"})
    assert braces[0]["content"] == "Q: Is {x} in {problem}?"
    with pytest.raises(ValueError, match="format.thinking"):
        assistant_text("a", "b", "xml")
