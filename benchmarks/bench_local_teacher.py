"""Benchmark the local teacher (`mode: local`) on the CPU with the demo's tiny model (issue 18).

What the workflow does for an open teacher, step by step, with its real verbs:
  1. build the demo's tiny model (config/config.yaml `students.tiny.tiny`, random weights; its
     tokenizer trained on sim-teacher thoughts for the pool's problems), or take `--model`;
  2. `traces-plan`: the task's requests the cache does not hold;
  3. `traces-generate` (the GPU job, here on the CPU) killed with SIGKILL about half way, then
     run again: it resumes from its shards;
  4. `traces --shards`: merge the shards into the cache and write the traces table.
Figures: `samples` (ok rows in the table), `samples_per_s` (the resumed job's generation rate,
model loading excluded), `regenerated_after_kill` (requests generated again by the second run
that the first had already stored: must be 0), plus the wall times.

Usage:
  .venv/bin/python benchmarks/bench_local_teacher.py                  # 64 problems x 2 samples
  .venv/bin/python benchmarks/bench_local_teacher.py --problems 16 --max-tokens 64   # smoke
  .venv/bin/python benchmarks/bench_local_teacher.py --model results/models/tiny     # trained
The last line printed is a JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from longthought.io import read_table, write_table
from longthought.problems.procedural import generate
from longthought.teacher.shards import read_shard, shard_keys
from longthought.teacher.sim_persona import compose
from longthought.teacher.traces import collect_traces, plan_local, shard_dir_for

ROOT = Path(__file__).resolve().parents[1]


def demo_model(out: Path, problems: pd.DataFrame) -> Path:
    """The demo's tiny student shape, random weights, tokenizer from sim-teacher thoughts."""
    import random

    from longthought.train.student import build_tiny

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    tiny = dict(config["students"]["tiny"]["tiny"])
    tiny.pop("tokenizer_tasks", None)
    rng = random.Random(0)
    texts = []
    for p in problems["problem"]:
        reply = compose(str(p), "sim-o1", style="auto", slip_rate=0.1, wrong_rate=0.0, rng=rng)
        texts.append(f"<think>\n{reply.thought}\n</think>\n\n{reply.answer}")
    build_tiny(tiny, texts, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--samples", type=int, default=2, help="samples per problem")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--chunk-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None, help="a model directory instead of the demo shape")
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "LONGTHOUGHT_COMPUTE_NODE": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        work = Path(tmp)
        config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
        families = list(config["pools"]["arith"]["families"])
        problems = pd.DataFrame(generate(families, args.problems, 11, "train"))
        pool = work / "pool.parquet"
        write_table(problems, pool, "problems")
        t0 = time.perf_counter()
        model = Path(args.model) if args.model else demo_model(work / "model", problems)
        build_s = time.perf_counter() - t0
        teacher = {"mode": "local", "model": str(model),
                   "sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": args.max_tokens,
                                "seed": 1},
                   "local": {"backend": "transformers", "device": "cpu",
                             "batch_size": args.batch_size, "chunk_size": args.chunk_size}}
        spec = {"task": {"teacher": "tiny", "prompt": "distill", "pool": "arith",
                         "samples_per_problem": args.samples},
                "teacher": teacher, "prompt": config["prompts"]["distill"],
                "teacher_name": "tiny", "prompt_name": "distill"}
        cache = str(work / "cache")
        todo = str(work / "todo.parquet")
        planned = plan_local("bench", spec, str(pool), cache, todo)
        shards = shard_dir_for(cache, "bench")
        cmd = [sys.executable, "-m", "longthought.cli", "traces-generate", "--task", "bench",
               "--spec", json.dumps(spec), "--todo", todo, "--shards", shards, "--quiet"]
        # first run: killed with SIGKILL once about half the requests are stored
        t0 = time.perf_counter()
        proc = subprocess.Popen([*cmd, "--out", str(work / "first.json")], env=env,
                                stderr=subprocess.DEVNULL)
        while proc.poll() is None and len(shard_keys(shards)) < planned // 2:
            time.sleep(0.05)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        first_s = time.perf_counter() - t0
        before = shard_keys(shards)
        old = set(Path(shards).glob("*.jsonl"))
        print(f"first run killed after {first_s:.1f} s with {len(before)} of {planned} stored",
              flush=True)
        t0 = time.perf_counter()
        done = subprocess.run([*cmd, "--out", str(work / "second.json")], env=env,
                              capture_output=True, text=True)
        second_s = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        summary = json.loads((work / "second.json").read_text())
        new = {e.key for f in set(Path(shards).glob("*.jsonl")) - old
               for e in read_shard(f).entries}
        regenerated = len(new & before)
        out = work / "traces.parquet"
        t0 = time.perf_counter()
        collect_traces("bench", spec, str(pool), cache, str(out), progress=False, shards=shards)
        merge_s = time.perf_counter() - t0
        table = read_table(out, "traces")
        ok = int((table["status"] == "ok").sum())
        rate = summary["generated"] / summary["seconds"] if summary["seconds"] else 0.0
        print(f"resumed run: {summary['generated']} generated ({summary['failed']} failed) in "
              f"{summary['seconds']:.1f} s of generation ({second_s:.1f} s wall) = {rate:.2f} "
              f"samples/s; {regenerated} regenerated; table: {ok} ok of {len(table)} rows "
              f"(merge + table {merge_s:.1f} s)", flush=True)
        print(json.dumps({
            "problems": args.problems, "samples_per_problem": args.samples,
            "max_tokens": args.max_tokens, "threads": args.threads, "planned": planned,
            "samples": ok, "samples_per_s": round(rate, 3),
            "regenerated_after_kill": regenerated, "stored_before_kill": len(before),
            "first_run_s": round(first_s, 1), "resumed_run_s": round(second_s, 1),
            "merge_s": round(merge_s, 2), "model_build_s": round(build_s, 1),
            "avg_completion_tokens": round(float(table["completion_tokens"].mean()), 1),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
