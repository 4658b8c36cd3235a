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


def _traces(args: argparse.Namespace) -> int:
    from longthought.teacher.traces import collect_traces

    _setup_logging()
    collect_traces(args.task, args.spec, args.problems, args.cache_dir, args.out,
                   progress=not args.quiet)
    return 0


def _traces_status(args: argparse.Namespace) -> int:
    from longthought.teacher.traces import traces_status

    print(traces_status(args.traces, args.cache_dir))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this subpackage's verbs to the `longthought` parser."""
    p = sub.add_parser("teacher-sim", help="run the OpenAI-compatible sim teacher on loopback")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--port-file", default=None, help="write the bound port here when ready")
    p.add_argument("--spec", type=spec_arg, default={},
                   help="JSON: the teacher's sim block plus fault settings")
    p.set_defaults(func=_teacher_sim)

    p = sub.add_parser("traces", help="collect (or import) a task's raw teacher traces")
    p.add_argument("--task", required=True, help="task name (config tasks.<name>)")
    p.add_argument("--spec", type=spec_arg, required=True,
                   help='JSON: {"task", "teacher", "prompt", "teacher_name", "prompt_name"}')
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
