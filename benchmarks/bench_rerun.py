"""What a change re-runs on a finished run, and what it costs: issue 15's numbers.

On a finished run of the workflow (made here in a temporary copy unless --workdir names one):

1. a dry run with nothing changed (the DAG build the content digests and job files add to);
2. for each operational knob (limits, budget, pricing, key name, sim latency, cache dir, seed,
   checkpoint interval, resources, batch sizes, workers, allow_partial), a dry run: the jobs it
   plans besides `run_config`, the run's record (issue 15's target: 0 besides run_config and
   tti_self);
3. a real `--forcerun traces`: every trace re-collected, all answered by the request cache; the
   jobs it ran (target: no curate, no train; the TTI self-score and the report, which read the
   traces files themselves, may follow) and its wall time.

    .venv/bin/python benchmarks/bench_rerun.py                  # small overlay (~2 min run)
    .venv/bin/python benchmarks/bench_rerun.py --demo           # the demo's own config
    .venv/bin/python benchmarks/bench_rerun.py --workdir DIR    # an existing finished run

Timings depend on the machine's load; the job counts do not. The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from longthought.snakemake_output import planned_jobs, ran_jobs  # the tests' parser

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FILES = ["Snakefile", "rules", "config", "envs", "data", "slurm", "profiles", "tests/configs"]
SMALL = "tests/configs/small.yaml"
RECORD = {"run_config", "all"}  # the run's record; `all` is the target, not a job
OPERATIONAL = [
    {"cache_dir": ".cache/elsewhere"},
    {"seed": 99},
    {"teachers": {"sim-o1": {"limits": {"max_concurrency": 8}}}},
    {"teachers": {"sim-o1": {"budget_usd": 20.0, "pricing": {"input": 5.0}}}},
    {"teachers": {"sim-o1": {"api_key_env": "OTHER", "sim": {"latency_ms": 3}}}},
    {"teachers": {"sim-judge": {"limits": {"timeout_s": 30, "max_retries": 2}}}},
    {"tasks": {"distill-arith": {"allow_partial": False}}},
    {"students": {"tiny": {"checkpoint_every": 50}}},
    {"students": {"tiny": {"resources": {"mem_mb": 16000, "runtime": 120}}}},
    {"evaluation": {"batch_size": 7, "checker": {"workers": 1}}},
    {"evaluation": {"resources": {"runtime": 90}}},
    {"generalization": {"batch_size": 3}},
]


def snakemake(workdir: Path, configs: list[str], *args: str) -> tuple[str, float]:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    cmd = [str(BIN / "snakemake"), "--cores", "2", "--configfile", *configs, *args]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr, time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="a finished run to use (it is re-collected)")
    ap.add_argument("--demo", action="store_true", help="the demo's config, not the small overlay")
    ap.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    args = ap.parse_args()
    configs = ["config/config.yaml"] + ([] if args.demo else [SMALL])
    tmp = Path(tempfile.mkdtemp(prefix="bench-rerun-"))
    try:
        if args.workdir:
            wd = args.workdir
        else:
            wd = tmp / "wd"
            wd.mkdir()
            for name in FILES:
                src, dst = ROOT / name, wd / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
            _, full_s = snakemake(wd, configs)
            print(f"full run: {full_s:.1f} s")
        text, dry_s = snakemake(wd, configs, "-n")
        assert not planned_jobs(text), f"the run is not finished: {planned_jobs(text)}"
        print(f"dry run, nothing changed: {dry_s:.2f} s")
        extra: dict[str, list[str]] = {}
        for i, knob in enumerate(OPERATIONAL):
            path = tmp / f"op{i}.yaml"
            path.write_text(yaml.safe_dump(knob))
            jobs = planned_jobs(snakemake(wd, [*configs, str(path)], "-n")[0])
            others = sorted(set(jobs) - RECORD)
            extra[json.dumps(knob)] = others
            print(f"  {json.dumps(knob)}: plans {dict(jobs) or 'nothing'}")
        text, recollect_s = snakemake(wd, configs, "--forcerun", "traces")
        jobs = ran_jobs(text)
        print(f"--forcerun traces (all from the request cache): {recollect_s:.1f} s, "
              f"ran {dict(jobs)}")
        print(json.dumps({
            "dry_run_s": round(dry_s, 2),
            "operational_knobs": len(OPERATIONAL),
            "operational_extra_jobs": sum(len(v) for v in extra.values()),
            "operational_knobs_with_extra_jobs": [k for k, v in extra.items() if v],
            "recollect_s": round(recollect_s, 1),
            "recollect_jobs": dict(jobs),
            "recollect_reran_curate_or_train": bool({"curate", "train"} & set(jobs)),
        }))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
