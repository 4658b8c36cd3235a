"""Comparing two recipes honestly: is the second's gain over the first signal or noise?

For a pair [a, b] (config `report.compare`; a student stands for all its replicates) and each
(benchmark, metric, budget) both were evaluated at, over the problems both answered:

- the difference of the means, `diff = mean_b - mean_a`;
- **across replicates** (the problems held fixed): Welch's standard error of the difference of
  the per-replicate means, sqrt(var_a / r_a + var_b / r_b), and Welch's t-test (scipy). It says
  whether the gain is larger than the seed-to-seed spread on *this* benchmark; unknown (null)
  when a side has one replicate, since one run says nothing about its seed spread;
- **paired over problems**: both answered the same problems, so each problem gives a difference
  d_j (b's mean score on it over its replicates minus a's). Their standard error sd(d) / sqrt(P),
  a 95% bootstrap interval resampling problems (scipy.stats.bootstrap, percentile, 10,000
  resamples) and a sign-flip permutation test (scipy.stats.permutation_test: under "no
  difference" each d_j is as likely negative as positive) say whether the gain holds across
  problems: a few problems flipping by luck do not make a gain;
- **both sources**: SE_total^2 = var(d) / P + sigma2_seed,a / r_a + sigma2_seed,b / r_b, the
  paired problem term plus each side's seed variance component (`spread.seed_variance`: the
  two-way design's, which does not count the sampling noise twice), and the 95% interval
  diff +/- 1.96 SE_total (a normal approximation). The verdict reads this interval: `b higher` or
  `a higher` when it excludes 0, else `within noise`.

A 3-point gain from one run of each is "within noise" here unless the problems and the seeds
both say otherwise, which is the point.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from longthought.evaluate.spread import replicate_groups, seed_variance

COLUMNS = ["model_a", "model_b", "benchmark", "metric", "budget", "mean_a", "mean_b", "diff",
           "replicates_a", "replicates_b", "n_problems", "se_seeds", "p_seeds", "se_paired",
           "ci_paired_low", "ci_paired_high", "p_paired", "se_total", "ci_low", "ci_high",
           "seeds_known", "verdict"]
Z95 = 1.959963984540054
RESAMPLES = 10_000


def members(name: str, models: list[str]) -> list[str]:
    """The models `name` stands for among `models`: its replicates, or itself."""
    groups = replicate_groups(models)
    if name in groups:
        return groups[name]
    return [name] if name in models else []


def _none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def paired_tests(d: np.ndarray, seed: int = 0) -> tuple[float | None, float | None,
                                                          float | None]:
    """(95% bootstrap low, high, sign-flip permutation p) of the mean of paired differences."""
    from scipy import stats

    if len(d) < 2:
        return None, None, None

    def mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis)

    boot = stats.bootstrap((d,), mean, n_resamples=RESAMPLES, method="percentile",
                           vectorized=True, rng=np.random.default_rng(seed))
    perm = stats.permutation_test((d,), mean, permutation_type="samples", vectorized=True,
                                  n_resamples=RESAMPLES, rng=np.random.default_rng(seed))
    ci = boot.confidence_interval
    return _none(ci.low), _none(ci.high), _none(perm.pvalue)


def welch(ma: np.ndarray, mb: np.ndarray) -> tuple[float | None, float | None]:
    """(SE, p) of mean(mb) - mean(ma) across replicates; (None, None) with a single one."""
    from scipy import stats

    if len(ma) < 2 or len(mb) < 2:
        return None, None
    se = math.sqrt(np.var(ma, ddof=1) / len(ma) + np.var(mb, ddof=1) / len(mb))
    if se == 0:
        return 0.0, 1.0 if float(np.mean(mb) - np.mean(ma)) == 0 else 0.0
    with warnings.catch_warnings():  # near-identical replicates: scipy warns, the p stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return se, _none(stats.ttest_ind(mb, ma, equal_var=False).pvalue)


def compare_scores(xa: np.ndarray, xb: np.ndarray, seed: int = 0) -> dict:
    """The comparison of two (replicates x problems) score matrices over the same problems."""
    p = xa.shape[1]
    a, b = xa.mean(axis=0), xb.mean(axis=0)
    d = b - a
    diff = float(d.mean())
    se_seeds, p_seeds = welch(xa.mean(axis=1), xb.mean(axis=1))
    se_paired = float(np.std(d, ddof=1) / math.sqrt(p)) if p >= 2 else None
    low, high, p_paired = paired_tests(d, seed)
    se_total = None
    if se_paired is not None:
        se_total = math.sqrt(se_paired**2 + seed_variance(xa) / len(xa)
                             + seed_variance(xb) / len(xb))
    ci = (diff - Z95 * se_total, diff + Z95 * se_total) if se_total is not None else (None, None)
    return {"mean_a": float(xa.mean()), "mean_b": float(xb.mean()), "diff": diff,
            "replicates_a": len(xa), "replicates_b": len(xb), "n_problems": p,
            "se_seeds": se_seeds, "p_seeds": p_seeds, "se_paired": se_paired,
            "ci_paired_low": low, "ci_paired_high": high, "p_paired": p_paired,
            "se_total": se_total, "ci_low": ci[0], "ci_high": ci[1],
            "seeds_known": len(xa) >= 2 and len(xb) >= 2}


def verdict(row: dict, a: str, b: str) -> str:
    """`<b> higher`, `<a> higher` (the both-sources 95% interval excludes 0) or `within noise`."""
    if row["ci_low"] is None:
        return "too few problems to tell"
    if row["ci_low"] > 0:
        return f"{b} higher"
    if row["ci_high"] < 0:
        return f"{a} higher"
    return "within noise"


def comparisons(scores: pd.DataFrame, pairs: list[list[str]], seed: int = 0) -> pd.DataFrame:
    """One row per (pair, benchmark, metric, budget) both sides have scores for (schema
    `comparisons`); `scores` are `metrics_and_scores`' per-problem scores."""
    rows = []
    models = list(dict.fromkeys(scores["model"]))
    budget_key = scores["budget"].astype("Float64").fillna(-1.0)
    for a, b in pairs:
        ma, mb = members(a, models), members(b, models)
        if not ma or not mb:
            continue
        sel = scores[scores["model"].isin(ma + mb)]
        for (bench, metric, budget), part in sel.groupby(
                ["benchmark", "metric", budget_key[sel.index]], sort=True):
            wide = part.pivot_table(index="model", columns="problem_id", values="score",
                                    aggfunc="mean")
            have_a = [m for m in ma if m in wide.index]
            have_b = [m for m in mb if m in wide.index]
            if not have_a or not have_b:
                continue
            wide = wide.reindex(have_a + have_b).dropna(axis=1)
            if wide.shape[1] == 0:
                continue
            x = wide.to_numpy(dtype=float)
            row = compare_scores(x[: len(have_a)], x[len(have_a):], seed)
            row = {"model_a": a, "model_b": b, "benchmark": bench, "metric": metric,
                   "budget": None if budget < 0 else int(budget), **row}
            row["verdict"] = verdict(row, a, b)
            rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["budget"] = out["budget"].astype("Int64")
    for col in ("se_seeds", "p_seeds", "se_paired", "ci_paired_low", "ci_paired_high",
                "p_paired", "se_total", "ci_low", "ci_high", "mean_a", "mean_b", "diff"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in ("replicates_a", "replicates_b", "n_problems"):
        out[col] = out[col].astype("int64")
    out["seeds_known"] = out["seeds_known"].astype(bool)
    return out
