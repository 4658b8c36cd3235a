"""`longthought` verbs of this subpackage: generalize-generate (the model's side, a GPU job),
generalize-judge (the judge's side, a local rule), generalize (both), generalize-human.

The three set verbs take their sets either one by one (repeated --set/--spec and file options,
paired in order) or as the workflow passes them: one --specs file mapping each set to its spec,
and --out-dir, under which each set's files are named <set>.responses.parquet, <set>.parquet and
<set>.items.parquet."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from longthought.cli import spec_arg

# the per-set file options of each verb, and the name each takes under --out-dir
_FILES = {"responses": "{}.responses.parquet", "out": "{}.parquet", "items": "{}.items.parquet"}


def _set_jobs(args: argparse.Namespace, verb: str, files: tuple[str, ...]) -> list[tuple]:
    """(set, spec, *files) per set: from the repeated per-set options, or from --specs (every set
    it names) with its files under --out-dir."""
    per_set = ("set", "spec", *files)
    if args.specs is not None:
        if any(getattr(args, n) for n in per_set):
            raise ValueError(f"{verb}: give either --specs with --out-dir, or "
                             f"{'/'.join('--' + n for n in per_set)} per set, not both")
        if not args.out_dir:
            raise ValueError(f"{verb}: --specs needs --out-dir")
        base = Path(args.out_dir)
        return [(gset, spec, *(str(base / _FILES[f].format(gset)) for f in files))
                for gset, spec in args.specs.items()]
    counts = {len(getattr(args, n)) for n in per_set}
    if len(counts) != 1 or not args.set:
        got = ", ".join(f"{len(getattr(args, n))} --{n}" for n in per_set)
        raise ValueError(f"{verb}: give one of each per --set ({got}), or --specs with --out-dir")
    return list(zip(*(getattr(args, n) for n in per_set), strict=True))


def _log() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


def _generalize(args: argparse.Namespace) -> int:
    """One model on one or more sets, in order: the model loads once for all of them."""
    from longthought.generalization.run import generalize

    jobs = _set_jobs(args, "generalize", ("out", "items"))
    _log()
    for gset, spec, out, items in jobs:
        table = generalize(spec, out, items, args.cache_dir, args.model, gset)
        head = table.iloc[0]
        print(f"longthought generalize: {args.model} on {gset}: {head['metric']} "
              f"{head['value']:.1f} (n={head['n']}, judge {head['judge']}) -> {out}", flush=True)
    return 0


def _generalize_generate(args: argparse.Namespace) -> int:
    """The model's side of every set, in one process (the model loads once)."""
    from longthought.generalization.run import generate_responses

    jobs = _set_jobs(args, "generalize-generate", ("responses",))
    _log()
    for gset, spec, responses in jobs:
        table = generate_responses(spec, responses, args.cache_dir, args.model, gset)
        print(f"longthought generalize-generate: {args.model} on {gset}: {len(table)} "
              f"responses -> {responses}", flush=True)
    return 0


def _generalize_judge(args: argparse.Namespace) -> int:
    """The judge's side of every set of one model (calls the judge's API: a local rule)."""
    from longthought.generalization.run import judge_responses

    jobs = _set_jobs(args, "generalize-judge", ("responses", "out", "items"))
    _log()
    for gset, spec, responses, out, items in jobs:
        table = judge_responses(spec, responses, out, items, args.cache_dir, args.model, gset)
        head = table.iloc[0]
        print(f"longthought generalize-judge: {args.model} on {gset}: {head['metric']} "
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


def _set_options(p: argparse.ArgumentParser, files: dict[str, str]) -> None:
    """The per-set options (repeatable, paired in order) and the --specs/--out-dir form."""
    p.add_argument("--model", required=True, help="model name (as in config) written in each row")
    p.add_argument("--set", action="append", default=[],
                   help="set name under generalization.sets (repeatable)")
    p.add_argument("--spec", type=spec_arg, action="append", default=[],
                   help='per set, a JSON file (or JSON text): {"model": <model spec>, "set": '
                        '<sets.SET + name>, "judge": <teacher config + name, or null>, '
                        '"judge_prompt": {system, user, letters} or null, "sampling": {n, '
                        'temperature, top_p, max_new_tokens, seed, system}, "batch_size": .., '
                        '"refill": auto|true|false, "checker": {timeout_s, workers}}')
    for name, text in files.items():
        p.add_argument(f"--{name}", action="append", default=[], help=text)
    p.add_argument("--specs", type=spec_arg, default=None,
                   help="instead of the per-set options: one JSON file mapping each set's name "
                        "to its spec (what the workflow passes); every set in it runs")
    p.add_argument("--out-dir", default=None,
                   help="with --specs: where each set's files go (" + ", ".join(
                       _FILES[n].format("<set>") for n in files) + ")")
    p.add_argument("--cache-dir", default=None, help="API request cache directory")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this subpackage's verbs to the `longthought` parser."""
    responses = {"responses": "responses table per set (parquet; written by generalize-generate)"}
    tables = {"out": "aggregated table to write per set (generalization schema, parquet)",
              "items": "per-item table to write per set (parquet)"}
    p = sub.add_parser("generalize", help="judge a model on safety/factuality/sycophancy/QA sets",
                       description="Generate and judge in one process (an API model, a laptop); "
                                   "the model loads once for all sets.")
    _set_options(p, tables)
    p.set_defaults(func=_generalize)

    g = sub.add_parser("generalize-generate",
                       help="a model's answers to generalization sets (no judge: a GPU job)",
                       description="The model loads once for all sets. Calls no judge and "
                                   "writes no cache unless the model is an API model.")
    _set_options(g, {"responses": "responses table to write per set (parquet)"})
    g.set_defaults(func=_generalize_generate)

    j = sub.add_parser("generalize-judge",
                       help="judge a model's generalization responses (LLM judge or rule)",
                       description="Calls the judge's API and writes the request cache: a local "
                                   "rule on a cluster.")
    _set_options(j, {**responses, **tables})
    j.set_defaults(func=_generalize_judge)

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
