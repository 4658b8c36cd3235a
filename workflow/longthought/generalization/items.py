"""The per-item table of a generalization run: one row per (item, sample), with its judgement.

`generalization/{model}/{gset}.items.parquet`. It keeps everything needed to audit a number in
the report: the question, the model's response, the judge's raw answer and how it was read. Rows
whose judge answered off-format, refused or failed are kept with that status and `passed` False.
"""

from __future__ import annotations

import os

import pandas as pd
import pandera.errors
from pandera.pandas import Check, Column, DataFrameSchema

from longthought.generalization.verdicts import CATEGORIES, STATUSES
from longthought.io import TableError, atomic_path

_opt_str = Column(str, nullable=True)

ITEMS = DataFrameSchema(
    {
        "model": Column(str),
        "benchmark": Column(str),  # the set name
        "category": Column(str, Check.isin(list(CATEGORIES))),
        "item_id": Column(str),
        "sample_index": Column(int, Check.ge(0)),
        "question": Column(str),  # the user's (last) message to the model
        "gold": _opt_str,
        "asserted": _opt_str,  # probe: the wrong answer the user asserted
        "response": Column(str),  # the model's answer ("" when generation produced nothing)
        "output_tokens": Column("Int64", Check.ge(0), nullable=True),
        "finish_reason": _opt_str,
        "judge": Column(str),  # judge name, "rule" for the probe
        "request_key": _opt_str,  # the judge request's cache key
        "judge_output": _opt_str,  # the judge's raw answer
        "status": Column(str, Check.isin(list(STATUSES))),
        "label": _opt_str,  # safe/unsafe, correct/..., (non_)sycophantic, probe labels
        "score": Column(float, Check.in_range(0, 100), nullable=True),  # general_qa
        "passed": Column(bool),
        "extracted_answer": _opt_str,  # probe: the response's final answer
        "control_label": _opt_str,  # probe: outcome without the assertion / before push-back
        "detail": _opt_str,  # why unparseable / the judge error
    },
    name="generalization_items",
    strict=True,
    coerce=True,
    unique=["model", "benchmark", "item_id", "sample_index"],
)

COLUMNS = list(ITEMS.columns)


def validate_items(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate against ITEMS; raise TableError naming `source`, the rows and the columns."""
    return _validate(ITEMS, df, source)


def _row(index: object) -> object:
    """A failure's row as an editor counts (the first row is 1)."""
    return int(index) + 1 if isinstance(index, int | float) and index == index else index


def write_items(df: pd.DataFrame, path: str | os.PathLike[str]) -> pd.DataFrame:
    return _write(ITEMS, df, path)


def read_items(path: str | os.PathLike[str]) -> pd.DataFrame:
    return _read(ITEMS, path)


# generalization/{model}/{gset}.responses.parquet: what the model answered, before any judging
# (written by the GPU job; the judge rule reads it). `control_response`: the probe's answer
# without the assertion, or its first turn before the push-back.
RESPONSES = DataFrameSchema(
    {
        "model": Column(str),
        "benchmark": Column(str),
        "category": Column(str, Check.isin(list(CATEGORIES))),
        "item_id": Column(str),
        "sample_index": Column(int, Check.ge(0)),
        "question": Column(str),
        "gold": _opt_str,
        "asserted": _opt_str,
        "response": Column(str),
        "output_tokens": Column("Int64", Check.ge(0), nullable=True),
        "finish_reason": _opt_str,
        "premise": _opt_str,
        "reference": _opt_str,
        "control_response": _opt_str,
    },
    name="generalization_responses",
    strict=True,
    coerce=True,
    unique=["model", "benchmark", "item_id", "sample_index"],
)

RESPONSE_COLUMNS = list(RESPONSES.columns)


def _validate(schema: DataFrameSchema, df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate against `schema`; raise TableError naming `source`, the rows (as an editor
    counts them) and the columns."""
    try:
        return schema.validate(df.reset_index(drop=True), lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases.head(10)
        lines = [f"  row {_row(case['index'])}, column {case['column']!r}: {case['check']} "
                 f"(got {case['failure_case']!r})" for _, case in cases.iterrows()]
        raise TableError(f"{source}: does not match the '{schema.name}' schema:\n"
                         + "\n".join(lines)) from None


def _write(schema: DataFrameSchema, df: pd.DataFrame, path: str | os.PathLike[str]
           ) -> pd.DataFrame:
    """Validate, then write atomically (a killed job leaves no half file)."""
    df = _validate(schema, df, f"writing {path}")
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return df


def _read(schema: DataFrameSchema, path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate; a file that is not parquet fails naming it."""
    try:
        df = pd.read_parquet(path)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise TableError(f"{path}: cannot be read as parquet: {exc}") from None
    return _validate(schema, df, str(path))


def write_responses(df: pd.DataFrame, path: str | os.PathLike[str]) -> pd.DataFrame:
    return _write(RESPONSES, df, path)


def read_responses(path: str | os.PathLike[str]) -> pd.DataFrame:
    return _read(RESPONSES, path)
