"""`longthought traces`: ask a teacher (or a rewriter) about every problem of a pool.

A task is teacher x prompt template x problem pool. Each problem becomes `samples_per_problem`
chat requests built from the template (`{problem}` and `{solution}` are replaced literally, so
LaTeX braces in a template are safe); the collector sends them inside `open_endpoint` and every
request yields exactly one row of the `traces` table, whatever happened to it (ok, failed,
skipped_budget), streamed out of the cache into the table a row group at a time. A task with an
`import:` block instead reads a published trace set (`importer.import_traces`).

A `mode: local` teacher (an open model) goes through three steps a cluster places apart:
`plan_local` (a local rule: the requests the cache lacks), `generate_local` (the GPU job: a shard
of its own, never the shared cache) and `collect_traces(..., shards=)` (a local rule: merge,
then the same table as an online teacher gives).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from longthought.io import atomic_path, read_table, write_json
from longthought.teacher.budget import Budget
from longthought.teacher.cache import RequestCache, canonical_json
from longthought.teacher.collect import ChatRequest, ChatResult, iter_results
from longthought.teacher.endpoint import open_endpoint
from longthought.teacher.local import LocalTransport
from longthought.teacher.progress import Progress
from longthought.teacher.records import (
    Job,
    endpoint_id,
    escalation_levels,
    plan_jobs,
    teacher_mode,
)
from longthought.teacher.shards import ShardWriter, merge_shards, shard_keys
from longthought.teacher.tracestore import TRACE_COLUMNS, write_traces
from longthought.teacher.transport import Sink, Unavailable

log = logging.getLogger("longthought.teacher.traces")


def _need(spec: dict[str, Any], key: str, where: str) -> Any:
    if key not in spec or spec[key] is None:
        raise ValueError(f"{where}: missing key {key!r}")
    return spec[key]


def render_messages(prompt: dict[str, Any], problem: str, solution: str | None) -> list[dict]:
    """Chat messages for one problem: optional system message, then the filled-in user turn."""
    def fill(text: str) -> str:
        return text.replace("{problem}", problem).replace("{solution}", solution or "")

    messages = []
    if prompt.get("system"):
        messages.append({"role": "system", "content": fill(str(prompt["system"]))})
    messages.append({"role": "user", "content": fill(str(prompt["user"]))})
    return messages


def _needs_solution(prompt: dict[str, Any]) -> bool:
    return any("{solution}" in str(prompt.get(k) or "") for k in ("system", "user"))


def build_requests(task: str, spec: dict[str, Any], problems: pd.DataFrame,
                   problems_path: str) -> tuple[list[dict[str, Any]], list[ChatRequest]]:
    """(row stubs, requests): one per (problem, sample), in problem order then sample order."""
    prompt = _need(spec, "prompt", f"traces spec for task {task!r}")
    if not isinstance(prompt, dict) or not isinstance(prompt.get("user"), str):
        raise ValueError(f"task {task!r}: prompt {spec.get('prompt_name')!r} needs a 'user' "
                         "template string")
    teacher = _need(spec, "teacher", f"traces spec for task {task!r}")
    task_cfg = spec.get("task") or {}
    n = task_cfg.get("samples_per_problem", teacher.get("samples_per_problem", 1))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"task {task!r}: samples_per_problem must be an integer >= 1, got {n!r}")
    if _needs_solution(prompt):
        missing = [(i, pid) for i, (pid, sol) in enumerate(zip(problems["problem_id"],
                                                               problems["solution"], strict=True),
                                                           start=1)  # first row is row 1
                   if sol is None or pd.isna(sol) or not str(sol).strip()]
        if missing:
            shown = ", ".join(f"row {i} (problem_id {pid!r})" for i, pid in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise ValueError(
                f"{problems_path}: task {task!r} uses prompt {spec.get('prompt_name')!r}, which "
                f"needs a reference solution ({{solution}}), but {shown}{more} has none")
    stubs, requests = [], []
    for row in problems.itertuples(index=False):
        sol = None if row.solution is None or pd.isna(row.solution) else str(row.solution)
        messages = render_messages(prompt, str(row.problem), sol)
        for k in range(n):
            stubs.append({"problem_id": row.problem_id, "problem": row.problem,
                          "answer": row.answer, "sample_index": k})
            requests.append(ChatRequest(messages=messages, sample_index=k))
    return stubs, requests


def trace_row(task: str, teacher_name: str, prompt_name: str, stub: dict[str, Any],
              r: ChatResult) -> dict[str, Any]:
    """One row of the traces table from its stub and its collector result."""
    return {
        "trace_id": f"{task}/{stub['problem_id']}/{stub['sample_index']}",
        "task": task, "teacher": teacher_name, "prompt": prompt_name,
        "problem_id": stub["problem_id"], "problem": stub["problem"],
        "answer": stub["answer"], "sample_index": stub["sample_index"],
        "request_key": r.key, "request": r.request, "response": r.response,
        "content": r.content, "reasoning_content": r.reasoning_content,
        "finish_reason": r.finish_reason, "max_tokens": r.max_tokens, "model": r.model,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "reasoning_tokens": r.reasoning_tokens, "latency_s": r.latency_s,
        "attempts": r.attempts, "cached": r.cached, "status": r.status, "error": r.error,
        "cost_usd": r.cost_usd,
    }


def trace_rows(task: str, teacher_name: str, prompt_name: str, stubs: list[dict[str, Any]],
               results: Iterable[ChatResult]) -> pd.DataFrame:
    """The traces table from row stubs and their collector results."""
    rows = [trace_row(task, teacher_name, prompt_name, stub, r)
            for stub, r in zip(stubs, results, strict=True)]
    return pd.DataFrame(rows, columns=TRACE_COLUMNS)


def shard_dir_for(cache_dir: str, task: str) -> str:
    """Where a local teacher's GPU job writes its shards for `task` (next to the cache)."""
    return str(Path(cache_dir) / "shards" / task)


