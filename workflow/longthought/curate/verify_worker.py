"""The math-verify call, run only inside a `DeadlinePool` worker process.

math-verify turns LaTeX into sympy objects (latex2sympy) and plain expressions into sympy via
`parse_expr` restricted by its own regex to digits and operators. Its comparisons can run for
minutes or exhaust memory on hostile input, so this module is imported only in worker processes
that the parent kills at the deadline. Its own signal-based timeouts are turned off: the worker's
soft alarm and the parent's kill bound the time instead.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

logging.getLogger("math_verify").setLevel(logging.CRITICAL)

_GOLD_CONFIG = (LatexExtractionConfig(), ExprExtractionConfig())
_PRED_CONFIG = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())


@lru_cache(maxsize=8192)
def _parse_gold(gold: str) -> tuple[Any, ...]:
    # Gold answers are bare LaTeX ("\frac{1}{2}", "(3, \pi/2)"): give the parser its delimiters.
    return tuple(parse(f"${gold}$", extraction_config=_GOLD_CONFIG, parsing_timeout=None))


def verify_pair(item: tuple[str, str]) -> tuple[str, str]:
    """(gold, extracted answer) -> (reason, detail); reason is correct / wrong / undecided."""
    gold, answer = item
    gold_parsed = list(_parse_gold(gold))
    if not gold_parsed:
        return "undecided", "gold answer could not be parsed"
    pred_parsed = parse(f"\\boxed{{{answer}}}", extraction_config=_PRED_CONFIG,
                        parsing_timeout=None)
    if not pred_parsed:
        return "undecided", "answer could not be parsed"
    ok = verify(gold_parsed, pred_parsed, timeout_seconds=None)
    return ("correct", "") if ok else ("wrong", "")
