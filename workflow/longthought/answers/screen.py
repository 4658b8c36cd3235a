"""The cheap screen: hostile shapes refused before any parser sees them (answer `undecided`).

Linear scans only. `screen_answer` looks at a candidate answer (a box's content, an answer line,
a gold answer): megabyte strings, deep nesting, code, exponent towers, huge exponents and
factorials. `screen_final` looks at the whole text math-verify would read: deep nesting and
runaway repetition (a generation stuck in a loop is not an answer, and a megabyte of it would
only cost the parser time).
"""

from __future__ import annotations

import re
import zlib

from longthought.answers.extract import MAX_ANSWER_CHARS, MAX_NESTING

# A final part longer than this is checked for runaway repetition (compression ratio).
LOOP_CHECK_CHARS = 10_000
# Natural language and mathematics compress 3-6x; a loop compresses far more.
MAX_COMPRESSION_RATIO = 20.0

_CODE_RE = re.compile(
    r"__|\bimport\b|\blambda\b|\beval\s*\(|\bexec\s*\(|\bcompile\s*\(|\bgetattr\b|\bos\.|"
    r"\bsubprocess\b|\bopen\s*\(|\bglobals\b|\blocals\b"
)
_BIG_EXP_RE = re.compile(r"(?:\^|\*\*)\s*\{?\s*\d{7,}")
_BIG_FACT_RE = re.compile(r"\d{6,}\s*!")
_CHAIN_RE = re.compile(r"(?:\^|\*\*)\s*[\w.]+\s*(?:\^|\*\*)\s*[\w.]+\s*(?:\^|\*\*)")
_OPENERS = str.maketrans({c: "" for c in "{(["})


def tower_height(text: str) -> int:
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


def too_nested(text: str) -> bool:
    """Whether brackets ({, (, [ alike) nest deeper than MAX_NESTING (unmatched closers ignored).
    Texts with few openers are decided by counting them, at C speed."""
    if len(text) - len(text.translate(_OPENERS)) <= MAX_NESTING:
        return False
    depth = 0
    for ch in text:
        if ch in "{([":
            depth += 1
            if depth > MAX_NESTING:
                return True
        elif ch in "})]":
            depth = max(0, depth - 1)
    return False


def screen_answer(text: str) -> str | None:
    """Why the candidate answer `text` is refused before any parser sees it, or None."""
    if len(text) > MAX_ANSWER_CHARS:
        return f"longer than {MAX_ANSWER_CHARS} characters ({len(text)})"
    if too_nested(text):
        return f"nested deeper than {MAX_NESTING} levels"
    if _CODE_RE.search(text):
        return "looks like code"
    if tower_height(text) >= 3 or _CHAIN_RE.search(text):
        return "exponent tower"
    if _BIG_EXP_RE.search(text):
        return "exponent with 7 or more digits"
    if _BIG_FACT_RE.search(text):
        return "factorial of a 6-digit number"
    return None


def screen_final(text: str) -> str | None:
    """Why the final part `text` is not handed to the parser at all, or None."""
    if too_nested(text):
        return f"nested deeper than {MAX_NESTING} levels"
    if len(text) > LOOP_CHECK_CHARS:
        raw = text.encode("utf-8", "replace")
        ratio = len(raw) / max(1, len(zlib.compress(raw, 1)))
        if ratio > MAX_COMPRESSION_RATIO:
            return f"runaway repetition ({len(text)} characters compress {ratio:.0f}x)"
    return None
