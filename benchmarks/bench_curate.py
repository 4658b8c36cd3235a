"""Curation throughput and memory on synthetic long traces (issue 4, "Numbers to reach").

Writes `--rows` synthetic traces of `--min-tokens`..`--max-tokens` tokens each (real procedural
problems, long varied <think> reasoning, the usual faults), then runs the whole `curate` stage
in a fresh process per configuration while sampling the resident memory of that process and its
workers: with 1 worker, with 2 workers, and with 2 workers but no decontamination (to price
decontamination against AIME24 + MATH500, or same-sized synthetic sets without ../shared).

    .venv/bin/python benchmarks/bench_curate.py            # 100,000 traces, ~6 min on 2 cores

The last line is a JSON object: rows, rows_per_s, peak_rss_mb (and peak_anon_mb, without the
export's memory-mapped file pages), kept, rejected (for the 2-worker run), plus per-run figures
(with the machine's load average: on a shared machine the 1 -> 2 worker speed-up is only as good
as the idle cores; and the CPU seconds of the process tree, which load barely moves), the
speed-up, and the decontamination overhead (its own measured time as a share of the run, beside
the noisier wall-clock difference).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LONGTHOUGHT_SHARED", ROOT.parent / "shared")) / "data" / "benchmarks"


def _spec(decontaminate: bool) -> dict:
    return {
        "tasks": ["synthetic"],
        "filters": {"truncated": True, "thought_markers": True, "final_answer": True,
                    "correct": True, "min_tokens": 100, "max_tokens": 16000,
                    "repetition": {"ngram": 8, "max_ratio": 0.5},
                    "language": {"scripts": ["latin"], "min_share": 0.9}},
        "dedup": {"exact": True, "near": None, "keep": "all", "k": 1},
        "decontaminate": {"benchmarks": "all", "ngram": 8} if decontaminate else None,
        "format": {"thinking": "think", "system": None},
    }


def _benchmarks(workdir: Path) -> list[str]:
    """AIME24 + MATH500 as problem tables (or 530 synthetic problems of similar length)."""
    import random

    import pandas as pd

    from longthought import io
    from longthought.problems.loaders import load_problems

    paths = []
    if SHARED.is_dir():
        for name, key in (("aime24", "id"), ("math500", "unique_id")):
            df = load_problems({"source": "file", "path": str(SHARED / f"{name}.jsonl"),
                                "columns": {"problem_id": key}, "name": name})
            io.write_table(df, workdir / f"{name}.parquet", "problems")
            paths.append(str(workdir / f"{name}.parquet"))
        return paths
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    for name, n in (("aime_like", 30), ("math500_like", 500)):
        df = pd.DataFrame([{"problem_id": f"{name}-{i}",
                            "problem": " ".join(rng.choices(vocab, k=rng.randint(20, 120))),
                            "answer": str(i), "answer_type": "integer", "source": name,
                            "solution": None, "meta": None} for i in range(n)])
        io.write_table(df, workdir / f"{name}.parquet", "problems")
        paths.append(str(workdir / f"{name}.parquet"))
    return paths


def _anon_bytes(pid: int) -> int:
    """Anonymous resident memory (heap, not file-backed pages) of one process; 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _sample_rss(pid: int, stop: threading.Event, peak: list[float]) -> None:
    """peak = [RSS, anonymous RSS] of the process tree, in MiB. RSS also counts file pages the
    run maps (the Hugging Face export memory-maps its Arrow files); anonymous is what it holds."""
    import psutil

    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            procs = [proc, *proc.children(recursive=True)]
            total = anon = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                    anon += _anon_bytes(p.pid)
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total / 2**20)
            peak[1] = max(peak[1], anon / 2**20)
        except psutil.Error:
            break
        time.sleep(0.2)