def _task_setup(task: str, spec: dict[str, Any], problems_path: str
                ) -> tuple[list[dict[str, Any]], list[ChatRequest], dict[str, Any], str, str]:
    problems = read_table(problems_path, "problems")
    stubs, requests = build_requests(task, spec, problems, problems_path)
    task_cfg = spec.get("task") or {}
    teacher = spec["teacher"]
    teacher_name = spec.get("teacher_name") or task_cfg.get("teacher") or str(teacher["model"])
    prompt_name = spec.get("prompt_name") or task_cfg.get("prompt") or "prompt"
    log.info("task %s: %d problems x %d sample(s) = %d requests to teacher %s (%s)", task,
             len(problems), len(requests) // max(1, len(problems)), len(requests), teacher_name,
             {"online": teacher.get("base_url"), "batch": f"Batch API at {teacher.get('base_url')}",
              "local": f"local: {teacher.get('model')}"}[teacher_mode(teacher)])
    return stubs, requests, teacher, teacher_name, prompt_name


def collect_traces(task: str, spec: dict[str, Any], problems_path: str | None, cache_dir: str,
                   out: str, progress: bool = True, shards: str | None = None
                   ) -> dict[str, Any]:
    """Build, send and record the task's requests (or import a trace set); write `out` (a link
    to a read-only version, see `tracestore`) and say whether the collection is partial.

    A `mode: local` teacher: with `shards`, merge what its GPU job generated into the cache
    first and generate nothing here (a request it did not generate is `failed`); without, the
    model is generated on this machine. Returns the collection's record (rows, state, round)."""
    task_cfg = spec.get("task") or {}
    round_ = int(spec.get("round") or 0)
    if task_cfg.get("import"):
        from longthought.teacher.importer import import_traces

        return write_traces(import_traces(task, spec, problems_path), out, round_=round_,
                            collected=False)
    if not problems_path:
        raise ValueError(f"task {task!r}: --problems is required (the task has no import: block)")
    stubs, requests, teacher, teacher_name, prompt_name = _task_setup(task, spec, problems_path)
    if teacher_mode(teacher) == "local":
        transport = None
        if shards is not None:
            report = merge_shards(shards, cache_dir)
            log.info("task %s: %s", task, report.line())
            transport = Unavailable(f"not generated by the local teacher's job for task {task!r} "
                                    f"(its log: results/logs/traces_generate/{task}.log); run "
                                    "the workflow again to generate what is missing")
        results = iter_results(teacher, requests, cache_dir, None, progress=progress, tag=task,
                               transport=transport)
        rows = (trace_row(task, teacher_name, prompt_name, stub, r)
                for stub, r in zip(stubs, results, strict=True))
        return _finish(task, task_cfg, write_traces(rows, out, round_=round_), out)
    with open_endpoint(teacher, cache_dir) as base_url:
        results = iter_results(teacher, requests, cache_dir, base_url, progress=progress,
                               tag=task, escalate=escalation_levels(teacher))
        rows = (trace_row(task, teacher_name, prompt_name, stub, r)
                for stub, r in zip(stubs, results, strict=True))
        return _finish(task, task_cfg, write_traces(rows, out, round_=round_), out)


