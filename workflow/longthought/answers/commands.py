"""`longthought check-answer`."""

from __future__ import annotations

import argparse
import dataclasses
import json


def _check_answer(args: argparse.Namespace) -> int:
    from longthought.answers.checker import check_answer

    verdict = check_answer(args.gold, args.response, timeout_s=args.timeout,
                           extraction=args.extraction, problem=args.problem)
    print(json.dumps(dataclasses.asdict(verdict), ensure_ascii=False))
    return 0 if verdict.correct else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add `check-answer`."""
    c = sub.add_parser("check-answer", help="check a response's final answer against a gold answer "
                       "(prints the verdict as JSON; exit 0 correct, 1 otherwise)")
    c.add_argument("gold", help="gold answer: bare, in $...$, or a solution whose last box is "
                   "the answer (e.g. '\\frac{1}{2}')")
    c.add_argument("response", help="the model's full response text")
    c.add_argument("--timeout", type=float, default=5.0, help="seconds per check (default 5)")
    c.add_argument("--extraction", choices=["full", "boxed"], default="full",
                   help="full: math-verify's extraction (box, answer phrase, last math; the "
                   "evaluation default); boxed: the answer must be in \\boxed{} (curation's)")
    c.add_argument("--problem", default=None,
                   help="problem text, for multiple-choice options (A) ... (B) ...")
    c.set_defaults(func=_check_answer)
