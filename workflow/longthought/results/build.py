"""`longthought report`: read every output of a run, write results.duckdb and the report.

The report directory holds, beside `summary.md` (the whole report in Markdown), one HTML page per
section and the plots, under fixed names (`REPORT_FILES`): the report rule marks them with
Snakemake's `report()`, so `snakemake --report results/report.html` gathers them by category, and
`browser.html`, the run browser built from the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from longthought import io
from longthought.results import database, report

# name -> file in the report directory (the report rule declares the same names as outputs)
REPORT_FILES = {
    "summary": "summary.md",
    "browser": "browser.html",
    "accuracy": "accuracy.html",
    "tokens_plot": "accuracy_vs_tokens.png",
    "budget_plot": "accuracy_vs_budget.png",
    "curation": "curation.html",
    "training": "training.html",
    "loss_plot": "loss.png",
    "beyond_math": "beyond_math.html",
    "transparency": "transparency.html",
    "tti_plot": "tti_leaderboard.png",
}


@dataclass
class RunFiles:
    """Every file of a run the report reads (each list may be empty)."""

    generations: list[str] = field(default_factory=list)
    funnels: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # trained students' directories
    generalization: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)  # generalization .items.parquet
    problems: list[str] = field(default_factory=list)  # pools
    benchmarks: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)  # curated (kept) rows
    rejected: list[str] = field(default_factory=list)
    tti_cards: list[str] = field(default_factory=list)
    rubric: str = "config/tti/rubric.yaml"


def _metrics(generations: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    from longthought.evaluate.metrics import compute_metrics

    return io.validate(compute_metrics(generations, ks), "metrics", "computed metrics")


def _tti(cards: list[str], rubric_path: str) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    from longthought.transparency import scores

    rubric = scores.load_rubric(rubric_path)
    loaded = [scores.load_card(p, rubric) for p in cards]
    rows = pd.concat([scores.card_rows(c, rubric) for c in loaded], ignore_index=True)
    board = scores.leaderboard(loaded, rubric)
    table = io.validate(rows, "tti_scores", "TTI scores")
    return table, scores.leaderboard_markdown(board, rubric), board


def roles(spec: dict) -> dict[str, str]:
    """Model name -> teacher / student / init, from the spec's config names."""
    out = {t: "teacher" for t in spec.get("teachers", [])}
    for s in spec.get("students", []):
        out[s], out[f"{s}@init"] = "student", "init"
    return out


def _tables(files: RunFiles, spec: dict) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    gens = database.load_generations(files.generations)
    tables = {
        "problems": database.load_problems(files.problems, files.benchmarks),
        "tasks": database.load_tasks(spec.get("tasks") or {}),
        "generations": gens,
        "metrics": _metrics(gens, spec.get("k", [1])),
        "funnel": database.load_funnels(files.funnels),
        "train_log": database.load_train_logs(files.models),
        "hparams": database.load_hparams(files.models),
        "runs": database.load_runs(files.generations),
        "generalization": io.read_tables(files.generalization, "generalization"),
        "generalization_items": database.load_generalization_items(files.items),
    }
    statements = {"traces": database.traces_sql(files.traces),
                  "curation": database.curation_sql(files.datasets, files.rejected)}
    return tables, statements


def build_report(spec: dict, db: str, summary: str, files: RunFiles) -> dict[str, Path]:
    """Aggregate a run into `db`; write the report files beside `summary`; returns their paths."""
    from longthought.evaluate import plots
    from longthought.results.browser import write_browser

    out_dir = Path(summary).parent
    out = {k: out_dir / name for k, name in REPORT_FILES.items()}
    out["summary"] = Path(summary)
    tables, statements = _tables(files, spec)
    tti_md, board = "_no scorecards_\n", None
    if files.tti_cards:
        tables["tti_scores"], tti_md, board = _tti(files.tti_cards, files.rubric)
    names = database.write_database(db, tables, statements)

    metrics, train_log, gen_rows = tables["metrics"], tables["train_log"], tables["generalization"]
    colors = plots.model_colors([*tables["generations"]["model"], *gen_rows["model"],
                                 *train_log["student"]])
    paper = (spec.get("report") or {}).get("paper_reference", True)
    plots.plot_accuracy_vs_tokens(metrics, out["tokens_plot"], paper_reference=paper,
                                  colors=colors)
    plots.plot_accuracy_vs_budget(metrics, out["budget_plot"], colors=colors)
    plots.save(report.draw_loss(train_log, colors), out["loss_plot"])
    if board is not None:
        from longthought.transparency.scores import plot_leaderboard

        plot_leaderboard(board, out["tti_plot"])
    else:
        plots.save(plots.empty_figure("no TTI scorecards"), out["tti_plot"])

    reasons = database.query(db, "SELECT dataset, filter, reason, count(*) AS n FROM curation "
                                 "WHERE NOT kept GROUP BY ALL ORDER BY dataset, n DESC, filter")
    sections = {
        "accuracy": ("Accuracy at a stated inference cost (the paper's Table 1)",
                     report.table1(metrics) + "\n" + report.passk_table(metrics) + "\n"
                     + report.cost_table(metrics) + "\n" + report.budget_table(metrics),
                     ["tokens_plot", "budget_plot"]),
        "curation": ("Curation funnel", report.funnel_table(tables["funnel"]) + "\n"
                     + report.reasons_table(reasons), []),
        "training": ("Training", report.training_table(train_log), ["loss_plot"]),
        "beyond_math": ("Beyond math (the paper's Table 2)", _beyond_math(gen_rows, spec), []),
        "transparency": ("Technical Transparency Index (the paper's Table 4 + this run)", tti_md,
                         ["tti_plot"]),
    }
    for key, (title, body, _) in sections.items():
        io.write_text(out[key], report.section_html(title, body))
    t0 = time.perf_counter()
    stats = write_browser(db, out["browser"], (spec.get("report") or {}).get("browser"),
                          roles(spec), colors)
    browser_s = time.perf_counter() - t0

    titles = {"tokens_plot": "Accuracy vs average output tokens",
              "budget_plot": "Accuracy vs thinking-token budget (budget forcing)",
              "loss_plot": "Training loss", "tti_plot": "TTI leaderboard"}
    parts = ["# longthought run report",
             f"Database: `{db}` ({len(names)} tables: {', '.join(names)}; every column is "
             "described in docs/database.md).",
             f"Run browser: `{out['browser'].name}` beside this file ({stats['traces']:,} of "
             f"{stats['traces_total']:,} traces and {stats['problems']:,} evaluation problems "
             "embedded; open it in any browser)."]
    for title, body, plot_keys in sections.values():
        parts += [f"## {title}", body]
        parts += [f"![{titles[k]}]({out[k].name})" for k in plot_keys]
    io.write_text(summary, "\n\n".join(s.strip() for s in parts if s) + "\n")
    print(f"report: {summary}; database: {db}; browser: {out['browser']} "
          f"({stats['bytes'] / 1e6:.1f} MB, written in {browser_s:.1f} s)")
    return out


def _beyond_math(gen_rows: pd.DataFrame, spec: dict) -> str:
    if gen_rows.empty:
        return "_no generalization sets_\n"
    from longthought.generalization.report import generalization_markdown

    return generalization_markdown(gen_rows, spec.get("pair") or [])