def _finish(task: str, task_cfg: dict[str, Any], record: dict[str, Any], out: str
            ) -> dict[str, Any]:
    """Log whether the collection is complete or partial (and what the next run does)."""
    if record["partial"]:
        log.warning("%s", partial_message(task, record, task_cfg.get("teacher")))
    else:
        log.info("task %s: complete, %d rows -> %s (%s)", task, record["rows"], out,
                 record["version"])
    return record


def partial_message(task: str, record: dict[str, Any], teacher: str | None = None) -> str:
    """What a partial collection lacks and what happens next, for the log and traces-status."""
    share = record["missing"] / max(1, record["rows"])
    why = []
    if record.get("failed"):
        why.append(f"{record['failed']} failed")
    if record.get("skipped_budget"):
        where = f"teachers.{teacher}.budget_usd" if teacher else "the teacher's budget_usd"
        why.append(f"{record['skipped_budget']} skipped by the budget cap (raise {where})")
    return (f"task {task}: PARTIAL collection: {record['missing']:,} of {record['rows']:,} rows "
            f"missing ({share:.1%}: {', '.join(why)}). The next run of the workflow asks for "
            f"exactly these rows again (collection round {int(record.get('round') or 0) + 1}); "
            "the request cache answers the others for free.")


TODO_COLUMNS = ["request_key", "sample_index", "request"]


def plan_local(task: str, spec: dict[str, Any], problems_path: str, cache_dir: str,
               out: str) -> int:
    """A local teacher's request list (a local rule): every request of the task the cache does
    not hold yet, for the GPU job to generate. Returns how many there are."""
    stubs, requests, teacher, _, _ = _task_setup(task, spec, problems_path)
    if teacher_mode(teacher) != "local":
        raise ValueError(f"task {task!r}: its teacher is not mode: local (nothing to plan)")
    _, jobs = plan_jobs(teacher, requests, endpoint_id(teacher, None), None)
    with RequestCache(cache_dir) as cache:
        have = cache.has_many(jobs)
    todo = pd.DataFrame([{"request_key": k, "sample_index": j.sample_index,
                          "request": canonical_json(j.body)}
                         for k, j in jobs.items() if k not in have], columns=TODO_COLUMNS)
    with atomic_path(out) as tmp:
        todo.to_parquet(tmp, index=False)
    log.info("task %s: %d unique requests, %d in the cache, %d to generate -> %s", task,
             len(jobs), len(have), len(todo), out)
    return len(todo)


def generate_local(task: str, spec: dict[str, Any], todo_path: str, shard_dir: str, out: str,
                   progress: bool = False) -> dict[str, Any]:
    """The local teacher's GPU job: generate every planned request its shards do not hold yet
    (so a job restarted after preemption resumes), into a new shard of its own. Never opens
    the shared cache. Writes a summary JSON to `out` and returns it."""
    teacher = spec["teacher"]
    if teacher_mode(teacher) != "local":
        raise ValueError(f"task {task!r}: its teacher is not mode: local")
    todo = pd.read_parquet(todo_path)
    missing = set(TODO_COLUMNS) - set(todo.columns)
    if missing:
        raise ValueError(f"{todo_path}: not a request list (missing columns {sorted(missing)})")
    done = shard_keys(shard_dir)
    jobs = []
    for row in todo.itertuples(index=False):
        if row.request_key in done:
            continue
        body = json.loads(row.request)
        jobs.append(Job(row.request_key, body, int(row.sample_index), 0, 0, 0.0))
    summary: dict[str, Any] = {"task": task, "planned": len(todo),
                               "already_in_shards": len(todo) - len(jobs)}
    transport = LocalTransport(teacher)
    with ShardWriter(shard_dir) as writer:
        bar = Progress(len(jobs), 0, task, progress)
        sink = Sink(writer, Budget(None, None), None, bar, task)
        if jobs:
            asyncio.run(transport.run(jobs, sink))
        bar.close()
        summary.update(generated=transport.generated, failed=transport.failed,
                       backend=transport.backend, seconds=round(transport.seconds, 3),
                       shard=str(writer.path) if writer.written else None)
    if not writer.written:
        Path(writer.path).unlink(missing_ok=True)
    log.info("task %s: %s", task, transport.summary())
    write_json(out, summary)
    return summary


