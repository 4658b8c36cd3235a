"""The run report: `results/report/summary.md` and its PNG plots, from the database tables.

Sections follow the paper: Table 1 (accuracy at a stated inference cost, with error bars), the
curation funnel, the training curves, beyond-math generalization (Table 2) and the Technical
Transparency Index leaderboard (Table 4).
"""

from __future__ import annotations

from pathlib import Path

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
    header = "| model | metric | " + " | ".join(f"{b} acc (%) | {b} avg tokens" for b in benches)
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
    return "\n".join(lines) + f"\n\nError bars: ± one standard error over problems. {note}.\n"


def passk_table(metrics: pd.DataFrame) -> str:
    m = metrics[metrics["budget"].isna() & metrics["metric"].str.startswith("pass@")]
    if m.empty:
        return ""
    pivot = m.pivot_table(index=["model", "benchmark"], columns="metric", values="value")
    cols = sorted(pivot.columns, key=lambda c: int(c.split("@")[1]))
    lines = ["| model | benchmark | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for (model, bench), row in pivot.iterrows():
        lines.append(f"| {model} | {bench} | "
                     + " | ".join(f"{100 * row[c]:.1f}" for c in cols) + " |")
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
    lines = ["| student | stage | dataset | steps | first loss | last loss | tokens | tokens/s |",
             "|---|---|---|---|---|---|---|---|"]
    for (student, stage, dataset), f in g:
        f = f.sort_values("step")
        lines.append(
            f"| {student} | {stage} | {dataset} | {len(f)} | {f['loss'].iloc[0]:.3f} | "
            f"{f['loss'].iloc[-1]:.3f} | {int(f['tokens'].sum())} | "
            f"{f['tokens_per_s'].median():.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot_loss(train_log: pd.DataFrame, path: Path) -> bool:
    """Training loss per step, one line per (student, stage)."""
    if train_log.empty:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for (student, stage, dataset), f in train_log.groupby(["student", "stage", "dataset"]):
        f = f.sort_values("step")
        ax.plot(f["step"], f["loss"], label=f"{student} stage {stage} ({dataset})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("SFT loss per stage")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
