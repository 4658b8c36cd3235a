"""PNG plots of the paper's cost-aware view, for the report.

- `plot_accuracy_vs_tokens`: per benchmark, accuracy against average output tokens per problem;
  each model is a line from its pass@1 point through its maj@k points (more samples, more cost),
  with standard-error bars. The paper's Table 1 points are drawn, each labelled with its model
  and published score, as a reference layer on AIME 2024 and MATH500 when asked.
- `plot_accuracy_vs_budget`: per benchmark, pass@1 against the thinking-token budget (budget
  forcing), with the unconstrained pass@1 as a dashed line.

Every axis carries numbered ticks: a log axis whose range falls between two powers of ten gets
1-2-5 (or 1..9) ticks instead of matplotlib's decade ticks, which would leave it bare. Each model
has one colour in every plot of a run (`model_colors`); replicates of a model (`name~s2`) share
their base model's colour.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter  # noqa: E402

from longthought.evaluate.metrics import budget_curve, cost_curve  # noqa: E402
from longthought.evaluate.paper import reference_points  # noqa: E402
from longthought.io import atomic_path  # noqa: E402

_REPLICATE = re.compile(r"~s\d+$")
# colour-blind-safe first (Okabe-Ito), then matplotlib's tab10 for larger runs
PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000",
           "#f0e442", *[matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab10").colors]]


def model_base(name: str) -> str:
    """The model a replicate belongs to: `tiny~s2` -> `tiny`; other names are their own base."""
    return _REPLICATE.sub("", name)


def model_colors(models: Iterable[str]) -> dict[str, str]:
    """One colour per base model, the same in every plot of a run (sorted names, fixed order)."""
    names = sorted(set(models))
    bases = sorted({model_base(m) for m in names})
    by_base = {b: PALETTE[i % len(PALETTE)] for i, b in enumerate(bases)}
    return {m: by_base[model_base(m)] for m in names} | by_base


def nice_log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values inside [lo, hi] on a log axis: decades, else 1-2-5, else 1..9 per decade,
    the first giving at least three ticks; a range narrower than that gets four rounded
    geometric steps."""
    if not (lo > 0 and hi > lo):
        return [lo] if lo > 0 else []
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for subs in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0 ** e for e in range(e0, e1 + 1) for m in subs
                 if lo <= m * 10.0 ** e <= hi]
        if len(ticks) >= 3:
            return ticks
    steps = [lo * (hi / lo) ** (i / 3) for i in range(4)]
    return sorted({float(f"{v:.2g}") for v in steps if lo <= float(f"{v:.2g}") <= hi} | {
        float(f"{v:.3g}") for v in (steps[0], steps[-1])})


def tick_label(value: float, _pos: object = None) -> str:
    """Plain numbers with thousands separators: 150, 2,000, 0.5."""
    if value >= 1:
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{value:g}"


def log_axis(ax: plt.Axes, values: Iterable[float], axis: str = "x", base: int = 10,
             ticks: Iterable[float] | None = None) -> None:
    """Put a log scale on `axis` of `ax` with numbered ticks that cover `values`."""
    vals = [float(v) for v in values if v is not None and not pd.isna(v) and float(v) > 0]
    if not vals:
        return
    lo, hi = min(vals) / 1.25, max(vals) * 1.25
    chosen = sorted(float(t) for t in ticks) if ticks is not None else nice_log_ticks(lo, hi)
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=base)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(lo, hi)
    target.set_major_locator(FixedLocator(chosen))
    target.set_major_formatter(FuncFormatter(tick_label))
    target.set_minor_formatter(NullFormatter())


