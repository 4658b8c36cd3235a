"""The results database: every table of a run in one DuckDB file, built atomically.

Tables (each documented column by column in docs/database.md): problems, tasks, traces,
curation, funnel, train_log, hparams, generations, runs, metrics, generalization,
generalization_items, tti_scores and meta. A reader answers any question about a run with SQL,
without knowing the file layout; the run browser (`results/report/browser.html`) is built from
this file and shows, for what it leaves out, the query that returns it.

Small tables arrive as validated pandas frames. The two that grow with the run (the raw traces
and the curation outcome of every trace) are copied by DuckDB straight from their parquet files,
so a 100,000-trace run never passes through pandas; their columns are checked against the
schema first, and a file with a wrong column set fails naming the file and the columns.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from longthought import io
from longthought.schemas import ALL


def load_generations(paths: list[str]) -> pd.DataFrame:
    return io.read_tables(paths, "generations")


def load_funnels(paths: list[str]) -> pd.DataFrame:
    return io.read_tables(paths, "funnel")


def load_train_logs(model_dirs: list[str]) -> pd.DataFrame:
    """Per-step training logs of every trained student (missing log = error: it is an output).

    `stage` is numbered from 1 here, as the paper and the README number stages (the files
    index them from 0).
    """
    paths = [str(Path(d) / "train_log.parquet") for d in model_dirs]
    log = io.read_tables(paths, "train_log")
    return log.assign(stage=log["stage"].astype(int) + 1)


def load_hparams(model_dirs: list[str]) -> pd.DataFrame:
    rows = []
    for d in model_dirs:
        path = Path(d) / "hparams.json"
        if path.exists():
            rows.append({"student": Path(d).name, "path": str(path), "hparams": path.read_text()})
    return pd.DataFrame(rows, columns=["student", "path", "hparams"])


def load_runs(generation_paths: list[str]) -> pd.DataFrame:
    """The `.run.json` sidecars of each generation file: versions, git commit, config hash."""
    rows = []
    for p in generation_paths:
        side = Path(p).with_suffix(".run.json")
        if side.exists():
            rows.append({"generations": p, "run": side.read_text()})
    return pd.DataFrame(rows, columns=["generations", "run"])


def family_of(meta: object) -> str | None:
    """A problem's family from its `meta` JSON: `family` (procedural), else `subject` (MATH)."""
    if not isinstance(meta, str) or not meta:
        return None
    try:
        parsed = json.loads(meta)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    value = parsed.get("family", parsed.get("subject"))
    return None if value is None else str(value)


PROBLEM_COLUMNS = ["problem_set", "kind", "problem_id", "family", "source", "problem", "answer",
                   "answer_type", "solution", "meta"]


def load_problems(pools: list[str], benchmarks: list[str]) -> pd.DataFrame:
    """Every pool and benchmark problem, with the set it belongs to and its family as columns."""
    frames = []
    for kind, paths in (("pool", pools), ("benchmark", benchmarks)):
        for path in paths:
            df = io.read_table(path, "problems")
            frames.append(df.assign(problem_set=Path(path).name.removesuffix(".parquet"),
                                    kind=kind, family=df["meta"].map(family_of)))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in PROBLEM_COLUMNS})
    return pd.concat(frames, ignore_index=True)[PROBLEM_COLUMNS]


TASK_COLUMNS = ["task", "kind", "teacher", "prompt", "pool"]


def load_tasks(tasks: dict[str, dict]) -> pd.DataFrame:
    """config `tasks`: which teacher, prompt and pool made each trace file."""
    rows = [{"task": name, "kind": "import" if "import" in spec else "api",
             "teacher": spec.get("teacher"), "prompt": spec.get("prompt"),
             "pool": spec.get("pool")} for name, spec in sorted(tasks.items())]
    return pd.DataFrame(rows, columns=TASK_COLUMNS)


def load_generalization_items(paths: list[str]) -> pd.DataFrame:
    from longthought.generalization.items import COLUMNS, read_items, validate_items

    frames = [read_items(p) for p in paths]
    if not frames:  # typed empty columns (the schema coerces them)
        return validate_items(pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS}),
                              "no generalization items")
    return pd.concat(frames, ignore_index=True)


