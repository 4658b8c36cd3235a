"""longthought.transparency: the Technical Transparency Index (rubric, scorecards, scores)."""

from longthought.transparency.cards import Card, load_card, load_cards
from longthought.transparency.rubric import Rubric, load_rubric
from longthought.transparency.scores import (
    card_rows,
    leaderboard,
    leaderboard_markdown,
    plot_leaderboard,
    scores_table,
)
from longthought.transparency.self_assess import assess_run

__all__ = [
    "Card",
    "Rubric",
    "assess_run",
    "card_rows",
    "leaderboard",
    "leaderboard_markdown",
    "load_card",
    "load_cards",
    "load_rubric",
    "plot_leaderboard",
    "scores_table",
]