def _grid(n: int) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(3, max(1, n))
    rows = math.ceil(max(1, n) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 4.2 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat


def save(fig: plt.Figure, path: str | Path) -> Path:
    """Write `fig` as a PNG atomically and close it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def empty_figure(message: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def _errorbars(ax: plt.Axes, x: pd.Series, df: pd.DataFrame, **kwargs) -> None:
    err = df["stderr"].fillna(0.0).to_numpy(dtype=float)
    ax.errorbar(x.to_numpy(dtype=float), df["value"].to_numpy(dtype=float), yerr=err,
                capsize=3, **kwargs)


def _accuracy_axis(ax: plt.Axes, label: str = "accuracy") -> None:
    ax.set_ylim(-0.02, 1.05)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)


def draw_accuracy_vs_tokens(metrics: pd.DataFrame, paper_reference: bool = True,
                            colors: dict[str, str] | None = None) -> plt.Figure:
    """The accuracy-vs-tokens figure (see the module docstring)."""
    curve = cost_curve(metrics)
    if curve.empty:
        return empty_figure("no unconstrained pass@1 / maj@k metrics to plot")
    colors = colors or model_colors(curve["model"])
    benches = sorted(curve["benchmark"].unique())
    fig, axes = _grid(len(benches))
    for ax, bench in zip(axes, benches, strict=False):
        part = curve[curve["benchmark"] == bench]
        xs = list(part["avg_output_tokens"].clip(lower=1))
        for model, df in part.groupby("model", sort=True):
            df = df.sort_values("avg_output_tokens")
            _errorbars(ax, df["avg_output_tokens"].clip(lower=1), df, marker="o", label=model,
                       color=colors.get(model))
            for _, r in df.iterrows():
                ax.annotate(r["metric"], (max(r["avg_output_tokens"], 1), r["value"]),
                            textcoords="offset points", xytext=(4, 4), fontsize=7,
                            color=colors.get(model))
        ref = reference_points(bench) if paper_reference else pd.DataFrame()
        if not ref.empty:
            xs += list(ref["avg_output_tokens"])
            ax.scatter(ref["avg_output_tokens"], ref["accuracy"], marker="*", s=130,
                       color="#555555", zorder=5, label="the paper's Table 1")
            for _, r in ref.iterrows():
                ax.annotate(f"{r['model']}: {r['printed']}",
                            (r["avg_output_tokens"], r["accuracy"]),
                            textcoords="offset points", xytext=(5, -11), fontsize=7)
        log_axis(ax, xs)
        _accuracy_axis(ax)
        ax.set_xlabel("average output tokens per problem (log scale)")
        ax.set_title(bench)
        ax.legend(fontsize=7, loc="best")
    return fig


def plot_accuracy_vs_tokens(metrics: pd.DataFrame, path: str | Path,
                            paper_reference: bool = True,
                            colors: dict[str, str] | None = None) -> Path:
    """Accuracy vs average output tokens per (model, benchmark); writes a PNG to `path`."""
    return save(draw_accuracy_vs_tokens(metrics, paper_reference, colors), path)


def draw_accuracy_vs_budget(metrics: pd.DataFrame, metric: str = "pass@1",
                            colors: dict[str, str] | None = None) -> plt.Figure:
    """The budget-forcing figure (see the module docstring)."""
    curve = budget_curve(metrics, metric)
    if curve.empty:
        return empty_figure("no budget-forcing runs: set evaluation.budgets (thinking-token "
                            "caps) to draw accuracy against the thinking budget")
    colors = colors or model_colors(metrics["model"])
    free = metrics[metrics["budget"].isna() & metrics["metric"].eq(metric)]
    benches = sorted(curve["benchmark"].unique())
    fig, axes = _grid(len(benches))
    for ax, bench in zip(axes, benches, strict=False):
        part = curve[curve["benchmark"] == bench]
        for model, df in part.groupby("model", sort=True):
            color = colors.get(model)
            _errorbars(ax, df["budget"].astype(float), df, marker="o", label=model, color=color)
            ref = free[(free["benchmark"] == bench) & (free["model"] == model)]
            if not ref.empty:
                ax.axhline(float(ref["value"].iloc[0]), color=color, linestyle="--", alpha=0.7,
                           label=f"{model}, no cap")
        budgets = sorted(part["budget"].astype(float).unique())
        log_axis(ax, budgets, base=2, ticks=budgets)
        _accuracy_axis(ax, metric)
        ax.set_xlabel("thinking budget B (tokens, log scale)")
        ax.set_title(bench)
        ax.legend(fontsize=7, loc="best")
    return fig


def plot_accuracy_vs_budget(metrics: pd.DataFrame, path: str | Path, metric: str = "pass@1",
                            colors: dict[str, str] | None = None) -> Path:
    """`metric` vs thinking-token budget per (model, benchmark); writes a PNG to `path`."""
    return save(draw_accuracy_vs_budget(metrics, metric, colors), path)
