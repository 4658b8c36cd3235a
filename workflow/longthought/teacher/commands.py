"""`longthought` verbs of this subpackage: teacher-sim, traces, traces-status."""

from __future__ import annotations

import argparse
import logging

from longthought.cli import spec_arg


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


def _teacher_sim(args: argparse.Namespace) -> int:
    from longthought.teacher.sim_server import serve

    serve(args.host, args.port, args.port_file, args.spec)
    return 0


# Exit status of `traces` when the collection is partial and its task does not let curation
# proceed on a partial table (tasks.<task>.allow_partial: false).
PARTIAL_HELD_BACK = 3


def _traces(args: argparse.Namespace) -> int:
    import sys

    from longthought.teacher.traces import collect_traces
    from longthought.teacher.tracestore import recorded_state

    _setup_logging()
    collect_traces(args.task, args.spec, args.problems, args.cache_dir, args.out,
                   progress=not args.quiet)
    state = recorded_state(args.out) or {}
    if state.get("partial") and (args.spec.get("task") or {}).get("allow_partial") is False:
        print(f"longthought traces: task {args.task}: the collection is partial ("
              f"{state['missing']} of {state['rows']} rows missing) and tasks.{args.task}."
              "allow_partial is false, so nothing downstream may use it yet; the answered rows "
              "are in the request cache and the next run asks only for the missing ones",
              file=sys.stderr)
        return PARTIAL_HELD_BACK
    return 0


def _traces_status(args: argparse.Namespace) -> int:
    from longthought.teacher.traces import traces_status

    print(traces_status(args.traces, args.cache_dir))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this subpackage's verbs to the `longthought` parser."""
    p = sub.add_parser("teacher-sim", help="run the OpenAI-compatible sim teacher on loopback")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--port-file", default=None, help="write the bound port here when ready")
    p.add_argument("--spec", type=spec_arg, default={},
                   help="JSON: the teacher's sim block plus fault settings")
    p.set_defaults(func=_teacher_sim)

    p = sub.add_parser("traces", help="collect (or import) a task's raw teacher traces")
    p.add_argument("--task", required=True, help="task name (config tasks.<name>)")
    p.add_argument("--spec", type=spec_arg, required=True,
                   help='a JSON file (or JSON text): {"task", "teacher", "prompt", "teacher_name", '
                        '"prompt_name", "round"}')
    p.add_argument("--problems", nargs="?", default=None, const=None,
                   help="problems parquet (the task's pool); optional for import tasks")
    p.add_argument("--cache-dir", required=True, help="persistent request cache directory")
    p.add_argument("--out", required=True, help="traces parquet to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar (batch jobs)")
    p.set_defaults(func=_traces)

    p = sub.add_parser("traces-status",
                       help="per task: done, cached, failed, tokens, USD (and the live cache)")
    p.add_argument("traces", nargs="*", help="traces parquet files")
    p.add_argument("--cache-dir", default=None, help="also summarise this request cache")
    p.set_defaults(func=_traces_status)
