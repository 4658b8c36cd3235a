"""Per-trace filters: everything curation can decide from one trace alone.

`analyse_batch` runs in a worker process (through `DeadlinePool`) on a batch of raw trace rows and
returns one small `RowResult` per row: the first failing early filter (malformed, truncated,
thought_markers, final_answer), the answer check as far as it goes without a parser
(`answers.prepare`: the thinking cut, the screen, the boxed requirement, the fast path; what is
left is a pending item for math-verify), and the measurements the later filters need (length in
tokens, repeated n-gram ratio, script share). The parent applies them in funnel order. All of it
is string scanning and numpy: no parser sees the text here.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from longthought.answers.checker import Pending, Verdict, prepare
from longthought.answers.thinking import FinalPart, check_markers, final_part
from longthought.curate.export import shard_path, write_shard
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
    verdict: Verdict | None = None  # the answer check, when decided without a parser
    pending: Pending | None = None  # else what math-verify must decide (dropped once decided)
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
    """Share of word n-grams that repeat an earlier one: 0 = no repeats, near 1 = a loop.

    Words become integer codes (`pandas.factorize`, exact: no two words share a code), n-grams a
    rolling hash of their codes, counted with a hash table (`pandas.unique`, no sort): about
    twice as fast as hashing words in Python and sorting, on the 2-8k-token traces curation
    reads by the hundred thousand.
    """
    words = text.split() if isinstance(text, str) else text
    if len(words) < n + 1:
        return 0.0
    codes, _ = pd.factorize(np.array(words, dtype=object))
    ids = codes.astype(np.uint64)
    m = len(words) - n + 1
    grams = np.zeros(m, dtype=np.uint64)
    mult = np.uint64(1099511628211)
    with np.errstate(over="ignore"):
        for j in range(n):
            grams = grams * mult + ids[j : j + m]
    return 1.0 - len(pd.unique(grams)) / m


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
    """Handler for `DeadlinePool`: item = {batch (an Arrow record batch), spec, offset, file};
    one RowResult per row. With `spec["shard_dir"]`, the rows that pass the early filters are
    also formatted and written to an Arrow shard for the dataset (`export.write_shard`)."""
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
    if spec.get("shard_dir"):  # format the candidates now, in parallel (see curate.export)
        write_shard(shard_path(spec["shard_dir"], item["file"], offset), spec["dataset"],
                    [(r.row, r, rec) for r, rec in zip(out, records, strict=True)
                     if r.filter is None], fmt)
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
    if filters["final_answer"] or filters["correct"]:
        check = prepare(r.answer, answer_part(content, reasoning), filters["answer_extraction"],
                        r.problem)
        if isinstance(check, Verdict):
            if filters["final_answer"] and (check.reason == "no_answer"
                                            or check.method in ("oversized", "nested")):
                why = check.detail if check.reason == "no_answer" else \
                    f"answer refused: {check.detail}"
                return reject("final_answer", why)
            r.verdict = check
        else:
            r.pending = check
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


def answer_part(content: str, reasoning: str | None) -> FinalPart:
    """The part of a trace that holds its answer: the content after any thinking block (the
    thought may also have come separately as `reasoning_content`)."""
    part = final_part(content)
    if (reasoning or "").strip():
        return FinalPart(part.text, reasoning, part.detail)
    return part


def _marker_problem(content: str, markers: str | bool) -> str | None:
    """Why the thought markers are missing or broken (markers: True/'auto', 'think' or 'sky')."""
    if markers is True or markers == "auto":
        sky = "<|begin_of_thought|>" in content or "<|end_of_thought|>" in content
        return check_markers(content, "sky" if sky else "think")
    return check_markers(content, str(markers))
