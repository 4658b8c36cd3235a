"""Numbers across replicates: one row per replicate, and an aggregate row per student.

A student trained at several replicate seeds (`tiny~s0`, `tiny~s1`, ...; see
`longthought.replicates`) has metric rows of its own per replicate. This module adds, per
(student, benchmark, metric, budget), the aggregate row: the mean over replicates, the standard
deviation across replicates (`sd_replicates`), the number of replicates and a standard error that
counts both sources of noise, the problems and the seeds.

The standard error of the aggregate. Replicates answer the *same* problems, so the spread of
their means (`sd_replicates / sqrt(r)`, the standard error of the mean of per-replicate means)
holds the seed-to-seed and sampling noise but not the problems' own: an easy or a hard draw of 30
problems moves every replicate alike. Adding the within-run standard error over problems to it
counts the sampling noise twice. The scores form a two-way crossed design (r seeds x P problems,
x_ij = a problem's score in one replicate), so with the two-way ANOVA mean squares

    MS_seed = P * var_i(mean_j x_ij),  MS_problem = r * var_j(mean_i x_ij),
    MS_error = sum (x_ij - row mean - column mean + grand mean)^2 / ((r - 1)(P - 1)),

the variance components are sigma2_seed = (MS_seed - MS_error) / P, sigma2_problem =
(MS_problem - MS_error) / r (each floored at 0) and sigma2_error = MS_error, and

    SE^2 = sigma2_seed / r + sigma2_problem / P + sigma2_error / (r P),

the variance of the grand mean over both a new draw of seeds and a new draw of problems (with
one replicate it is the usual SE over problems; with identical replicates, too). This is the
standard estimator for a crossed random-effects design (generalizability theory); it needs the
per-problem scores, which the metrics have (`problem_scores`).

Where only per-run values and their standard errors exist (the generalization table's rates
over judged items, which differ per replicate), the aggregate's SE is the conservative
`sqrt(sd^2 / r + mean(se^2))`: it counts the within-run noise once more than needed, so it is
never smaller than the truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from longthought.replicates import split_name

# the columns every table with replicate rows carries (schemas.REPLICATE_COLUMNS)
REPLICATE_COLUMNS = ["replicate_of", "seed", "aggregate", "n_replicates", "sd_replicates"]


def two_way_se(scores: np.ndarray) -> float | None:
    """Standard error of the grand mean of an (r replicates x P problems) score matrix, over
    both seeds and problems (the formula in the module docstring); None with fewer than two
    problems."""
    x = np.asarray(scores, dtype=float)
    r, p = x.shape
    if p < 2:
        return None
    grand = x.mean()
    rows, cols = x.mean(axis=1), x.mean(axis=0)
    ms_problem = r * float(np.sum((cols - grand) ** 2)) / (p - 1)
    if r < 2:
        return math.sqrt(ms_problem / (r * p))
    ms_seed = p * float(np.sum((rows - grand) ** 2)) / (r - 1)
    resid = x - rows[:, None] - cols[None, :] + grand
    ms_error = float(np.sum(resid**2)) / ((r - 1) * (p - 1))
    seed_var = max(0.0, (ms_seed - ms_error) / p)
    problem_var = max(0.0, (ms_problem - ms_error) / r)
    return math.sqrt(seed_var / r + problem_var / p + ms_error / (r * p))


def seed_variance(scores: np.ndarray) -> float:
    """The seed-to-seed variance component (sigma2_seed) of an (r x P) score matrix: the part
    of a replicate's mean that another seed would move; 0 with one replicate."""
    x = np.asarray(scores, dtype=float)
    r, p = x.shape
    if r < 2:
        return 0.0
    rows, cols, grand = x.mean(axis=1), x.mean(axis=0), x.mean()
    ms_seed = p * float(np.sum((rows - grand) ** 2)) / (r - 1)
    if p < 2:
        return ms_seed
    resid = x - rows[:, None] - cols[None, :] + grand
    ms_error = float(np.sum(resid**2)) / ((r - 1) * (p - 1))
    return max(0.0, (ms_seed - ms_error) / p)


def score_matrix(scores: pd.DataFrame, models: list[str]) -> tuple[np.ndarray, list[str]]:
    """(models x problems matrix, problem ids) of per-problem scores (columns model,
    problem_id, score) over the problems every one of `models` answered."""
    wide = scores[scores["model"].isin(models)].pivot_table(
        index="model", columns="problem_id", values="score", aggfunc="mean")
    wide = wide.reindex(models).dropna(axis=1)
    return wide.to_numpy(dtype=float), [str(c) for c in wide.columns]


