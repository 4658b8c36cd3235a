"""`longthought curate`: traces -> verified, filtered, deduplicated, decontaminated SFT dataset.

Filters run in funnel order, and each row is removed by the first that rejects it:

    missing          no response: failed or skipped by the budget cap (a partial collection)
    malformed        another status, empty content, missing ids, a duplicate trace_id
    truncated        finish_reason == "length"
    thought_markers  thought markers missing or unbalanced (unless the thought came separately)
    final_answer     no final answer after the thought: none in \boxed{} (answer_extraction:
                     boxed, the default), a thought cut off before </think>, a refusal, nothing
                     math-verify can extract (full), or a box refused as hostile
    correct          math-verify against the gold answer: wrong / undecided / timeout / error
    length           outside [min_tokens, max_tokens] (usage completion_tokens, or a tokenizer)
    repetition       repeated word n-gram ratio above max_ratio
    language         share of letters in the allowed scripts below min_share
    dedup            duplicate problems (exact, MinHash LSH), identical responses, keep policy
    decontaminate    a word n-gram shared with a benchmark problem

Built to stream 100k+ long traces in bounded memory: one pass reads each trace file in batches
and analyses them in worker processes, keeping only a small record per row; the workers also
format every row that passes the early filters into an Arrow shard (`export`); answers that need
a parser go to the deadline-bounded checker pool; dedup and decontamination then work on problem
texts; finally the kept rows are assembled from the shards with Arrow operations (the traces are
not read twice). Every rejected row lands in the rejected table with its filter, reason and
detail, and `kept + rejected = input` is asserted.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from longthought import io
from longthought.answers.checker import AnswerChecker, Verdict, check_extraction
from longthought.answers.pool import OK, DeadlinePool
from longthought.curate.decontaminate import BenchmarkIndex
from longthought.curate.dedup import KEEP, Candidate, cluster_problems, keep_policy
from longthought.curate.export import assemble
from longthought.curate.formatting import FORMATS
from longthought.curate.tracefilters import SCRIPTS, RowResult
from longthought.schemas import ALL

STEPS = ("missing", "malformed", "truncated", "thought_markers", "final_answer", "correct",
         "length", "repetition", "language", "dedup", "decontaminate")
TRACE_COLUMNS = list(ALL["traces"].columns)
READ_COLUMNS = ["trace_id", "task", "problem_id", "problem", "answer", "status", "error",
                "content", "reasoning_content", "finish_reason", "completion_tokens"]
FILTER_DEFAULTS: dict[str, Any] = {
    "truncated": True, "thought_markers": False, "final_answer": True, "correct": True,
    "min_tokens": None, "max_tokens": None, "tokenizer": None, "repetition": None,
    "language": None,
}
DEDUP_DEFAULTS: dict[str, Any] = {"exact": True, "near": None, "keep": "all", "k": 1}
DECONTAM_DEFAULTS: dict[str, Any] = {"benchmarks": "all", "ngram": 8}
FORMAT_DEFAULTS: dict[str, Any] = {"thinking": "think", "system": None, "user": None}
_ANALYSER = "longthought.curate.tracefilters:analyse_batch"


def _section(spec: dict, key: str, defaults: dict, where: str) -> dict:
    given = spec.get(key) or {}
    if not isinstance(given, dict):
        raise ValueError(f"{where}.{key} must be a mapping, got {given!r}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{where}.{key}: unknown keys {unknown}; known: {sorted(defaults)}")
    return {**defaults, **given}


def resolve_spec(spec: dict, name: str) -> dict:
    """datasets.<name> with defaults filled in and every knob checked (errors name the key)."""
    where = f"datasets.{name}"
    known = {"tasks", "filters", "dedup", "decontaminate", "format", "answer_extraction"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    f = _section(spec, "filters", FILTER_DEFAULTS, where)
    # the answer must be boxed unless the dataset says otherwise (the teacher was asked for it)
    f["answer_extraction"] = check_extraction(spec.get("answer_extraction", "boxed"),
                                              f"{where}.answer_extraction")
    if f["thought_markers"] not in (True, False, None, "auto", "think", "sky"):
        raise ValueError(f"{where}.filters.thought_markers must be true/false/think/sky")
    f["thought_markers"] = f["thought_markers"] or False
    correct = f["correct"]
    if isinstance(correct, dict):
        bad = sorted(set(correct) - {"timeout_s"})
        if bad:
            raise ValueError(f"{where}.filters.correct: unknown keys {bad}; known: ['timeout_s']")
    for key in ("min_tokens", "max_tokens"):
        if f[key] is not None and (not isinstance(f[key], int) or f[key] < 0):
            raise ValueError(f"{where}.filters.{key} must be a non-negative integer or null")
    rep = f["repetition"]
    if rep:
        rep = {"ngram": 8, "max_ratio": 0.5, **rep}
        if set(rep) - {"ngram", "max_ratio"} or int(rep["ngram"]) < 1 \
                or not 0 <= float(rep["max_ratio"]) <= 1:
            raise ValueError(f"{where}.filters.repetition: want {{ngram >= 1, max_ratio in "
                             f"[0, 1]}}, got {f['repetition']!r}")
        f["repetition"] = rep
    lang = f["language"]
    if lang:
        lang = {"scripts": ["latin"], "min_share": 0.9, **lang}
        bad = sorted(set(lang["scripts"]) - set(SCRIPTS))
        if bad or set(lang) - {"scripts", "min_share"}:
            raise ValueError(f"{where}.filters.language: want {{scripts: {sorted(SCRIPTS)}, "
                             f"min_share}}, got {f['language']!r}")
        f["language"] = lang
    d = _section(spec, "dedup", DEDUP_DEFAULTS, where)
    if d["keep"] not in KEEP:
        raise ValueError(f"{where}.dedup.keep must be one of {KEEP}, got {d['keep']!r}")
    if d["near"] and set(d["near"]) - {"threshold", "num_perm", "ngram"}:
        raise ValueError(f"{where}.dedup.near: known keys are threshold, num_perm, ngram")
    dc = spec.get("decontaminate", DECONTAM_DEFAULTS)
    dc = None if not dc else _section({"decontaminate": dc}, "decontaminate", DECONTAM_DEFAULTS,
                                      where)
    fm = _section(spec, "format", FORMAT_DEFAULTS, where)
    if fm["thinking"] not in FORMATS:
        raise ValueError(f"{where}.format.thinking must be one of {FORMATS}, "
                         f"got {fm['thinking']!r}")
    return {"filters": f, "dedup": d, "decontaminate": dc, "format": fm}


@dataclass
class _Row:
    file: int
    res: RowResult


def _open_traces(path: str) -> pq.ParquetFile:
    try:
        # pre_buffer off: with it, iterating a large file kept every read column chunk alive
        # (Arrow memory grew ~6 KB per trace row); without it memory stays flat
        pf = pq.ParquetFile(path, pre_buffer=False)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as parquet: {exc}") from None
    missing = [c for c in TRACE_COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise ValueError(f"{path}: not a traces table, missing columns {missing}")
    return pf


def _arrow_batches(pf: pq.ParquetFile, rows: int, columns: list[str]):
    """(first row number, Arrow record batch) over the file, `rows` at a time."""
    offset = 0
    for batch in pf.iter_batches(batch_size=rows, columns=columns, use_threads=False):
        yield offset, batch
        offset += batch.num_rows


def curate(dataset: str, spec: dict, traces: list[str], benchmarks: list[str], out: str,
           rejected: str, funnel: str, export_dir: str | None = None, workers: int | None = None,
           timeout_s: float | None = None, batch_rows: int = 256) -> dict:
    """Curate `traces` into `out` (+ rejected, funnel, export); returns a summary dict."""
    t0 = time.monotonic()
    cfg = resolve_spec(spec, dataset)
    filters = cfg["filters"]
    workers = int(workers or 2)
    if timeout_s is None:
        correct = filters["correct"]
        timeout_s = float(correct.get("timeout_s", 5.0)) if isinstance(correct, dict) else 5.0
    if export_dir is not None:  # the export needs `datasets` (~1 s to import): load it now,
        # while the workers analyse, not on the write phase's clock
        threading.Thread(target=importlib.import_module, args=("datasets",), daemon=True).start()
    t_bench = time.monotonic()
    bench_tables = _load_benchmarks(benchmarks, cfg["decontaminate"], dataset)
    seconds_decon = time.monotonic() - t_bench
    files = [_open_traces(p) for p in traces]

    rows: list[_Row] = []
    seen: dict[str, str] = {}
    analyser = DeadlinePool(_ANALYSER, workers=workers, timeout_s=600, memory_mb=None, chunk=1)
    checker = AnswerChecker(workers=workers, timeout_s=timeout_s)
    shard_dir = tempfile.mkdtemp(prefix=f".{Path(out).name}.shards.",
                                 dir=Path(out).resolve().parent)
    item_spec = {"filters": filters, "format": cfg["format"], "dataset": dataset,
                 "shard_dir": shard_dir}
    try:
        try:
            for fi, (path, pf) in enumerate(zip(traces, files, strict=True)):
                window: list[dict] = []
                # Arrow batches go to the workers as they are: the long texts become Python
                # strings only there, so the parent's heap holds nothing per row but the small
                # results.
                for offset, batch in _arrow_batches(pf, batch_rows, READ_COLUMNS):
                    window.append({"batch": batch, "spec": item_spec, "offset": offset,
                                   "file": fi})
                    if len(window) >= 2 * workers:
                        rows += _analyse_window(window, analyser, checker, filters, path, fi,
                                                seen)
                        window = []
                if window:
                    rows += _analyse_window(window, analyser, checker, filters, path, fi, seen)
        finally:
            analyser.close()
            checker.close()
        t_analysed = time.monotonic()
        n_input = len(rows)
        _late_filters(rows, filters)
        _dedup(rows, cfg["dedup"])
        if bench_tables:
            t_decon = time.monotonic()
            _decontaminate(rows, bench_tables, int(cfg["decontaminate"]["ngram"]))
            seconds_decon += time.monotonic() - t_decon

        t_filtered = time.monotonic()
        kept: dict[int, set[int]] = {}
        for r in rows:
            if r.res.filter is None:
                kept.setdefault(r.file, set()).add(r.res.row)
        n_kept_rows = sum(map(len, kept.values()))
        rej = _rejected_frame(rows, dataset)
        assert n_kept_rows + len(rej) == n_input, "curation lost rows"
        n_kept = assemble(shard_dir, kept, out, export_dir)
        assert n_kept == n_kept_rows, f"{n_kept} rows written, {n_kept_rows} kept"
    finally:
        shutil.rmtree(shard_dir, ignore_errors=True)
    io.write_table(rej, rejected, "rejected")
    fun = _funnel(rows, dataset, filters, cfg)
    io.write_table(fun, funnel, "funnel")
    summary = {"dataset": dataset, "rows": n_input, "kept": n_kept, "rejected": len(rej),
               "seconds": round(time.monotonic() - t0, 2),
               "seconds_analyse": round(t_analysed - t0, 2),
               "seconds_dedup_decontaminate": round(t_filtered - t_analysed, 2),
               "seconds_decontaminate": round(seconds_decon, 3),
               "seconds_write": round(time.monotonic() - t_filtered, 2),
               "parser_checks": checker.parser_calls}
    print(f"curate {dataset}: {n_input} traces -> {n_kept} kept, {len(rej)} rejected "
          f"({summary['seconds']} s: analyse {summary['seconds_analyse']}, dedup+decontaminate "
          f"{summary['seconds_dedup_decontaminate']}, write {summary['seconds_write']})")
    for r in fun.itertuples():
        print(f"  {r.step:>2} {r.filter:<16} in {r.rows_in:>7}  removed {r.removed:>7}  "
              f"out {r.rows_out:>7}")
    return summary


def _analyse_window(window: list[dict], analyser: DeadlinePool, checker: AnswerChecker,
                    filters: dict, path: str, fi: int, seen: dict[str, str]) -> list[_Row]:
    out: list[_Row] = []
    for item, (status, value) in zip(window, analyser.map(window), strict=True):
        if status != OK:
            first, last = item["offset"] + 1, item["offset"] + item["batch"].num_rows
            raise RuntimeError(f"{path}: analysing rows {first}-{last} failed ({status}): {value}")
        for res in value:
            place = f"{Path(path).name}:row{res.row + 1}"  # as an editor counts: first row is 1
            if not res.sample_id:  # no trace_id: name the row by its place
                res.sample_id = place
            if res.sample_id in seen:
                first = seen[res.sample_id]
                res.sample_id = f"{res.sample_id}@{place}"
                if res.filter not in ("malformed", "missing"):
                    res.filter, res.reason, res.detail = ("malformed", "duplicate trace_id",
                                                          f"first seen at {first}")
            else:
                seen[res.sample_id] = place
            out.append(_Row(fi, res))
    todo = [r.res for r in out if r.res.filter is None and r.res.pending is not None]
    if todo and filters["correct"]:
        for r, v in zip(todo, checker.resolve([r.pending for r in todo]), strict=True):
            r.verdict = v
    for row in out:
        r = row.res
        r.pending = None  # the final text it carried is not needed any more
        if r.filter is None and r.verdict is not None:
            _apply_verdict(r, r.verdict, filters)
            r.verdict = None
    return out


def _apply_verdict(r: RowResult, v: Verdict, filters: dict) -> None:
    """Reject a row whose answer is not correct: no answer -> final_answer (when on), the rest
    -> correct (when on)."""
    if v.correct:
        return
    extra = f"; {v.detail}" if v.detail else ""
    found = f" (found by {v.method})" if v.method != "none" else ""
    detail = f"extracted {_clip(v.extracted)!r}{found}, gold {_clip(r.answer)!r}{extra}"
    if v.reason == "no_answer" and filters["final_answer"]:
        r.filter, r.reason, r.detail = "final_answer", v.detail or "no final answer", detail
    elif filters["correct"]:
        reason = {"wrong": "wrong answer", "no_answer": "no final answer"}.get(v.reason, v.reason)
        r.filter, r.reason, r.detail = "correct", reason, detail


def _clip(text: str | None, n: int = 120) -> str | None:
    return text if text is None or len(text) <= n else text[:n] + "..."


def _late_filters(rows: list[_Row], filters: dict) -> None:
    lo, hi = filters["min_tokens"], filters["max_tokens"]
    rep, lang = filters["repetition"], filters["language"]
    for row in rows:
        r = row.res
        if r.filter is not None:
            continue
        if lo is not None or hi is not None:
            t = r.tokens
            if t is not None and ((lo is not None and t < lo) or (hi is not None and t > hi)):
                r.filter = "length"
                r.reason = f"{t} tokens outside [{lo}, {hi}]"
                r.detail = r.tokens_source
                continue
        if rep and r.repetition > float(rep["max_ratio"]):
            r.filter = "repetition"
            r.reason = (f"repeated {rep['ngram']}-gram ratio {r.repetition:.3f} > "
                        f"{rep['max_ratio']}")
            continue
        if lang and r.script_share is not None and r.script_share < float(lang["min_share"]):
            r.filter = "language"
            r.reason = (f"{r.script_share:.3f} of letters in {lang['scripts']} < "
                        f"{lang['min_share']}")


def _dedup(rows: list[_Row], spec: dict) -> None:
    alive = [row.res for row in rows if row.res.filter is None]
    if not (spec["exact"] or spec["near"]) and spec["keep"] == "all":
        return
    clusters = cluster_problems([(r.problem_id, r.problem) for r in alive], exact=spec["exact"],
                                near=spec["near"])
    cands = [Candidate(i, r.sample_id, r.problem_id, r.tokens, r.response_hash)
             for i, r in enumerate(alive)]
    for i, (reason, detail) in keep_policy(cands, clusters, spec["keep"], spec["k"]).items():
        alive[i].filter, alive[i].reason, alive[i].detail = "dedup", reason, detail


def _load_benchmarks(paths: list[str], spec: dict | None, dataset: str) -> dict[str, pd.DataFrame]:
    if not spec:
        return {}
    tables = {Path(p).name.removesuffix(".parquet"): io.read_table(p, "problems") for p in paths}
    chosen = spec["benchmarks"]
    if chosen in ("all", None):
        return tables
    chosen = [chosen] if isinstance(chosen, str) else list(chosen)
    missing = sorted(set(chosen) - set(tables))
    if missing:
        raise ValueError(f"datasets.{dataset}.decontaminate.benchmarks names {missing}, "
                         f"but only {sorted(tables)} were given with --benchmarks")
    return {k: tables[k] for k in chosen}


def _decontaminate(rows: list[_Row], tables: dict[str, pd.DataFrame], n: int) -> None:
    index = BenchmarkIndex(tables, n)
    verdict: dict[str, Any] = {}
    for row in rows:
        r = row.res
        if r.filter is not None:
            continue
        if r.problem_id not in verdict:
            verdict[r.problem_id] = index.match(r.problem)
        m = verdict[r.problem_id]
        if m is not None:
            r.filter = "decontaminate"
            r.reason = (f"shares a {n}-gram with benchmark {m.benchmark}" if len(m.ngram.split())
                        >= n else f"same text as a problem of benchmark {m.benchmark}")
            r.detail = f"{m.benchmark}/{m.problem_id}: {m.ngram!r}"


def _rejected_frame(rows: list[_Row], dataset: str) -> pd.DataFrame:
    recs = [{"sample_id": r.res.sample_id, "dataset": dataset, "task": r.res.task,
             "problem_id": r.res.problem_id, "filter": r.res.filter, "reason": r.res.reason,
             "detail": r.res.detail} for r in rows if r.res.filter is not None]
    return pd.DataFrame(recs, columns=list(ALL["rejected"].columns))


def _funnel(rows: list[_Row], dataset: str, filters: dict, cfg: dict) -> pd.DataFrame:
    on = {
        "missing": True, "malformed": True, "truncated": bool(filters["truncated"]),
        "thought_markers": bool(filters["thought_markers"]),
        "final_answer": bool(filters["final_answer"]), "correct": bool(filters["correct"]),
        "length": filters["min_tokens"] is not None or filters["max_tokens"] is not None,
        "repetition": bool(filters["repetition"]), "language": bool(filters["language"]),
        "dedup": bool(cfg["dedup"]["exact"] or cfg["dedup"]["near"]
                      or cfg["dedup"]["keep"] != "all"),
        "decontaminate": bool(cfg["decontaminate"]),
    }
    counts = pd.Series([r.res.filter for r in rows if r.res.filter], dtype=object).value_counts()
    unknown = set(counts.index) - {s for s in STEPS if on[s]}
    assert not unknown, f"rows rejected by switched-off filters {unknown}"
    out, n = [], len(rows)
    for step, name in enumerate(s for s in STEPS if on[s]):
        removed = int(counts.get(name, 0))
        out.append({"dataset": dataset, "step": step, "filter": name, "rows_in": n,
                    "removed": removed, "rows_out": n - removed})
        n -= removed
    return pd.DataFrame(out, columns=list(ALL["funnel"].columns))
