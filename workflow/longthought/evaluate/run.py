"""`longthought generate`: sample a model on a benchmark, score every sample, write the table.

For each benchmark problem: `sampling.n` unconstrained samples, plus (local backends) n samples
per thinking budget in `budgets`. Every sample is checked against the gold answer with the same
checker as curation (`longthought.answers.check_many`; `answer_extraction`, default `full`:
math-verify's full extraction) and becomes one row of the `generations` table, with its tokens,
latency, extracted answer, verdict, the extraction that found the answer, sampling parameters
and seed. A sidecar `<out stem>.run.json` records provenance (see `provenance`).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from longthought.answers.checker import DEFAULT_EXTRACTION, check_extraction
from longthought.evaluate.backends import (
    LOCAL_KINDS,
    generate_budget_texts,
    validate_refill,
    validate_sampling,
)
from longthought.evaluate.forcing import BudgetForcing, validate_budget
from longthought.evaluate.outputs import Output
from longthought.evaluate.provenance import model_files, run_record
from longthought.io import file_sha256, read_table, write_json, write_table

SPEC_KEYS = {"model", "benchmark", "sampling", "budgets", "batch_size", "checker", "prompt",
             "budget_forcing", "answer_extraction", "refill"}
DEFAULT_PROMPT = "{problem}"


def _check_spec(spec: dict) -> None:
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ValueError(f"generate --spec: unknown key(s) {unknown}; known: {sorted(SPEC_KEYS)}")
    for key in ("model", "sampling"):
        if not isinstance(spec.get(key), dict):
            raise ValueError(f"generate --spec: '{key}' must be an object")
    budgets = spec.get("budgets") or []
    if not isinstance(budgets, list):
        raise ValueError("generate --spec: 'budgets' must be a list of token counts")
    for i, b in enumerate(budgets):
        try:
            validate_budget(b)
        except ValueError as exc:
            raise ValueError(f"generate --spec: budgets[{i}]: {exc}") from None
    if budgets and spec["model"].get("kind") not in LOCAL_KINDS:
        raise ValueError("generate --spec: 'budgets' (budget forcing) needs a local model; "
                         f"model {spec['model'].get('name', '?')} is kind "
                         f"{spec['model'].get('kind')!r}")
    prompt = spec.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or "{problem}" not in prompt):
        raise ValueError("generate --spec: 'prompt' must be a string containing {problem}")
    n = spec["sampling"].get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"generate --spec: sampling.n must be an integer >= 1 (got {n!r})")
    check_extraction(spec.get("answer_extraction", DEFAULT_EXTRACTION),
                     "generate --spec: answer_extraction")
    batch = spec.get("batch_size", 16)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"generate --spec: batch_size must be an integer >= 1 (got {batch!r})")
    validate_refill(spec.get("refill"), "generate --spec: refill")


def build_messages(problem: str, template: str | None, system: str | None) -> list[dict]:
    """Chat messages for one problem. `{problem}` is substituted literally (LaTeX braces safe)."""
    user = (template or DEFAULT_PROMPT).replace("{problem}", problem)
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": user}]


def _score(outputs: list[list[Output]], golds: list[str], problems: list[str], checker: dict,
           extraction: str) -> list[list]:
    from longthought.answers.checker import check_many

    flat = [o.text for per in outputs for o in per]
    gold_flat = [g for g, per in zip(golds, outputs, strict=True) for _ in per]
    problem_flat = [p for p, per in zip(problems, outputs, strict=True) for _ in per]
    verdicts = check_many(gold_flat, flat, timeout_s=float(checker.get("timeout_s", 5.0)),
                          workers=int(checker.get("workers", 2)), extraction=extraction,
                          problems=problem_flat)
    it = iter(verdicts)
    return [[next(it) for _ in per] for per in outputs]


def run_generate(model: str, spec: dict, bench_path: str, out_path: str,
                 cache_dir: str | None = None) -> pd.DataFrame:
    """Generate, score and write `out_path` (+ `.run.json`); returns the generations table."""
    _check_spec(spec)
    started = datetime.now(UTC).isoformat()
    model_spec = {**spec["model"], "name": spec["model"].get("name", model)}
    sampling = validate_sampling({k: v for k, v in spec["sampling"].items()
                                  if k not in ("n", "system")})
    n = int(spec["sampling"].get("n", 1))
    system = spec["sampling"].get("system")
    forcing = BudgetForcing.from_spec(spec.get("budget_forcing"))
    benchmark = spec.get("benchmark") or Path(out_path).name.removesuffix(".parquet")
    problems = read_table(bench_path, "problems")
    if problems.empty:
        raise ValueError(f"{bench_path}: the benchmark has no problems")
    messages = [build_messages(p, spec.get("prompt"), system) for p in problems["problem"]]
    golds = problems["answer"].tolist()
    kind = model_spec.get("kind")
    backend = model_spec.get("backend", "transformers") if kind in LOCAL_KINDS else "api"
    rows: list[dict] = []
    timings: list[dict] = []
    budgets = [None, *(spec.get("budgets") or [])]
    # one call for every budget: on the transformers backend they share the decoded prefix
    generated = generate_budget_texts(model_spec, messages, sampling, n, budgets,
                                      batch_size=int(spec.get("batch_size", 16)),
                                      cache_dir=cache_dir, forcing=forcing,
                                      refill=validate_refill(spec.get("refill")))
    for budget in dict.fromkeys(budgets):
        outputs, gen_s = generated[budget]
        t0 = time.perf_counter()
        verdicts = _score(outputs, golds, problems["problem"].tolist(), spec.get("checker") or {},
                          spec.get("answer_extraction", DEFAULT_EXTRACTION))
        timings.append({"budget": budget, "generate_s": round(gen_s, 3),
                        "score_s": round(time.perf_counter() - t0, 3),
                        "samples": n * len(problems)})
        for p, (pid, msgs) in enumerate(zip(problems["problem_id"], messages, strict=True)):
            for j, (out, verdict) in enumerate(zip(outputs[p], verdicts[p], strict=True)):
                rows.append({
                    "model": model, "benchmark": benchmark, "problem_id": pid,
                    "sample_index": j, "budget": budget,
                    "prompt": json.dumps(msgs, ensure_ascii=False),
                    "output": out.text, "output_tokens": out.output_tokens,
                    "thinking_tokens": out.thinking_tokens, "finish_reason": out.finish_reason,
                    "extracted_answer": verdict.extracted, "correct": verdict.correct,
                    "verdict": verdict.reason, "extraction": verdict.method,
                    "latency_s": out.latency_s, "backend": backend,
                    "temperature": float(sampling["temperature"]),
                    "top_p": float(sampling["top_p"]),
                    "max_new_tokens": int(sampling["max_new_tokens"]),
                    "seed": int(sampling["seed"]),
                })
    table = pd.DataFrame(rows)
    table["budget"] = table["budget"].astype("Int64")
    table["thinking_tokens"] = table["thinking_tokens"].astype("Int64")
    table["correct"] = table["correct"].astype("boolean")
    table = write_table(table, out_path, "generations")
    record = run_record(
        spec, model=model, benchmark=benchmark, backend=backend,
        bench_file=str(bench_path), bench_sha256=file_sha256(bench_path),
        model_files=model_files(model_spec["path"]) if kind in LOCAL_KINDS else None,
        rows=len(table), n=n, budgets=spec.get("budgets") or [],
        forcing=forcing.__dict__, timings=timings, started=started,
        finished=datetime.now(UTC).isoformat(),
    )
    write_json(run_json_path(out_path), record)
    return table


def run_json_path(out_path: str | Path) -> Path:
    """`generations/M/B.parquet` -> `generations/M/B.run.json`."""
    out = Path(out_path)
    return out.with_name(out.name.removesuffix(".parquet") + ".run.json")