def _run(traces: str, benches: list[str], workers: int, decontaminate: bool,
         workdir: Path) -> dict:
    """One curate run in a fresh process; wall time and peak RSS of the process tree."""
    tag = f"w{workers}{'' if decontaminate else '-nodecon'}"
    code = (
        "import json, sys; from longthought.curate.pipeline import curate; "
        "a = json.loads(sys.argv[1]); "
        "s = curate(**a); print('SUMMARY ' + json.dumps(s))"
    )
    args = {"dataset": "bench", "spec": _spec(decontaminate), "traces": [traces],
            "benchmarks": benches if decontaminate else [],
            "out": str(workdir / f"{tag}.parquet"), "rejected": str(workdir / f"{tag}.rej.parquet"),
            "funnel": str(workdir / f"{tag}.fun.parquet"),
            "export_dir": str(workdir / f"{tag}.hf"), "workers": workers}
    import resource

    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(args)],
                            stdout=subprocess.PIPE, text=True)
    peak, stop = [0.0, 0.0], threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(proc.pid, stop, peak), daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.monotonic() - start
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run and its workers, reaped
    cpu = sum(getattr(usage1, f) - getattr(usage0, f) for f in ("ru_utime", "ru_stime"))
    if proc.returncode != 0:
        raise SystemExit(f"curate run {tag} failed with exit code {proc.returncode}")
    print(out.strip())
    summary = json.loads(out.split("SUMMARY ", 1)[1].splitlines()[0])
    return {"run": tag, "workers": workers, "decontaminate": decontaminate,
            "seconds": round(wall, 2), "seconds_curate": summary["seconds"],
            "seconds_analyse": summary["seconds_analyse"],
            "seconds_write": summary["seconds_write"],
            # CPU seconds of the whole process tree: unlike wall time, barely moved by other
            # jobs on a shared machine
            "cpu_seconds": round(cpu, 1),
            "seconds_decontaminate": summary["seconds_decontaminate"],
            "load_average": round(os.getloadavg()[0], 2),
            "rows_per_s": round(summary["rows"] / wall, 1),
            "peak_rss_mb": round(peak[0], 1), "peak_anon_mb": round(peak[1], 1),
            "kept": summary["kept"],
            "rejected": summary["rejected"], "rows": summary["rows"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--min-tokens", type=int, default=2000)
    parser.add_argument("--max-tokens", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="keep files here (default: a temp dir)")
    args = parser.parse_args()

    from longthought.curate.synthetic import synthetic_traces, write_traces

    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="bench_curate.")
    workdir = Path(args.workdir or tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    traces = str(workdir / "traces.parquet")
    t0 = time.monotonic()
    n = write_traces(traces, synthetic_traces(args.rows, seed=args.seed,
                                              min_tokens=args.min_tokens,
                                              max_tokens=args.max_tokens, chunk=1000))
    size_mb = os.path.getsize(traces) / 2**20
    print(f"wrote {n} traces ({size_mb:.0f} MiB parquet) in {time.monotonic() - t0:.1f} s")
    benches = _benchmarks(workdir)

    runs = [_run(traces, benches, 1, True, workdir), _run(traces, benches, 2, True, workdir),
            _run(traces, benches, 2, False, workdir)]
    for r in runs:
        print(f"{r['run']:>10}: {r['seconds']:8.1f} s  {r['rows_per_s']:8.1f} rows/s  "
              f"peak RSS {r['peak_rss_mb']:8.1f} MiB (anonymous {r['peak_anon_mb']:7.1f})  "
              f"kept {r['kept']}  rejected {r['rejected']}")
    w1, w2, nodecon = runs
    result = {
        "rows": n, "rows_per_s": w2["rows_per_s"], "peak_rss_mb": max(r["peak_rss_mb"]
                                                                       for r in runs),
        "peak_anon_mb": max(r["peak_anon_mb"] for r in runs),
        "kept": w2["kept"], "rejected": w2["rejected"],
        "tokens_per_trace": [args.min_tokens, args.max_tokens],
        "traces_parquet_mb": round(size_mb, 1), "cpu_count": os.cpu_count(),
        "seconds_workers_1": w1["seconds"], "seconds_workers_2": w2["seconds"],
        "speedup_1_to_2_workers": round(w1["seconds"] / w2["seconds"], 2),
        "seconds_without_decontamination": nodecon["seconds"],
        # the cost of decontamination itself (index the benchmarks, match every problem), as a
        # share of the rest of the run; the wall-clock difference of two runs on a shared machine
        # is mostly noise, so it is reported beside it, not instead
        "decontamination_overhead": round(
            w2["seconds_decontaminate"] / (w2["seconds_curate"] - w2["seconds_decontaminate"]), 4),
        "decontamination_wall_difference": round(w2["seconds"] / nodecon["seconds"] - 1, 3),
        "decontamination_benchmarks": [Path(b).stem for b in benches],
        "runs": runs,
    }
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
