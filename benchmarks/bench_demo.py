"""`make demo` from a fresh clone, timed: installation, the workflow, and what the student learned.

Clones this repository (its committed HEAD) into a temporary directory, runs `make install`, then
`make demo` (now only the workflow, `snakemake --cores 2`) with wall-clock timing, and reads the
held-out results from the demo's DuckDB file: pass@1 of the trained student, of the untrained
student and of the sim teacher, and the seconds each rule took (Snakemake's benchmark files).
Issue 2's targets: the whole demo under 10 minutes on a 2-core machine, trained pass@1 >= 0.80,
untrained near 0.

    .venv/bin/python benchmarks/bench_demo.py [--keep DIR] [--cores 2]

Run it on a quiet machine: any other load on the cores shows up as minutes. The install starts
from an empty download cache (as on a fresh machine) unless --warm-cache. The last line is a JSON
object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, log: Path, env: dict[str, str]) -> float:
    """Run `cmd` in `cwd` with its output in `log`; seconds taken (raises if it fails)."""
    t0 = time.monotonic()
    with log.open("w") as fh:
        code = subprocess.call(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}; see {log}")
    return time.monotonic() - t0


def _results(repo: Path) -> dict:
    """Held-out pass@1 per model and the training seconds, from the demo's own outputs."""
    import duckdb

    con = duckdb.connect(str(repo / "results" / "results.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT model, benchmark, value, avg_output_tokens, n_problems, n_samples FROM metrics "
        "WHERE metric = 'pass@1' AND budget IS NULL ORDER BY model").fetchall()
    con.close()
    return {"pass@1": {f"{m}/{b}": round(v, 4) for m, b, v, *_ in rows},
            "avg_output_tokens": {f"{m}/{b}": round(t, 1) for m, b, _, t, *_ in rows},
            "n_problems": rows[0][4] if rows else 0, "n_samples": rows[0][5] if rows else 0,
            "job_seconds": _job_seconds(repo)}


def _job_seconds(repo: Path) -> dict[str, float]:
    """Wall seconds per rule (summed over its jobs), from Snakemake's benchmark files."""
    import csv

    logs = repo / "results" / "logs"
    out: dict[str, float] = {}
    for tsv in sorted(logs.rglob("*.tsv")):  # results/logs/<rule>/[<model>/]<name>.tsv
        with tsv.open() as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows and "s" in rows[0]:
            rule = tsv.relative_to(logs).parts[0]
            out[rule] = round(out.get(rule, 0.0) + float(rows[0]["s"]), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default=None, help="clone here and keep it (default: a temp dir)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--warm-cache", action="store_true",
                    help="let the installer use its usual download cache (default: an empty one, "
                         "as on a fresh machine)")
    args = ap.parse_args()
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_demo.")
    base = Path(args.keep or tmp.name)
    base.mkdir(parents=True, exist_ok=True)
    repo = base / "longthought"
    subprocess.check_call(["git", "clone", "-q", str(ROOT), str(repo)])
    env_note = {"cpu_count": os.cpu_count(), "load_average_before": os.getloadavg()[0]}
    env = dict(os.environ)
    if not args.warm_cache:  # nothing downloaded before: every package comes from the registry
        env["UV_CACHE_DIR"] = str(base / "uv-cache")
        env["PIP_NO_CACHE_DIR"] = "1"
    install_s = timed(["make", "install"], repo, base / "install.log", env)
    # `make demo` after `make install`: its install step is then a no-op, the rest is the workflow
    workflow_s = timed(["make", "demo", f"CORES={args.cores}"], repo, base / "workflow.log", env)
    result = {"install_s": round(install_s, 1), "workflow_s": round(workflow_s, 1),
              "demo_s": round(install_s + workflow_s, 1), **_results(repo), **env_note}
    print(f"install {install_s:.0f} s, workflow {workflow_s:.0f} s, "
          f"total {install_s + workflow_s:.0f} s")
    for name, value in result["pass@1"].items():
        print(f"  pass@1 {name}: {value:.3f}")
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
