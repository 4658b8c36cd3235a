"""The paper's pool filters: each one switchable, each removal named, kept + rejected = input."""

from __future__ import annotations

import pandas as pd
import pytest

from longthought.problems.filters import apply_pool_filters


def _pool() -> pd.DataFrame:
    rows = [
        ("ok-int", "What is $2+3$?", "5", "integer"),
        ("asy", "In the figure below [asy]draw((0,0)--(1,1));[/asy] find x.", "3", "integer"),
        ("diagram", "Using the diagram, compute the area.", "12", "integer"),
        ("md-image", "See ![triangle](http://x.org/t.png). Find the side.", "4", "integer"),
        ("img-link", "Image: https://cdn.example.com/p/q.jpg find y", "2", "integer"),
        ("figure-out", "Figure out the sum of 4 and 5.", "9", "integer"),
        ("no-answer", "Find all primes p.", "", "text"),
        ("proof", "Prove that there are infinitely many primes.", "proof", "text"),
        ("show", "Show that $n^2+n$ is even.", "even", "text"),
        ("tuple", "Convert $(0,3)$ to polar coordinates.", "(3,\\frac{\\pi}{2})", "tuple"),
        ("rational", "What is half of one?", "\\frac{1}{2}", "rational"),
    ]
    df = pd.DataFrame(rows, columns=["problem_id", "problem", "answer", "answer_type"])
    df["source"], df["solution"], df["meta"] = "test", None, None
    return df


ALL = {"figures": True, "no_answer": True, "proofs": True,
       "answer_types": ["integer", "rational"]}


def test_all_filters_name_each_removal():
    df = _pool()
    kept, rejected = apply_pool_filters(df, ALL)
    assert len(kept) + len(rejected) == len(df)
    assert list(rejected.columns) == ["problem_id", "filter", "reason"]
    by_id = dict(zip(rejected["problem_id"], rejected["filter"], strict=True))
    assert by_id == {"asy": "figures", "diagram": "figures", "md-image": "figures",
                     "img-link": "figures", "no-answer": "no_answer", "proof": "proofs",
                     "show": "proofs", "tuple": "answer_types"}
    assert kept["problem_id"].tolist() == ["ok-int", "figure-out", "rational"]
    reasons = dict(zip(rejected["problem_id"], rejected["reason"], strict=True))
    assert reasons["asy"] == "refers to a figure: figure"  # the first match in the text
    assert reasons["md-image"].startswith("refers to a figure: ![triangle]")
    assert reasons["show"] == "asks for a proof: Show that"
    assert reasons["tuple"] == "answer type tuple not in ['integer', 'rational']"


@pytest.mark.parametrize(("key", "value", "removed"), [
    ("figures", True, {"asy", "diagram", "md-image", "img-link"}),
    ("no_answer", True, {"no-answer"}),
    ("proofs", True, {"proof", "show"}),
    ("answer_types", ["integer"], {"no-answer", "proof", "show", "tuple", "rational"}),
    ("answer_types", "text", {"ok-int", "asy", "diagram", "md-image", "img-link",
                              "figure-out", "tuple", "rational"}),
    ("figures", False, set()),
    ("answer_types", None, set()),
])
def test_each_filter_alone(key, value, removed):
    kept, rejected = apply_pool_filters(_pool(), {key: value})
    assert set(rejected["problem_id"]) == removed
    assert set(rejected["filter"]) <= {key}
    assert len(kept) + len(rejected) == len(_pool())


def test_no_filters_keeps_everything():
    kept, rejected = apply_pool_filters(_pool(), {})
    assert len(kept) == len(_pool()) and rejected.empty
    assert list(rejected.columns) == ["problem_id", "filter", "reason"]
    kept, rejected = apply_pool_filters(_pool(), None)
    assert rejected.empty


def test_bad_filter_config():
    with pytest.raises(ValueError, match=r"unknown keys \['images'\]"):
        apply_pool_filters(_pool(), {"images": True})
    with pytest.raises(ValueError, match=r"filters.answer_types: unknown types \['number'\]"):
        apply_pool_filters(_pool(), {"answer_types": ["number"]})
