"""Check a model's final answer against a gold answer, safely and in bounded time.

`check_answer(gold, response)` and `check_many(golds, responses, timeout_s, workers)` return a
`Verdict` per response. The response is untrusted text: the final answer is extracted by pure
string scanning (`extract`), screened for hostile shapes (megabyte answers, deep nesting, exponent
towers, code), compared cheaply in this process when the strings already agree, and otherwise
handed to math-verify inside a `DeadlinePool` worker that is killed at the deadline. Nothing from
the response ever reaches `eval`, `sympify` or `parse_expr` in this process.

Reasons: correct, wrong, no_answer (nothing extracted; counts as not correct), undecided (the
checker cannot tell: unparseable or refused input), timeout, error (the worker failed).
`correct` is True / False for correct / wrong / no_answer and None otherwise.
"""

from __future__ import annotations

import atexit
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from longthought.curate.extract import (
    MAX_ANSWER_CHARS,
    MAX_NESTING,
    Extraction,
    check_markers,
    extract_answer,
    extract_answer_detail,
    extract_thinking,
)
from longthought.curate.pool import OK, TIMEOUT, DeadlinePool

__all__ = [
    "REASONS",
    "AnswerChecker",
    "Verdict",
    "check_answer",
    "check_many",
    "check_markers",
    "extract_answer",
    "extract_answer_detail",
    "extract_thinking",
    "normalize_gold",
    "screen_answer",
]

