"""Expert scores: import a CSV of 0-100 ratings, average per item, and measure rater agreement.

The paper scored its open-QA sets (Auto-J, LIMA) with three human experts. A CSV has one row per
(item, rater): `item_id, rater, score` and, when one file covers several models, `model`.
Agreement is Krippendorff's alpha for interval data (it allows missing ratings and any number of
raters; 1 = perfect, 0 = chance), reported with the mean pairwise Pearson correlation.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED = ("item_id", "rater", "score")


def read_scores(path: str | Path, model: str | None = None) -> pd.DataFrame:
    """Read and check a scores CSV; keep `model`'s rows when the file has a model column.

    `{model}` in the path is replaced by the model name (one file per model). Raises ValueError
    naming the file and line for a missing column, a non-numeric or out-of-range score, or a
    rater who scored the same item twice.
    """
    path = Path(str(path).replace("{model}", model or "{model}"))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (human scores)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; a scores CSV needs "
                         f"{list(REQUIRED)} (and 'model' when it covers several models)")
    if "model" in frame.columns and model is not None:
        frame = frame[frame["model"] == model]
    scores = []
    for idx, row in frame.iterrows():
        line = int(idx) + 2  # header is line 1
        if not row["item_id"].strip() or not row["rater"].strip():
            raise ValueError(f"{path}: line {line}: empty item_id or rater")
        try:
            value = float(row["score"])
        except ValueError:
            raise ValueError(f"{path}: line {line}: score {row['score']!r} is not a "
                             "number") from None
        if not 0 <= value <= 100 or math.isnan(value):
            raise ValueError(f"{path}: line {line}: score {value:g} is outside 0-100")
        scores.append(value)
    out = pd.DataFrame({"item_id": frame["item_id"].str.strip().tolist(),
                        "rater": frame["rater"].str.strip().tolist(), "score": scores})
    dup = out[out.duplicated(["item_id", "rater"], keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        raise ValueError(f"{path}: rater {first['rater']!r} scored item {first['item_id']!r} "
                         f"more than once" + (f" for model {model!r}" if model else ""))
    return out


def krippendorff_alpha_interval(table: pd.DataFrame) -> float | None:
    """Krippendorff's alpha (interval metric) of an items x raters table with NaN for missing.

    Only items with at least two ratings are pairable. None when fewer than two pairable values
    exist or all values are equal (alpha is undefined then).
    """
    units = [row[~np.isnan(row)] for row in table.to_numpy(dtype=float)]
    units = [u for u in units if len(u) >= 2]
    n = sum(len(u) for u in units)
    if n < 2:
        return None
    d_o = sum(((u[:, None] - u[None, :]) ** 2).sum() / (len(u) - 1) for u in units) / n
    values = np.concatenate(units)
    d_e = ((values[:, None] - values[None, :]) ** 2).sum() / (n * (n - 1))
    if d_e == 0:
        return None
    return float(1.0 - d_o / d_e)


def mean_pairwise_pearson(table: pd.DataFrame) -> float | None:
    """Mean Pearson correlation over rater pairs, each on the items both rated (>= 3 items)."""
    rs = []
    for a, b in itertools.combinations(table.columns, 2):
        both = table[[a, b]].dropna()
        if len(both) >= 3 and both[a].std() > 0 and both[b].std() > 0:
            rs.append(float(np.corrcoef(both[a], both[b])[0, 1]))
    return float(np.mean(rs)) if rs else None


def summarize(scores: pd.DataFrame) -> dict:
    """Mean of per-item mean scores with its standard error, and the raters' agreement."""
    if scores.empty:
        raise ValueError("no human scores to summarize")
    table = scores.pivot(index="item_id", columns="rater", values="score")
    per_item = table.mean(axis=1, skipna=True)
    n = int(per_item.size)
    stderr = float(per_item.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return {
        "mean": float(per_item.mean()),
        "stderr": stderr,
        "n_items": n,
        "n_raters": int(table.shape[1]),
        "alpha": krippendorff_alpha_interval(table),
        "pearson": mean_pairwise_pearson(table),
        "per_item": per_item,
    }


def human_rows(scores: pd.DataFrame, model: str, benchmark: str, category: str) -> pd.DataFrame:
    """GENERALIZATION rows (judge "human"): human_score, rater_alpha, rater_pearson."""
    s = summarize(scores)
    paired = int((scores.groupby("item_id")["rater"].nunique() >= 2).sum())
    rows = [{"metric": "human_score", "value": s["mean"], "stderr": s["stderr"],
             "n": s["n_items"]}]
    if s["alpha"] is not None:
        rows.append({"metric": "rater_alpha", "value": s["alpha"], "stderr": None, "n": paired})
    if s["pearson"] is not None:
        rows.append({"metric": "rater_pearson", "value": s["pearson"], "stderr": None,
                     "n": paired})
    out = pd.DataFrame(rows)
    out.insert(0, "benchmark", benchmark)
    out.insert(0, "category", category)
    out.insert(0, "model", model)
    out["judge"] = "human"
    return out[["model", "category", "benchmark", "metric", "value", "stderr", "n", "judge"]]
