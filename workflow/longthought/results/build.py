"""`longthought report`: read every output of a run, write results.duckdb and the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from longthought import io
from longthought.results import database, report


def _metrics(generations: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    from longthought.evaluate.metrics import compute_metrics

    return io.validate(compute_metrics(generations, ks), "metrics", "computed metrics")


def _tti(cards: list[str], rubric_path: str) -> tuple[pd.DataFrame, str, Path | None]:
    from longthought.transparency import scores
    from longthought.transparency.cards import SELF_SOURCE

    rubric = scores.load_rubric(rubric_path)
    loaded = [scores.load_card(p, rubric) for p in cards]
    rows = pd.concat([scores.card_rows(c, rubric) for c in loaded], ignore_index=True)
    board = scores.leaderboard(loaded, rubric)
    table = io.validate(rows, "tti_scores", "TTI scores")
    text = scores.leaderboard_markdown(board, rubric)
    for card in (c for c in loaded if c.source == SELF_SOURCE):
        text += ("\n### This run's self-score, item by item\n\n"
                 + scores.evidence_markdown(card))
    return table, text, board


def build_report(
    spec: dict,
    db: str,
    summary: str,
    generations: list[str],
    funnels: list[str],
    models: list[str],
    generalization: list[str],
    tti_cards: list[str],
    rubric: str,
) -> None:
    """Aggregate a run into `db` and write `summary` (Markdown) with PNG plots beside it."""
    out_dir = Path(summary).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    gens = database.load_generations(generations)
    metrics = _metrics(gens, spec.get("k", [1]))
    funnel = database.load_funnels(funnels)
    train_log = database.load_train_logs(models)
    gen_rows = io.read_tables(generalization, "generalization")
    tables = {
        "generations": gens,
        "metrics": metrics,
        "funnel": funnel,
        "train_log": train_log,
        "hparams": database.load_hparams(models),
        "runs": database.load_runs(generations),
        "generalization": gen_rows,
    }
    tti_md = "_no scorecards_\n"
    if tti_cards:
        tables["tti_scores"], tti_md, board = _tti(tti_cards, rubric)
        from longthought.transparency.scores import plot_leaderboard

        plot_leaderboard(board, out_dir / "tti_leaderboard.png")
    database.write_database(db, tables)

    from longthought.evaluate import metrics as evm

    plots = []
    if not metrics.empty:
        evm.plot_accuracy_vs_tokens(metrics, out_dir / "accuracy_vs_tokens.png",
                                    paper_reference=spec.get("report", {}).get("paper_reference",
                                                                               True))
        plots.append(("Accuracy vs average output tokens", "accuracy_vs_tokens.png"))
        if metrics["budget"].notna().any():
            evm.plot_accuracy_vs_budget(metrics, out_dir / "accuracy_vs_budget.png")
            plots.append(("Accuracy vs thinking-token budget", "accuracy_vs_budget.png"))
    if report.plot_loss(train_log, out_dir / "loss.png"):
        plots.append(("Training loss", "loss.png"))

    sections = [
        "# longthought run report",
        f"Database: `{db}` (tables: {', '.join(sorted(tables))}).",
        "## Accuracy at a stated inference cost (the paper's Table 1)",
        report.table1(metrics),
        report.passk_table(metrics),
        "## Curation funnel",
        report.funnel_table(funnel),
        "## Training",
        report.training_table(train_log),
    ]
    if not gen_rows.empty:
        from longthought.generalization.report import generalization_markdown

        sections += ["## Beyond math (the paper's Table 2)",
                     generalization_markdown(gen_rows, spec.get("pair") or [])]
    from longthought.results.hardware import hardware_markdown

    sections += ["## Hardware: where each number was made",
                 hardware_markdown(tables["hparams"], tables["runs"])]
    sections += ["## Technical Transparency Index (the paper's Table 4 + this run)", tti_md]
    for title, name in plots + ([("TTI leaderboard", "tti_leaderboard.png")] if tti_cards else []):
        sections.append(f"### {title}\n\n![{title}]({name})")
    io.write_text(summary, "\n\n".join(s.strip() for s in sections if s) + "\n")
    print(f"report: {summary}; database: {db}")
