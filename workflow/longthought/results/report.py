"""The run report: `results/report/summary.md` and its PNG plots, from the database tables.

Sections follow the paper: Table 1 (accuracy at a stated inference cost, with error bars), the
curation funnel, the training curves, beyond-math generalization (Table 2) and the Technical
Transparency Index leaderboard (Table 4).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _fmt_acc(value: float, stderr: float | None) -> str:
    err = f" ± {100 * stderr:.1f}" if stderr is not None and pd.notna(stderr) else ""
    return f"{100 * value:.1f}{err}"


def _is_aggregate(r: object) -> bool:
    value = getattr(r, "aggregate", False)
    return bool(value) if value is not None and not pd.isna(value) else False


def _fmt_row_acc(r: object) -> str:
    """A metric cell: value ± SE; an aggregate row adds its across-seed SD."""
    cell = _fmt_acc(r.value, r.stderr)
    sd = getattr(r, "sd_replicates", None)
    if _is_aggregate(r) and sd is not None and pd.notna(sd):
        cell += f" (seed sd {100 * sd:.1f})"
    return cell


def model_label(r: object) -> str:
    """How a metrics row names its model: an aggregate says it is a mean of replicates."""
    if _is_aggregate(r):
        return f"**{r.model}** (mean of {int(r.n_replicates)} replicates)"
    return str(r.model)


def model_order(metrics: pd.DataFrame) -> list[str]:
    """Models in display order: by name, each aggregate followed by its replicates (by seed)."""
    from longthought.replicates import split_name

    def key(name: str) -> tuple[str, int]:
        group, seed = split_name(name)
        return group, -1 if seed is None else seed

    return sorted(dict.fromkeys(metrics["model"]), key=key)


def _labels(m: pd.DataFrame) -> dict[str, str]:
    return {r.model: model_label(r) for r in m.drop_duplicates("model").itertuples()}


def table1(metrics: pd.DataFrame, models: list[str] | None = None) -> str:
    """Accuracy (pass@1 ± stderr, in %) and average output tokens per model and benchmark.

    maj@k rows extend a model's cost axis as in the paper: k samples cost k times the tokens.
    A student trained at several replicate seeds shows its aggregate row (the mean, ± counting
    problems and seeds, and the SD across seeds) followed by each replicate's own row.
    """
    if metrics.empty:
        return "_no generations_\n"
    m = metrics[metrics["budget"].isna()]
    benches = sorted(m["benchmark"].unique())
    order = models or model_order(m)
    labels = _labels(m)
    header = "| model | metric | " + " | ".join(f"{b} acc (%) | {b} tokens per problem"
                                              for b in benches)
    lines = [header + " |", "|---|---|" + "---|---|" * len(benches)]
    metric_names = ["pass@1"] + sorted(x for x in m["metric"].unique() if x.startswith("maj@"))
    for model in order:
        for metric in metric_names:
            cells = []
            for bench in benches:
                row = m[(m["model"] == model) & (m["benchmark"] == bench) & (m["metric"] == metric)]
                if row.empty:
                    cells += ["–", "–"]
                    continue
                r = next(row.itertuples())
                cells += [_fmt_row_acc(r), f"{r.avg_output_tokens:.0f}"]
            if any(c != "–" for c in cells):
                lines.append(f"| {labels.get(model, model)} | {metric} | " + " | ".join(cells)
                             + " |")
    single = m[~m["aggregate"]] if "aggregate" in m else m
    n = single.groupby("benchmark")[["n_problems", "n_samples"]].max()
    note = "; ".join(f"{b}: {int(r.n_problems)} problems, {int(r.n_samples)} samples"
                     for b, r in n.iterrows())
    spread = ""
    if "aggregate" in m and m["aggregate"].any():
        spread = (" A mean of replicates: ± one standard error counting both the problems and "
                  "the seeds (two-way: see docs/database.md), and seed sd the standard deviation "
                  "of the replicates' values; its replicates' own rows follow it.")
    return ("\n".join(lines) + f"\n\nError bars: ± one standard error over problems.{spread} "
            "Tokens per problem are what the metric spends: one sample for pass@1, k samples "
            f"(k × the per-sample average) for maj@k. Per run, {note}.\n")


def passk_table(metrics: pd.DataFrame) -> str:
    m = metrics[metrics["budget"].isna() & metrics["metric"].str.startswith("pass@")]
    if m.empty:
        return ""
    labels = _labels(m)
    pivot = m.pivot_table(index=["model", "benchmark"], columns="metric", values="value")
    cols = sorted(pivot.columns, key=lambda c: int(c.split("@")[1]))
    lines = ["| model | benchmark | " + " | ".join(f"{c} (%)" for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    order = {name: i for i, name in enumerate(model_order(m))}
    for (model, bench), row in sorted(pivot.iterrows(), key=lambda kv: (order[kv[0][0]],
                                                                        kv[0][1])):
        lines.append(f"| {labels.get(model, model)} | {bench} | "
                     + " | ".join(f"{100 * row[c]:.1f}" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _ordered(m: pd.DataFrame, *keys: str) -> pd.DataFrame:
    """`m` sorted by `keys`, where "model" sorts in `model_order`."""
    order = {name: i for i, name in enumerate(model_order(m))}
    keys = tuple("_order" if k == "model" else k for k in keys)
    return m.assign(_order=m["model"].map(order)).sort_values(list(keys))


def cost_table(metrics: pd.DataFrame) -> str:
    """Per-sample cost of each model: output tokens, thinking tokens over the same samples, and
    the share of samples that had any thinking (a model that rarely thinks reads as such)."""
    m = metrics[metrics["budget"].isna() & metrics["metric"].eq("pass@1")]
    if m.empty:
        return ""
    lines = ["| model | benchmark | avg output tokens | avg thinking tokens | samples with "
             "thinking |", "|---|---|---|---|---|"]
    for r in _ordered(m, "benchmark", "model").itertuples():
        think = "–" if pd.isna(r.avg_thinking_tokens) else f"{r.avg_thinking_tokens:.1f}"
        lines.append(f"| {model_label(r)} | {r.benchmark} | {r.avg_output_tokens:.1f} | {think} "
                     f"| {100 * r.thinking_share:.1f}% |")
    return ("\n".join(lines) + "\n\nPer sample, over all samples (a sample without separate "
            "thinking counts 0 thinking tokens).\n")


def budget_table(metrics: pd.DataFrame) -> str:
    """pass@1 at each thinking budget (budget forcing) beside the thinking actually spent."""
    m = metrics[metrics["budget"].notna() & metrics["metric"].eq("pass@1")]
    if m.empty:
        return ""
    lines = ["| model | benchmark | thinking budget | pass@1 (%) | avg thinking tokens | avg "
             "output tokens |", "|---|---|---|---|---|---|"]
    for r in _ordered(m, "benchmark", "model", "budget").itertuples():
        think = "–" if pd.isna(r.avg_thinking_tokens) else f"{r.avg_thinking_tokens:.1f}"
        lines.append(f"| {model_label(r)} | {r.benchmark} | {int(r.budget)} | "
                     f"{_fmt_row_acc(r)} | {think} | {r.avg_output_tokens:.1f} |")
    return "\n".join(lines) + "\n"


def reasons_table(reasons: pd.DataFrame) -> str:
    """Removed rows per (dataset, filter, reason): the why behind each funnel step."""
    if reasons.empty:
        return ""
    lines = ["| dataset | filter | reason | rows |", "|---|---|---|---|"]
    for r in reasons.itertuples():
        lines.append(f"| {r.dataset} | {r.filter} | {r.reason} | {int(r.n)} |")
    return "\n".join(lines) + "\n"


def funnel_table(funnel: pd.DataFrame) -> str:
    """Rows in, removed per filter, rows out: what each curation filter did."""
    if funnel.empty:
        return "_no curated datasets_\n"
    parts = []
    for dataset, f in funnel.groupby("dataset", sort=True):
        f = f.sort_values("step")
        rows_in = int(f.iloc[0]["rows_in"])
        missing = int(f.loc[f["filter"] == "missing", "removed"].sum())
        partial = (f" ({missing} missing, {missing / max(1, rows_in):.1%}: the collection is "
                   "partial, failed or skipped by the budget cap)") if missing else ""
        lines = [f"**{dataset}**: {rows_in} traces in{partial}, "
                 f"{int(f.iloc[-1]['rows_out'])} kept", "",
                 "| step | filter | in | removed | out |", "|---|---|---|---|---|"]
        for r in f.itertuples():
            lines.append(f"| {r.step} | {r.filter} | {r.rows_in} | {r.removed} | {r.rows_out} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def training_table(train_log: pd.DataFrame) -> str:
    if train_log.empty:
        return "_no training logs_\n"
    g = train_log.groupby(["student", "stage", "dataset"], sort=True)
    lines = ["| student | stage | dataset | steps | first loss | last loss | tokens | "
             "median tokens/s |",
             "|---|---|---|---|---|---|---|---|"]
    for (student, stage, dataset), f in g:
        f = f.sort_values("step")
        lines.append(
            f"| {student} | {stage} | {dataset} | {len(f)} | {f['loss'].iloc[0]:.3f} | "
            f"{f['loss'].iloc[-1]:.3f} | {int(f['tokens'].sum())} | "
            f"{f['tokens_per_s'].median():.0f} |"
        )
    return "\n".join(lines) + "\n"


def draw_loss(train_log: pd.DataFrame, colors: dict[str, str] | None = None) -> plt.Figure:
    """Training loss per step: one colour per student (as in every plot), a line style per stage.

    Stages are numbered from 1, as the paper and the README number them.
    """
    from longthought.evaluate.plots import empty_figure, log_axis, model_colors

    if train_log.empty:
        return empty_figure("no training logs")
    colors = colors or model_colors(train_log["student"])
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(7, 4))
    for (student, stage, dataset), f in train_log.groupby(["student", "stage", "dataset"]):
        f = f.sort_values("step")
        ax.plot(f["step"], f["loss"], color=colors.get(student),
                linestyle=styles[(int(stage) - 1) % len(styles)],
                label=f"{student}, stage {stage} ({dataset})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss on assistant tokens (log scale)")
    log_axis(ax, train_log["loss"], axis="y")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("SFT loss per stage")
    return fig


def section_html(title: str, markdown: str) -> str:
    """A report section as a small standalone HTML page (for `snakemake --report`)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font:14px/1.45 system-ui,sans-serif;margin:1rem;color:#1f2328}"
            "table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #d0d7de;"
            "padding:.2rem .5rem}th{background:#f6f8fa}td{font-variant-numeric:tabular-nums}"
            "code{font-size:.9em}</style></head><body>"
            f"<h2>{title}</h2>{body}</body></html>\n")


