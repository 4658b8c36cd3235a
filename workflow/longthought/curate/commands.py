"""`longthought check-answer` and `longthought curate`."""

from __future__ import annotations

import argparse
import dataclasses
import json

from longthought.cli import spec_arg


def _check_answer(args: argparse.Namespace) -> int:
    from longthought.curate.answers import check_answer

    verdict = check_answer(args.gold, args.response, timeout_s=args.timeout)
    print(json.dumps(dataclasses.asdict(verdict), ensure_ascii=False))
    return 0 if verdict.correct else 1


def _curate(args: argparse.Namespace) -> int:
    from longthought.curate.pipeline import curate
    from longthought.digest import write_digest

    curate(args.dataset, args.spec, args.traces, args.benchmarks, out=args.out,
           rejected=args.rejected, funnel=args.funnel, export_dir=args.export_dir,
           workers=args.workers, timeout_s=args.timeout)
    write_digest(args.out)  # training reads the dataset by content (rules/common.smk)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `check-answer` and `curate`."""
    c = sub.add_parser("check-answer", help="check a response's final answer against a gold answer "
                       "(prints the verdict as JSON; exit 0 correct, 1 otherwise)")
    c.add_argument("gold", help="gold answer, LaTeX or plain (e.g. '\\frac{1}{2}')")
    c.add_argument("response", help="the model's full response text")
    c.add_argument("--timeout", type=float, default=5.0, help="seconds per check (default 5)")
    c.set_defaults(func=_check_answer)

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
