"""`longthought traces`: ask a teacher (or a rewriter) about every problem of a pool.

A task is teacher x prompt template x problem pool. Each problem becomes `samples_per_problem`
chat requests built from the template (`{problem}` and `{solution}` are replaced literally, so
LaTeX braces in a template are safe); the collector sends them inside `open_endpoint` and every
request yields exactly one row of the `traces` table, whatever happened to it (ok, failed,
skipped_budget). A task with an `import:` block instead reads a published trace set
(`importer.import_traces`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from longthought.io import read_table
from longthought.teacher.collect import ChatRequest, ChatResult, run_requests
from longthought.teacher.endpoint import open_endpoint
from longthought.teacher.tracestore import write_traces

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
                                                               problems["solution"], strict=True))
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


def trace_rows(task: str, teacher_name: str, prompt_name: str, stubs: list[dict[str, Any]],
               results: list[ChatResult]) -> pd.DataFrame:
    """The traces table from row stubs and their collector results."""
    rows = []
    for stub, r in zip(stubs, results, strict=True):
        rows.append({
            "trace_id": f"{task}/{stub['problem_id']}/{stub['sample_index']}",
            "task": task, "teacher": teacher_name, "prompt": prompt_name,
            "problem_id": stub["problem_id"], "problem": stub["problem"],
            "answer": stub["answer"], "sample_index": stub["sample_index"],
            "request_key": r.key, "request": r.request, "response": r.response,
            "content": r.content, "reasoning_content": r.reasoning_content,
            "finish_reason": r.finish_reason, "model": r.model,
            "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            "reasoning_tokens": r.reasoning_tokens, "latency_s": r.latency_s,
            "attempts": r.attempts, "cached": r.cached, "status": r.status, "error": r.error,
            "cost_usd": r.cost_usd,
        })
    return pd.DataFrame(rows, columns=TRACE_COLUMNS)


TRACE_COLUMNS = ["trace_id", "task", "teacher", "prompt", "problem_id", "problem", "answer",
                 "sample_index", "request_key", "request", "response", "content",
                 "reasoning_content", "finish_reason", "model", "prompt_tokens",
                 "completion_tokens", "reasoning_tokens", "latency_s", "attempts", "cached",
                 "status", "error", "cost_usd"]


def collect_traces(task: str, spec: dict[str, Any], problems_path: str | None, cache_dir: str,
                   out: str, progress: bool = True) -> pd.DataFrame:
    """Build, send and record the task's requests (or import a trace set); write `out` (a link
    to a read-only version, see `tracestore`) and say whether the collection is partial."""
    task_cfg = spec.get("task") or {}
    round_ = int(spec.get("round") or 0)
    if task_cfg.get("import"):
        from longthought.teacher.importer import import_traces

        df, _ = write_traces(import_traces(task, spec, problems_path), out, round_=round_,
                             collected=False)
        return df
    if not problems_path:
        raise ValueError(f"task {task!r}: --problems is required (the task has no import: block)")
    problems = read_table(problems_path, "problems")
    stubs, requests = build_requests(task, spec, problems, problems_path)
    teacher = spec["teacher"]
    teacher_name = spec.get("teacher_name") or task_cfg.get("teacher") or str(teacher["model"])
    prompt_name = spec.get("prompt_name") or task_cfg.get("prompt") or "prompt"
    log.info("task %s: %d problems x %d sample(s) = %d requests to teacher %s (%s)%s", task,
             len(problems), len(requests) // max(1, len(problems)), len(requests), teacher_name,
             teacher.get("base_url"), f", collection round {round_}" if round_ else "")
    with open_endpoint(teacher) as base_url:
        results = run_requests(teacher, requests, cache_dir, base_url, progress=progress,
                               tag=task)
    df = trace_rows(task, teacher_name, prompt_name, stubs, results)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    df, record = write_traces(df, out, round_=round_)
    if record["partial"]:
        log.warning("%s", partial_message(task, record, task_cfg.get("teacher")))
    else:
        log.info("task %s: complete, %d rows -> %s (%s)", task, record["rows"], out,
                 record["version"])
    return df


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


def traces_status(paths: list[str], cache_dir: str | None = None) -> str:
    """A per-task table: rows, done (ok), cached, failed, skipped, tokens, USD, missing share and
    state (complete or PARTIAL, with what is missing and the table's read-only version); plus
    the cache's live per-task view (responses received so far) when `cache_dir` is given."""
    from longthought.teacher.tracestore import collection_state, latest_version, recorded_state

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
    return "\n".join(lines)
