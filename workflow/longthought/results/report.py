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


def table1(metrics: pd.DataFrame, models: list[str] | None = None) -> str:
    """Accuracy (pass@1 ± stderr, in %) and average output tokens per model and benchmark.

    maj@k rows extend a model's cost axis as in the paper: k samples cost k times the tokens.
    """
    if metrics.empty:
        return "_no generations_\n"
    m = metrics[metrics["budget"].isna()]
    benches = sorted(m["benchmark"].unique())
    order = models or sorted(m["model"].unique())
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
                r = row.iloc[0]
                cells += [_fmt_acc(r["value"], r["stderr"]), f"{r['avg_output_tokens']:.0f}"]
            if any(c != "–" for c in cells):
                lines.append(f"| {model} | {metric} | " + " | ".join(cells) + " |")
    n = m.groupby("benchmark")[["n_problems", "n_samples"]].max()
    note = "; ".join(f"{b}: {int(r.n_problems)} problems, {int(r.n_samples)} samples"
                     for b, r in n.iterrows())
    return ("\n".join(lines) + f"\n\nError bars: ± one standard error over problems. Tokens per "
            "problem are what the metric spends: one sample for pass@1, k samples (k × the "
            f"per-sample average) for maj@k. {note}.\n")


def passk_table(metrics: pd.DataFrame) -> str:
    m = metrics[metrics["budget"].isna() & metrics["metric"].str.startswith("pass@")]
    if m.empty:
        return ""
    pivot = m.pivot_table(index=["model", "benchmark"], columns="metric", values="value")
    cols = sorted(pivot.columns, key=lambda c: int(c.split("@")[1]))
    lines = ["| model | benchmark | " + " | ".join(f"{c} (%)" for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for (model, bench), row in pivot.iterrows():
        lines.append(f"| {model} | {bench} | "
                     + " | ".join(f"{100 * row[c]:.1f}" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def cost_table(metrics: pd.DataFrame) -> str:
    """Per-sample cost of each model: output tokens, thinking tokens over the same samples, and
    the share of samples that had any thinking (a model that rarely thinks reads as such)."""
    m = metrics[metrics["budget"].isna() & metrics["metric"].eq("pass@1")]
    if m.empty:
        return ""
    lines = ["| model | benchmark | avg output tokens | avg thinking tokens | samples with "
             "thinking |", "|---|---|---|---|---|"]
    for r in m.sort_values(["benchmark", "model"]).itertuples():
        think = "–" if pd.isna(r.avg_thinking_tokens) else f"{r.avg_thinking_tokens:.1f}"
        lines.append(f"| {r.model} | {r.benchmark} | {r.avg_output_tokens:.1f} | {think} | "
                     f"{100 * r.thinking_share:.1f}% |")
    return ("\n".join(lines) + "\n\nPer sample, over all samples (a sample without separate "
            "thinking counts 0 thinking tokens).\n")


def budget_table(metrics: pd.DataFrame) -> str:
    """pass@1 at each thinking budget (budget forcing) beside the thinking actually spent."""
    m = metrics[metrics["budget"].notna() & metrics["metric"].eq("pass@1")]
    if m.empty:
        return ""
    lines = ["| model | benchmark | thinking budget | pass@1 (%) | avg thinking tokens | avg "
             "output tokens |", "|---|---|---|---|---|---|"]
    for r in m.sort_values(["benchmark", "model", "budget"]).itertuples():
        think = "–" if pd.isna(r.avg_thinking_tokens) else f"{r.avg_thinking_tokens:.1f}"
        lines.append(f"| {r.model} | {r.benchmark} | {int(r.budget)} | "
                     f"{_fmt_acc(r.value, r.stderr)} | {think} | {r.avg_output_tokens:.1f} |")
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
