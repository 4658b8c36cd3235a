"""What the run browser shows: a bounded, stated sample of a run's results database.

The browser is one HTML file with its data inside, so its size has to be chosen: a 100,000-trace
run holds gigabytes of text. `collect(con, settings, roles)` reads `results.duckdb` and returns
the page's data:

- traces: up to `settings.traces`, stratified by curation outcome (kept, each rejection filter,
  failed), so a rare rejection reason is shown even when 99% of traces were kept; half the
  budget is split evenly over the outcomes, the other half in proportion to their counts;
- evaluation: up to `settings.problems` problems per benchmark, with per (model, budget) counts
  over *all* their samples (so filters like "teacher right, student wrong" use every sample) and
  up to `settings.samples` samples each shown in full;
- texts longer than `settings.max_chars` keep their head and tail, and say how much was cut;
- the page stays under `settings.max_mb`: if the chosen texts would not fit, the longest are
  clipped further, to one cap found by bisection (short texts stay whole), half of the room for
  traces and half for evaluation samples (all of it for one when the other is empty).

Every choice is made by a hash of the row's key and `settings.seed`, so the same database gives
the same page. What was left out is one DuckDB query away; the page shows the query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import duckdb

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class BrowserSettings:
    """config `report.browser`: how much of a run the browser embeds."""

    traces: int = 2000  # traces shown, stratified by curation outcome
    problems: int = 200  # evaluation problems shown per benchmark
    samples: int = 4  # samples shown in full per (problem, model, budget)
    max_chars: int = 4000  # longer texts keep their head and tail
    max_mb: int = 15  # the embedded texts fit in this many MB
    seed: int = 0  # which rows the sample takes

    @classmethod
    def from_spec(cls, spec: dict | None) -> BrowserSettings:
        spec = dict(spec or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"report.browser: unknown key(s) {unknown}; known: {sorted(known)}")
        settings = cls(**spec)
        for f in fields(cls):
            value = getattr(settings, f.name)
            low = 0 if f.name == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"report.browser.{f.name} must be an integer >= {low} "
                                 f"(got {value!r})")
        return settings


def clip(text: str | None, max_chars: int) -> tuple[str, int]:
    """(text, characters cut): longer texts keep their first and last max_chars/2 characters."""
    text = text or ""
    if len(text) <= max_chars:
        return text, 0
    half = max_chars // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n\n[... {cut:,} characters not shown ...]\n\n{text[-half:]}", cut


def split_thinking(text: str | None, reasoning: str | None = None) -> tuple[str, str]:
    """(thinking, answer) of a reply: separate reasoning content, else its <think> block.

    A thought opened and never closed (truncated) is all thinking.
    """
    text = text or ""
    if reasoning:
        return reasoning, text
    end = text.find(THINK_CLOSE)
    if end >= 0:
        start = text.find(THINK_OPEN)
        start = start + len(THINK_OPEN) if 0 <= start < end else 0
        return text[start:end].strip("\n"), text[end + len(THINK_CLOSE):].strip("\n")
    start = text.find(THINK_OPEN)
    if start >= 0:
        return text[start + len(THINK_OPEN):].strip("\n"), ""
    return "", text


def fit_cap(lengths: list[int], budget: int, max_chars: int) -> int:
    """The largest cap <= max_chars with sum(min(length, cap)) <= budget (water-filling)."""
    if sum(min(n, max_chars) for n in lengths) <= budget:
        return max_chars
    lo, hi = 0, max_chars
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return max(lo, 200)  # a floor: below it a text says nothing


def quotas(counts: dict[str, int], budget: int) -> dict[str, int]:
    """Rows to take per stratum: half the budget evenly (rare outcomes show), half by size."""
    total = sum(counts.values())
    if total <= budget:
        return dict(counts)
    even = math.ceil(budget / (2 * max(1, len(counts))))
    take = {k: min(n, even) for k, n in counts.items()}
    left = budget - sum(take.values())
    rest = {k: n - take[k] for k, n in counts.items()}
    pool = sum(rest.values())
    for k in sorted(counts):
        if pool and left > 0:
            take[k] += min(rest[k], math.floor(left * rest[k] / pool))
    return take


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _num(value: object) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(value, 6) if isinstance(value, float) else value


_STRATUM = """
WITH c AS (SELECT trace_id, bool_and(kept) AS all_kept, min(filter) AS filter
           FROM curation GROUP BY trace_id)
SELECT t.trace_id,
       CASE WHEN c.filter IS NOT NULL THEN c.filter
            WHEN c.trace_id IS NOT NULL THEN 'kept'
            WHEN t.status <> 'ok' THEN t.status
            ELSE 'not curated' END AS stratum,
       hash(t.trace_id || ?) AS h