def check_parquet_columns(path: str, schema_name: str, needed: list[str] | None = None) -> None:
    """The file's columns match the schema (all of them, or `needed`) without reading its rows."""
    try:
        have = set(pq.read_schema(path).names)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise io.TableError(f"{path}: cannot be read as parquet: {exc}") from None
    want = set(needed if needed is not None else ALL[schema_name].columns)
    missing = sorted(want - have)
    extra = sorted(have - set(ALL[schema_name].columns)) if needed is None else []
    if missing or extra:
        raise io.TableError(f"{path}: does not match the '{schema_name}' schema: "
                            f"missing column(s) {missing}, unexpected column(s) {extra}")


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def traces_sql(paths: list[str]) -> str:
    """The statement that copies every trace file (columns checked) into table `traces`."""
    for p in paths:
        check_parquet_columns(p, "traces")
    cols = ", ".join(f'"{c}"' for c in ALL["traces"].columns)
    if not paths:
        return _empty_table_sql("traces")
    return f"CREATE TABLE traces AS SELECT {cols} FROM read_parquet({_sql_list(paths)})"


_KEPT_COLS = ["dataset", "sample_id", "task", "problem_id", "completion_tokens"]


def curation_sql(kept: list[str], rejected: list[str]) -> str:
    """Table `curation`: one row per (dataset, trace), kept or removed with filter and reason."""
    for p in kept:
        check_parquet_columns(p, "dataset", _KEPT_COLS)
    for p in rejected:
        check_parquet_columns(p, "rejected")
    parts = []
    if kept:
        parts.append("SELECT dataset, sample_id AS trace_id, task, problem_id, true AS kept, "
                     "NULL::VARCHAR AS filter, NULL::VARCHAR AS reason, NULL::VARCHAR AS detail "
                     f"FROM read_parquet({_sql_list(kept)})")
    if rejected:
        parts.append("SELECT dataset, sample_id AS trace_id, task, problem_id, false AS kept, "
                     f"filter, reason, detail FROM read_parquet({_sql_list(rejected)})")
    if not parts:
        return ("CREATE TABLE curation (dataset VARCHAR, trace_id VARCHAR, task VARCHAR, "
                "problem_id VARCHAR, kept BOOLEAN, filter VARCHAR, reason VARCHAR, "
                "detail VARCHAR)")
    return "CREATE TABLE curation AS " + " UNION ALL ".join(parts)


def _empty_table_sql(schema_name: str) -> str:
    types = {"int64": "BIGINT", "Int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN",
             "boolean": "BOOLEAN"}
    cols = ", ".join(f'"{name}" {types.get(str(col.dtype), "VARCHAR")}'
                     for name, col in ALL[schema_name].columns.items())
    return f"CREATE TABLE {schema_name} ({cols})"


def write_database(path: str, tables: dict[str, pd.DataFrame],
                   statements: dict[str, str] | None = None) -> list[str]:
    """Write all tables into a fresh DuckDB file, then rename it into place.

    `tables` are pandas frames; `statements` maps a table name to the SQL that creates it
    (the big tables, read by DuckDB from parquet). Returns the table names, `meta` included.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        tmp.unlink()
    names = sorted([*tables, *(statements or {}), "meta"])
    con = duckdb.connect(str(tmp))
    try:
        for sql in (statements or {}).values():
            con.execute(sql)
        for name, df in tables.items():
            if df.empty:  # an empty object column would become DuckDB's NULL type
                df = df.astype({c: "string" for c in df.columns if df[c].dtype == object})
            con.register("frame", df)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
            con.unregister("frame")
        con.execute(
            "CREATE TABLE meta AS SELECT ? AS created_by, ? AS created_at, ? AS tables",
            ["longthought report", datetime.now(UTC).isoformat(timespec="seconds"),
             json.dumps(names)],
        )
    finally:
        con.close()
    os.replace(tmp, target)
    return names


def query(path: str, sql: str) -> pd.DataFrame:
    """Read-only query helper (tests and notebooks)."""
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()
