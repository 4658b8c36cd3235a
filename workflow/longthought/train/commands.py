"""`longthought init-student` and `longthought train`: parse arguments, call one function each."""

from __future__ import annotations

import argparse
import os

from longthought.cli import spec_arg


def _init_student(args: argparse.Namespace) -> int:
    from longthought.train.student import init_student

    out = init_student(args.student, args.spec, args.traces, args.out)
    print(f"[init-student] wrote {out}")
    return 0


def train_argv(args: argparse.Namespace) -> list[str]:
    """The verb's own arguments, to hand to the relaunched workers unchanged."""
    import json

    return ["--student", args.student, "--spec", json.dumps(args.spec), "--init", args.init,
            "--datasets", *args.datasets, "--out", args.out]


def _train(args: argparse.Namespace) -> int:
    from longthought.train.launch import relaunch, should_relaunch

    config = args.spec.get("accelerate_config")
    if should_relaunch(config, os.environ):
        from longthought.train.loop import check_inputs

        *_, preview = check_inputs(args.student, args.spec, args.init, args.datasets)
        preview.raise_errors()  # fail before launching (the workers show the preview)
        return relaunch(config, train_argv(args))
    from longthought.train.loop import train

    out = train(args.student, args.spec, args.init, args.datasets, args.out)
    print(f"[train] wrote {out}")
    return 0


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--student", required=True, help="student name in config (students.<name>)")
    p.add_argument("--spec", required=True, type=spec_arg,
                   help="students.<name>: a JSON file (or JSON text)")
    p.add_argument("--init", required=True, help="the untrained student dir (init-student's out)")
    p.add_argument("--datasets", required=True, nargs="+",
                   help="one dataset table per stage, in stage order")
    p.add_argument("--out", required=True, help="model directory to write")
    p.set_defaults(func=_train)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this subpackage's verbs to the `longthought` parser."""
    p = sub.add_parser("init-student", help="build the tiny student, or point at a base model")
    p.add_argument("--student", required=True, help="student name in config (students.<name>)")
    p.add_argument("--spec", required=True, type=spec_arg,
                   help="students.<name>: a JSON file (or JSON text)")
    p.add_argument("--traces", nargs="*", default=[],
                   help="traces tables whose text trains the tiny tokenizer")
    p.add_argument("--out", required=True, help="directory to write (models/<student>@init)")
    p.set_defaults(func=_init_student)

    p = sub.add_parser("train", help="staged SFT of a student (in-process or accelerate launch)")
    add_train_arguments(p)
