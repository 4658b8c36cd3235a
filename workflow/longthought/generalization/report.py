"""The report's Table-2-style section: each benchmark's headline before and after SFT.

`generalization_markdown(df)` takes GENERALIZATION rows (any number of models) and writes, for a
baseline/tuned pair:

- one line per judged (category, benchmark, judge): the model's rate over the items the judge
  judged (safe replies, correct answers, replies that did not go along with a false premise, a
  0-100 score), both values, the delta with its standard error (treating the two runs as
  independent, which over-states it a little when both answered the same items), and apart from
  it how often the judge could not judge (off-format, refused, failed);
- the procedural sycophancy probe (scored by rule) in its own table, its shares side by side:
  kept the right answer, gave the user's wrong answer, gave another answer, gave none, and right
  without the user's assertion, so that a low "kept" reads as what it is;
- expert scores and the raters' agreement, when given.

No average is taken across benchmarks: the sets of one category measure different things.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from longthought.generalization.aggregate import JUDGE_FAILURES, PRIMARY

CATEGORY_ORDER = ["safety", "factuality", "sycophancy", "general_qa"]
CATEGORY_NAMES = {"safety": "safety", "factuality": "factuality", "sycophancy": "sycophancy",
                  "general_qa": "general QA"}


def _pair(models: list[str], baseline: str | None, tuned: str | None) -> tuple[str, str]:
    if baseline and tuned:
        return baseline, tuned
    inits = [m for m in models if m.endswith("@init") and m[: -len("@init")] in models]
    if inits:
        return inits[0], inits[0][: -len("@init")]
    if len(models) >= 2:
        return models[0], models[1]
    raise ValueError(f"need two models for a before/after table, got {models}")


def _fmt(value: float | None, stderr: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if stderr is None or (isinstance(stderr, float) and math.isnan(stderr)):
        return f"{value:.1f}"
    return f"{value:.1f} ± {stderr:.1f}"


def _delta(a: pd.Series | None, b: pd.Series | None) -> str:
    if a is None or b is None:
        return "–"
    d = float(b["value"]) - float(a["value"])
    ses = [s for s in (a["stderr"], b["stderr"]) if s is not None and not pd.isna(s)]
    se = math.sqrt(sum(float(s) ** 2 for s in ses)) if len(ses) == 2 else None
    return f"{d:+.1f}" + (f" ± {se:.1f}" if se is not None else "")


MEASURES = {
    "safety": "safe replies, % of judged",
    "factuality": "correct answers, % of judged",
    "sycophancy": "did not go along with the false premise, % of judged",
    "general_qa": "score 0-100, mean over judged",
}
PROBE_COLUMNS = [("non_sycophantic", "kept the right answer"),
                 ("agreed_wrong", "gave the user's wrong answer"),
                 ("other_answer", "gave another answer"),
                 ("no_answer", "gave no answer"),
                 ("control_correct", "right without the assertion")]


def _pick(df: pd.DataFrame, model: str, metric: str) -> pd.Series | None:
    sel = df[(df["model"] == model) & (df["metric"] == metric)]
    return sel.iloc[0] if len(sel) else None


def _judged_metric(sel: pd.DataFrame, category: str) -> tuple[str, str]:
    """(metric, label): the rate over judged items, or the all-items rate for older runs."""
    judged = "score_judged" if category == "general_qa" else f"{PRIMARY[category]}_judged"
    if (sel["metric"] == judged).any():
        return judged, MEASURES[category]
    if category == "general_qa":
        return "score", "score 0-100, mean over all items (judge failures count 0)"
    return PRIMARY[category], f"{PRIMARY[category]}, % of all items (judge failures count as fails)"


def _failures(sel: pd.DataFrame, model: str) -> str:
    rows = sel[(sel["model"] == model) & sel["metric"].isin(JUDGE_FAILURES) & (sel["value"] > 0)]
    if rows.empty:
        return "none" if (sel["model"] == model).any() else "–"
    return ", ".join(f"{r['metric']} {r['value']:.1f}%" for _, r in rows.iterrows())


def _judged_rows(df: pd.DataFrame, base: str, tune: str) -> list[str]:
    judged = df[(df["judge"] != "rule") & (df["judge"] != "human")]
    keys = judged[["category", "benchmark", "judge"]].drop_duplicates()
    keys = keys.assign(order=keys["category"].map(CATEGORY_ORDER.index)).sort_values(
        ["order", "benchmark", "judge"])
    lines = []
    for _, key in keys.iterrows():
        sel = judged[(judged["category"] == key["category"])
                     & (judged["benchmark"] == key["benchmark"])
                     & (judged["judge"] == key["judge"])]
        metric, label = _judged_metric(sel, key["category"])
        ra, rb = _pick(sel, base, metric), _pick(sel, tune, metric)
        items = {m: _pick(sel, m, PRIMARY[key["category"]] if key["category"] != "general_qa"
                          else "score") for m in (base, tune)}
        n = " / ".join(f"{int(r['n'])} of {int(t['n'])}" if r is not None and t is not None
                       else "–" for r, t in zip((ra, rb), items.values(), strict=True))
        va = _fmt(ra["value"], ra["stderr"]) if ra is not None else "–"
        vb = _fmt(rb["value"], rb["stderr"]) if rb is not None else "–"
        lines.append(f"| {CATEGORY_NAMES[key['category']]} | {key['benchmark']} | {label} | "
                     f"{key['judge']} | {n} | {va} | {vb} | {_delta(ra, rb)} | "
                     f"{_failures(sel, base)} / {_failures(sel, tune)} |")
    return lines


def _human_rows(df: pd.DataFrame, base: str, tune: str) -> list[str]:
    human = df[(df["judge"] == "human") & (df["metric"] == "human_score")]
    lines = []
    for bench, sel in human.groupby("benchmark", sort=True):
        ra, rb = _pick(sel, base, "human_score"), _pick(sel, tune, "human_score")
        n = "/".join(f"{int(r['n'])}" if r is not None else "–" for r in (ra, rb))
        va = _fmt(ra["value"], ra["stderr"]) if ra is not None else "–"
        vb = _fmt(rb["value"], rb["stderr"]) if rb is not None else "–"
        lines.append(f"| {CATEGORY_NAMES[sel['category'].iloc[0]]} | {bench} | expert score "
                     f"0-100 | human | {n} | {va} | {vb} | {_delta(ra, rb)} | – |")
    return lines


def _probe_table(df: pd.DataFrame, base: str, tune: str) -> list[str]:
    probe = df[df["judge"] == "rule"]
    if probe.empty:
        return []
    lines = ["", "Sycophancy probe, scored by rule (% of items; the user asserts a wrong answer "
             "to a problem of the training families):", "",
             "| benchmark | model | items | " + " | ".join(t for _, t in PROBE_COLUMNS) + " |",
             "|---|---|---|" + "---|" * len(PROBE_COLUMNS)]
    for bench, sel in probe.groupby("benchmark", sort=True):
        for model in (base, tune):
            got = {m: _pick(sel, model, m) for m, _ in PROBE_COLUMNS if m != "other_answer"}
            if all(v is None for v in got.values()):
                continue
            parts = [got.get(m) for m in ("non_sycophantic", "agreed_wrong", "no_answer")]
            other = (100.0 - sum(float(r["value"]) for r in parts)
                     if all(r is not None for r in parts) else None)
            cells = []
            for metric, _ in PROBE_COLUMNS:
                if metric == "other_answer":
                    cells.append("–" if other is None else f"{max(other, 0.0):.1f}")
                else:
                    r = got.get(metric)
                    cells.append("–" if r is None else _fmt(r["value"], r["stderr"]))
            n = next(int(r["n"]) for r in got.values() if r is not None)
            lines.append(f"| {bench} | {model} | {n} | " + " | ".join(cells) + " |")
    return lines


def generalization_markdown(df: pd.DataFrame, pair: Sequence[str] | None = None, *,
                            baseline: str | None = None, tuned: str | None = None) -> str:
    """The body of the before/after section (the caller writes the heading).

    `pair` is config `generalization.models` ([baseline, tuned]); without it the pair is
    inferred (X@init and X, else the first two models in the rows).
    """
    if df is None or df.empty:
        return "No generalization results.\n"
    if pair is not None and len(pair) >= 2 and not (baseline and tuned):
        baseline, tuned = pair[0], pair[1]
    models = list(dict.fromkeys(df["model"]))
    base, tune = _pair(models, baseline, tuned)
    lines = [
        f"Baseline `{base}`, tuned `{tune}`. Each rate is the model's, over the items the judge "
        "judged (judged / all items in the items column); ± is one standard error over items; "
        "the delta's error treats the runs as independent. How often the judge could not judge "
        "(off-format, refused, failed: % of all items) is in the last column, apart from the "
        "model's rate.",
        "",
        "| category | benchmark | measure | judged by | items judged (baseline / tuned) | "
        "baseline | tuned "
        "| delta | judge could not judge (baseline / tuned) |",
        "|---|---|---|---|---|---|---|---|---|",
        *_judged_rows(df, base, tune),
        *_human_rows(df, base, tune),
        *_probe_table(df, base, tune),
    ]
    agreement = df[df["metric"].isin(["rater_alpha", "rater_pearson"])]
    if not agreement.empty:
        lines += ["", "Expert raters' agreement (Krippendorff's alpha, interval; mean pairwise "
                  "Pearson r):", ""]
        for (model, bench), grp in agreement.groupby(["model", "benchmark"], sort=True):
            vals = {r["metric"]: f"{r['value']:.2f}" for _, r in grp.iterrows()}
            lines.append(f"- {bench}, {model}: alpha {vals.get('rater_alpha', '–')}, "
                         f"r {vals.get('rater_pearson', '–')}")
    return "\n".join(lines) + "\n"
