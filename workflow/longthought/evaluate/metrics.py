"""Accuracy metrics over scored generations, with the inference cost each one spends.

Per (model, benchmark, budget):

- `pass@1`: the fraction of a problem's n samples that are correct, averaged over problems. Its
  standard error is taken over problems (std of the per-problem means / sqrt(#problems)): it is
  the uncertainty that comes from a benchmark of 30 problems, which averaging more samples per
  problem does not remove.
- `pass@k` (k > 1): the unbiased estimator of Chen et al. 2021, 1 - C(n-c, k) / C(n, k) per
  problem with c correct of n samples, averaged over problems.
- `maj@k` (k > 1): majority vote over the *first k* samples' extracted answers (no reward model),
  as lighteval and Qwen2.5-Math's evaluation count it: answers vote together when they are
  mathematically equal (`0.5` and `\\frac{1}{2}` are one vote). Samples are grouped in order:
  each joins the first group whose representative (the group's first sample) it equals, else
  opens a group. Equality is decided by the answer checker (`AnswerChecker.same`): spacing and
  LaTeX wrapper variants and plain numbers here, the rest by math-verify in the deadline-bounded
  worker pool, each distinct pair once; a pair it cannot decide in time counts as different.
  Samples with no extracted answer do not vote. Ties go to the group whose first vote came
  earliest (lowest sample index). The vote is correct when the checker judged the winning
  group's representative correct against the gold answer.

Cost: `avg_output_tokens` is output tokens per problem for what the metric consumes. pass@1 uses
one sample, so it is the per-sample average; pass@k and maj@k consume k samples, so they report
k x the per-sample average over the samples used (the paper's cost axis: maj@k extends a model's
curve to higher inference cost). `avg_thinking_tokens` is averaged over the same samples as
`avg_output_tokens` (a sample that separated no thinking counts 0, so it can never exceed the
output average) and scaled the same way; it is null only when no sample separated any thinking.
`thinking_share` is the share of those samples that had any thinking.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from longthought.answers.checker import AnswerChecker, same_cheaply
from longthought.io import validate

GROUP_KEYS = ["model", "benchmark", "budget"]
_NEEDED = ["model", "benchmark", "budget", "problem_id", "sample_index", "correct",
           "extracted_answer", "output_tokens", "thinking_tokens"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: n samples, c correct (Chen et al. 2021, stable form)."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")


def normalize_answer(answer: object) -> str | None:
    """A vote key for an extracted answer: equal keys vote together in maj@k; None = no vote."""
    if answer is None or (isinstance(answer, float) and np.isnan(answer)) or answer is pd.NA:
        return None
    s = str(answer).strip()
    s = s.replace("$", "")
    s = re.sub(r"\\(?:d|t)frac", r"\\frac", s)
    s = re.sub(r"\\(?:left|right|displaystyle)", "", s)
    s = re.sub(r"\\[,;:! ]", "", s)
    for _ in range(3):
        s = _WRAPPERS.sub(r"\1", s)
    s = re.sub(r"\s+", "", s).rstrip(".").lower()
    return s or None


Equal = Callable[[str, str], bool]


def _same_key(a: str, b: str) -> bool:
    return normalize_answer(a) == normalize_answer(b)


def majority_vote(answers: Sequence[object], correct: Sequence[object],
                  equal: Equal | None = None) -> tuple[str | None, bool]:
    """(winning answer, whether it is correct) for samples in sample order.

    `equal(representative, answer)` decides whether an answer joins a group (default: equal
    normalised strings; `compute_metrics` passes mathematical equality).
    """
    equal = equal or _same_key
    groups: list[list[int]] = []  # sample indices; the first is the representative
    texts: list[str | None] = [None if normalize_answer(a) is None else str(a).strip()
                               for a in answers]
    for i, text in enumerate(texts):
        if text is None:
            continue
        for group in groups:
            if equal(texts[group[0]], text):
                group.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return None, False
    # most votes first; among equals the group first seen earliest
    winner = min(groups, key=lambda g: (-len(g), g[0]))
    first = correct[winner[0]]
    return texts[winner[0]], bool(first) if first is not None and first is not pd.NA else False


class MathEqual:
    """Mathematical equality of extracted answers for maj@k, from the answer checker.

    `prime(pairs)` decides many pairs in one batch (cheap ones here, the rest by math-verify in
    worker processes, time-bounded); calling the object then reads the cache. The worker pool
    starts only if some pair needs the parser.
    """

    def __init__(self, checker: AnswerChecker | None = None, timeout_s: float = 5.0,
                 workers: int = 1):
        self._checker, self._own = checker, checker is None
        self.timeout_s, self.workers = timeout_s, workers
        self._known: dict[tuple[str, str], bool] = {}

    def _get_checker(self) -> AnswerChecker:
        if self._checker is None:
            self._checker = AnswerChecker(workers=self.workers, timeout_s=self.timeout_s)
        return self._checker

    def prime(self, pairs: Sequence[tuple[str, str]]) -> None:
        todo = []
        for a, b in pairs:
            if (a, b) in self._known:
                continue
            if _same_key(a, b):
                self._known[(a, b)] = True
                continue
            cheap = same_cheaply(a, b)
            if cheap is not None:
                self._known[(a, b)] = cheap
            else:
                todo.append((a, b))
        todo = list(dict.fromkeys(todo))
        if todo:
            for pair, same in zip(todo, self._get_checker().same(todo), strict=True):
                self._known[pair] = bool(same)  # undecided or timed out: different votes

    def __call__(self, a: str, b: str) -> bool:
        if (a, b) not in self._known:
            self.prime([(a, b)])
        return self._known[(a, b)]

    def close(self) -> None:
        if self._own and self._checker is not None:
            self._checker.close()
            self._checker = None


def _stderr(values: np.ndarray) -> float | None:
    if len(values) < 2:
        return None
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def _thinking(values: pd.Series) -> tuple[float | None, float]:
    """(mean thinking tokens over *all* samples, share of samples with any thinking).

    A sample without separated thinking counts 0 tokens; the mean is None only when no sample
    separated any (then the cost of thinking is unknown, not zero).
    """
    values = pd.to_numeric(values, errors="coerce")
    if values.notna().sum() == 0:
        return None, 0.0
    return float(values.fillna(0).mean()), float((values.fillna(0) > 0).mean())


def _group_metrics(model: str, benchmark: str, budget: object, df: pd.DataFrame,
                   ks: Sequence[int], equal: MathEqual) -> list[dict]:
    df = df.sort_values(["problem_id", "sample_index"], kind="stable")
    df = df.assign(correct=df["correct"].astype("boolean").fillna(False).astype(bool))
    per_problem = df.groupby("problem_id", sort=True)
    n = per_problem.size()
    c = per_problem["correct"].sum()
    base = {"model": model, "benchmark": benchmark, "budget": budget,
            "n_problems": int(len(n))}
    tokens = float(df["output_tokens"].mean())
    thinking, share = _thinking(df["thinking_tokens"])
    p1 = (c / n).to_numpy(dtype=float)
    rows = [{**base, "metric": "pass@1", "value": float(p1.mean()), "stderr": _stderr(p1),
             "avg_output_tokens": tokens, "avg_thinking_tokens": thinking,
             "thinking_share": share, "n_samples": int(len(df))}]
    for k in sorted({int(k) for k in ks if int(k) > 1}):
        if int(n.min()) < k:
            continue  # some problem has fewer than k samples: pass@k / maj@k undefined
        pk = np.array([pass_at_k(int(n[p]), int(c[p]), k) for p in n.index])
        rows.append({**base, "metric": f"pass@{k}", "value": float(pk.mean()),
                     "stderr": _stderr(pk), "avg_output_tokens": k * tokens,
                     "avg_thinking_tokens": None if thinking is None else k * thinking,
                     "thinking_share": share, "n_samples": int(len(df))})
        first_k = per_problem.head(k)
        problems = [g for _, g in first_k.groupby("problem_id", sort=True)]
        equal.prime([pair for g in problems for pair in _pairs(g["extracted_answer"].tolist())])
        votes = np.array([
            majority_vote(g["extracted_answer"].tolist(), g["correct"].tolist(), equal)[1]
            for g in problems
        ], dtype=float)
        k_thinking, k_share = _thinking(first_k["thinking_tokens"])
        rows.append({**base, "metric": f"maj@{k}", "value": float(votes.mean()),
                     "stderr": _stderr(votes),
                     "avg_output_tokens": k * float(first_k["output_tokens"].mean()),
                     "avg_thinking_tokens": None if k_thinking is None else k * k_thinking,
                     "thinking_share": k_share, "n_samples": int(len(first_k))})
    return rows


def _pairs(answers: list[object]) -> list[tuple[str, str]]:
    """Every (earlier, later) pair of distinct voting answers: a superset of what the grouping
    asks, decided in one batch."""
    texts = list(dict.fromkeys(str(a).strip() for a in answers if normalize_answer(a) is not None))
    return [(texts[i], texts[j]) for i in range(len(texts)) for j in range(i + 1, len(texts))]


def compute_metrics(generations: pd.DataFrame, ks: Sequence[int],
                    checker: AnswerChecker | None = None) -> pd.DataFrame:
    """Metrics table (schema `metrics`) for scored generations (schema `generations`).

    maj@k groups answers by mathematical equality through `checker` (default: one of its own,
    started only if some pair of answers needs math-verify).
    """
    missing = [c for c in _NEEDED if c not in generations.columns]
    if missing:
        raise ValueError(f"compute_metrics: generations lack column(s) {missing}")
    rows: list[dict] = []
    equal = MathEqual(checker)
    try:
        if len(generations):
            grouped = generations.groupby(GROUP_KEYS, dropna=False, sort=True)
            for (model, benchmark, budget), df in grouped:
                budget = None if pd.isna(budget) else int(budget)
                rows.extend(_group_metrics(model, benchmark, budget, df, ks, equal))
    finally:
        equal.close()
    columns = ["model", "benchmark", "metric", "budget", "value", "stderr", "avg_output_tokens",
               "avg_thinking_tokens", "thinking_share", "n_problems", "n_samples"]
    out = pd.DataFrame(rows, columns=columns)
    out["budget"] = out["budget"].astype("Int64")
    for col in ["stderr", "avg_thinking_tokens"]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return validate(out, "metrics", "compute_metrics")


def cost_curve(metrics: pd.DataFrame) -> pd.DataFrame:
    """Accuracy against cost for each (model, benchmark), unconstrained runs only.

    One point per pass@1 and maj@k row, sorted by avg_output_tokens: the paper's view in which
    maj@k extends a model to a higher inference cost.
    """
    m = metrics[metrics["budget"].isna()]
    m = m[m["metric"].eq("pass@1") | m["metric"].str.startswith("maj@")].copy()
    m["k"] = m["metric"].str.split("@").str[1].astype(int)
    cols = ["model", "benchmark", "metric", "k", "avg_output_tokens", "value", "stderr"]
    return m.sort_values(["benchmark", "model", "avg_output_tokens", "k"])[cols].reset_index(
        drop=True)


def budget_curve(metrics: pd.DataFrame, metric: str = "pass@1") -> pd.DataFrame:
    """`metric` against the thinking-token budget for each (model, benchmark)."""
    m = metrics[metrics["budget"].notna() & metrics["metric"].eq(metric)]
    cols = ["model", "benchmark", "budget", "value", "stderr", "avg_output_tokens",
            "avg_thinking_tokens"]
    return m.sort_values(["benchmark", "model", "budget"])[cols].reset_index(drop=True)


def __getattr__(name: str):
    """The plot helpers, reachable from here too (lazily: matplotlib loads only when plotting)."""
    if name in ("plot_accuracy_vs_tokens", "plot_accuracy_vs_budget"):
        from longthought.evaluate import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
