"""Scores from cards: per-item rows (the `tti_scores` table), the leaderboard, its chart and text.

`card_rows` gives the rows the report rule writes into results.duckdb; `leaderboard` accepts cards
or those rows, so the report can rebuild the leaderboard from the database alone.
"""

from __future__ import annotations

import os

import pandas as pd

from longthought.io import atomic_path, validate
from longthought.transparency.cards import Card, load_card, load_cards
from longthought.transparency.rubric import Rubric, load_rubric

__all__ = ["breakdown_text", "card_rows", "evidence_markdown", "leaderboard",
           "leaderboard_markdown", "load_card", "load_cards", "load_rubric", "plot_leaderboard",
           "scores_table"]

EVIDENCE_SEP = "; "
# one colour per dimension, in rubric order (colour-blind safe: Okabe-Ito)
_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]


def card_rows(card: Card, rubric: Rubric | None = None) -> pd.DataFrame:
    """One TTI_SCORES row per rubric item: project, dimension, item, points, earned, evidence."""
    rubric = rubric or card.rubric
    missing = [it.id for it in rubric.items if it.id not in card.answers]
    if missing:
        raise ValueError(f"{card.path or card.project}: no answer for item(s) {missing}")
    rows = []
    for it in rubric.items:
        a = card.answers[it.id]
        rows.append({
            "project": card.project,
            "dimension": it.dimension,
            "item": it.id,
            "points": it.points,
            "earned": it.points if a.yes else 0,
            "evidence": EVIDENCE_SEP.join(a.evidence) if a.evidence else None,
        })
    return validate(pd.DataFrame(rows), "tti_scores", f"scores of {card.path or card.project}")


def scores_table(cards: list[Card]) -> pd.DataFrame:
    """TTI_SCORES rows of several cards, concatenated."""
    frames = [card_rows(c) for c in cards]
    if not frames:
        return validate(pd.DataFrame({c: [] for c in ["project", "dimension", "item", "points",
                                                       "earned", "evidence"]}),
                        "tti_scores", "empty scores")
    return pd.concat(frames, ignore_index=True)


def leaderboard(cards: list[Card] | pd.DataFrame, rubric: Rubric | None = None) -> pd.DataFrame:
    """Per-project dimension subtotals and total, best first (ties keep the input order).

    Accepts Card objects or a TTI_SCORES frame (e.g. read back from results.duckdb). Columns:
    project, one per dimension (in `rubric` order if given, else first-seen order), total.
    """
    rows = scores_table(cards) if isinstance(cards, list) else validate(
        cards.reset_index(drop=True), "tti_scores", "tti_scores rows")
    dims = list(dict.fromkeys(rows["dimension"]))
    if rubric is not None:
        unknown = sorted(set(dims) - set(rubric.dimension_ids))
        if unknown:
            raise ValueError(f"tti_scores rows: dimension(s) {unknown} not in {rubric.path}")
        dims = rubric.dimension_ids
    projects = list(dict.fromkeys(rows["project"]))
    table = (rows.pivot_table(index="project", columns="dimension", values="earned",
                              aggfunc="sum", fill_value=0)
             .reindex(index=projects, columns=dims, fill_value=0))
    table = table.astype(int)
    table["total"] = table[dims].sum(axis=1)
    table = table.reset_index()
    table.columns.name = None
    order = sorted(range(len(table)), key=lambda i: -int(table.loc[i, "total"]))
    return table.iloc[order].reset_index(drop=True)


def _dimensions(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in ("project", "total")]


