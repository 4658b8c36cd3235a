"""The cheap, hand-written answer scan: boxed groups, labelled answer lines, refusals.

Pure string scanning (regular expressions and brace counting, all linear in the text), so it runs
on untrusted text in any process. It does not decide what the answer *is* for grading: that is
math-verify's extraction, run in a guarded worker (`worker`). What this scan is for:

- the **screen**: the candidate it finds is checked for hostile shapes before any parser runs;
- the **fast path**: a single boxed answer that already equals the gold needs no parser;
- the **boxed requirement** (curation's default): a reply with no `\\boxed{}` after the thought
  is a format failure;
- telling a **refusal** (no box, no answer line, an apology or a closing question) from an answer,
  so that "for example, $12 + 34$?" is `no_answer`, not a wrong answer of 46.

Several boxes are grouped as math-verify groups them (`extract_boxed_content`): boxes closer than
10 characters, or closer than 70 with a separator (and, or, comma, semicolon) and different
contents, form one answer (`\\boxed{1}, \\boxed{2}` is the set {1, 2}).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# An answer longer than this is not an answer but an attack or a runaway generation.
MAX_ANSWER_CHARS = 1000
# Brace nesting deeper than this is rejected before any parser sees it.
MAX_NESTING = 24
# Lines longer than this are not searched for "the answer is ..." (bounds the regex work).
MAX_LINE_CHARS = 2000
# Only the last few \boxed candidates are scanned (avoids quadratic work on hostile text).
MAX_BOX_CANDIDATES = 8

_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)\s*(?=\{)|\\boxed +(?=[^\s{])")
_SEPARATOR_RE = re.compile(r"\b(?:and|or)\b|,|;")
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
_REFUSAL_RE = re.compile(
    r"^\W*(?:I'?m sorry|I am sorry|sorry\b|I apologi[sz]e|unfortunately\b|"
    r"I (?:can(?:no|')t|could(?:n't| not)|am unable|'m unable|won't|will not|do not know|"
    r"don't know))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Extraction:
    """What the scan found: the candidate answer (or None), how, and why not if refused.

    method: boxed | answer_is | answer_label | none | oversized | nested.
    boxes: how many boxes form the answer (several are one set/tuple answer).
    """

    answer: str | None
    method: str
    detail: str = ""
    boxes: int = 0


def _balanced(text: str, start: int) -> tuple[str | None, str, int]:
    """(content, why refused, end index) of the brace group opening at text[start] == '{'."""
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
                return None, "nested", i
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], "", i
        i += 1
    if limit < len(text):
        return None, "oversized", i
    return None, "unbalanced", i


def box_spans(text: str, last: int | None = MAX_BOX_CANDIDATES) -> list[tuple[int, int, str]]:
    """(start, index of the closing brace, content) of the `last` complete boxes, in order."""
    return _boxes(text, last)[0]


def _boxes(text: str, last: int | None = MAX_BOX_CANDIDATES
           ) -> tuple[list[tuple[int, int, str]], Extraction | None]:
    """The last complete boxes as (start, end, content), in text order, and a refusal if the
    last box was oversized or too deeply nested."""
    matches = list(_BOX_RE.finditer(text))
    matches = matches[-last:] if last else matches
    found: list[tuple[int, int, str]] = []
    refused: Extraction | None = None
    for m in matches:
        end = m.end()
        if end < len(text) and text[end] == "{":
            content, why, close = _balanced(text, end)
            if content is None:
                if why in ("oversized", "nested"):
                    refused = Extraction(None, why, f"\\boxed content {why}")
                continue
        else:  # "\boxed 5": one token
            tok = re.match(r"[^\s$.,;]+", text[end:])
            content = tok.group(0) if tok else ""
            close = end + len(content) - 1
        content = content.strip()
        if content:
            found.append((m.start(), close, content))
            refused = None  # only the last box's refusal counts
    return found, refused


def boxed_answer(text: str) -> Extraction:
    """The last group of boxes (grouped as math-verify groups them), joined with ", "."""
    found, refused = _boxes(text)
    if refused is not None:  # the last box is the answer, and it is refused
        return refused
    if not found:
        return Extraction(None, "none")
    group = [found[-1]]
    for prev in reversed(found[:-1]):
        between = text[prev[1] + 1 : group[0][0]]
        if len(between) < 10 or (len(between) < 70 and prev[2] != group[0][2]
                                 and _SEPARATOR_RE.search(between)):
            group.insert(0, prev)
        else:
            break
    contents: list[str] = []
    for _, _, c in group:
        if not contents or contents[-1] != c:
            contents.append(c)
    return Extraction(", ".join(contents), "boxed", boxes=len(contents))


def has_box(text: str) -> bool:
    return _BOX_RE.search(text) is not None


def _strip_math(ans: str) -> str:
    ans = ans.strip().strip("*").strip()
    m = _MATH_RE.fullmatch(ans)
    if m:
        ans = next(g for g in m.groups() if g is not None)
    return ans.strip().rstrip(".").strip()


def labelled_answer(part: str) -> Extraction | None:
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


def extract_answer_detail(final: str) -> Extraction:
    """The candidate answer of a final part (the text after any thinking): its last box group,
    else its last labelled answer line. Oversized or deeply nested boxes are refused (answer
    None, method oversized/nested). No "last math on the line" guess: that is math-verify's job,
    and here it took the `$12 + 34$` of a refusal for an answer."""
    if not isinstance(final, str) or not final:
        return Extraction(None, "none")
    found = boxed_answer(final)
    if found.answer is not None or found.method in ("oversized", "nested"):
        return found
    return labelled_answer(final) or Extraction(None, "none")


def extract_answer(final: str) -> str | None:
    """The candidate answer of a final part, or None (see `extract_answer_detail`)."""
    return extract_answer_detail(final).answer


def unanswered(final: str) -> str | None:
    """Why a final part with no box and no answer line holds no answer: empty, a refusal, or a
    closing question; None when it may hold one (math-verify then looks for it)."""
    text = final.strip()
    if not text:
        return "nothing after the thought"
    if _REFUSAL_RE.match(text):
        return "a refusal, not an answer"
    if text.rstrip("\"'*`)» ").endswith("?"):
        return "ends with a question, not an answer"
    return None
