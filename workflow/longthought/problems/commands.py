"""`longthought problems` and `longthought benchmark`: build problem tables from config."""

from __future__ import annotations

import argparse
import json

import pandas as pd

from longthought import io
from longthought.cli import spec_arg
from longthought.digest import write_digest
from longthought.problems import procedural


def check_split(df: pd.DataFrame, split: str, name: str) -> None:
    """Procedural rows must all belong to `split`: train pools and held-out sets never overlap."""
    for row in df.itertuples():
        meta = json.loads(row.meta) if isinstance(row.meta, str) else {}
        family, key = meta.get("family"), meta.get("key")
        if family and key is not None and procedural.split_of(family, tuple(key)) != split:
            raise ValueError(f"{name}: problem {row.problem_id} belongs to split "
                             f"{procedural.split_of(family, tuple(key))!r}, not {split!r}")


def build_pool(name: str, spec: dict, out: str, rejected: str) -> tuple[int, int]:
    """Load a training pool, apply the paper's pool filters, write kept and rejected rows."""
    from longthought.problems.filters import apply_pool_filters
    from longthought.problems.loaders import load_problems

    df = load_problems(spec)
    if spec.get("source") == "procedural":
        check_split(df, spec.get("split", "train"), f"pools.{name}")
    kept, dropped = apply_pool_filters(df, spec.get("filters") or {})
    io.write_table(kept, out, "problems")
    write_digest(out)  # traces read the pool by content (rules/common.smk: content_input)
    with io.atomic_path(rejected) as tmp:
        dropped.to_parquet(tmp, index=False)
    print(f"pool {name}: {len(df)} loaded, {len(kept)} kept, {len(dropped)} removed by filters")
    return len(kept), len(dropped)


def build_benchmark(name: str, spec: dict, out: str) -> int:
    """Load an evaluation set into the problems table (no filters: benchmarks are taken whole)."""
    from longthought.problems.loaders import load_problems

    df = load_problems(spec)
    if spec.get("source") == "procedural":
        check_split(df, spec.get("split", "heldout"), f"benchmarks.{name}")
    io.write_table(df, out, "problems")
    write_digest(out)  # curation and evaluation read the benchmark by content
    print(f"benchmark {name}: {len(df)} problems")
    return len(df)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `problems` and `benchmark`."""
    p = sub.add_parser("problems", help="build a training problem pool (filters applied)")
    p.add_argument("--name", required=True, help="pool name (pools.<name> in config)")
    p.add_argument("--spec", type=spec_arg, required=True,
                   help="pools.<name>: a JSON file (or JSON text)")
    p.add_argument("--out", required=True, help="problems table to write (parquet)")
    p.add_argument("--rejected", required=True,
                   help="table of the problems the pool filters removed, with the filter and "
                        "reason (parquet)")
    p.set_defaults(func=lambda a: build_pool(a.name, a.spec, a.out, a.rejected) and 0)

    b = sub.add_parser("benchmark", help="build an evaluation set")
    b.add_argument("--name", required=True, help="benchmark name (benchmarks.<name> in config)")
    b.add_argument("--spec", type=spec_arg, required=True,
                   help="benchmarks.<name>: a JSON file (or JSON text)")
    b.add_argument("--out", required=True, help="problems table to write (parquet)")
    b.set_defaults(func=lambda a: build_benchmark(a.name, a.spec, a.out) and 0)