def _pct(x: float | None, sign: bool = False) -> str:
    if x is None or pd.isna(x):
        return "–"
    return f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"


def _p(x: float | None) -> str:
    if x is None or pd.isna(x):
        return "–"
    return "p < 0.001" if x < 0.001 else f"p {x:.3f}"


def _reps(n: int) -> str:
    return f"{n} replicate{'s' if n != 1 else ''}"


def comparison_section(comparisons: pd.DataFrame, pairs: list[list[str]]) -> str:
    """The report's pairwise comparisons (the `comparisons` table, pass@1 without a budget):
    the gain, its uncertainty across seeds, the paired test over problems, both together."""
    if not pairs:
        return ("_No pairs to compare: set `report.compare: [[first, second]]` (by default the "
                "config's two students, when it has two and both are evaluated)._\n")
    if comparisons.empty:
        return "_The pairs in `report.compare` have no generations in common._\n"
    m = comparisons[comparisons["metric"].eq("pass@1") & comparisons["budget"].isna()]
    parts = []
    for a, b in pairs:
        rows = m[(m["model_a"] == a) & (m["model_b"] == b)].sort_values("benchmark")
        if rows.empty:
            continue
        lines = [f"**`{b}` against `{a}`** (gain = `{b}` − `{a}`, pass@1 in points):", "",
                 f"| benchmark | `{a}` (%) | `{b}` (%) | gain | across seeds: ± SE, Welch | "
                 "paired over problems: 95% CI, sign-flip | both: 95% CI | verdict |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in rows.itertuples():
            if r.seeds_known:
                seeds = f"± {_pct(r.se_seeds)}, {_p(r.p_seeds)}"
            else:
                single = [x for x, n in ((a, r.replicates_a), (b, r.replicates_b)) if n < 2]
                seeds = f"unknown: {', '.join(f'`{x}`' for x in single)} one run"
            lines.append(
                f"| {r.benchmark} | {_pct(r.mean_a)} ({_reps(r.replicates_a)}) | "
                f"{_pct(r.mean_b)} ({_reps(r.replicates_b)}) | {_pct(r.diff, True)} | {seeds} | "
                f"[{_pct(r.ci_paired_low, True)}, {_pct(r.ci_paired_high, True)}], "
                f"{_p(r.p_paired)} | [{_pct(r.ci_low, True)}, {_pct(r.ci_high, True)}] | "
                f"**{r.verdict}** |")
        parts.append("\n".join(lines))
    if not parts:
        return "_The pairs in `report.compare` have no pass@1 without a budget in common._\n"
    note = (
        f"Over the problems both answered ({int(m['n_problems'].max())} at most). *Across "
        "seeds*: the spread of the replicates' means, the problems held fixed (Welch's t-test); "
        "unknown where a side was trained once. *Paired over problems*: each problem's "
        "difference (mean over replicates), resampled by problem (bootstrap) and tested by "
        "flipping signs. *Both*: the paired problem term plus each side's seed variance "
        "component, ± 1.96 SE; the verdict reads this interval (`within noise` when it holds "
        "0). Every metric and budget: `SELECT * FROM comparisons` in the database.")
    return "\n\n".join(parts) + "\n\n" + note + "\n"
