"""Check a response's final answer against a gold answer, safely and in bounded time.

`check_answer(gold, response)` and `check_many(golds, responses, ...)` return a `Verdict` per
response. The response is untrusted text. The steps, and which part does each:

1. **thinking cut** (here): only the text after `</think>` (or Sky-T1's end-of-thought marker)
   can hold the answer; a thought cut off before its closing marker has none (`no_answer`).
2. **screen** (here, `screen`): hostile shapes (megabyte or deeply nested answers, exponent
   towers, code, runaway repetition) are refused as `undecided` before any parser runs.
3. **extraction mode**: `boxed` (curation's default: the teacher was asked for a box, a reply
   without one is a format failure, `no_answer`) or `full` (evaluation's default: whatever
   math-verify's extraction finds: a box first, then "final answer is" / "Answer:", then the last
   math in the text). A reply with no box and no answer line that is a refusal or ends with a
   question is `no_answer`, never an answer taken from its last `$...$`.
4. **fast path** (here): one box whose content already equals the gold (same text, or the same
   plain number), or differs from it as an exact number, is decided without a parser; a gold in
   words (`\\text{Evelyn}`) is compared as words; a multiple-choice gold (a letter) is graded by
   letter (`choice`).
5. **math-verify** (`worker`, in a `DeadlinePool` process with a hard deadline and a memory
   cap): `parse` extracts the answer from the final part and from the gold, `verify` compares.

Reasons: correct, wrong, no_answer (no answer found; counts as not correct), undecided (the
checker cannot tell: unparseable or refused input), timeout, error (the worker failed).
`correct` is True / False for correct / wrong / no_answer and None otherwise. `method` says which
extraction found the answer: boxed, answer_phrase, last_math (math-verify's unanchored match),
final_line (a multiple-choice letter alone on the last line), none, or oversized / nested (a box
refused by the screen).
"""

from __future__ import annotations

import atexit
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from longthought.answers.choice import gold_letter, response_letter, unwrap
from longthought.answers.extract import extract_answer_detail, unanswered
from longthought.answers.gold import normalize_gold
from longthought.answers.pool import OK, TIMEOUT, DeadlinePool
from longthought.answers.screen import screen_answer, screen_final
from longthought.answers.thinking import FinalPart, final_part