FROM traces t LEFT JOIN c USING (trace_id)
"""


def _traces(con: duckdb.DuckDBPyConnection, s: BrowserSettings,
            room: int) -> tuple[list[dict], dict]:
    con.execute(f"CREATE TEMP TABLE strata AS {_STRATUM}", [str(s.seed)])
    counts = dict(con.execute("SELECT stratum, count(*) FROM strata GROUP BY 1").fetchall())
    take = quotas(counts, s.traces)
    con.execute("CREATE TEMP TABLE quota (stratum VARCHAR, n BIGINT)")
    if take:
        con.executemany("INSERT INTO quota VALUES (?, ?)", list(take.items()))
    rows = _rows(con, """
        WITH pick AS (
          SELECT trace_id FROM strata JOIN quota USING (stratum)
          QUALIFY row_number() OVER (PARTITION BY stratum ORDER BY h, trace_id) <= quota.n)
        SELECT t.trace_id, t.task, t.teacher, t.prompt, t.problem_id, t.sample_index, t.status,
               t.finish_reason, t.content, t.reasoning_content, t.completion_tokens,
               t.reasoning_tokens, t.prompt_tokens, t.cost_usd, t.error, t.model,
               k.pool, p.family, p.source, p.problem AS problem_text, t.problem AS trace_problem,
               t.answer AS gold
        FROM pick JOIN traces t USING (trace_id)
        LEFT JOIN tasks k ON k.task = t.task
        LEFT JOIN problems p ON p.kind = 'pool' AND p.problem_set = k.pool
                             AND p.problem_id = t.problem_id
        ORDER BY t.trace_id""")
    outcomes: dict[str, list[dict]] = {}
    ids = [r["trace_id"] for r in rows]
    if ids:
        con.execute("CREATE TEMP TABLE picked (trace_id VARCHAR)")
        con.executemany("INSERT INTO picked VALUES (?)", [[i] for i in ids])
        for o in _rows(con, """SELECT c.trace_id, c.dataset, c.kept, c.filter, c.reason, c.detail
                               FROM curation c JOIN picked USING (trace_id)
                               ORDER BY c.trace_id, c.dataset"""):
            outcomes.setdefault(o.pop("trace_id"), []).append(o)
    out = []
    texts = [split_thinking(r["content"], r["reasoning_content"]) for r in rows]
    # ~500 bytes per row for its other fields (problem, ids, outcomes)
    cap = fit_cap([len(x) for pair in texts for x in pair], room - 500 * len(rows), s.max_chars)
    for r, (thinking, answer) in zip(rows, texts, strict=True):
        thinking, cut_t = clip(thinking, cap)
        answer, cut_a = clip(answer, cap)
        thought = r["reasoning_tokens"] if r["reasoning_tokens"] is not None else \
            r["completion_tokens"]
        out.append({
            "id": r["trace_id"], "task": r["task"], "teacher": r["teacher"],
            "pool": r["pool"] or "", "family": r["family"] or "", "source": r["source"] or "",
            "pid": r["problem_id"], "problem": r["problem_text"] or r["trace_problem"],
            "gold": r["gold"], "status": r["status"], "finish": r["finish_reason"],
            "error": r["error"], "thinking": thinking, "answer": answer, "cut": cut_t + cut_a,
            "tokens": _num(r["completion_tokens"]), "thought": _num(thought),
            "cost": _num(r["cost_usd"]),
            "outcomes": [{k: v for k, v in o.items()} for o in outcomes.get(r["trace_id"], [])],
        })
    stats = {"total": int(sum(counts.values())), "shown": len(out), "strata": counts,
             "taken": take, "max_chars": cap}
    q = con.execute("SELECT quantile_cont(coalesce(reasoning_tokens, completion_tokens), "
                    "[0.25, 0.75]) FROM traces").fetchone()[0]
    stats["quartiles"] = [round(x) for x in q] if q else None
    return out, stats


def _evaluation(con: duckdb.DuckDBPyConnection, s: BrowserSettings,
                room: int) -> tuple[dict, dict]:
    con.execute("""CREATE TEMP TABLE eval_pick AS
        SELECT benchmark, problem_id FROM (SELECT DISTINCT benchmark, problem_id FROM generations)
        QUALIFY row_number() OVER (PARTITION BY benchmark
                                   ORDER BY hash(benchmark || '/' || problem_id || ?),
                                            problem_id) <= ?""", [str(s.seed), s.problems])
    problems = _rows(con, """
        SELECT e.benchmark, e.problem_id, p.problem, p.answer, p.family, p.source
        FROM eval_pick e LEFT JOIN problems p
          ON p.kind = 'benchmark' AND p.problem_set = e.benchmark AND p.problem_id = e.problem_id
        ORDER BY e.benchmark, e.problem_id""")
    stats = _rows(con, """
        SELECT g.benchmark, g.problem_id, g.model, g.budget, count(*) AS n,
               count(*) FILTER (WHERE g.correct) AS c,
               avg(coalesce(g.thinking_tokens, 0)) AS think, avg(g.output_tokens) AS out
        FROM generations g JOIN eval_pick USING (benchmark, problem_id)
        GROUP BY ALL ORDER BY ALL""")
    samples = _rows(con, """
        SELECT g.benchmark, g.problem_id, g.model, g.budget, g.sample_index, g.output,
               g.output_tokens, g.thinking_tokens, g.extracted_answer, g.correct, g.verdict,
               g.finish_reason
        FROM generations g JOIN eval_pick USING (benchmark, problem_id)
        WHERE g.sample_index < ?
        ORDER BY g.benchmark, g.problem_id, g.model, g.budget NULLS FIRST, g.sample_index""",
                    [s.samples])
    by_key: dict[str, dict] = {}
    for p in problems:
        key = f"{p['benchmark']}/{p['problem_id']}"
        by_key[key] = {"key": key, "bench": p["benchmark"], "pid": p["problem_id"],
                       "problem": p["problem"] or "", "gold": p["answer"] or "",
                       "family": p["family"] or "", "source": p["source"] or "",
                       "stats": {}, "samples": []}
    for r in stats:
        entry = by_key[f"{r['benchmark']}/{r['problem_id']}"]
        budget = "" if r["budget"] is None else str(int(r["budget"]))
        entry["stats"].setdefault(r["model"], {})[budget] = [
            int(r["n"]), int(r["c"]), round(float(r["think"]), 1), round(float(r["out"]), 1)]
    texts = [split_thinking(r["output"]) for r in samples]
    fields = 300 * len(samples) + sum(500 + len(p["problem"]) for p in by_key.values())
    cap = fit_cap([len(x) for pair in texts for x in pair], room - fields, s.max_chars)
    for r, (thinking, answer) in zip(samples, texts, strict=True):
        thinking, cut_t = clip(thinking, cap)
        answer, cut_a = clip(answer, cap)
        by_key[f"{r['benchmark']}/{r['problem_id']}"]["samples"].append({
            "model": r["model"], "budget": None if r["budget"] is None else int(r["budget"]),
            "i": int(r["sample_index"]), "thinking": thinking, "answer": answer,
            "cut": cut_t + cut_a, "tokens": _num(r["output_tokens"]),
            "thought": _num(r["thinking_tokens"]), "extracted": r["extracted_answer"],
            "correct": None if r["correct"] is None else bool(r["correct"]),
            "verdict": r["verdict"], "finish": r["finish_reason"],
        })
    totals = con.execute("""SELECT count(DISTINCT (benchmark, problem_id)), count(*),
                                   max(sample_index) + 1 FROM generations""").fetchone()
    meta = {"problems_total": int(totals[0]), "samples_total": int(totals[1]),
            "problems_shown": len(by_key),
            "samples_shown": sum(len(v["samples"]) for v in by_key.values()),
            "max_samples": int(totals[2] or 0), "max_chars": cap}
    return {"problems": list(by_key.values())}, meta


def collect(con: duckdb.DuckDBPyConnection, settings: BrowserSettings,
            roles: dict[str, str] | None = None) -> dict:
    """The browser's data from an open results database (see the module docstring)."""
    # text room in characters: the budget less the page's scripts (~100 KB), less ~5% for JSON
    # escapes (newlines, quotes); each part also leaves room for its rows' other fields
    room = int((settings.max_mb * 1e6 - 100_000) * 0.95)
    has_traces = con.execute("SELECT count(*) > 0 FROM traces").fetchone()[0]
    has_samples = con.execute("SELECT count(*) > 0 FROM generations").fetchone()[0]
    share = 0.5 if has_traces and has_samples else 1.0
    traces, trace_stats = _traces(con, settings, int(room * share))
    evaluation, eval_stats = _evaluation(con, settings, int(room * share))
    models = [r[0] for r in con.execute(
        "SELECT DISTINCT model FROM generations ORDER BY model").fetchall()]
    budgets = [int(r[0]) for r in con.execute(
        "SELECT DISTINCT budget FROM generations WHERE budget IS NOT NULL ORDER BY 1").fetchall()]
    roles = roles or {}
    return {
        "settings": settings.__dict__,
        "traces": traces, "trace_stats": trace_stats,
        "evaluation": evaluation, "eval_stats": eval_stats,
        "models": [{"name": m, "role": roles.get(m, "model")} for m in models],
        "budgets": budgets,
    }
