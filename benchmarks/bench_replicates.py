"""The demo's student trained at several replicate seeds, from a fresh clone: pass@1 and its spread.

One training run is one draw: the same config on another seed or another machine (another float
path) gives another number. This script clones the repository (its committed HEAD), runs
`make install`, and runs the workflow once with the demo config plus `students.<s>.replicates: N`
(or `seeds: [...]`), the workflow's own replicates: each replicate `<s>~s<seed>` is trained (its
data order and initial weights drawn from its seed, nothing else changed) and evaluated exactly as
the demo evaluates `<s>` (replicate seed 0 is the demo's own student). Budget forcing is left out
(`evaluation.budgets: []`): it does not change the unconstrained pass@1 and would only cost time.
It reads the pass@1 of each replicate and their aggregate (the same `metrics_and_scores` the
report uses: the mean, the SD across seeds, the standard error over problems and seeds) from the
generations, and the training seconds from Snakemake's benchmark files.

    .venv/bin/python benchmarks/bench_replicates.py                      # replicates: 3, clone
    .venv/bin/python benchmarks/bench_replicates.py --seeds 0 1 2 3 4 --keep /tmp/reps
    .venv/bin/python benchmarks/bench_replicates.py --here --overlay tests/configs/small.yaml \
        --replicates 2                   # a quick check of the script: this tree, smaller scale

Issue 16's target: on the demo config, 3 seeds, min pass@1 >= 0.80 (2-core machine). Run it on a
quiet machine for the timings; accuracy does not depend on the load. Last line JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import yaml
from bench_demo import timed  # the same clone-install-run helper

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "rules", "report", "config", "envs", "data"]  # what --here copies


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge `over` into `base`, as Snakemake merges --configfile overlays."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def overlay(student: str, replicates: int | None, seeds: list[int] | None) -> dict:
    """The config overlay: the student's replicates, evaluated alone and without budgets."""
    reps = {"seeds": seeds} if seeds else {"replicates": replicates}
    return {"students": {student: reps},
            "evaluation": {"models": [student], "budgets": [], "budget_models": None}}


def _seconds(tsv: Path) -> float | None:
    """Wall seconds of one job from its Snakemake benchmark file."""
    if not tsv.is_file():
        return None
    with tsv.open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return round(float(rows[0]["s"]), 1) if rows else None


def _hardware(repo: Path, name: str) -> str:
    from longthought.hardware import hardware_summary

    hp = repo / "results" / "models" / name / "hparams.json"
    return hardware_summary(json.loads(hp.read_text()).get("hardware")) if hp.is_file() else "?"


def _metrics(paths: list[Path]):
    """pass@1 rows of the replicates and their aggregate, as the report computes them."""
    from longthought import io
    from longthought.evaluate.metrics import metrics_and_scores

    gens = io.read_tables([str(p) for p in paths], "generations")
    metrics, _ = metrics_and_scores(gens, [1])
    return metrics[metrics["metric"].eq("pass@1") & metrics["budget"].isna()].set_index("model")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=3,
                    help="students.<s>.replicates: seeds 0..N-1 (default 3)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="explicit replicate seeds (students.<s>.seeds) instead")
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
    if args.seeds is None and args.replicates < 2:
        ap.error("--replicates must be at least 2 (or give --seeds)")

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
        install_s = timed(["make", "install"], repo, base / "install.log", env)
        snakemake = [str(repo / ".venv" / "bin" / "snakemake")]
        env["PATH"] = f"{repo / '.venv' / 'bin'}:{env['PATH']}"

    from longthought.replicates import replicates

    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    overlays = [Path(o).resolve() for o in args.overlay]
    for extra in overlays:
        config = _merge(config, yaml.safe_load(extra.read_text()))
    reps_overlay = overlay(args.student, args.replicates, args.seeds)
    config = _merge(config, reps_overlay)
    names = dict((seed, name) for name, seed in replicates(config, args.student))
    seeds = list(names)
    bench = args.bench or config["evaluation"]["benchmarks"][0]
    reps = base / "replicates.yaml"
    reps.write_text(yaml.safe_dump(reps_overlay))
    targets = [f"results/generations/{n}/{bench}.parquet" for n in names.values()]
    configfiles = ["config/config.yaml", *map(str, overlays), str(reps)]
    cmd = [*snakemake, "--cores", str(args.cores), "--configfile", *configfiles, "--", *targets]
    workflow_s = timed(cmd, repo, base / "workflow.log", env)

    rows = _metrics([repo / t for t in targets])
    agg = rows.loc[args.student]
    sampling = config["evaluation"]["sampling"]
    per = {seed: {"pass_at_1": round(float(rows.loc[name, "value"]), 4),
                  "se_problems": round(float(rows.loc[name, "stderr"]), 4),
                  "problems": int(rows.loc[name, "n_problems"]),
                  "train_seconds": _seconds(repo / "results" / "logs" / "train" / f"{name}.tsv"),
                  "hardware": _hardware(repo, name)}
           for seed, name in names.items()}
    values = [r["pass_at_1"] for r in per.values()]
    result = {
        "student": args.student, "benchmark": bench, "seeds": seeds,
        "models": {str(s): n for s, n in names.items()},
        "sampling": {k: sampling.get(k) for k in ("n", "temperature", "top_p",
                                                   "max_new_tokens")},
        "pass_at_1": {str(s): r["pass_at_1"] for s, r in per.items()},
        "se_problems": {str(s): r["se_problems"] for s, r in per.items()},
        "min": round(min(values), 4), "mean": round(statistics.fmean(values), 4),
        "sd": round(statistics.stdev(values), 4),
        "se_two_way": round(float(agg["stderr"]), 4),
        "train_seconds": {str(s): r["train_seconds"] for s, r in per.items()},
        "hardware": per[seeds[0]]["hardware"],
        "install_s": round(install_s, 1), "workflow_s": round(workflow_s, 1),
        "cpu_count": os.cpu_count(), "overlays": args.overlay,
    }
    for seed, r in per.items():
        print(f"seed {seed} ({names[seed]}): pass@1 {r['pass_at_1']:.3f} ± {r['se_problems']:.3f}"
              f" over {r['problems']} problems; trained in {r['train_seconds']} s")
    print(f"min {result['min']:.3f}, mean {result['mean']:.3f} ± {result['se_two_way']:.3f} "
          f"(problems and seeds), sd {result['sd']:.3f} over {len(values)} seeds "
          f"({result['hardware']})")
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
