"""The math-verify calls, run only inside a `DeadlinePool` worker process.

math-verify extracts the answer (`parse` with `LatexExtractionConfig` / `ExprExtractionConfig`,
boxed first) from gold and prediction alike and compares them (`verify`). It turns LaTeX into
sympy objects (latex2sympy) and plain expressions into sympy via `parse_expr` restricted by its
own regex to digits and operators. Its comparisons can run for minutes or exhaust memory on
hostile input, so this module is imported only in worker processes that the parent kills at the
deadline. Its own signal-based timeouts are turned off: the worker's soft alarm and the parent's
kill bound the time instead.

Items arrive in chunks (`DeadlinePool`), each prepared by the parent: the thinking already cut
off, the hostile shapes already screened, the fast path already taken.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import math_verify.parser as _mv_parser
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from longthought.answers.choice import unwrap

logging.getLogger("math_verify").setLevel(logging.CRITICAL)
logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)

# math-verify caches its compiled extraction regexes for one config only (lru_cache(maxsize=1));
# the three configs below would recompile them on every call (tens of ms each). Keep a few.
for _name in ("lazy_latex_regex", "lazy_expr_regex"):
    _fn = getattr(_mv_parser, _name, None)
    if _fn is not None and hasattr(_fn, "__wrapped__"):
        setattr(_mv_parser, _name, lru_cache(maxsize=8)(_fn.__wrapped__))

_GOLD_CONFIG = (LatexExtractionConfig(), ExprExtractionConfig())
# Boxed first (priority 0), then "final answer is", "Answer:", then any math (the last one).
_FULL_CONFIG = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
# The same without the unanchored patterns: a box or an answer phrase only.
_ANCHORED_CONFIG = (LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False),
                    ExprExtractionConfig(try_extract_without_anchor=False))


def _parse(text: str, config: tuple) -> list[Any]:
    return parse(text, extraction_config=config, parsing_timeout=None)


@lru_cache(maxsize=8192)
def parse_gold(gold: str) -> tuple[Any, ...]:
    """A bare gold answer ("\\frac{1}{2}", "(3, \\pi/2)", "28 percent"), parsed once per worker."""
    found = _parse(f"${gold}$", _GOLD_CONFIG)
    if not found:  # plain text math-verify reads without delimiters ("1,000.99 euros")
        found = _parse(gold, _GOLD_CONFIG)
    return tuple(found)


def _extracted(parsed: list[Any]) -> str:
    """math-verify's own string of what it extracted (its fallback element), else the object."""
    strings = [p for p in parsed if isinstance(p, str)]
    return strings[-1] if strings else str(parsed[0])


def _parsed(found: list[Any]) -> bool:
    """Whether math-verify parsed something (not only its fallback string of a failed match)."""
    return any(not isinstance(p, str) for p in found)


def extract(text: str, extraction: str, boxes: int, hint: str | None) -> tuple[list[Any], str]:
    """(math-verify's extraction, which extraction found it) from a final part.

    In order: a box or an answer phrase (math-verify's anchored patterns, box first); several
    boxes that math-verify's grouping joins (`\\boxed{1}, \\boxed{2}`) parsed as one answer;
    the hand scan's answer line (`hint`, e.g. "The answer is \\$32,348."); then, in `full` mode
    only, any math in the text (math-verify's unanchored patterns, the rightmost match).
    """
    anchored = "boxed" if boxes else "answer_phrase"
    if boxes >= 2 and hint:  # one answer of several boxes: a set or tuple
        found = list(parse_gold(hint))
        if _parsed(found):
            return found, "boxed"
    found = _parse(text, _ANCHORED_CONFIG)
    if _parsed(found):
        return found, anchored
    if hint:
        from_hint = list(parse_gold(hint))
        if _parsed(from_hint):
            return from_hint, anchored
    if extraction == "boxed":
        return found, anchored if found else "none"
    full = _parse(text, _FULL_CONFIG)
    if _parsed(full):
        return full, "last_math"
    return found or full, "none"


def _words(text: str) -> str:
    return " ".join(unwrap(text).lower().strip(" .").split())


def grade(item: tuple) -> tuple[str, str, str | None, str]:
    """(gold, final text, extraction, boxes, kind, hint) -> (reason, detail, extracted, method).

    kind "text": the gold is words (`\\text{Evelyn}`): compared as words, since math-verify
    reads a word as a product of symbols (an anagram would pass). `hint` is the hand scan's
    candidate (the box group, or the answer line).
    """
    gold, text, extraction, boxes, kind, hint = item
    if kind == "text":
        got = hint
        if got is None:
            pred, method = extract(text, extraction, boxes, None)
            got = _extracted(pred) if pred else None
        else:
            method = "boxed" if boxes else "answer_phrase"
        if got is None:
            return "no_answer", "no answer found", None, "none"
        same = _words(got) == _words(gold)
        return ("correct" if same else "wrong"), "compared as words", got, method
    pred, method = extract(text, extraction, boxes, hint)
    gold_parsed = list(parse_gold(gold))
    if not gold_parsed:
        return "undecided", "gold answer could not be parsed", \
            _extracted(pred) if pred else hint, method
    if not pred:
        if boxes:
            return "undecided", "answer could not be parsed", hint, "boxed"
        return "no_answer", "math-verify found no answer", None, "none"
    ok = verify(gold_parsed, pred, timeout_seconds=None)
    return ("correct" if ok else "wrong"), "", _extracted(pred), method


def equal(pair: tuple[str, str]) -> bool | None:
    """Whether two extracted answers are mathematically equal (maj@k's grouping); None when
    either cannot be parsed."""
    a, b = pair
    pa, pb = parse_gold(a), parse_gold(b)
    if not pa or not pb:
        return None
    return bool(verify(list(pa), list(pb), timeout_seconds=None))


def run(item: tuple[str, tuple]) -> Any:
    """The pool's one handler: ("grade", item) -> `grade(item)`, ("equal", pair) -> `equal`."""
    kind, payload = item
    if kind == "grade":
        return grade(payload)
    if kind == "equal":
        return equal(payload)
    raise ValueError(f"unknown job {kind!r}")
