"""Realistic SFT rows made without a teacher, from the procedural solver's own steps.

Tests and `benchmarks/bench_train.py` need chat data shaped like the curated datasets (schema
`dataset`) without starting a teacher: a long thought in `<think>` with step-by-step work, an
occasional slip that is noticed and corrected, a self-check, then the answer in `\\boxed{}`.
Stage-1 rows (`style="format"`) are the plain step-by-step solution, as the rewrite task gives.
"""

from __future__ import annotations

import json
import random

import pandas as pd

from longthought.problems import procedural

FAMILIES = {
    "addition": {"digits": 3},
    "multiplication": {"digits": 2, "by_digits": 1},
    "linear": {"max_coef": 9, "max_x": 20, "max_b": 50},
    "fractions": {"max_den": 9},
}


def assistant_text(problem: str, style: str = "think", slip_rate: float = 0.3,
                   rng: random.Random | None = None) -> str:
    """The assistant turn for `problem`: a long thought (`think`) or a plain solution (`format`)."""
    sol = procedural.solve(problem)
    if sol is None:
        raise ValueError(f"not a procedural problem: {problem!r}")
    rng = rng or random.Random(0)
    lines = []
    for step in sol.steps:
        if style == "think" and step.wrong is not None and rng.random() < slip_rate:
            lines.append(step.render(step.wrong))
            lines.append(f"Wait, that is not right. {step.render()}")
        else:
            lines.append(step.render())
    answer = f"The answer is $\\boxed{{{sol.answer}}}$."
    if style == "format":
        return "\n".join(lines) + "\n" + answer
    body = "\n".join(["Let me work through this step by step.", *lines, sol.check])
    return f"<think>\n{body}\n</think>\n\n{answer}"


def synthetic_dataset(n: int, seed: int, split: str = "train", style: str = "think",
                      name: str = "synthetic", slip_rate: float = 0.3) -> pd.DataFrame:
    """`n` rows of schema `dataset` over the four demo families (deterministic in `seed`)."""
    rng = random.Random(seed)
    rows = []
    for p in procedural.generate(FAMILIES, n, seed, split):
        text = assistant_text(p["problem"], style, slip_rate, rng)
        messages = [{"role": "user", "content": p["problem"]},
                    {"role": "assistant", "content": text}]
        rows.append({
            "sample_id": f"{name}/{p['problem_id']}/0",
            "dataset": name,
            "task": f"{name}-task",
            "problem_id": p["problem_id"],
            "problem": p["problem"],
            "answer": p["answer"],
            "messages": json.dumps(messages),
            "completion_tokens": None,
        })
    return pd.DataFrame(rows)


def traces_from_dataset(df: pd.DataFrame, task: str = "synthetic-task") -> pd.DataFrame:
    """Rows of schema `traces` carrying the dataset's assistant text (for the tiny tokenizer)."""
    rows = []
    for r in df.itertuples():
        content = json.loads(r.messages)[-1]["content"]
        rows.append({
            "trace_id": f"{task}/{r.problem_id}/0", "task": task, "teacher": "synthetic",
            "prompt": "distill", "problem_id": r.problem_id, "problem": r.problem,
            "answer": r.answer, "sample_index": 0, "request_key": f"synthetic:{r.problem_id}",
            "request": "{}", "response": None, "content": content, "reasoning_content": None,
            "finish_reason": "stop", "max_tokens": None, "model": "synthetic",
            "prompt_tokens": None,
            "completion_tokens": None, "reasoning_tokens": None, "latency_s": None,
            "attempts": 1, "cached": False, "status": "ok", "error": None, "cost_usd": None,
        })
    return pd.DataFrame(rows)
