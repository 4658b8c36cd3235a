"""Multiple-choice answers (GPQA): graded by letter.

A gold that is a single letter (`C`, `(C)`, `\\text{(C)}`) makes the question multiple choice.
The response's letter is read, in this order, from the last box (`\\boxed{C}`, `\\boxed{(C)}`,
`\\boxed{\\text{C}}`, or a box holding an option's text), an answer phrase (`Answer: C`,
`the answer is (C)`, `**Answer: (C)**`, or an option's text after it), or a final line that is
only a letter. math-verify's string extraction misses `(C)` (its anchors want a space before the
letter), so this small scanner does it; it is plain regular expressions on bounded text.
Options come from the problem text, lines such as `A) ...`, `(B) ...` or `C. ...`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from longthought.answers.extract import MAX_LINE_CHARS, boxed_answer

LETTERS = "ABCDEFGHIJ"
_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox|textnormal|mathbf)\s*\{([^{}]*)\}")
_GOLD_RE = re.compile(r"^\(?([A-J])\)?$")
_LETTER_RE = re.compile(r"^\(?\s*([A-J])\s*\)?(?:[.:)]|\s|$)")
_OPTION_RE = re.compile(r"^\s*\(?([A-J])[).:]\s+(.+?)\s*$", re.MULTILINE)
DEFAULT_LETTERS = "ABCDE"
_PHRASE_TEXT_RE = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:)\s*:?\s*(?P<ans>[^\n]{1,300}?)\s*\.?\s*$",
    re.IGNORECASE | re.MULTILINE,
)


@lru_cache(maxsize=16)
def _phrase_re(letters: str) -> re.Pattern[str]:
    """"Answer: C", "the answer is (C)", "correct option: C": the phrase in any case, the letter
    upper case and one of `letters` (so "Answer: I think" is not option I)."""
    return re.compile(
        r"(?i:final answer|answer|correct (?:option|choice))\s*(?i:is)?\s*[:：=]?\s*"
        r"(?:\*\*)?\s*(?i:option\s+|choice\s+)?\(?\s*([" + letters + r"])\s*\)?"
        r"(?![A-Za-z0-9])"
    )


def unwrap(text: str) -> str:
    prev = None
    while prev != text:
        prev, text = text, _WRAP_RE.sub(r"\1", text)
    return text.strip().strip("$").strip()


def gold_letter(gold: str) -> str | None:
    """The letter of a multiple-choice gold, or None if the gold is not a single letter."""
    m = _GOLD_RE.match(unwrap(gold).strip())
    return m.group(1) if m else None


def options(problem: str | None) -> dict[str, str]:
    """Letter -> option text from a problem's lettered lines (the last run of them)."""
    if not problem:
        return {}
    found: dict[str, str] = {}
    for m in _OPTION_RE.finditer(problem):
        letter = m.group(1)
        if letter == "A":
            found = {}
        found[letter] = m.group(2)
    return found if len(found) >= 2 else {}


def _norm(text: str) -> str:
    return " ".join(unwrap(text).lower().strip(" .").split())


def _letter_of(candidate: str, opts: dict[str, str]) -> str | None:
    cand = unwrap(candidate).strip().strip("*").strip()
    m = _LETTER_RE.match(cand)
    if m and (len(cand) <= 3 or not opts or cand[m.end():].strip() == ""):
        return m.group(1)
    if m and opts and _norm(cand[m.end():]) == _norm(opts.get(m.group(1), "")):
        return m.group(1)  # "(C) 42 km", the letter with its option's text
    norm = _norm(cand)
    matches = [k for k, v in opts.items() if _norm(v) == norm]
    return matches[0] if len(matches) == 1 else None


def response_letter(final: str, problem: str | None = None) -> tuple[str | None, str]:
    """(letter, how it was found) from the final part of a response; (None, "none") if none."""
    opts = options(problem)
    valid = "".join(sorted(opts)) or DEFAULT_LETTERS
    boxed = boxed_answer(final)
    if boxed.answer is not None:
        letter = _letter_of(boxed.answer, opts)
        if letter:
            return letter, "boxed"
    lines = [ln for ln in final.splitlines() if ln.strip() and len(ln) <= MAX_LINE_CHARS]
    for line in reversed(lines):
        hits = list(_phrase_re(valid).finditer(line))
        if hits:
            return hits[-1].group(1), "answer_phrase"
        if "answer" in line.lower() or "option" in line.lower():  # "Answer: I think it's (B)"
            paren = re.findall(r"\(([" + valid + r"])\)", line)
            if paren:
                return paren[-1], "answer_phrase"
        if opts:
            m = _PHRASE_TEXT_RE.search(line)
            if m and (letter := _letter_of(m.group("ans"), opts)):
                return letter, "answer_phrase"
    if lines:
        last = lines[-1].strip().strip("*").strip()
        m = _LETTER_RE.match(unwrap(last))
        if m and len(unwrap(last)) <= 4 and m.group(1) in valid:
            return m.group(1), "final_line"
    return None, "none"
