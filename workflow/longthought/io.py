"""Atomic, validated table I/O.

Every table crossing a rule boundary goes through `write_table` / `read_table`, which validate it
against its pandera schema. Writes go to a temporary file in the same directory and are renamed
into place, so a killed job never leaves a half-written output that Snakemake would trust.

Files land with the modes the user's umask gives a plain `open()` (see `longthought.files`,
where the atomic-write and mode helpers live without pandas; they are re-exported here).

Row numbers in messages count the way an editor does: the first data row of a file is row 1 (a
JSON-lines file's rows are its line numbers, blank lines counted).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors

from longthought.files import (  # noqa: F401 (re-exported: io is where callers look)
    apply_umask,
    atomic_path,
    current_umask,
    dir_mode,
    file_mode,
    file_sha256,
    make_temp_dir,
)
from longthought.schemas import ALL


class TableError(ValueError):
    """A table failed its schema: the message names the file, the rows and the columns."""


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def number_rows(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its rows numbered as an editor counts them: 1, 2, ... (in place of 0, 1, ...)."""
    df.index = pd.RangeIndex(1, len(df) + 1)
    return df


def validate(df: pd.DataFrame, schema_name: str, source: str, first_row: int = 1,
             rows: list[int] | None = None) -> pd.DataFrame:
    """Validate `df` against `schema_name`; raise TableError naming `source`, rows, columns.

    Rows are named as an editor counts them: the frame's first row is `first_row` (1 for a whole
    table; a later chunk's offset), or `rows[i]` for the i-th row when given (the source rows a
    frame was built from).
    """
    schema = ALL[schema_name]
    try:
        return schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        lines = []
        for _, case in cases.head(10).iterrows():
            row = case.get("index")
            if pd.notna(row):
                pos = df.index.get_loc(row) if row in df.index else int(row)
                pos = pos if isinstance(pos, int) else int(row)
                row = rows[pos] if rows is not None else pos + first_row
            where = f"row {int(row)}" if pd.notna(row) else "table"
            lines.append(f"  {where}, column {case.get('column')!r}: {case.get('check')} "
                         f"(got {case.get('failure_case')!r})")
        more = f"\n  ... and {len(cases) - 10} more" if len(cases) > 10 else ""
        raise TableError(
            f"{source}: does not match the '{schema_name}' schema:\n" + "\n".join(lines) + more
        ) from None
    except pandera.errors.SchemaError as exc:  # non-lazy errors such as a missing column
        raise TableError(f"{source}: does not match the '{schema_name}' schema: {exc}") from None


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], schema_name: str) -> pd.DataFrame:
    """Validate and atomically write a parquet table; returns the validated (coerced) frame."""
    df = validate(df.reset_index(drop=True), schema_name, f"writing {path}")
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return df


def read_table(path: str | os.PathLike[str], schema_name: str) -> pd.DataFrame:
    """Read a parquet table and validate it; a malformed file fails naming file, row, column."""
    try:
        df = pd.read_parquet(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # corrupt file: say which
        raise TableError(f"{path}: cannot be read as parquet: {exc}") from None
    return validate(df, schema_name, str(path))


def read_tables(paths: list[str], schema_name: str) -> pd.DataFrame:
    """Read and concatenate several tables of one schema (empty frame with columns if none)."""
    frames = [read_table(p, schema_name) for p in paths]
    if not frames:
        return ALL[schema_name].validate(
            pd.DataFrame({c: pd.Series(dtype="object") for c in ALL[schema_name].columns})
        )
    return with_all_columns(pd.concat(frames, ignore_index=True), schema_name)


def with_all_columns(df: pd.DataFrame, schema_name: str) -> pd.DataFrame:
    """`df` with every column of its schema, in the schema's order (extra columns after).

    Optional columns (added to a schema after files were written) come back as nulls, so a
    table built from old and new files, or from files that lack them, has one stable set of
    columns: the one docs/database.md documents."""
    declared = list(ALL[schema_name].columns)
    missing = [c for c in declared if c not in df.columns]
    if not missing and list(df.columns[: len(declared)]) == declared:
        return df
    schema = ALL[schema_name]
    df = df.assign(**{c: _nulls(str(schema.columns[c].dtype), len(df)) for c in missing})
    return df[declared + [c for c in df.columns if c not in declared]]


def _nulls(dtype: str, n: int) -> pd.Series:
    """n nulls of a nullable pandas dtype matching a schema dtype (a column of bare Nones would
    reach DuckDB as type NULL instead of VARCHAR, BIGINT...)."""
    for prefix, kind in (("str", "string"), ("bool", "boolean"), ("int", "Int64"),
                         ("float", "float64")):
        if dtype.startswith(prefix):
            return pd.Series([None] * n, dtype=kind)
    return pd.Series([None] * n, dtype="object")


def read_yaml(path: str | os.PathLike[str], what: str = "file") -> Any:
    """Parse a YAML file; a missing file or bad YAML fails naming the file (and what it is)."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a malformed line fails naming the file and line number."""
    return [row for _, row in _jsonl_lines(path)]


def read_jsonl_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A JSON-lines file as a frame whose index is each row's line number (as an editor shows)."""
    numbered = list(_jsonl_lines(path))
    return pd.DataFrame([row for _, row in numbered], index=[n for n, _ in numbered])


def _jsonl_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TableError(f"{path}: line {lineno} is not valid JSON: {exc}") from None
            if not isinstance(row, dict):
                raise TableError(f"{path}: line {lineno} is not a JSON object")
            yield lineno, row


def write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
