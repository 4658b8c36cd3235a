"""The run browser's size and write time on a big run (issue 19, "Numbers to reach").

Builds a synthetic run as `bench_curate.py` does: `--rows` traces of `--min-tokens` to
`--max-tokens` tokens (real procedural problems, long varied thoughts, the usual faults), curated
by the real `curate` stage, plus generations of three models on a held-out benchmark. Its
results.duckdb is written as the report rule writes it (timed apart: `db_seconds`), then the
browser is written from it with the default `report.browser` settings, in a fresh process
(`seconds`, the figure the target is about), and its size is measured (`mb`).

    .venv/bin/python benchmarks/bench_viewer.py                    # 100,000 traces of 2-8k tokens
    .venv/bin/python benchmarks/bench_viewer.py --rows 5000        # a quick check

Targets: under 60 s and under 20 MB for 100,000 traces. The last line is a JSON object: rows,
seconds, mb, plus traces/problems/samples embedded, db_seconds and the setup time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000, help="synthetic traces")
    ap.add_argument("--min-tokens", type=int, default=2000)
    ap.add_argument("--max-tokens", type=int, default=8000)
    ap.add_argument("--bench-problems", type=int, default=500, help="held-out problems")
    ap.add_argument("--samples", type=int, default=8, help="samples per problem and model")
    ap.add_argument("--workers", type=int, default=2, help="curation workers")
    ap.add_argument("--workdir", help="keep the run here (default: a temporary directory)")
    args = ap.parse_args()

    from longthought.results.synthetic import build_database, synthetic_run

    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="bench_viewer.")
    work = Path(args.workdir or tmp.name)
    t0 = time.perf_counter()
    paths = synthetic_run(work, args.rows, bench_problems=args.bench_problems,
                          samples=args.samples, min_tokens=args.min_tokens,
                          max_tokens=args.max_tokens, workers=args.workers)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    build_database(paths)  # again, timed alone: what the report rule spends on the database
    db_s = time.perf_counter() - t1
    out = work / "browser.html"
    code = ("import json, sys; from longthought.results.browser import write_browser; "
            "print('STATS ' + json.dumps(write_browser(sys.argv[1], sys.argv[2], None, "
            "{'teacher': 'teacher', 'student': 'student', 'student@init': 'init'})))")
    t2 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, paths["db"], str(out)],
                          capture_output=True, text=True, env=os.environ)
    seconds = time.perf_counter() - t2
    if proc.returncode != 0:
        raise SystemExit(f"write_browser failed:\n{proc.stderr[-4000:]}")
    stats = json.loads(proc.stdout.split("STATS ", 1)[1])
    mb = out.stat().st_size / 1e6
    db_mb = Path(paths["db"]).stat().st_size / 1e6
    print(f"synthetic run: {args.rows:,} traces of {args.min_tokens}-{args.max_tokens} tokens, "
          f"{args.bench_problems} held-out problems x 3 models x {args.samples} samples "
          f"(+2 budgets for the student): set up in {setup_s:.1f} s")
    print(f"results.duckdb: {db_mb:.1f} MB written in {db_s:.1f} s")
    print(f"browser.html: {mb:.2f} MB written in {seconds:.2f} s (fresh process, imports "
          f"included): {stats['traces']:,} of {stats['traces_total']:,} traces, "
          f"{stats['problems']:,} problems, {stats['samples']:,} samples embedded; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(json.dumps({"rows": args.rows, "seconds": round(seconds, 2), "mb": round(mb, 2),
                      "traces_embedded": stats["traces"], "problems_embedded": stats["problems"],
                      "samples_embedded": stats["samples"], "db_seconds": round(db_s, 2),
                      "db_mb": round(db_mb, 1), "setup_seconds": round(setup_s, 1)}))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