def traces_status(paths: list[str], cache_dir: str | None = None) -> str:
    """A per-task table: rows, done (ok), cached, failed, skipped, tokens, USD, missing share and
    state (complete or PARTIAL, with what is missing and the table's read-only version); plus
    the cache's live per-task view (responses received so far) when `cache_dir` is given.

    A cache directory that does not exist is an error (a mistyped path is not an empty cache); an
    existing one without a cache file yet is empty."""
    from longthought.teacher.tracestore import collection_state, latest_version, recorded_state

    if cache_dir and not Path(cache_dir).is_dir():
        raise FileNotFoundError(f"--cache-dir {cache_dir}: no such directory (the request cache "
                                "is config cache_dir, default .cache/longthought)")

    lines = [f"{'task':<28} {'rows':>7} {'done':>7} {'cached':>7} {'failed':>7} "
             f"{'skipped':>7} {'tokens':>12} {'USD':>10} {'USD run':>9} {'missing':>8}  state"]
    notes: list[str] = []
    for path in paths:
        shown = Path(path)
        held_back = False
        if not shown.exists():
            version = latest_version(path)
            if version is None:
                lines.append(f"{shown.stem:<28} (not written yet: {path})")
                continue
            shown, held_back = version, True
        df = read_table(shown, "traces")
        record = recorded_state(path) or {}
        for task, g in df.groupby("task", sort=True):
            ok = g["status"] == "ok"
            tokens = int(g["prompt_tokens"].fillna(0).sum()
                         + g["completion_tokens"].fillna(0).sum())
            usd = float(g["cost_usd"].fillna(0).sum())
            usd_run = float(g.loc[~g["cached"], "cost_usd"].fillna(0).sum())
            # the record knows whether the rows were collected (an import is never partial);
            # without one, judge by the teacher column imports write
            collected = record.get("partial", True) if record else (
                held_back or not str(g["teacher"].iloc[0]).startswith("import:"))
            state = collection_state(g, collected=bool(collected))
            share = state["missing"] / max(1, state["rows"])
            word = "PARTIAL" if state["partial"] else "complete"
            lines.append(f"{task:<28} {len(g):>7} {int(ok.sum()):>7} "
                         f"{int((ok & g['cached']).sum()):>7} "
                         f"{int((g['status'] == 'failed').sum()):>7} "
                         f"{int((g['status'] == 'skipped_budget').sum()):>7} {tokens:>12,} "
                         f"{usd:>10.4f} {usd_run:>9.4f} {share:>8.1%}  {word}")
            if state["partial"]:
                notes.append(partial_message(task, {**state, "round": record.get("round", 0)},
                                             str(g["teacher"].iloc[0])))
        where = os.path.relpath(shown) if not held_back else str(shown)
        if held_back:
            notes.append(f"{path}: not linked (the job held a partial table back, see "
                         f"tasks.<task>.allow_partial); its latest version: {where}")
        elif Path(path).is_symlink():
            notes.append(f"{path} -> {os.readlink(path)} (read-only version; round "
                         f"{record.get('round', 0)})")
    lines += [""] + notes if notes else []
    if cache_dir:
        from longthought.teacher.cache import CACHE_FILE, RequestCache

        if not (Path(cache_dir) / CACHE_FILE).exists():
            lines += ["", f"request cache {cache_dir}: empty"]
        else:
            lines += ["", f"request cache {Path(cache_dir) / CACHE_FILE} (responses received, "
                      "by the task that asked first):",
                      f"{'task':<28} {'responses':>9} {'tokens':>12} {'USD':>10}"]
            with RequestCache(cache_dir) as cache:
                for tag, n, tokens, usd in cache.summary_by_tag():
                    lines.append(f"{tag or '-':<28} {n:>9} {int(tokens):>12,} {usd:>10.4f}")
        lines += pending_batches(cache_dir)
    return "\n".join(lines)


def pending_batches(cache_dir: str) -> list[str]:
    """Lines on the Batch API batches recorded and not stored yet (read from the records on
    disk; no API call): what a re-run will re-attach to."""
    from longthought.teacher.batch_ledger import Ledger
    from longthought.teacher.collect import STATE_DIR

    recs = [rec for d in sorted((Path(cache_dir) / STATE_DIR).glob("*/batches"))
            for rec in Ledger(d).pending()]
    if not recs:
        return []
    out = ["", f"batches recorded and not stored yet ({len(recs)}; a re-run re-attaches to "
           "them):", f"{'task':<28} {'batch':<34} {'state':<10} {'requests':>8} submitted"]
    for rec in recs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.created))
        out.append(f"{rec.tag or '-':<28} {rec.batch_id or rec.local_id:<34} {rec.state:<10} "
                   f"{rec.n:>8} {when}")
    return out
