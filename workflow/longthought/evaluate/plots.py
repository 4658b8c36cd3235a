"""PNG plots of the paper's cost-aware view, for the report.

- `plot_accuracy_vs_tokens`: per benchmark, accuracy against average output tokens per problem;
  each model is a line from its pass@1 point through its maj@k points (more samples, more cost),
  with standard-error bars. The paper's Table 1 points are drawn as a reference layer on AIME 2024
  and MATH500 when asked.
- `plot_accuracy_vs_budget`: per benchmark, pass@1 against the thinking-token budget (budget
  forcing), with the unconstrained pass@1 as a dashed line.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from longthought.evaluate.metrics import budget_curve, cost_curve  # noqa: E402
from longthought.evaluate.paper import reference_points  # noqa: E402
from longthought.io import atomic_path  # noqa: E402


def _grid(n: int) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(3, max(1, n))
    rows = math.ceil(max(1, n) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat


def _save(fig: plt.Figure, path: str | Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def _empty(path: str | Path, message: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return _save(fig, path)


def _errorbars(ax: plt.Axes, x: pd.Series, df: pd.DataFrame, **kwargs) -> None:
    err = df["stderr"].fillna(0.0).to_numpy(dtype=float)
    ax.errorbar(x.to_numpy(dtype=float), df["value"].to_numpy(dtype=float), yerr=err,
                capsize=3, **kwargs)


def plot_accuracy_vs_tokens(metrics: pd.DataFrame, path: str | Path,
                            paper_reference: bool = True) -> Path:
    """Accuracy vs average output tokens per (model, benchmark); writes a PNG to `path`."""
    curve = cost_curve(metrics)
    if curve.empty:
        return _empty(path, "no unconstrained pass@1 / maj@k metrics to plot")
    benches = sorted(curve["benchmark"].unique())
    fig, axes = _grid(len(benches))
    for ax, bench in zip(axes, benches, strict=False):
        part = curve[curve["benchmark"] == bench]
        for model, df in part.groupby("model", sort=True):
            df = df.sort_values("avg_output_tokens")
            _errorbars(ax, df["avg_output_tokens"].clip(lower=1), df, marker="o", label=model)
            for _, r in df.iterrows():
                ax.annotate(r["metric"], (max(r["avg_output_tokens"], 1), r["value"]),
                            textcoords="offset points", xytext=(4, 4), fontsize=7)
        if paper_reference:
            ref = reference_points(bench)
            if not ref.empty:
                ax.scatter(ref["avg_output_tokens"], ref["accuracy"], marker="*", s=120,
                           color="black", zorder=5, label="paper (Table 1)")
                for _, r in ref.iterrows():
                    ax.annotate(r["model"], (r["avg_output_tokens"], r["accuracy"]),
                                textcoords="offset points", xytext=(4, -10), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short ranges
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("average output tokens per problem (log)")
        ax.set_ylabel("accuracy")
        ax.set_title(bench)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_accuracy_vs_budget(metrics: pd.DataFrame, path: str | Path,
                            metric: str = "pass@1") -> Path:
    """`metric` vs thinking-token budget per (model, benchmark); writes a PNG to `path`."""
    curve = budget_curve(metrics, metric)
    if curve.empty:
        return _empty(path, "no budget-forcing runs (evaluation.budgets is empty)")
    free = metrics[metrics["budget"].isna() & metrics["metric"].eq(metric)]
    benches = sorted(curve["benchmark"].unique())
    fig, axes = _grid(len(benches))
    for ax, bench in zip(axes, benches, strict=False):
        part = curve[curve["benchmark"] == bench]
        for i, (model, df) in enumerate(part.groupby("model", sort=True)):
            color = f"C{i}"
            _errorbars(ax, df["budget"].astype(float), df, marker="o", label=model, color=color)
            ref = free[(free["benchmark"] == bench) & (free["model"] == model)]
            if not ref.empty:
                ax.axhline(float(ref["value"].iloc[0]), color=color, linestyle="--", alpha=0.6,
                           label=f"{model} (no cap)")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("thinking budget B (tokens, log2)")
        ax.set_ylabel(metric)
        ax.set_title(bench)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)