REASONS = ("correct", "wrong", "no_answer", "undecided", "timeout", "error")
_WORKER = "longthought.curate.verify_worker:verify_pair"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check. `correct` is None when the checker could not decide."""

    correct: bool | None
    reason: str  # one of REASONS
    extracted: str | None
    detail: str = ""  # why undecided / error, or which fast path decided


def normalize_gold(value: object) -> str:
    """A gold answer as text: floats that are whole numbers lose their ".0" (AMC's 27.0 -> "27")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
        return repr(value)
    try:  # numpy scalars and the like
        import numbers

        if isinstance(value, numbers.Integral):
            return str(int(value))
        if isinstance(value, numbers.Real):
            return normalize_gold(float(value))
    except Exception:
        pass
    return str(value).strip()


# --- cheap screening of hostile shapes -------------------------------------------------------

_CODE_RE = re.compile(
    r"__|\bimport\b|\blambda\b|\beval\s*\(|\bexec\s*\(|\bcompile\s*\(|\bgetattr\b|\bos\.|"
    r"\bsubprocess\b|\bopen\s*\(|\bglobals\b|\blocals\b"
)
_BIG_EXP_RE = re.compile(r"(?:\^|\*\*)\s*\{?\s*\d{7,}")
_BIG_FACT_RE = re.compile(r"\d{6,}\s*!")
_CHAIN_RE = re.compile(r"(?:\^|\*\*)\s*[\w.]+\s*(?:\^|\*\*)\s*[\w.]+\s*(?:\^|\*\*)")


def _tower_height(text: str) -> int:
    """Deepest nesting of exponents: "9^{9^{9}}" -> 2, "x^2" -> 1."""
    stack: list[bool] = []  # per open brace: is it an exponent group?
    level = best = 0
    i, n = 0, len(text)
    pending_exp = False
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "^" or text.startswith("**", i):
            best = max(best, level + 1)
            pending_exp = True
            i += 2 if ch == "*" else 1
            continue
        if ch == "{":
            stack.append(pending_exp)
            level += pending_exp
        elif ch == "}" and stack:
            level -= stack.pop()
        if not ch.isspace():
            pending_exp = False
        i += 1
    return best


def _nesting(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch in "{([":
            depth += 1
            best = max(best, depth)
        elif ch in "})]":
            depth = max(0, depth - 1)
    return best


def screen_answer(text: str) -> str | None:
    """Why `text` is refused before any parser sees it, or None if it may be parsed."""
    if len(text) > MAX_ANSWER_CHARS:
        return f"longer than {MAX_ANSWER_CHARS} characters ({len(text)})"
    if _nesting(text) > MAX_NESTING:
        return f"nested deeper than {MAX_NESTING} levels"
    if _CODE_RE.search(text):
        return "looks like code"
    if _tower_height(text) >= 3 or _CHAIN_RE.search(text):
        return "exponent tower"
    if _BIG_EXP_RE.search(text):
        return "exponent with 7 or more digits"
    if _BIG_FACT_RE.search(text):
        return "factorial of a 6-digit number"
    return None


# --- fast paths decided in this process (no parser involved) ---------------------------------

_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox|textnormal|mathbf)\s*\{([^{}]*)\}")
_COSMETIC_RE = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\:|\\ |\\displaystyle|\s+")
_CHOICE_RE = re.compile(r"^\(?([A-E])\)?$")
_CHOICE_LEAD_RE = re.compile(r"^(?:\\text\{)?\s*\(?([A-E])\)?(?:[\s.:)}]|$)")
_WORDS_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*[A-Za-z]$")
_NUM_RE = re.compile(r"^(-?)(\d+(?:\.\d+)?)$")
_FRAC_RE = re.compile(r"^(-?)\\[dt]?frac(?:\{(\d+)\}|(\d))(?:\{(\d+)\}|(\d))$|^(-?)(\d+)/(\d+)$")


def _cosmetic(text: str) -> str:
    text = text.strip().strip("$").strip()
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _COSMETIC_RE.sub("", text)
    return text.rstrip(".")


def _unwrap(text: str) -> str:
    prev = None
    while prev != text:
        prev, text = text, _WRAP_RE.sub(r"\1", text)
    return text.strip()


def _choice(text: str) -> str | None:
    m = _CHOICE_RE.match(_unwrap(text).strip())
    return m.group(1) if m else None


def _text_words(gold: str) -> str | None:
    """The words of a text gold (`\\text{Evelyn}`), lower-cased; None if gold is not text."""
    if "\\text" not in gold and "\\mbox" not in gold and "\\mathrm" not in gold:
        return None
    inner = _unwrap(gold)
    if not _WORDS_RE.match(inner) or not re.search(r"[A-Za-z]{2}", inner):
        return None
    return " ".join(inner.lower().split())


def _number(text: str) -> Fraction | None:
    text = _cosmetic(text)
    m = _NUM_RE.match(text)
    if m:
        return Fraction(m.group(2)) * (-1 if m.group(1) else 1)
    m = _FRAC_RE.match(text)
    if m:
        if m.group(6) is None:  # \frac{a}{b} or \frac ab (single digits)
            sign, num, den = m.group(1), m.group(2) or m.group(3), m.group(4) or m.group(5)
        else:
            sign, num, den = m.group(6), m.group(7), m.group(8)
        if int(den) == 0:
            return None
        return Fraction(int(num), int(den)) * (-1 if sign else 1)
    return None


def _fast(gold: str, answer: str) -> Verdict | None:
    """Decide without a parser when it is certain; None to hand over to math-verify."""
    if _cosmetic(gold) == _cosmetic(answer) and _cosmetic(gold):
        return Verdict(True, "correct", answer, "same text")
    letter = _choice(gold)
    if letter is not None:
        m = _CHOICE_LEAD_RE.match(_unwrap(answer).strip())
        got = m.group(1) if m else None
        if got == letter:
            return Verdict(True, "correct", answer, "choice")
        return Verdict(False, "wrong", answer, "choice" if got else "expected a choice letter")
    words = _text_words(gold)
    if words is not None:
        same = " ".join(_unwrap(answer).lower().strip(" .").split()) == words
        return Verdict(same, "correct" if same else "wrong", answer, "text")
    g, a = _number(gold), _number(answer)
    if g is not None and a is not None:
        if g == a:
            return Verdict(True, "correct", answer, "same number")
        if "." not in gold + answer:  # exact integers or fractions: no rounding can equate them
            return Verdict(False, "wrong", answer, "different number")
    return None


class AnswerChecker:
    """Checks answers in a reusable pool of `workers` processes with a hard per-item deadline."""

    def __init__(self, workers: int = 2, timeout_s: float = 5.0, memory_mb: int | None = 2048):
        self.workers = workers
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._pool: DeadlinePool | None = None
        self.parser_calls = 0  # items that needed math-verify (the rest took a fast path)

    @property
    def pool(self) -> DeadlinePool:
        if self._pool is None:
            self._pool = DeadlinePool(_WORKER, workers=self.workers, timeout_s=self.timeout_s,
                                      memory_mb=self.memory_mb)
        return self._pool

    def check(self, golds: Sequence[object], responses: Sequence[object]) -> list[Verdict]:
        """One verdict per (gold, response): extract each final answer, then check it."""
        if len(golds) != len(responses):
            raise ValueError(f"{len(golds)} gold answers but {len(responses)} responses")
        extractions = [
            extract_answer_detail(r) if isinstance(r, str)
            else Extraction(None, "none", f"response is {type(r).__name__}, not text")
            for r in responses
        ]
        return self.check_extractions(golds, extractions)

    def check_extractions(self, golds: Sequence[object],
                          extractions: Sequence[Extraction]) -> list[Verdict]:
        """Verdicts for answers already extracted (curation extracts once and reuses it)."""
        verdicts: list[Verdict | None] = [None] * len(golds)
        pending: dict[tuple[str, str], list[int]] = {}
        for i, (gold_raw, ex) in enumerate(zip(golds, extractions, strict=True)):
            gold = normalize_gold(gold_raw)
            ans = ex.answer
            if not gold:
                verdicts[i] = Verdict(None, "undecided", ans, "no gold answer")
            elif ans is None and ex.method in ("oversized", "nested"):
                verdicts[i] = Verdict(None, "undecided", None, ex.detail)
            elif ans is None:
                verdicts[i] = Verdict(False, "no_answer", None, ex.detail)
            elif (why := screen_answer(ans)) is not None:
                verdicts[i] = Verdict(None, "undecided", ans[:200], f"answer refused: {why}")
            elif (why := screen_answer(gold)) is not None:
                verdicts[i] = Verdict(None, "undecided", ans, f"gold refused: {why}")
            elif (fast := _fast(gold, ans)) is not None:
                verdicts[i] = fast
            else:
                pending.setdefault((gold, ans), []).append(i)
        if pending:
            keys = list(pending)
            self.parser_calls += len(keys)
            for key, (status, value) in zip(keys, self.pool.map(keys), strict=True):
                ans = key[1]
                if status == OK:
                    reason, detail = value
                    correct = {"correct": True, "wrong": False}.get(reason)
                    verdict = Verdict(correct, reason, ans, detail)
                elif status == TIMEOUT:
                    why = f"no decision within {self.timeout_s} s"
                    verdict = Verdict(None, "timeout", ans, why)
                else:
                    verdict = Verdict(None, "error", ans, str(value))
                for i in pending[key]:
                    verdicts[i] = verdict
        return [v for v in verdicts if v is not None]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> AnswerChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_many(golds: Sequence[object], responses: Sequence[object], timeout_s: float = 5.0,
               workers: int = 2) -> list[Verdict]:
    """Verdicts for many responses, checked in `workers` processes with a per-item deadline."""
    with AnswerChecker(workers=workers, timeout_s=timeout_s) as checker:
        return checker.check(golds, responses)


_shared: AnswerChecker | None = None
_shared_lock = threading.Lock()


def _close_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None


atexit.register(_close_shared)


def check_answer(gold: object, response: object, timeout_s: float = 5.0) -> Verdict:
    """Check one response. Reuses one worker process across calls (started on first need)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.timeout_s != timeout_s:
            _close_shared()
            _shared = AnswerChecker(workers=1, timeout_s=timeout_s)
        return _shared.check([gold], [response])[0]
