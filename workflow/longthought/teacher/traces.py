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
from pathlib import Path
from typing import Any

import pandas as pd

from longthought.io import read_table, write_table
from longthought.teacher.collect import ChatRequest, ChatResult, run_requests
from longthought.teacher.endpoint import open_endpoint

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
    """Build, send and record the task's requests (or import a trace set); write `out`."""
    task_cfg = spec.get("task") or {}
    if task_cfg.get("import"):
        from longthought.teacher.importer import import_traces

        df = import_traces(task, spec, problems_path)
        return write_table(df, out, "traces")
    if not problems_path:
        raise ValueError(f"task {task!r}: --problems is required (the task has no import: block)")
    problems = read_table(problems_path, "problems")
    stubs, requests = build_requests(task, spec, problems, problems_path)
    teacher = spec["teacher"]
    teacher_name = spec.get("teacher_name") or task_cfg.get("teacher") or str(teacher["model"])
    prompt_name = spec.get("prompt_name") or task_cfg.get("prompt") or "prompt"
    log.info("task %s: %d problems x %d sample(s) = %d requests to teacher %s (%s)", task,
             len(problems), len(requests) // max(1, len(problems)), len(requests), teacher_name,
             teacher.get("base_url"))
    with open_endpoint(teacher) as base_url:
        results = run_requests(teacher, requests, cache_dir, base_url, progress=progress,
                               tag=task)
    df = trace_rows(task, teacher_name, prompt_name, stubs, results)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return write_table(df, out, "traces")


def traces_status(paths: list[str], cache_dir: str | None = None) -> str:
    """A per-task table: rows, done (ok), cached, failed, skipped, tokens, USD; plus the cache's
    live per-task view (responses received so far) when `cache_dir` is given.

    A cache directory that does not exist is an error (a mistyped path is not an empty cache); an
    existing one without a cache file yet is empty."""
    if cache_dir and not Path(cache_dir).is_dir():
        raise FileNotFoundError(f"--cache-dir {cache_dir}: no such directory (the request cache "
                                "is config cache_dir, default .cache/longthought)")
    lines = [f"{'task':<28} {'rows':>7} {'done':>7} {'cached':>7} {'failed':>7} "
             f"{'skipped':>7} {'tokens':>12} {'USD':>10} {'USD run':>9}"]
    for path in paths:
        if not Path(path).exists():
            lines.append(f"{Path(path).stem:<28} (not written yet: {path})")
            continue
        df = read_table(path, "traces")
        for task, g in df.groupby("task", sort=True):
            ok = g["status"] == "ok"
            tokens = int(g["prompt_tokens"].fillna(0).sum()
                         + g["completion_tokens"].fillna(0).sum())
            usd = float(g["cost_usd"].fillna(0).sum())
            usd_run = float(g.loc[~g["cached"], "cost_usd"].fillna(0).sum())
            lines.append(f"{task:<28} {len(g):>7} {int(ok.sum()):>7} "
                         f"{int((ok & g['cached']).sum()):>7} "
                         f"{int((g['status'] == 'failed').sum()):>7} "
                         f"{int((g['status'] == 'skipped_budget').sum()):>7} {tokens:>12,} "
                         f"{usd:>10.4f} {usd_run:>9.4f}")
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
