"""`longthought` verbs of this subpackage: generalize, generalize-human."""

from __future__ import annotations

import argparse
import logging

from longthought.cli import spec_arg


def _generalize(args: argparse.Namespace) -> int:
    """One model on one or more sets, in order: the model loads once for all of them."""
    from longthought.generalization.run import generalize

    counts = {len(v) for v in (args.set, args.spec, args.out, args.items)}
    if len(counts) != 1:
        raise ValueError("generalize: give one --spec, --out and --items per --set (got "
                         f"{len(args.set)} --set, {len(args.spec)} --spec, {len(args.out)} "
                         f"--out, {len(args.items)} --items)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for gset, spec, out, items in zip(args.set, args.spec, args.out, args.items, strict=True):
        table = generalize(spec, out, items, args.cache_dir, args.model, gset)
        head = table.iloc[0]
        print(f"longthought generalize: {args.model} on {gset}: {head['metric']} "
              f"{head['value']:.1f} (n={head['n']}, judge {head['judge']}) -> {out}", flush=True)
    return 0


def _generalize_human(args: argparse.Namespace) -> int:
    from longthought.generalization.human import human_rows, read_scores
    from longthought.io import write_table

    scores = read_scores(args.csv, model=args.model)
    if scores.empty:
        raise ValueError(f"{args.csv}: no scores for model {args.model!r}")
    if args.items:
        from longthought.generalization.items import read_items

        known = set(read_items(args.items)["item_id"])
        unknown = sorted(set(scores["item_id"]) - known)
        if unknown:
            raise ValueError(f"{args.csv}: item(s) {unknown[:5]} are not in {args.items}")
    table = write_table(human_rows(scores, args.model, args.set, args.category), args.out,
                        "generalization")
    vals = dict(zip(table["metric"], table["value"], strict=True))
    alpha = vals.get("rater_alpha")
    print(f"longthought generalize-human: {args.model} on {args.set}: human_score "
          f"{vals['human_score']:.1f} over {int(table.iloc[0]['n'])} items, alpha "
          f"{'n/a' if alpha is None else f'{alpha:.2f}'} -> {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this subpackage's verbs to the `longthought` parser."""
    p = sub.add_parser("generalize", help="judge a model on safety/factuality/sycophancy/QA sets",
                       description="Repeat --set/--spec/--out/--items (in that pairing) to run "
                                   "several sets in one process: the model loads once.")
    p.add_argument("--model", required=True, help="model name (as in config) written in each row")
    p.add_argument("--set", required=True, action="append",
                   help="set name under generalization.sets (repeatable)")
    p.add_argument("--spec", required=True, type=spec_arg, action="append",
                   help='JSON per set: {"model": <model spec>, "set": <sets.SET + name>, "judge": '
                        '<teacher config + name, or null>, "judge_prompt": {system, user, '
                        'letters} or null, "sampling": {n, temperature, top_p, max_new_tokens, '
                        'seed, system}, "batch_size": .., "checker": {timeout_s, workers}}')
    p.add_argument("--out", required=True, action="append",
                   help="aggregated table to write per set (generalization schema, parquet)")
    p.add_argument("--items", required=True, action="append",
                   help="per-item table to write per set (parquet)")
    p.add_argument("--cache-dir", default=None, help="API request cache directory")
    p.set_defaults(func=_generalize)

    h = sub.add_parser("generalize-human", help="import expert 0-100 scores of a set (CSV)")
    h.add_argument("--set", required=True, help="set name written in each row")
    h.add_argument("--model", required=True, help="whose answers were scored (filters a 'model' "
                                                  "column when the CSV has one)")
    h.add_argument("--csv", required=True, help="CSV with item_id, rater, score [, model]")
    h.add_argument("--category", default="general_qa",
                   choices=["safety", "factuality", "sycophancy", "general_qa"],
                   help="the set's category, written in each row (default general_qa)")
    h.add_argument("--items", default=None, help="optional per-item table to check item ids")
    h.add_argument("--out", required=True, help="generalization table to write (parquet)")
    h.set_defaults(func=_generalize_human)
