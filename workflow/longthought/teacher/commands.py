"""`longthought` verbs of this subpackage: teacher-sim, traces, traces-plan, traces-generate,
cache-merge, traces-status."""

from __future__ import annotations

import argparse
import logging
import sys

from longthought.cli import spec_arg


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    # the SDK's HTTP client logs every request at INFO: a line per request (or batch poll)
    # would bury the collector's own summary in a job's log
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _teacher_sim(args: argparse.Namespace) -> int:
    from longthought.teacher.sim_server import serve

    serve(args.host, args.port, args.port_file, args.spec, args.store, args.parent_pid)
    return 0


# Exit status of `traces` when the collection is partial and its task does not let curation
# proceed on a partial table (tasks.<task>.allow_partial: false).
PARTIAL_HELD_BACK = 3
EX_TEMPFAIL = 75  # batches still running: try again later (sysexits.h)


def _traces(args: argparse.Namespace) -> int:
    from longthought.teacher.batch import BatchesPending
    from longthought.teacher.traces import collect_traces
    from longthought.teacher.tracestore import recorded_state

    _setup_logging()
    try:
        collect_traces(args.task, args.spec, args.problems, args.cache_dir, args.out,
                       progress=not args.quiet, shards=args.shards)
    except BatchesPending as exc:
        print(f"longthought traces: {args.task}: not written yet: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    state = recorded_state(args.out) or {}
    if state.get("partial") and (args.spec.get("task") or {}).get("allow_partial") is False:
        print(f"longthought traces: task {args.task}: the collection is partial ("
              f"{state['missing']} of {state['rows']} rows missing) and tasks.{args.task}."
              "allow_partial is false, so nothing downstream may use it yet; the answered rows "
              "are in the request cache and the next run asks only for the missing ones",
              file=sys.stderr)
        return PARTIAL_HELD_BACK
    return 0


def _traces_plan(args: argparse.Namespace) -> int:
    from longthought.teacher.traces import plan_local

    _setup_logging()
    n = plan_local(args.task, args.spec, args.problems, args.cache_dir, args.out)
    print(f"longthought traces-plan: {args.task}: {n} request(s) to generate -> {args.out}")
    return 0


def _traces_generate(args: argparse.Namespace) -> int:
    from longthought.teacher.traces import generate_local

    _setup_logging()
    s = generate_local(args.task, args.spec, args.todo, args.shards, args.out,
                       progress=not args.quiet)
    print(f"longthought traces-generate: {args.task}: {s['generated']} generated, "
          f"{s['already_in_shards']} already in shards, {s['failed']} failed -> {args.shards}")
    return 0


def _cache_merge(args: argparse.Namespace) -> int:
    from longthought.teacher.shards import merge_shards

    _setup_logging()
    print(f"longthought cache-merge: {merge_shards(args.shards, args.cache_dir).line()}")
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
    p.add_argument("--store", default=None,
                   help="Batch API: directory of its files and batches, kept across restarts "
                        "(default: a temporary directory removed at exit)")
    p.add_argument("--parent-pid", type=int, default=None,
                   help="stop when this process (the one that started the sim) is gone")
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
    p.add_argument("--shards", default=None,
                   help="local teacher: merge this shard directory (its GPU job's output) into "
                        "the cache first, and generate nothing here")
    p.set_defaults(func=_traces)

    p = sub.add_parser("traces-plan",
                       help="local teacher: list the task's requests the cache does not hold")
    p.add_argument("--task", required=True, help="task name (config tasks.<name>)")
    p.add_argument("--spec", type=spec_arg, required=True, help="JSON: as for traces")
    p.add_argument("--problems", required=True, help="problems parquet (the task's pool)")
    p.add_argument("--cache-dir", required=True, help="persistent request cache directory")
    p.add_argument("--out", required=True, help="request list to write (parquet)")
    p.set_defaults(func=_traces_plan)

    p = sub.add_parser("traces-generate",
                       help="local teacher (GPU job): generate a request list into a shard")
    p.add_argument("--task", required=True, help="task name (config tasks.<name>)")
    p.add_argument("--spec", type=spec_arg, required=True, help="JSON: as for traces")
    p.add_argument("--todo", required=True, help="request list from traces-plan")
    p.add_argument("--shards", required=True,
                   help="shard directory: requests already there are skipped (resume), new "
                        "ones go to a new shard file of this job's own")
    p.add_argument("--out", required=True, help="summary JSON to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar (batch jobs)")
    p.set_defaults(func=_traces_generate)

    p = sub.add_parser("cache-merge", help="merge cache shards into the request cache")
    p.add_argument("--shards", required=True, help="shard directory (*.jsonl)")
    p.add_argument("--cache-dir", required=True, help="persistent request cache directory")
    p.set_defaults(func=_cache_merge)

    p = sub.add_parser("traces-status",
                       help="per task: done, cached, failed, tokens, USD (and the live cache)")
    p.add_argument("traces", nargs="*", help="traces parquet files")
    p.add_argument("--cache-dir", default=None, help="also summarise this request cache")
    p.set_defaults(func=_traces_status)