def label_replicates(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` (a `model` column) with the replicate columns of a per-run row filled in."""
    parts = [split_name(m) for m in rows["model"]]
    out = rows.copy()
    out["replicate_of"] = pd.array([g if s is not None else None for g, s in parts],
                                   dtype="string").astype(object)
    out["seed"] = pd.array([s for _, s in parts], dtype="Int64")
    out["aggregate"] = False
    out["n_replicates"] = 1
    out["sd_replicates"] = np.nan
    return out


def replicate_groups(models: Iterable[str]) -> dict[str, list[str]]:
    """{aggregate name: its replicates' names, in seed order} for every name with replicates
    (two or more) among `models`."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for m in dict.fromkeys(models):
        group, seed = split_name(m)
        if seed is not None:
            groups.setdefault(group, []).append((seed, m))
    return {g: [m for _, m in sorted(ms)] for g, ms in groups.items() if len(ms) >= 2}


def _mean(values: pd.Series) -> float | None:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.mean()) if len(v) else None


def aggregate_metrics(metrics: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The metrics rows, labelled, with one aggregate row per (student, benchmark, metric,
    budget) whose student has replicates: mean, across-seed SD, the two-way SE, counts.

    `scores` holds the per-problem scores (model, benchmark, budget, metric, problem_id, score)
    the rows were computed from."""
    out = label_replicates(metrics)
    groups = replicate_groups(metrics["model"])
    if not groups:
        return out
    agg = []
    budget_key = metrics["budget"].astype("Float64").fillna(-1.0)
    score_budget = scores["budget"].astype("Float64").fillna(-1.0)
    for group, members in groups.items():
        sel = metrics[metrics["model"].isin(members)]
        for (bench, metric, budget), part in sel.groupby(
                ["benchmark", "metric", budget_key[sel.index]], sort=True):
            if len(part) < 2:
                continue  # the metric exists for one replicate only (e.g. k above its n)
            present = [m for m in members if m in set(part["model"])]
            sc = scores[(scores["benchmark"] == bench) & (scores["metric"] == metric)
                        & (score_budget == budget) & scores["model"].isin(present)]
            matrix, problems = score_matrix(sc, present)
            values = part.set_index("model").loc[present, "value"].to_numpy(dtype=float)
            thinking = _mean(part["avg_thinking_tokens"])
            agg.append({
                "model": group, "benchmark": bench, "metric": metric,
                "budget": None if budget < 0 else int(budget),
                "value": float(values.mean()),
                "stderr": two_way_se(matrix) if matrix.size else None,
                "avg_output_tokens": float(part["avg_output_tokens"].mean()),
                "avg_thinking_tokens": thinking,
                "thinking_share": float(part["thinking_share"].mean()),
                "n_problems": len(problems), "n_samples": int(part["n_samples"].sum()),
                "replicate_of": None, "seed": None, "aggregate": True,
                "n_replicates": len(present),
                "sd_replicates": float(np.std(values, ddof=1)),
            })
    rows = pd.DataFrame(agg, columns=list(out.columns))
    rows["budget"] = rows["budget"].astype("Int64")
    rows["seed"] = rows["seed"].astype("Int64")
    for col in ("stderr", "avg_thinking_tokens"):
        rows[col] = pd.to_numeric(rows[col], errors="coerce").astype(float)
    return pd.concat([out, rows], ignore_index=True)


def aggregate_rows(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per-run rows (model, `keys`..., value, stderr, n), labelled, with one aggregate row per
    (student, keys) whose student has replicates: the mean, the across-seed SD and the
    conservative SE sqrt(sd^2 / r + mean(se^2)) (module docstring). `n` is the replicates'
    smallest. For tables without per-problem scores (generalization)."""
    out = label_replicates(rows)
    groups = replicate_groups(rows["model"])
    agg = []
    for group, members in groups.items():
        sel = rows[rows["model"].isin(members)]
        for key, part in sel.groupby(keys, sort=True, dropna=False):
            if len(part) < 2:
                continue
            values = part["value"].to_numpy(dtype=float)
            sd = float(np.std(values, ddof=1))
            ses = pd.to_numeric(part["stderr"], errors="coerce")
            within = float((ses**2).mean()) if ses.notna().all() else None
            se = math.sqrt(sd**2 / len(values) + within) if within is not None else None
            agg.append({"model": group, **dict(zip(keys, key, strict=True)),
                        "value": float(values.mean()), "stderr": se,
                        "n": int(part["n"].min()), "replicate_of": None, "seed": None,
                        "aggregate": True, "n_replicates": len(values), "sd_replicates": sd})
    if not agg:
        return out
    extra = pd.DataFrame(agg)
    for col in out.columns:
        if col not in extra:
            extra[col] = None
    extra = extra[list(out.columns)]
    extra["seed"] = extra["seed"].astype("Int64")
    extra["stderr"] = pd.to_numeric(extra["stderr"], errors="coerce").astype(float)
    return pd.concat([out, extra], ignore_index=True)