def leaderboard_markdown(df: pd.DataFrame, rubric: Rubric | None = None) -> str:
    """A markdown table of the leaderboard; headers carry each dimension's maximum if known."""
    dims = _dimensions(df)
    maxima = {d.id: d.points for d in rubric.dimensions} if rubric else {}
    titles = {d.id: d.title for d in rubric.dimensions} if rubric else {}

    def head(d: str) -> str:
        name = titles.get(d, d.replace("_", " "))
        return f"{name} ({maxima[d]})" if d in maxima else name

    total = f"total ({rubric.total})" if rubric else "total"
    lines = ["| project | " + " | ".join(head(d) for d in dims) + f" | {total} |",
             "|---|" + "---:|" * (len(dims) + 1)]
    for _, r in df.iterrows():
        cells = [str(r["project"]).replace("|", "\\|")] + [str(int(r[d])) for d in dims]
        lines.append("| " + " | ".join(cells) + f" | **{int(r['total'])}** |")
    return "\n".join(lines) + "\n"


def plot_leaderboard(df: pd.DataFrame, path: str | os.PathLike[str],
                     title: str = "Technical Transparency Index") -> None:
    """A horizontal stacked bar chart (one segment per dimension) written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = _dimensions(df)
    shown = df.iloc[::-1]  # best at the top
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(shown) + 1.6))
    left = pd.Series(0, index=shown.index, dtype=float)
    for i, d in enumerate(dims):
        ax.barh(shown["project"], shown[d], left=left, color=_COLOURS[i % len(_COLOURS)],
                label=d.replace("_", " "), edgecolor="white", linewidth=0.5)
        left = left + shown[d]
    for y, (_, r) in enumerate(shown.iterrows()):
        ax.text(r["total"] + 1, y, str(int(r["total"])), va="center", fontsize=9)
    ax.set_xlim(0, max(100, int(df["total"].max()) if len(df) else 0) + 8)
    ax.set_xlabel("points (of 100)")
    ax.set_title(title)
    below = -0.12 - 0.6 / (len(shown) + 2)
    ax.legend(ncol=len(dims), loc="upper center", bbox_to_anchor=(0.5, below), frameon=False,
              fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def breakdown_text(card: Card) -> str:
    """A card's per-dimension, per-item breakdown as plain text (for `longthought tti score`)."""
    sub = card.subtotals()
    lines = [f"{card.project}: {sub['total']} / {card.rubric.total}"]
    if card.url:
        lines.append(f"  {card.url}")
    for d in card.rubric.dimensions:
        lines.append("")
        lines.append(f"{d.title}: {sub[d.id]} / {d.points}")
        for it in card.rubric.items_of(d.id):
            a = card.answers[it.id]
            mark = "yes" if a.yes else "no "
            flag = " (inferred)" if a.inferred else ""
            lines.append(f"  [{mark}] {card.earned(it.id):>2}/{it.points:<2} {it.id}{flag}")
            if a.evidence:
                lines.append(f"        evidence: {EVIDENCE_SEP.join(a.evidence)}")
            if a.note:
                lines.append(f"        note: {a.note}")
    if card.published:
        ok = all(sub[k] == v for k, v in card.published.items())
        lines.append("")
        lines.append("published: " + ", ".join(f"{k} {v}" for k, v in card.published.items())
                     + (" (matched)" if ok else " (NOT matched)"))
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def evidence_markdown(card: Card) -> str:
    """A card item by item, as a markdown table: points earned, the evidence (what the check
    looked at: files, config keys, release URLs) and why it answered yes or no."""
    sub = card.subtotals()
    lines = [f"{card.project}: **{sub['total']}/{card.rubric.total}** "
             f"({', '.join(f'{d.title} {sub[d.id]}/{d.points}' for d in card.rubric.dimensions)})",
             "", "| item | points | evidence | why |", "|---|---:|---|---|"]
    for it in card.rubric.items:
        a = card.answers[it.id]
        evidence = "<br>".join(f"`{_cell(e)}`" for e in a.evidence) or "–"
        lines.append(f"| {it.id} ({'yes' if a.yes else 'no'}) | {card.earned(it.id)}/{it.points}"
                     f" | {evidence} | {_cell(a.note) or '–'} |")
    return "\n".join(lines) + "\n"
