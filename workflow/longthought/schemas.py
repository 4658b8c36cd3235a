"""Pandera schemas: the contract of every table that crosses a rule boundary.

Every table is validated when written (`io.write_table`) and when read (`io.read_table`), so a
malformed file fails at the boundary with the file, row and column named, never three rules later.
Columns are strict: an unexpected column is an error, so a producer cannot silently add fields a
consumer does not know about.
"""

from __future__ import annotations

import pandera.pandas as pa
from pandera.pandas import Check, Column, DataFrameSchema

ANSWER_TYPES = ["integer", "rational", "expression", "interval", "tuple", "text", "choice"]

_str = Column(str)
_opt_str = Column(str, nullable=True)
_int0 = Column(int, Check.ge(0))
_opt_int0 = Column("Int64", Check.ge(0), nullable=True)
_float0 = Column(float, Check.ge(0))
_opt_float = Column(float, nullable=True)


def _schema(
    name: str, columns: dict[str, Column], unique: list[str] | None = None
) -> DataFrameSchema:
    return DataFrameSchema(columns, name=name, strict=True, coerce=True, unique=unique)


# problems/{pool}.parquet and benchmarks/{bench}.parquet share one shape: a problem + gold answer.
PROBLEMS = _schema(
    "problems",
    {
        "problem_id": Column(str, Check.str_length(min_value=1)),
        "problem": Column(str, Check.str_length(min_value=1)),
        "answer": _str,  # gold answer as LaTeX/plain text; "" only for open-ended sets
        "answer_type": Column(str, Check.isin(ANSWER_TYPES)),
        "source": _str,  # pool/benchmark name or dataset id the row came from
        "solution": _opt_str,  # reference solution (feeds the rewrite task), if known
        "meta": _opt_str,  # JSON object: family, level, subject, url, ...
    },
    unique=["problem_id"],
)

# traces/{task}.parquet: one raw API trace per (problem, sample).
TRACES = _schema(
    "traces",
    {
        "trace_id": _str,  # f"{task}/{problem_id}/{sample_index}"
        "task": _str,
        "teacher": _str,  # teacher name in config
        "prompt": _str,  # prompt template name in config (distill, rewrite, ...)
        "problem_id": _str,
        "problem": _str,
        "answer": _str,  # gold answer, carried so curation needs only this table
        "sample_index": _int0,
        "request_key": _str,  # sha256 of the canonical request: the cache key
        "request": _str,  # JSON of the request body (never any key or header)
        "response": _opt_str,  # JSON of the raw response body, null when failed
        "content": _opt_str,
        "reasoning_content": _opt_str,  # DeepSeek-style separate reasoning, when sent
        "finish_reason": _opt_str,
        "max_tokens": _opt_int0,  # output limit it was collected at (an escalation's, if one)
        "model": _opt_str,  # the model that actually answered
        "prompt_tokens": _opt_int0,
        "completion_tokens": _opt_int0,
        "reasoning_tokens": _opt_int0,
        "latency_s": _opt_float,
        "attempts": _int0,
        "cached": Column(bool),  # served from the request cache in this run
        "status": Column(str, Check.isin(["ok", "failed", "skipped_budget"])),
        "error": _opt_str,
        "cost_usd": _opt_float,
    },
    unique=["trace_id"],
)

# datasets/{dataset}.parquet: curated SFT rows in chat-messages form.
DATASET = _schema(
    "dataset",
    {
        "sample_id": _str,  # the trace_id it came from
        "dataset": _str,
        "task": _str,
        "problem_id": _str,
        "problem": _str,
        "answer": _str,
        "messages": _str,  # JSON list of {"role", "content"}: system?, user, assistant
        "completion_tokens": _opt_int0,
    },
    unique=["sample_id"],
)

# datasets/{dataset}.rejected.parquet: every input row a filter removed, with why.
REJECTED = _schema(
    "rejected",
    {
        "sample_id": _str,
        "dataset": _str,
        "task": _str,
        "problem_id": _str,
        "filter": _str,  # filter name as in config, e.g. "truncated", "wrong_answer"
        "reason": _str,  # human-readable, e.g. "finish_reason=length"
        "detail": _opt_str,  # e.g. the extracted answer, the matching n-gram
    },
    unique=["sample_id"],
)

# datasets/{dataset}.funnel.parquet: the curation funnel, one row per filter in order.
FUNNEL = _schema(
    "funnel",
    {
        "dataset": _str,
        "step": _int0,
        "filter": _str,
        "rows_in": _int0,
        "removed": _int0,
        "rows_out": _int0,
    },
)

# models/{student}/train_log.parquet: one row per optimizer step.
TRAIN_LOG = _schema(
    "train_log",
    {
        "student": _str,
        "stage": _int0,
        "dataset": _str,
        "step": _int0,  # global optimizer step across stages
        "epoch": _float0,
        "loss": Column(float),
        "lr": _float0,
        "grad_norm": _opt_float,
        "tokens": _int0,  # real (non-pad) tokens in this step
        "tokens_per_s": _float0,
        "mem_mb": _opt_float,  # peak accelerator memory, null on CPU
    },
)

