"""The demo's student trained at several replicate seeds, from a fresh clone: pass@1 and its spread.

One training run is one draw: the same config on another seed or another machine (another float
path) gives another number. This script clones the repository (its committed HEAD), runs
`make install`, and runs the workflow with an overlay that adds one copy of the demo's student
per seed (`<student>-s<seed>`, the same spec with `seed: <seed>`: its data order and initial
weights, nothing else), each trained and evaluated exactly as the demo trains and evaluates
`<student>` (replicate seed 0 is the demo's own student). It reads held-out pass@1 per seed from
the generations and the training seconds from Snakemake's benchmark files.

    .venv/bin/python benchmarks/bench_replicates.py                      # seeds 0 1 2, fresh clone
    .venv/bin/python benchmarks/bench_replicates.py --seeds 0 1 2 3 4 --keep /tmp/reps
    .venv/bin/python benchmarks/bench_replicates.py --here --overlay tests/configs/small.yaml \
        --seeds 0 1                      # a quick check of the script: this tree, smaller scale

Issue 16's target: on the demo config, 3 seeds, min pass@1 >= 0.80 (2-core machine). When the
workflow gains `replicates:` (issue 16 items 1-3), only `overlay()` and `replicate_names()` change.
Run it on a quiet machine for the timings; accuracy does not depend on the load. Last line JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "rules", "config", "envs", "data"]  # what --here copies


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge `over` into `base`, as Snakemake merges --configfile overlays."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def replicate_names(student: str, seeds: list[int]) -> dict[int, str]:
    """seed -> the model name its replicate is trained and evaluated under."""
    return {s: f"{student}-s{s}" for s in seeds}


def overlay(config: dict, student: str, seeds: list[int]) -> dict:
    """A config overlay adding one copy of `student` per replicate seed, evaluated as the demo
    evaluates `student` (the workflow generates only for models named in evaluation.models)."""
    spec = config["students"][student]
    names = replicate_names(student, seeds)
    return {"students": {name: {**spec, "seed": s} for s, name in names.items()},
            "evaluation": {"models": list(names.values())}}


def _run(cmd: list[str], cwd: Path, log: Path, env: dict[str, str]) -> float:
    """Run `cmd` in `cwd`, output to `log`; seconds taken (exits naming the log if it fails)."""
    t0 = time.monotonic()
    with log.open("w") as fh:
        code = subprocess.call(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}; see {log}")
    return time.monotonic() - t0


def _seconds(tsv: Path) -> float | None:
    """Wall seconds of one job from its Snakemake benchmark file."""
    if not tsv.is_file():
        return None
    with tsv.open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return round(float(rows[0]["s"]), 1) if rows else None


def _pass_at_1(path: Path) -> tuple[float, float, int]:
    """(pass@1, its standard error over problems, problems) of one generations table."""
    import pandas as pd

    gen = pd.read_parquet(path, columns=["problem_id", "budget", "correct"])
    per = gen[gen["budget"].isna()].groupby("problem_id")["correct"].mean()
    se = float(per.std(ddof=1) / len(per) ** 0.5) if len(per) > 1 else 0.0
    return float(per.mean()), se, len(per)


def _hardware(repo: Path, name: str) -> str:
    from longthought.hardware import hardware_summary

    hp = repo / "results" / "models" / name / "hparams.json"
    return hardware_summary(json.loads(hp.read_text()).get("hardware")) if hp.is_file() else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--student", default="tiny")
    ap.add_argument("--bench", default=None, help="benchmark (default: the first evaluated)")
    ap.add_argument("--overlay", nargs="*", default=[],
                    help="config overlays applied before the replicates (e.g. a smaller scale)")
    ap.add_argument("--keep", default=None, help="work here and keep it (default: a temp dir)")
    ap.add_argument("--here", action="store_true",
                    help="copy this checkout's workflow files (uncommitted edits included) and "
                         "use its venv: no clone, no install")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_replicates.")
    base = Path(args.keep or tmp.name).resolve()
    base.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}
    install_s = 0.0
    if args.here:
        import shutil

        repo = base / "work"
        for name in WORKFLOW_FILES:
            src, dst = ROOT / name, repo / name
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
        snakemake = [str(ROOT / ".venv" / "bin" / "snakemake")]
        env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    else:
        repo = base / "longthought"
        if not repo.exists():
            subprocess.check_call(["git", "clone", "-q", str(ROOT), str(repo)])
        install_s = _run(["make", "install"], repo, base / "install.log", env)
        snakemake = [str(repo / ".venv" / "bin" / "snakemake")]
        env["PATH"] = f"{repo / '.venv' / 'bin'}:{env['PATH']}"
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    overlays = [Path(o).resolve() for o in args.overlay]
    for extra in overlays:
        config = _merge(config, yaml.safe_load(extra.read_text()))
    bench = args.bench or config["evaluation"]["benchmarks"][0]
    names = replicate_names(args.student, args.seeds)
    reps = base / "replicates.yaml"
    reps.write_text(yaml.safe_dump(overlay(config, args.student, args.seeds)))
    targets = [f"results/generations/{n}/{bench}.parquet" for n in names.values()]
    configfiles = ["config/config.yaml", *map(str, overlays), str(reps)]
    cmd = [*snakemake, "--cores", str(args.cores), "--configfile", *configfiles, "--", *targets]
    workflow_s = _run(cmd, repo, base / "workflow.log", env)

    sampling = config["evaluation"]["sampling"]
    rows = {}
    for seed, name in names.items():
        p1, se, n = _pass_at_1(repo / "results" / "generations" / name / f"{bench}.parquet")
        rows[seed] = {"pass_at_1": round(p1, 4), "se_problems": round(se, 4), "problems": n,
                      "train_seconds": _seconds(repo / "results" / "logs" / "train" /
                                                f"{name}.tsv"),
                      "hardware": _hardware(repo, name)}
    values = [r["pass_at_1"] for r in rows.values()]
    result = {
        "student": args.student, "benchmark": bench, "seeds": args.seeds,
        "sampling": {k: sampling.get(k) for k in ("n", "temperature", "top_p",
                                                   "max_new_tokens")},
        "pass_at_1": {str(s): r["pass_at_1"] for s, r in rows.items()},
        "se_problems": {str(s): r["se_problems"] for s, r in rows.items()},
        "min": round(min(values), 4), "mean": round(statistics.fmean(values), 4),
        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "train_seconds": {str(s): r["train_seconds"] for s, r in rows.items()},
        "hardware": rows[args.seeds[0]]["hardware"],
        "install_s": round(install_s, 1), "workflow_s": round(workflow_s, 1),
        "cpu_count": os.cpu_count(), "overlays": args.overlay,
    }
    for seed, r in rows.items():
        print(f"seed {seed} ({names[seed]}): pass@1 {r['pass_at_1']:.3f} ± {r['se_problems']:.3f}"
              f" over {r['problems']} problems; trained in {r['train_seconds']} s")
    print(f"min {result['min']:.3f}, mean {result['mean']:.3f}, sd {result['sd']:.3f} over "
          f"{len(values)} seeds ({result['hardware']})")
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
