"""Per-trace filters: everything curation can decide from one trace alone.

`analyse_batch` runs in a worker process (through `DeadlinePool`) on a batch of raw trace rows and
returns one small `RowResult` per row: the first failing early filter (malformed, truncated,
thought_markers, final_answer), the extracted final answer for the correctness check, and the
measurements the later filters need (length in tokens, repeated n-gram ratio, script share). The
parent applies them in funnel order. All of it is string scanning and numpy: no parser sees the
text here.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from longthought.curate.extract import check_markers, extract_answer_detail
from longthought.curate.formatting import assistant_text, split_trace

STATUSES = ("ok", "failed", "skipped_budget")
REQUIRED_TEXT = ("trace_id", "task", "problem_id", "problem")

# Unicode ranges of the scripts the language filter knows (letters only).
SCRIPTS = {
    "latin": "A-Za-z\u00c0-\u024f\u1e00-\u1eff",
    "greek": "\u0370-\u03ff\u1f00-\u1fff",
    "cyrillic": "\u0400-\u052f",
    "arabic": "\u0600-\u06ff\u0750-\u077f",
    "hebrew": "\u0590-\u05ff",
    "devanagari": "\u0900-\u097f",
    "cjk": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "kana": "\u3040-\u30ff",
    "hangul": "\uac00-\ud7af\u1100-\u11ff",
}
_LETTER_RE = re.compile(r"[^\W\d_]")
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


@dataclass(slots=True)
class RowResult:
    """What one trace row told us; small enough to keep for 100k+ rows."""

    row: int  # row number in its file
    sample_id: str
    task: str
    problem_id: str
    problem: str
    answer: str
    filter: str | None = None  # first failing early filter
    reason: str = ""
    detail: str | None = None
    extracted: str | None = None
    method: str = "none"
    extract_detail: str = ""
    tokens: int | None = None
    tokens_source: str = ""
    repetition: float = 0.0
    script_share: float | None = None
    response_hash: str = ""


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else None


def repetition_ratio(text: str | list[str], n: int) -> float:
    """Share of word n-grams that repeat an earlier one: 0 = no repeats, near 1 = a loop."""
    words = text.split() if isinstance(text, str) else text
    if len(words) < n + 1:
        return 0.0
    ids = np.array(list(map(hash, words)), dtype=np.int64).view(np.uint64)
    grams = np.zeros(len(words) - n + 1, dtype=np.uint64)
    mult = np.uint64(1099511628211)
    with np.errstate(over="ignore"):
        for j in range(n):
            grams = grams * mult + ids[j : len(ids) - n + 1 + j]
    return 1.0 - len(np.unique(grams)) / len(grams)


def script_share(text: str, scripts: list[str]) -> float | None:
    """Share of letters written in `scripts` (None when the text has no letters)."""
    if text.isascii():  # the common case, decided at C speed: every letter is Latin
        if not any(c.isalpha() for c in text):
            return None
        return 1.0 if "latin" in scripts else 0.0
    letters = _LETTER_RE.subn("", text)[1]
    if letters == 0:
        return None
    ranges = "".join(SCRIPTS[s] for s in scripts)
    return re.subn(f"[{ranges}]", "", text)[1] / letters


@lru_cache(maxsize=2)
def _tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


def analyse_batch(item: dict) -> list[RowResult]:
    """Handler for `DeadlinePool`: item = {batch (an Arrow record batch), spec, offset}; one
    RowResult per row."""
    spec, offset = item["spec"], item["offset"]
    filters, fmt = spec["filters"], spec["format"]
    records = item["batch"].to_pylist()
    out = [_analyse(rec, offset + i, filters, fmt) for i, rec in enumerate(records)]
    tok_name = filters.get("tokenizer")
    if tok_name:
        todo = [(r, rec) for r, rec in zip(out, records, strict=True)
                if r.filter is None]
        if todo:
            texts = [assistant_text(*split_trace(rec), fmt["thinking"]) for _, rec in todo]
            counts = _tokenizer(tok_name)(texts, add_special_tokens=False)["input_ids"]
            for (r, _), ids in zip(todo, counts, strict=True):
                r.tokens, r.tokens_source = len(ids), f"tokenizer {tok_name}"
    return out


def _analyse(rec: dict, row: int, filters: dict, fmt: dict) -> RowResult:
    ids = {k: _text(rec.get(k)) for k in (*REQUIRED_TEXT, "answer")}
    r = RowResult(row=row, sample_id=ids["trace_id"] or "", task=ids["task"] or "",
                  problem_id=ids["problem_id"] or "", problem=ids["problem"] or "",
                  answer=ids["answer"] or "")

    def reject(name: str, reason: str, detail: str | None = None) -> RowResult:
        r.filter, r.reason, r.detail = name, reason, detail
        return r

    missing = [k for k in REQUIRED_TEXT if not (ids[k] or "").strip()]
    if missing:
        return reject("malformed", f"missing {', '.join(missing)}")
    if ids["answer"] is None:
        return reject("malformed", "missing answer (gold)")
    status = rec.get("status")
    if status in ("failed", "skipped_budget"):  # a partial collection: no response (yet)
        return reject("missing", f"status={status}", _text(rec.get("error")))
    if status != "ok":
        return reject("malformed", f"status={status}", _text(rec.get("error")))
    content, reasoning = _text(rec.get("content")), _text(rec.get("reasoning_content"))
    if not (content or "").strip() and not (reasoning or "").strip():
        return reject("malformed", "empty content")
    content = content or ""
    finish = _text(rec.get("finish_reason"))
    if filters["truncated"] and finish == "length":
        return reject("truncated", "finish_reason=length")
    markers = filters["thought_markers"]
    if markers and not (reasoning or "").strip():
        why = _marker_problem(content, markers)
        if why:
            return reject("thought_markers", why)
    thinking, final = split_trace(rec)
    found = extract_answer_detail(final) if final else extract_answer_detail("")
    r.extracted, r.method, r.extract_detail = found.answer, found.method, found.detail
    if filters["final_answer"] and found.answer is None:
        if found.method in ("oversized", "nested"):
            return reject("final_answer", f"answer refused: {found.detail}")
        return reject("final_answer", "no final answer after the thought" if thinking
                      else "no final answer")
    usage = rec.get("completion_tokens")
    if usage is not None and not (isinstance(usage, float) and math.isnan(usage)):
        r.tokens, r.tokens_source = int(usage), "usage.completion_tokens"
    else:  # no usage reported: a rough count of words and symbols, and say so
        r.tokens = len(_TOKEN_RE.findall(f"{thinking or ''}\n{final}"))
        r.tokens_source = "approximate (no usage in the trace)"
    words = f"{thinking or ''}\n{final}".split()
    rep = filters.get("repetition")
    if rep:
        r.repetition = repetition_ratio(words, int(rep["ngram"]))
    lang = filters.get("language")
    if lang:
        r.script_share = script_share(f"{thinking or ''}\n{final}", lang["scripts"])
    body = " ".join(words)
    r.response_hash = hashlib.blake2b(body.encode("utf-8"), digest_size=12).hexdigest()
    return r


def _marker_problem(content: str, markers: str | bool) -> str | None:
    """Why the thought markers are missing or broken (markers: True/'auto', 'think' or 'sky')."""
    if markers is True or markers == "auto":
        sky = "<|begin_of_thought|>" in content or "<|end_of_thought|>" in content
        return check_markers(content, "sky" if sky else "think")
    return check_markers(content, str(markers))