# generations/{model}/{bench}.parquet: one row per sample, scored.
GENERATIONS = _schema(
    "generations",
    {
        "model": _str,
        "benchmark": _str,
        "problem_id": _str,
        "sample_index": _int0,
        "budget": _opt_int0,  # thinking-token cap (budget forcing), null = unconstrained
        "prompt": _str,
        "output": _str,
        "output_tokens": _int0,
        "thinking_tokens": _opt_int0,
        "finish_reason": _opt_str,
        "extracted_answer": _opt_str,
        "correct": Column("boolean", nullable=True),  # null = checker could not decide
        "verdict": _str,  # checker reason: correct, wrong, no_answer, timeout, undecided
        # which extraction found the answer: boxed, answer_phrase, last_math, final_line, none
        "extraction": Column(str, nullable=True, required=False),
        "latency_s": _opt_float,
        "backend": _str,
        "temperature": _float0,
        "top_p": _float0,
        "max_new_tokens": _int0,
        "seed": Column(int),
    },
    unique=["model", "benchmark", "budget", "problem_id", "sample_index"],
)

# Where a table has one row per replicate and an aggregate row per student (metrics, the report's
# generalization table): see longthought.evaluate.spread.
REPLICATE_COLUMNS = {
    "replicate_of": _opt_str,  # a replicate's row: the name its aggregate row has (`tiny`)
    "seed": _opt_int0,  # a replicate's row: its replicate seed
    "aggregate": Column(bool),  # the aggregate row over a student's replicates
    "n_replicates": Column(int, Check.ge(1)),  # 1 for a single run
    "sd_replicates": _opt_float,  # aggregate rows: the standard deviation across replicates
}

# metrics rows (written into results.duckdb by the report rule).
METRICS = _schema(
    "metrics",
    {
        "model": _str,
        "benchmark": _str,
        "metric": _str,  # pass@1, pass@k, maj@k, ...
        "budget": _opt_int0,
        "value": Column(float),
        "stderr": _opt_float,
        "avg_output_tokens": _float0,
        "avg_thinking_tokens": _opt_float,  # over all samples (0 for those without thinking)
        "thinking_share": Column(float, Check.in_range(0, 1)),  # samples with any thinking
        "n_problems": _int0,
        "n_samples": _int0,
        **REPLICATE_COLUMNS,
    },
)

# generalization/{model}/{gset}.parquet: judged rows -> aggregated into GENERALIZATION.
GENERALIZATION = _schema(
    "generalization",
    {
        "model": _str,
        "category": Column(str, Check.isin(["safety", "factuality", "sycophancy", "general_qa"])),
        "benchmark": _str,
        "metric": _str,
        "value": Column(float),
        "stderr": _opt_float,
        "n": _int0,
        "judge": _str,
    },
)

# The report's generalization table (results.duckdb): the files' rows plus an aggregate row per
# student with replicates.
GENERALIZATION_REPORT = _schema(
    "generalization_report",
    {**GENERALIZATION.columns, **REPLICATE_COLUMNS},
)

# results.duckdb `comparisons`: pairs of models (report.compare), per benchmark/metric/budget.
COMPARISONS = _schema(
    "comparisons",
    {
        "model_a": _str,  # the first of the pair (a student stands for its replicates)
        "model_b": _str,  # the second: `diff` is its gain over the first
        "benchmark": _str,
        "metric": _str,
        "budget": _opt_int0,
        "mean_a": Column(float),
        "mean_b": Column(float),
        "diff": Column(float),  # mean_b - mean_a over the problems both answered
        "replicates_a": Column(int, Check.ge(1)),
        "replicates_b": Column(int, Check.ge(1)),
        "n_problems": _int0,
        "se_seeds": _opt_float,  # across replicates, problems fixed (Welch); null: a side has 1
        "p_seeds": _opt_float,  # Welch's t-test on the per-replicate values
        "se_paired": _opt_float,  # over problems, paired (sd of per-problem differences / sqrt P)
        "ci_paired_low": _opt_float,  # paired bootstrap over problems, 95%
        "ci_paired_high": _opt_float,
        "p_paired": _opt_float,  # sign-flip permutation test on the per-problem differences
        "se_total": _opt_float,  # both sources: problems (paired) and seeds
        "ci_low": _opt_float,  # diff -/+ 1.96 se_total
        "ci_high": _opt_float,
        "seeds_known": Column(bool),  # both sides have >= 2 replicates
        "verdict": _str,
    },
)

TTI_SCORES = _schema(
    "tti_scores",
    {
        "project": _str,
        "dimension": _str,
        "item": _str,
        "points": _int0,
        "earned": _int0,
        "evidence": _opt_str,
    },
)

ALL: dict[str, DataFrameSchema] = {
    s.name: s
    for s in [
        PROBLEMS,
        TRACES,
        DATASET,
        REJECTED,
        FUNNEL,
        TRAIN_LOG,
        GENERATIONS,
        METRICS,
        GENERALIZATION,
        GENERALIZATION_REPORT,
        COMPARISONS,
        TTI_SCORES,
    ]
}

__all__ = ["ALL", "ANSWER_TYPES", "pa", *[k.upper() for k in ALL]]
