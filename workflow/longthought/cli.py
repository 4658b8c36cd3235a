"""`longthought <verb>`: argument parsing only; each verb calls one library function.

Each subpackage registers its verbs in its own `commands.py` (`register(subparsers)`), so the
package's parts stay independent and this file stays a table of contents.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subpackages whose `commands.register(subparsers)` adds verbs
COMMAND_MODULES = [
    "longthought.answers.commands",
    "longthought.problems.commands",
    "longthought.teacher.commands",
    "longthought.curate.commands",
    "longthought.train.commands",
    "longthought.evaluate.commands",
    "longthought.generalization.commands",
    "longthought.results.commands",
    "longthought.transparency.commands",
]


def spec_arg(text: str) -> dict:
    """Parse a `--spec` argument: the path of a JSON file holding an object (what the workflow's
    rules pass: a small job file, so the printed command stays short), or the JSON text itself."""
    from longthought.jobspec import read_spec

    try:
        value = read_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--spec {_short(text)} must hold a JSON object")
    return value


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[:n] + "..."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longthought", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        # Expected failures (bad input, bad config): one clear line, no traceback.
        print(f"longthought {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