REASONS = ("correct", "wrong", "no_answer", "undecided", "timeout", "error")
EXTRACTIONS = ("boxed", "full")
DEFAULT_EXTRACTION = "full"  # what evaluation does; curation defaults to "boxed"
# math-verify reads at most this much of a final part, from its end (the answer is at the end;
# its patterns prefer the rightmost match).
MAX_PARSE_CHARS = 16_000
_HANDLER = "longthought.answers.worker:run"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check. `correct` is None when the checker could not decide."""

    correct: bool | None
    reason: str  # one of REASONS
    extracted: str | None
    detail: str = ""  # why undecided / error, or which fast path decided
    method: str = "none"  # which extraction found the answer


@dataclass(frozen=True)
class Pending:
    """A check the parser must decide: the worker's input and the hand scan's candidate."""

    item: tuple  # (gold, final text, extraction, boxes in the answer, kind, hint)
    extracted: str | None
    method: str


def check_extraction(value: object, where: str = "answer_extraction") -> str:
    """`value` if it is a known extraction mode, else a clear error naming `where`."""
    if value not in EXTRACTIONS:
        raise ValueError(f"{where} must be one of {list(EXTRACTIONS)}, got {value!r}")
    return str(value)


# --- fast paths decided in this process (no parser involved) ---------------------------------

_COSMETIC_RE = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\:|\\ |\\displaystyle|\s+")
_WORDS_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*[A-Za-z]$")
_NUM_RE = re.compile(r"^(-?)(\d+(?:\.\d+)?)$")
_FRAC_RE = re.compile(r"^(-?)\\[dt]?frac(?:\{(\d+)\}|(\d))(?:\{(\d+)\}|(\d))$|^(-?)(\d+)/(\d+)$")


def _cosmetic(text: str) -> str:
    text = text.strip().strip("$").strip()
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _COSMETIC_RE.sub("", text)
    return text.rstrip(".")


def text_words(gold: str) -> str | None:
    """The words of a text gold (`\\text{Evelyn}`), lower-cased; None if gold is not text."""
    if "\\text" not in gold and "\\mbox" not in gold and "\\mathrm" not in gold:
        return None
    inner = unwrap(gold)
    if not _WORDS_RE.match(inner) or not re.search(r"[A-Za-z]{2}", inner):
        return None
    return " ".join(inner.lower().split())


def number(text: str) -> Fraction | None:
    """A plain integer, decimal or fraction (`-3`, `0.5`, `\\frac{1}{2}`, `1/2`, AIME's
    `\\text{(073)}`), else None."""
    text = _cosmetic(text)
    if "\\text" in text or "\\mathrm" in text or "\\mbox" in text:
        text = _cosmetic(unwrap(text))
    if text.startswith("(") and text.endswith(")") and text[1:-1].isdigit():
        text = text[1:-1]  # AIME's "(073)"
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


def same_cheaply(a: str, b: str) -> bool | None:
    """True / False when two answers are equal / different without a parser; None to ask it."""
    if _cosmetic(a) == _cosmetic(b) and _cosmetic(a):
        return True
    x, y = number(a), number(b)
    if x is not None and y is not None:
        if x == y:
            return True
        if "." not in a + b:  # exact integers or fractions: no rounding can equate them
            return False
    return None


def _fast(gold: str, answer: str) -> Verdict | None:
    """Decide a single boxed answer without a parser when it is certain; None to parse."""
    words = text_words(gold)
    if words is not None:
        same = " ".join(unwrap(answer).lower().strip(" .").split()) == words
        return Verdict(same, "correct" if same else "wrong", answer, "compared as words",
                       "boxed")
    same = same_cheaply(gold, answer)
    if same is None:
        return None
    return Verdict(same, "correct" if same else "wrong", answer,
                   "same text or number" if same else "different number", "boxed")


def _tail(text: str) -> str:
    if len(text) <= MAX_PARSE_CHARS:
        return text
    cut = text[-MAX_PARSE_CHARS:]
    nl = cut.find("\n")
    return cut[nl + 1:] if 0 <= nl < 2000 else cut


def prepare(gold_raw: object, final: FinalPart, extraction: str = DEFAULT_EXTRACTION,
            problem: str | None = None) -> Verdict | Pending:
    """Everything decidable without a parser (pure string work, safe in any process): a
    Verdict, or the Pending item math-verify must decide."""
    gold = normalize_gold(gold_raw)
    if not gold:
        return Verdict(None, "undecided", None, "no gold answer")
    if final.text is None:
        return Verdict(False, "no_answer", None, final.detail)
    text = final.text
    if (why := screen_answer(gold)) is not None:
        return Verdict(None, "undecided", None, f"gold refused: {why}")
    scan = extract_answer_detail(text)
    if scan.method in ("oversized", "nested"):
        return Verdict(None, "undecided", None, scan.detail, scan.method)
    if (why := screen_final(text)) is not None:
        return Verdict(None, "undecided", None, f"response refused: {why}")
    if scan.answer is not None and (why := screen_answer(scan.answer)) is not None:
        return Verdict(None, "undecided", scan.answer[:200], f"answer refused: {why}",
                       scan.method)
    boxed = scan.method == "boxed"
    if extraction == "boxed" and not boxed:
        return Verdict(False, "no_answer", None, "no \\boxed{} answer after the thought")
    letter = gold_letter(gold)
    if letter is not None:
        got, how = response_letter(text, problem)
        if got is None and scan.answer is not None:  # an answer, but not one of the options
            return Verdict(False, "wrong", scan.answer, "expected a choice letter", scan.method)
        if got is None:
            return Verdict(False, "no_answer", None, "no choice letter found", "none")
        ok = got == letter
        return Verdict(ok, "correct" if ok else "wrong", got, "graded by letter", how)
    if boxed and scan.boxes == 1 and (fast := _fast(gold, scan.answer)) is not None:
        return fast
    if scan.answer is None and (why := unanswered(text)) is not None:
        return Verdict(False, "no_answer", None, why)
    kind = "text" if text_words(gold) is not None else "math"
    return Pending((gold, _tail(text), extraction, scan.boxes, kind, scan.answer), scan.answer,
                   "boxed" if boxed else "none")


def response_final(response: object) -> FinalPart:
    """The final part of a response (see `thinking.final_part`); non-text has none."""
    if not isinstance(response, str):
        return FinalPart(None, None, f"response is {type(response).__name__}, not text")
    return final_part(response)


class AnswerChecker:
    """Checks answers in a reusable pool of `workers` processes with a hard per-item deadline.

    `extraction` is the default mode (`full` unless a call says otherwise).
    """

    def __init__(self, workers: int = 2, timeout_s: float = 5.0, memory_mb: int | None = 2048,
                 extraction: str = DEFAULT_EXTRACTION):
        self.workers = workers
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.extraction = check_extraction(extraction)
        self._pool: DeadlinePool | None = None
        self.parser_calls = 0  # items that needed math-verify (the rest took a fast path)
        self._same: dict[tuple[str, str], bool | None] = {}

    @property
    def pool(self) -> DeadlinePool:
        if self._pool is None:
            self._pool = DeadlinePool(_HANDLER, workers=self.workers, timeout_s=self.timeout_s,
                                      memory_mb=self.memory_mb, chunk=16)
        return self._pool

    def check(self, golds: Sequence[object], responses: Sequence[object], *,
              problems: Sequence[str | None] | None = None,
              extraction: str | None = None) -> list[Verdict]:
        """One verdict per (gold, response); `problems` (optional) give multiple-choice options."""
        if len(golds) != len(responses):
            raise ValueError(f"{len(golds)} gold answers but {len(responses)} responses")
        if problems is not None and len(problems) != len(golds):
            raise ValueError(f"{len(golds)} gold answers but {len(problems)} problems")
        mode = check_extraction(extraction or self.extraction)
        probs = problems if problems is not None else [None] * len(golds)
        return self.resolve([prepare(g, response_final(r), mode, p)
                             for g, r, p in zip(golds, responses, probs, strict=True)])

    def resolve(self, prepared: Sequence[Verdict | Pending]) -> list[Verdict]:
        """Verdicts for prepared checks: the pending ones go to math-verify (each distinct item
        once) in the worker pool."""
        verdicts: list[Verdict | None] = [p if isinstance(p, Verdict) else None for p in prepared]
        pending: dict[tuple, list[int]] = {}
        for i, p in enumerate(prepared):
            if isinstance(p, Pending):
                pending.setdefault(p.item, []).append(i)
        if pending:
            keys = list(pending)
            self.parser_calls += len(keys)
            results = self.pool.map([("grade", k) for k in keys])
            for key, (status, value) in zip(keys, results, strict=True):
                first = prepared[pending[key][0]]
                assert isinstance(first, Pending)
                if status == OK:
                    reason, detail, extracted, method = value
                    correct = {"correct": True, "wrong": False, "no_answer": False}.get(reason)
                    verdict = Verdict(correct, reason, extracted, detail, method)
                elif status == TIMEOUT:
                    verdict = Verdict(None, "timeout", first.extracted,
                                      f"no decision within {self.timeout_s} s", first.method)
                else:
                    verdict = Verdict(None, "error", first.extracted, str(value), first.method)
                for i in pending[key]:
                    verdicts[i] = verdict
        return [v for v in verdicts if v is not None]

    def same(self, pairs: Sequence[tuple[str, str]]) -> list[bool | None]:
        """Whether each pair of extracted answers is mathematically equal (None: undecided).

        Cheap cases (same text, plain numbers) are decided here; the rest by math-verify in the
        worker pool, time-bounded, each distinct pair once per checker (cached).
        """
        todo: list[tuple[str, str]] = []
        for a, b in pairs:
            key = (a, b)
            if key in self._same:
                continue
            cheap = None
            if screen_answer(a) is not None or screen_answer(b) is not None:
                cheap = a == b
            else:
                cheap = same_cheaply(a, b)
            if cheap is not None:
                self._same[key] = cheap
            else:
                self._same[key] = None
                todo.append(key)
        if todo:
            self.parser_calls += len(todo)
            for key, (status, value) in zip(todo, self.pool.map([("equal", k) for k in todo]),
                                            strict=True):
                self._same[key] = value if status == OK else None
        return [self._same[(a, b)] for a, b in pairs]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> AnswerChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_many(golds: Sequence[object], responses: Sequence[object], timeout_s: float = 5.0,
               workers: int = 2, *, extraction: str = DEFAULT_EXTRACTION,
               problems: Sequence[str | None] | None = None) -> list[Verdict]:
    """Verdicts for many responses, checked in `workers` processes with a per-item deadline."""
    with AnswerChecker(workers=workers, timeout_s=timeout_s, extraction=extraction) as checker:
        return checker.check(golds, responses, problems=problems)


_shared: AnswerChecker | None = None
_shared_lock = threading.Lock()


def _close_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None


atexit.register(_close_shared)


def check_answer(gold: object, response: object, timeout_s: float = 5.0, *,
                 extraction: str = DEFAULT_EXTRACTION, problem: str | None = None) -> Verdict:
    """Check one response as evaluation does (math-verify's full extraction unless told
    `extraction="boxed"`). Reuses one worker process across calls (started on first need)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.timeout_s != timeout_s:
            _close_shared()
            _shared = AnswerChecker(workers=1, timeout_s=timeout_s)
        return _shared.check([gold], [response], problems=[problem],
                             extraction=extraction)[0]
