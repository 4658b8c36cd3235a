"""The report's Table-2-style section: each benchmark's headline metric before and after SFT.

`generalization_markdown(df)` takes GENERALIZATION rows (any number of models) and writes, for a
baseline/tuned pair, one line per (category, benchmark, judge) with both values, the delta and
standard errors (the delta's error assumes the two runs are independent, which over-states it a
little when both models answered the same items), then the category averages and how often the
judge could not be read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from longthought.generalization.aggregate import JUDGE_FAILURES, PRIMARY

CATEGORY_ORDER = ["safety", "factuality", "sycophancy", "general_qa"]
CATEGORY_NAMES = {"safety": "safety", "factuality": "factuality", "sycophancy": "sycophancy",
                  "general_qa": "general QA"}
HEADLINE = {**{c: m for c, m in PRIMARY.items()}, "human": "human_score"}


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


def headline_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The metric each benchmark is reported by: per category, and human_score for experts."""
    want = df.apply(lambda r: r["metric"] == (HEADLINE["human"] if r["judge"] == "human"
                                              else HEADLINE[r["category"]]), axis=1)
    return df[want]


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
    head = headline_rows(df)
    keys = head[["category", "benchmark", "judge"]].drop_duplicates()
    keys = keys.assign(order=keys["category"].map(CATEGORY_ORDER.index)).sort_values(
        ["order", "benchmark", "judge"])
    lines = [
        f"Baseline `{base}`, tuned `{tune}`. Values are percentages (general QA: a 0-100 "
        "score); ± is one standard error over items; the delta's error treats the runs as "
        "independent. Judge outcomes that were off-format, refused or failed count as "
        "non-passes.",
        "",
        "| category | benchmark | metric | judged by | n | baseline | tuned | delta |",
        "|---|---|---|---|---|---|---|---|",
    ]
    means: dict[str, dict[str, list[float]]] = {}
    for _, key in keys.iterrows():
        sel = head[(head["category"] == key["category"]) & (head["benchmark"] == key["benchmark"])
                   & (head["judge"] == key["judge"])]
        a = sel[sel["model"] == base]
        b = sel[sel["model"] == tune]
        ra = a.iloc[0] if len(a) else None
        rb = b.iloc[0] if len(b) else None
        metric = (ra if ra is not None else rb)["metric"]
        n = "/".join(str(int(r["n"])) for r in (ra, rb) if r is not None)
        va = _fmt(ra["value"], ra["stderr"]) if ra is not None else "–"
        vb = _fmt(rb["value"], rb["stderr"]) if rb is not None else "–"
        lines.append(f"| {CATEGORY_NAMES[key['category']]} | {key['benchmark']} | {metric} | "
                     f"{key['judge']} | {n} | {va} | {vb} | {_delta(ra, rb)} |")
        if ra is not None and rb is not None:
            avg = means.setdefault(key["category"], {"a": [], "b": []})
            avg["a"].append(float(ra["value"]))
            avg["b"].append(float(rb["value"]))
    multi = {c: v for c, v in means.items() if len(v["a"]) > 1}
    if multi:
        lines += ["", "Category averages (benchmarks with both models):", ""]
        for cat in sorted(multi, key=CATEGORY_ORDER.index):
            a, b = sum(multi[cat]["a"]) / len(multi[cat]["a"]), sum(multi[cat]["b"]) / len(
                multi[cat]["b"])
            lines.append(f"- {CATEGORY_NAMES[cat]}: {a:.1f} → {b:.1f} ({b - a:+.1f})")
    extra = df[df["metric"].isin(["agreed_wrong", "control_correct"])]
    if not extra.empty:
        lines += ["", "Sycophancy probe details (share of items, %):", ""]
        for (bench, metric), grp in extra.groupby(["benchmark", "metric"], sort=True):
            vals = {r["model"]: _fmt(r["value"], r["stderr"]) for _, r in grp.iterrows()}
            what = {"agreed_wrong": "gave the user's wrong answer",
                    "control_correct": "correct without the user's assertion"}[metric]
            lines.append(f"- {bench}, {what}: {base} {vals.get(base, '–')}, "
                         f"{tune} {vals.get(tune, '–')}")
    fails = df[df["metric"].isin(JUDGE_FAILURES) & (df["value"] > 0)]
    agreement = df[df["metric"].isin(["rater_alpha", "rater_pearson"])]
    if not agreement.empty:
        lines += ["", "Expert raters' agreement (Krippendorff's alpha, interval; mean pairwise "
                  "Pearson r):", ""]
        for (model, bench), grp in agreement.groupby(["model", "benchmark"], sort=True):
            vals = {r["metric"]: f"{r['value']:.2f}" for _, r in grp.iterrows()}
            lines.append(f"- {bench}, {model}: alpha {vals.get('rater_alpha', '–')}, "
                         f"r {vals.get('rater_pearson', '–')}")
    if not fails.empty:
        lines += ["", "Judge answers not counted as passes (% of items):", ""]
        for (model, bench), grp in fails.groupby(["model", "benchmark"], sort=True):
            parts = ", ".join(f"{r['metric']} {r['value']:.1f}" for _, r in grp.iterrows())
            lines.append(f"- {bench}, {model}: {parts}")
    return "\n".join(lines) + "\n"
