"""How long an invalid config takes to stop: `snakemake` from start to its error, per check.

Target: every invalid config stops within 10 s with the key's path (issue 15). Each case is a
real `snakemake --cores 1 -n` in a copy of the workflow with one bad overlay on the small test
config; the time is the whole process (Snakemake's own start included), and the case fails unless
the process exits 1 with the expected key path on stderr and no traceback.

    .venv/bin/python benchmarks/bench_configcheck.py            # all cases
    .venv/bin/python benchmarks/bench_configcheck.py --repeat 3 # best of 3 per case

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
FILES = ["Snakefile", "rules", "config", "envs", "data", "profiles", "tests/configs"]

# (overlay, the key path the message must start with): one per kind of check
CASES = [
    ({"students": {"tiny": {"tiny": {"num_layer": 4}}}}, "students.tiny.tiny.num_layer"),
    ({"datasets": {"format-arith": {"decontaminate": {"ngram": 0}}}},
     "datasets.format-arith.decontaminate.ngram"),
    ({"tasks": {"distill-arith": {"pool": "nope"}}}, "tasks.distill-arith.pool"),
    ({"evaluation": {"k": [1, 8]}}, "evaluation.k[1]"),
    ({"evaluation": {"models": ["sim-o1"], "budgets": [64]}}, "evaluation.budgets"),
    ({"generalization": {"models": ["tiny"]}}, "generalization.models"),
    ({"pools": {"arith": {"split": "heldout"}}}, "students.tiny.stages[0].dataset"),
    ({"teachers": {"tiny": {"base_url": "sim", "model": "x"}}}, "teachers.tiny"),
    ({"students": {"tiny": {"accelerate_config": "config/accelerate/nope.yaml"}}},
     "students.tiny.accelerate_config"),
    ({"generalization": {"sets": {"qa-demo": {"path": "data/nope.jsonl"}}}},
     "generalization.sets.qa-demo.path"),
    ({"teachers": {"sim-o1": {"pricing": None}}}, "teachers.sim-o1.budget_usd"),
    ({"students": {"tiny": {"tiny": {"num_kv_heads": 4}}}}, "students.tiny.tiny.num_kv_heads"),
]


def run_case(workdir: Path, overlay: dict, key: str) -> float:
    bad = workdir / "bad.yaml"
    bad.write_text(yaml.safe_dump(overlay))
    t0 = time.perf_counter()
    proc = subprocess.run([SNAKEMAKE, "--cores", "1", "-n", "--configfile",
                           "tests/configs/small.yaml", str(bad)],
                          cwd=workdir, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - t0
    ok = (proc.returncode == 1 and f"\n  {key}" in proc.stderr and "Traceback" not in proc.stderr)
    if not ok:
        raise SystemExit(f"case {key}: unexpected result (rc {proc.returncode}):\n{proc.stderr}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the best is kept")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_configcheck.") as tmp:
        workdir = Path(tmp)
        for name in FILES:
            src, dst = REPO / name, workdir / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
        t0 = time.perf_counter()
        subprocess.run([SNAKEMAKE, "--cores", "1", "-n", "--configfile",
                        "tests/configs/small.yaml"], cwd=workdir, check=True,
                       capture_output=True, timeout=120)
        valid_s = time.perf_counter() - t0
        times = {}
        for overlay, key in CASES:
            times[key] = min(run_case(workdir, overlay, key) for _ in range(args.repeat))
            print(f"{key:<40} stopped in {times[key]:5.2f} s")
    print(f"valid config, full dry run: {valid_s:.2f} s")
    print(json.dumps({"cases": len(times), "max_s": round(max(times.values()), 2),
                      "median_s": round(statistics.median(times.values()), 2),
                      "valid_dry_run_s": round(valid_s, 2),
                      "all_under_10s": max(times.values()) < 10}))


if __name__ == "__main__":
    main()
