"""Synthetic trace tables for curation tests and the curation benchmark.

Real procedural problems with long `<think>` reasoning of a chosen length (composed from a pool
of varied paragraphs, so that it does not look like a loop), then a boxed final answer; faults at
set rates: failed requests, truncation, wrong answers, missing answers, loops, another script.
Written through the `traces` schema in chunks, so 100k long traces never sit in memory at once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from longthought import io
from longthought.problems.procedural import generate

FAULTS = {"failed": 0.01, "truncated": 0.03, "wrong": 0.10, "no_answer": 0.02, "loop": 0.02,
          "script": 0.01}
_VERBS = ["check", "compute", "verify", "recall", "note", "consider", "rewrite", "compare",
          "expand", "simplify", "estimate", "confirm", "substitute", "collect", "reduce"]
_NOUNS = ["sum", "carry", "digit", "term", "product", "remainder", "factor", "denominator",
          "numerator", "coefficient", "equation", "result", "column", "partial sum", "estimate"]


def trace_record(task: str, problem_id: str, problem: str, answer: str, content: str | None, *,
                 sample_index: int = 0, status: str = "ok", finish_reason: str | None = "stop",
                 reasoning_content: str | None = None, completion_tokens: int | None = None,
                 trace_id: str | None = None, error: str | None = None) -> dict:
    """One row of the `traces` schema with plausible bookkeeping fields."""
    if completion_tokens is None and content is not None:
        completion_tokens = max(1, len(content) // 4)
    return {
        "trace_id": trace_id or f"{task}/{problem_id}/{sample_index}",
        "task": task, "teacher": "synthetic", "prompt": "distill", "problem_id": problem_id,
        "problem": problem, "answer": answer, "sample_index": sample_index,
        "request_key": f"key-{task}-{problem_id}-{sample_index}",
        "request": json.dumps({"messages": [{"role": "user", "content": problem}]}),
        "response": None if status != "ok" else json.dumps({"id": "x"}),
        "content": content if status == "ok" else None,
        "reasoning_content": reasoning_content, "finish_reason": finish_reason,
        "max_tokens": None, "model": "synthetic", "prompt_tokens": len(problem) // 4 + 20,
        "completion_tokens": completion_tokens if status == "ok" else None,
        "reasoning_tokens": None, "latency_s": 1.0, "attempts": 1, "cached": False,
        "status": status, "error": error, "cost_usd": 0.0,
    }


def _paragraphs(rng: random.Random, count: int = 400) -> list[str]:
    out = []
    for _ in range(count):
        sentences = []
        for _ in range(rng.randint(5, 9)):
            a, b = rng.randint(2, 999), rng.randint(2, 999)
            sentences.append(f"Let me {rng.choice(_VERBS)} the {rng.choice(_NOUNS)}: {a} and {b} "
                             f"give {a + b}, and the {rng.choice(_NOUNS)} {rng.choice(_VERBS)}s "
                             f"to {a * b % 97} after I {rng.choice(_VERBS)} it once more.")
        out.append(" ".join(sentences))
    return out


def _thought(rng: random.Random, paras: list[str], tokens: int) -> str:
    """About `tokens` tokens (4 characters each) of reasoning, paragraphs drawn without reuse."""
    chars, parts = 0, []
    order = rng.sample(range(len(paras)), len(paras))
    i = 0
    while chars < tokens * 4:
        p = paras[order[i % len(order)]]
        parts.append(f"Step {i + 1}. {p}")
        chars += len(p) + 10
        i += 1
    return "\n\n".join(parts)


def synthetic_traces(n: int, seed: int = 0, min_tokens: int = 2000, max_tokens: int = 8000,
                     faults: dict | None = None, task: str = "synthetic", samples: int = 2,
                     chunk: int = 1000) -> Iterator[pd.DataFrame]:
    """`n` trace rows in chunks: `samples` traces per procedural problem, faults at set rates."""
    rng = random.Random(seed)
    rates = {**FAULTS, **(faults or {})}
    paras = _paragraphs(rng)
    n_problems = max(1, -(-n // samples))
    families = {"addition": {"digits": 4}, "multiplication": {"digits": 3, "by_digits": 2},
                "linear": {"max_coef": 20, "max_x": 99, "max_b": 500}, "fractions": {"max_den": 40}}
    problems = generate(families, n_problems, seed, "train")
    rows: list[dict] = []
    for i in range(n):
        p = problems[i // samples]
        fault = None
        u = rng.random()
        for name, rate in rates.items():
            if u < rate:
                fault = name
                break
            u -= rate
        tokens = rng.randint(min_tokens, max_tokens)
        thought = _thought(rng, paras, tokens)
        answer = p["answer"]
        if fault == "wrong":
            answer = f"{answer}1" if "frac" not in answer else "\\frac{1}{1000}"
        final = f"The answer is $\\boxed{{{answer}}}$."
        if fault == "no_answer":
            final = "I am not sure what the answer is."
        if fault == "loop":
            thought = " ".join(["Wait, let me check the carry again."] * (tokens // 9))
        if fault == "script":
            thought = "让我们再检查一下这个计算。" * (tokens // 6)
        content = f"<think>\n{thought}\n</think>\n\n{final}"
        finish = "stop"
        if fault == "truncated":
            content, finish = f"<think>\n{thought}", "length"
        rows.append(trace_record(
            task, p["problem_id"], p["problem"], p["answer"], content,
            sample_index=i % samples, status="failed" if fault == "failed" else "ok",
            finish_reason=None if fault == "failed" else finish,
            completion_tokens=None if fault == "failed" else len(content) // 4,
            error="HTTP 500" if fault == "failed" else None))
        if len(rows) >= chunk:
            yield pd.DataFrame(rows)
            rows = []
    if rows:
        yield pd.DataFrame(rows)


def write_traces(path: str, chunks: Iterator[pd.DataFrame] | list[pd.DataFrame]) -> int:
    """Validate each chunk against `traces` and write them as one parquet file (atomically)."""
    n = 0
    writer = None
    with io.atomic_path(path) as tmp:
        try:
            for df in chunks:
                df = io.validate(df.reset_index(drop=True), "traces", f"writing {path}")
                table = pa.Table.from_pandas(df, preserve_index=False)
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(schema))
                n += len(df)
        finally:
            if writer is not None:
                writer.close()
    return n
