"""`longthought tti <score|validate|self|leaderboard>`: the Technical Transparency Index."""

from __future__ import annotations

import argparse

from longthought.cli import spec_arg
from longthought.transparency.rubric import DEFAULT_RUBRIC


def _score(args: argparse.Namespace) -> int:
    from longthought.transparency.cards import load_card
    from longthought.transparency.rubric import load_rubric
    from longthought.transparency.scores import breakdown_text

    print(breakdown_text(load_card(args.card, load_rubric(args.rubric))), end="")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from longthought.transparency.cards import load_cards
    from longthought.transparency.rubric import load_rubric

    rubric = load_rubric(args.rubric)
    cards = load_cards(args.cards or None, rubric)
    for c in cards:
        sub = c.subtotals()
        check = " (matches published)" if c.published else ""
        print(f"ok  {c.path}: {c.project} {sub['total']}/{rubric.total}{check}")
    print(f"{len(cards)} card(s) valid against {rubric.path}")
    return 0


def _self(args: argparse.Namespace) -> int:
    from longthought.transparency.self_assess import assess_and_write

    card = assess_and_write(args.spec, args.results_dir, args.config, args.out,
                            rubric_path=args.rubric, repo_root=args.repo_root)
    sub = card.subtotals()
    dims = ", ".join(f"{d.id} {sub[d.id]}/{d.points}" for d in card.rubric.dimensions)
    print(f"{args.out}: {card.project} {sub['total']}/{card.rubric.total} ({dims})")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from longthought.transparency.cards import load_cards
    from longthought.transparency.rubric import load_rubric
    from longthought.transparency.scores import leaderboard, leaderboard_markdown, plot_leaderboard

    rubric = load_rubric(args.rubric)
    board = leaderboard(load_cards(args.cards or None, rubric))
    print(leaderboard_markdown(board, rubric), end="")
    if args.png:
        plot_leaderboard(board, args.png)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `longthought tti` and its sub-verbs."""
    p = sub.add_parser("tti", help="Technical Transparency Index: rubric, scorecards, leaderboard",
                       description=__doc__)
    verbs = p.add_subparsers(dest="tti_verb", required=True, metavar="SUBVERB")
    rubric_help = f"rubric YAML (default {DEFAULT_RUBRIC})"

    s = verbs.add_parser("score", help="print one card's breakdown per dimension and item")
    s.add_argument("card", help="scorecard YAML")
    s.add_argument("--rubric", default=str(DEFAULT_RUBRIC), help=rubric_help)
    s.set_defaults(func=_score)

    v = verbs.add_parser("validate", help="validate scorecards (default: config/tti/projects)")
    v.add_argument("cards", nargs="*", help="card files or directories")
    v.add_argument("--rubric", default=str(DEFAULT_RUBRIC), help=rubric_help)
    v.set_defaults(func=_validate)

    a = verbs.add_parser("self", help="score this pipeline's run from what it recorded")
    a.add_argument("--spec", type=spec_arg, default={},
                   help='a JSON file (or JSON text): {"project", "url", "rubric", "repo_root", '
                        '"cards"} (all optional)')
    a.add_argument("--results-dir", default="results", help="the run's results directory")
    a.add_argument("--config", required=True, nargs="+",
                   help="the config YAML(s) the run used, merged in order (default, overlays)")
    a.add_argument("--out", required=True, help="scorecard YAML to write")
    a.add_argument("--rubric", default=None, help=rubric_help + "; overrides spec.rubric")
    a.add_argument("--repo-root", default=None, help="repository root for code/README evidence "
                   "(default: spec.repo_root or .)")
    a.set_defaults(func=_self)

    lb = verbs.add_parser("leaderboard", help="print the leaderboard of cards as markdown")
    lb.add_argument("cards", nargs="*", help="card files or directories")
    lb.add_argument("--rubric", default=str(DEFAULT_RUBRIC), help=rubric_help)
    lb.add_argument("--png", default=None, help="also write the stacked bar chart here")
    lb.set_defaults(func=_leaderboard)
