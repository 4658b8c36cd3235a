"""The results database: every table of a run in one DuckDB file, built atomically.

Tables: generations, metrics, funnel, train_log, hparams, runs, generalization, tti_scores.
A reader can answer any question about a run with SQL, without knowing the file layout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pandas as pd

from longthought import io


def load_generations(paths: list[str]) -> pd.DataFrame:
    return io.read_tables(paths, "generations")


def load_funnels(paths: list[str]) -> pd.DataFrame:
    return io.read_tables(paths, "funnel")


def load_train_logs(model_dirs: list[str]) -> pd.DataFrame:
    """Per-step training logs of every trained student (missing log = error: it is an output)."""
    paths = [str(Path(d) / "train_log.parquet") for d in model_dirs]
    return io.read_tables(paths, "train_log")


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


def write_database(path: str, tables: dict[str, pd.DataFrame]) -> None:
    """Write all tables into a fresh DuckDB file, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        tmp.unlink()
    con = duckdb.connect(str(tmp))
    try:
        for name, df in tables.items():
            con.register("frame", df)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
            con.unregister("frame")
        con.execute(
            "CREATE TABLE meta AS SELECT ? AS created_by, ? AS tables",
            ["longthought report", json.dumps(sorted(tables))],
        )
    finally:
        con.close()
    os.replace(tmp, target)


def query(path: str, sql: str) -> pd.DataFrame:
    """Read-only query helper (tests and notebooks)."""
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()
