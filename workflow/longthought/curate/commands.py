"""`longthought curate`."""

from __future__ import annotations

import argparse

from longthought.cli import spec_arg


def _curate(args: argparse.Namespace) -> int:
    from longthought.curate.pipeline import curate
    from longthought.digest import write_digest

    curate(args.dataset, args.spec, args.traces, args.benchmarks, out=args.out,
           rejected=args.rejected, funnel=args.funnel, export_dir=args.export_dir,
           workers=args.workers, timeout_s=args.timeout)
    write_digest(args.out)  # training reads the dataset by content (rules/common.smk)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `curate`."""
    p = sub.add_parser("curate", help="traces -> verified, filtered, decontaminated SFT dataset")
    p.add_argument("--dataset", required=True, help="dataset name (datasets.<name> in config)")
    p.add_argument("--spec", type=spec_arg, required=True,
                   help="datasets.<name>: a JSON file (or JSON text)")
    p.add_argument("--traces", nargs="+", required=True, help="traces/{task}.parquet files")
    p.add_argument("--benchmarks", nargs="*", default=[],
                   help="benchmarks/{bench}.parquet files to decontaminate against")
    p.add_argument("--out", required=True, help="datasets/{dataset}.parquet")
    p.add_argument("--rejected", required=True, help="datasets/{dataset}.rejected.parquet")
    p.add_argument("--funnel", required=True, help="datasets/{dataset}.funnel.parquet")
    p.add_argument("--export-dir", default=None,
                   help="datasets/{dataset}.hf: data.jsonl + datasets.save_to_disk under hf/")
    p.add_argument("--workers", type=int, default=None,
                   help="answer-check processes (default: spec 'checker.workers' or 2)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per answer check (default: spec 'checker.timeout_s' or 5)")
    p.set_defaults(func=_curate)
