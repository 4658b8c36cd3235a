"""Pull the parts out of a model's text: the thinking block and the final answer.

Pure string scanning (regular expressions and brace counting, all linear in the text), so it is
safe on untrusted output and cheap enough to run in the parent process on every trace. Nothing
here parses mathematics; `answers` hands the extracted string to math-verify in a guarded worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Thinking formats: name -> (open marker, close marker, solution open, solution close).
THINKING_FORMATS: dict[str, tuple[str, str, str, str]] = {
    "think": ("<think>", "</think>", "", ""),
    "sky": ("<|begin_of_thought|>", "<|end_of_thought|>",
            "<|begin_of_solution|>", "<|end_of_solution|>"),
}

# An answer longer than this is not an answer but an attack or a runaway generation
# (the {1,1000} bounds in the regexes below match it).
MAX_ANSWER_CHARS = 1000
# Brace nesting deeper than this is rejected before any parser sees it.
MAX_NESTING = 24
# Lines longer than this are not searched for "the answer is ..." (bounds the regex work).
MAX_LINE_CHARS = 2000
# Only the last few \boxed candidates are scanned (avoids quadratic work on hostile text).
MAX_BOX_CANDIDATES = 8

_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)\s*(?=\{)|\\boxed +(?=[^\s{])")
_ANSWER_IS_RE = re.compile(
    r"(?:final answer|the answer)(?: to (?:the|this) (?:problem|question))?\s*"
    r"(?:is|:|=)\s*:?\s*(?P<ans>[^\n]{1,1000}?)\s*(?:\.|,)?\s*(?:\*\*)?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_ANSWER_LABEL_RE = re.compile(
    r"^\s*(?:\*\*|#+\s*)?(?:final\s+)?answer\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*"
    r"(?P<ans>[^\n]{1,1000}?)\s*(?:\*\*)?\s*\.?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_MATH_RE = re.compile(
    r"\$\$(?P<a>[^$]+)\$\$|\$(?P<b>[^$]+)\$|\\\((?P<c>.+?)\\\)|\\\[(?P<d>.+?)\\\]"
)


@dataclass(frozen=True)
class Extraction:
    """What `extract_answer` found: the answer text (or None), how, and why not if refused."""

    answer: str | None
    method: str  # boxed | answer_is | answer_label | final_math | none | oversized | nested
    detail: str = ""


def _balanced(text: str, start: int) -> tuple[str | None, str]:
    """Content of the brace group opening at text[start] == '{'; (None, why) if refused."""
    depth = 0
    max_depth = 0
    limit = min(len(text), start + MAX_ANSWER_CHARS + 2)
    i = start
    while i < limit:
        ch = text[i]
        if ch == "\\":  # an escaped character (\{, \}, \\) never opens or closes a group
            i += 2
            continue
        if ch == "{":
            depth += 1
            max_depth = max(max_depth, depth)
            if max_depth > MAX_NESTING:
                return None, "nested"
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], ""
        i += 1
    if limit < len(text):
        return None, "oversized"
    return None, "unbalanced"


def extract_boxed(text: str) -> Extraction:
    """The last complete \\boxed{...} / \\fbox{...} / \\framebox{...} (balanced braces)."""
    matches = list(_BOX_RE.finditer(text))
    refused: Extraction | None = None
    for m in reversed(matches[-MAX_BOX_CANDIDATES:]):
        end = m.end()
        if end < len(text) and text[end] == "{":
            content, why = _balanced(text, end)
            if content is None:
                if why in ("oversized", "nested") and refused is None:
                    refused = Extraction(None, why, f"\\boxed content {why}")
                continue
        else:  # "\boxed 5": one token
            tok = re.match(r"[^\s$.,;]+", text[end:])
            content = tok.group(0) if tok else ""
        content = content.strip()
        if content:
            return Extraction(content, "boxed")
    return refused or Extraction(None, "none")


def _last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line
    return ""


def _strip_math(ans: str) -> str:
    ans = ans.strip().strip("*").strip()
    m = _MATH_RE.fullmatch(ans)
    if m:
        ans = next(g for g in m.groups() if g is not None)
    return ans.strip().rstrip(".").strip()


def _labelled_answer(part: str) -> Extraction | None:
    """The last "the answer is X" / "Answer: X" line, scanning lines from the end.

    Lines longer than MAX_LINE_CHARS are skipped, which keeps the regexes' work per line bounded
    (a hostile megabyte line cannot make them quadratic).
    """
    for line in reversed(part.splitlines()):
        if len(line) > MAX_LINE_CHARS or "answer" not in line.lower():
            continue
        candidates = []
        for regex, method in ((_ANSWER_IS_RE, "answer_is"), (_ANSWER_LABEL_RE, "answer_label")):
            last = None
            for last in regex.finditer(line):  # noqa: B007 - we want the last match
                pass
            if last is not None:
                candidates.append((last.start(), method, last.group("ans")))
        if candidates:
            _, method, ans = max(candidates)
            ans = _strip_math(ans)
            if ans:
                return Extraction(ans, method)
    return None


def extract_answer_detail(text: str) -> Extraction:
    """Find the final answer in `text`, preferring the part after any thinking block.

    Order: last \\boxed{} (balanced braces) in the answer part, then in the whole text; then the
    last "the answer is X" / "Final answer: X" / "Answer: X"; then the last inline math on the last
    non-empty line. Oversized or deeply nested boxed content is refused (answer None) with a reason.
    """
    if not isinstance(text, str) or not text:
        return Extraction(None, "none")
    _, answer_part = extract_thinking(text, "auto")
    parts = [answer_part, text] if answer_part and answer_part != text else [text]
    refused: Extraction | None = None
    for part in parts:
        found = extract_boxed(part)
        if found.answer is not None:
            return found
        if found.method in ("oversized", "nested"):
            refused = refused or found
    if refused is not None:
        return refused
    for part in parts:
        found = _labelled_answer(part)
        if found is not None:
            return found
    line = _last_line(answer_part or text)[-MAX_LINE_CHARS:]
    maths = list(_MATH_RE.finditer(line))
    if maths:
        ans = next(g for g in maths[-1].groups() if g is not None).strip()
        if ans and len(ans) <= MAX_ANSWER_CHARS:
            return Extraction(ans, "final_math")
    return Extraction(None, "none")


def extract_answer(text: str) -> str | None:
    """The final answer of a response, or None if there is none (see `extract_answer_detail`)."""
    return extract_answer_detail(text).answer


def extract_thinking(text: str, fmt: str = "think") -> tuple[str | None, str]:
    """Split a response into (thinking, answer_part).

    `fmt` is "think" (`<think>...</think>`), "sky" (Sky-T1's begin/end of thought markers; the
    `<|begin_of_solution|>` wrapper is removed from the answer part) or "auto" (whichever markers
    appear). No markers: (None, text). An opening marker without a close (a truncated thought):
    (rest, ""). A close without an opening (templates that put `<think>` in the prompt): the text
    before the close is the thinking.
    """
    if not isinstance(text, str):
        return None, ""
    if fmt == "auto":
        fmts = [f for f, (o, c, _, _) in THINKING_FORMATS.items() if o in text or c in text]
        if not fmts:
            return None, text
        fmt = fmts[0]
    if fmt == "plain":
        return None, text
    if fmt not in THINKING_FORMATS:
        raise ValueError(f"unknown thinking format {fmt!r}; known: plain, auto, "
                         f"{', '.join(THINKING_FORMATS)}")
    open_m, close_m, sol_open, sol_close = THINKING_FORMATS[fmt]
    start = text.find(open_m)
    end = text.rfind(close_m)
    if start < 0 and end < 0:
        return None, text
    if end < 0 or end < start:
        return text[start + len(open_m):].strip(), ""
    think_start = start + len(open_m) if start >= 0 else 0
    thinking = text[think_start:end].strip()
    answer = text[end + len(close_m):].strip()
    if sol_open and answer.startswith(sol_open):
        answer = answer[len(sol_open):]
        if answer.rstrip().endswith(sol_close):
            answer = answer.rstrip()[: -len(sol_close)]
        answer = answer.strip()
    return thinking, answer


def check_markers(text: str, fmt: str = "think") -> str | None:
    """Why the thought markers of `text` are not well formed, or None when they are.

    Well formed: exactly one opening and one closing marker, in that order, a non-empty thought,
    and something after the close (for "sky", also one begin/end of solution pair after it).
    """
    if fmt == "plain":
        return None
    if fmt not in THINKING_FORMATS:
        raise ValueError(f"unknown thinking format {fmt!r}")
    open_m, close_m, sol_open, sol_close = THINKING_FORMATS[fmt]
    n_open, n_close = text.count(open_m), text.count(close_m)
    if n_open == 0 and n_close == 0:
        return f"no {open_m} ... {close_m} block"
    if n_open != 1 or n_close != 1:
        return f"unbalanced markers: {n_open} x {open_m}, {n_close} x {close_m}"
    start, end = text.find(open_m), text.find(close_m)
    if end < start:
        return f"{close_m} before {open_m}"
    if not text[start + len(open_m):end].strip():
        return "empty thought"
    rest = text[end + len(close_m):]
    if not rest.strip():
        return f"nothing after {close_m}"
    if sol_open and (rest.count(sol_open) != 1 or rest.count(sol_close) != 1
                     or rest.find(sol_close) < rest.find(sol_open)):
        return f"unbalanced {sol_open} ... {sol_close}"
    return None
