"""`longthought` verbs of this subpackage: generate."""

from __future__ import annotations

import argparse

from longthought.cli import spec_arg


def _generate(args: argparse.Namespace) -> int:
    from longthought.evaluate.run import run_generate

    table = run_generate(args.model, args.spec, args.bench, args.out, args.cache_dir)
    correct = table["correct"].fillna(False).astype(bool)
    unconstrained = table["budget"].isna()
    print(f"longthought generate: {args.model} on {args.bench}: {len(table)} samples, "
          f"pass@1 {correct[unconstrained].mean():.3f} (unconstrained) -> {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this subpackage's verbs to the `longthought` parser."""
    p = sub.add_parser("generate", help="sample a model on a benchmark and score every sample")
    p.add_argument("--model", required=True, help="model name (as in config) written in each row")
    p.add_argument("--spec", required=True, type=spec_arg,
                   help='a JSON file (or JSON text): {"model": <model spec>, "sampling": '
                        '{n, temperature, top_p, max_new_tokens, seed, system}, "budgets": '
                        '[..], "batch_size": .., "refill": auto|true|false, '
                        '"checker": {timeout_s, workers}, "prompt": "..{problem}..", '
                        '"benchmark": name, "budget_forcing": {marker, suffix, answer_tokens}}')
    p.add_argument("--bench", required=True, help="benchmark table (problems schema, parquet)")
    p.add_argument("--out", required=True, help="generations table to write (parquet)")
    p.add_argument("--cache-dir", default=None, help="API request cache directory")
    p.set_defaults(func=_generate)
