"""How well a tiny student learns the demo families: the tuning loop behind the demo's defaults.

Builds the demo's data without the workflow (so one configuration costs only its training):
procedural training problems, the sim teacher's long thoughts for them (`teacher.sim_persona`,
composed in-process: the same text the HTTP server sends, minus the transport, and without the
wrong or truncated answers that curation would remove), a tiny Qwen2 + BPE tokenizer, then the
package's own `train()` and `run_generate()`. Prints held-out accuracy per family, greedy and at
each `--temperature` (top-p 0.95, `--samples` per problem), and the training time. `--seed` is
the student's replicate seed (`students.<name>.seed`: data order and initial weights). The
README's "Tuning the demo student" table lists the runs and their options.

    .venv/bin/python benchmarks/bench_student.py                       # the demo's defaults
    .venv/bin/python benchmarks/bench_student.py --seed 2 --temperature 0.6 0.7
    .venv/bin/python benchmarks/bench_student.py --hidden 128 --epochs 6 --slip-rate 0.3

The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from longthought.curate.formatting import assistant_text
from longthought.evaluate.run import run_generate
from longthought.io import read_yaml, write_table
from longthought.problems import procedural
from longthought.teacher.sim_persona import compose
from longthought.train.loop import train
from longthought.train.student import build_tiny

ROOT = Path(__file__).resolve().parents[1]


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _dataset(problems: list[dict], prompt: str, model: str, slip_rate: float,
             name: str) -> pd.DataFrame:
    """Rows of schema `dataset`: the user turn is the problem, the assistant turn the sim's."""
    rows = []
    for i, p in enumerate(problems):
        user = prompt.replace("{problem}", p["problem"]).replace("{solution}", p["solution"])
        reply = compose(user, model, slip_rate=slip_rate, rng=random.Random(f"{name}:{i}"))
        messages = [{"role": "user", "content": p["problem"]},
                    {"role": "assistant",
                     "content": assistant_text(reply.thought, reply.answer, "think")}]
        rows.append({"sample_id": f"{name}/{p['problem_id']}/0", "dataset": name, "task": name,
                     "problem_id": p["problem_id"], "problem": p["problem"],
                     "answer": p["answer"], "messages": json.dumps(messages),
                     "completion_tokens": None})
    return pd.DataFrame(rows)


def _stage(dataset: str, args: argparse.Namespace, **over: object) -> dict:
    return {"dataset": dataset, "lr": args.lr, "schedule": "cosine", "warmup_ratio": 0.05,
            "epochs": args.epochs, "max_steps": None, "batch_size": args.batch_size,
            "grad_accum": 1, "max_length": 512, "packing": True, "weight_decay": 0.0,
            **over}


def _accuracy(model_dir: Path, bench: str, out: Path, temperature: float, n: int,
              top_p: float = 0.95) -> dict:
    spec = {"model": {"name": "tiny", "kind": "local", "path": str(model_dir),
                      "backend": "transformers"},
            "sampling": {"n": n, "temperature": temperature,
                         "top_p": top_p if temperature > 0 else 1.0, "max_new_tokens": 512,
                         "seed": 0},
            "budgets": [], "batch_size": 64, "checker": {"timeout_s": 5, "workers": 2}}
    t0 = time.monotonic()
    gen = run_generate("tiny", spec, bench, str(out))
    family = gen["problem_id"].str.split("-").str[0]
    return {"pass@1": round(float(gen["correct"].mean()), 3),
            "by_family": gen.groupby(family)["correct"].mean().round(3).to_dict(),
            "seconds": round(time.monotonic() - t0, 1)}


def main() -> None:
    config = read_yaml(ROOT / "config" / "config.yaml")
    tiny = config["students"]["tiny"]["tiny"]
    last = config["students"]["tiny"]["stages"][-1]  # the demo's long-thought stage
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=config["pools"]["arith"]["n"])
    ap.add_argument("--heldout", type=int, default=config["benchmarks"]["heldout"]["n"])
    ap.add_argument("--hidden", type=int, default=tiny["hidden_size"])
    ap.add_argument("--layers", type=int, default=tiny["num_layers"])
    ap.add_argument("--heads", type=int, default=tiny["num_heads"])
    ap.add_argument("--mlp", type=int, default=tiny["intermediate_size"])
    ap.add_argument("--epochs", type=float, default=last["epochs"])
    ap.add_argument("--lr", type=float, default=last["lr"])
    ap.add_argument("--batch-size", type=int, default=last["batch_size"])
    ap.add_argument("--seed", type=int, default=config["students"]["tiny"].get("seed", 0),
                    help="the replicate seed (students.<name>.seed: data order and init)")
    ap.add_argument("--format-steps", type=int, default=0,
                    help="steps of stage 1 (rewritten solutions) before the long thoughts")
    ap.add_argument("--slip-rate", type=float,
                    default=config["teachers"]["sim-o1"]["sim"]["slip_rate"])
    sampling = config["evaluation"]["sampling"]
    ap.add_argument("--samples", type=int, default=sampling["n"],
                    help="samples per problem at each temperature (default: the demo's n)")
    ap.add_argument("--temperature", type=float, nargs="+", default=[sampling["temperature"]],
                    help="sampling temperatures to score (default: the demo's)")
    ap.add_argument("--top-p", type=float, default=sampling["top_p"])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--keep", default=None, help="write here and keep (default: a temp dir)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_student.")
    out = Path(args.keep or tmp.name)
    out.mkdir(parents=True, exist_ok=True)
    families = config["pools"]["arith"]["families"]
    problems = procedural.generate(families, args.problems, 1, "train")
    heldout = procedural.generate(config["benchmarks"]["heldout"]["families"], args.heldout, 2,
                                  "heldout")
    prompts = config["prompts"]
    think = _dataset(problems, prompts["distill"]["user"], "sim-o1", args.slip_rate, "think")
    write_table(think, out / "think.parquet", "dataset")
    bench = str(out / "heldout.parquet")
    write_table(pd.DataFrame(heldout), bench, "problems")
    stages, paths = [], []
    if args.format_steps:
        fmt = _dataset(problems, prompts["rewrite"]["user"], "sim-4o-mini", 0.0, "format")
        write_table(fmt, out / "format.parquet", "dataset")
        stages.append(_stage("format", args, epochs=1, max_steps=args.format_steps, seed=1))
        paths.append(str(out / "format.parquet"))
    stages.append(_stage("think", args, seed=last["seed"]))
    paths.append(str(out / "think.parquet"))

    texts = [json.loads(m)[-1]["content"] for m in think["messages"]]
    texts += [p["problem"] for p in problems] + [f"{r}\n" for r in ("user", "assistant")] * 100
    init, model = out / "init", out / "model"
    shutil.rmtree(init, ignore_errors=True)
    init.mkdir()
    build_tiny({**tiny, "hidden_size": args.hidden, "num_layers": args.layers,
                "num_heads": args.heads, "intermediate_size": args.mlp}, texts, init, args.seed)
    spec = {"base_model": "tiny", "precision": "fp32", "gradient_checkpointing": False,
            "attn_implementation": "sdpa", "checkpoint_every": 0, "accelerate_config": None,
            "stages": stages, "seed": args.seed}
    shutil.rmtree(model, ignore_errors=True)
    t0 = time.monotonic()
    train("tiny", spec, str(init), paths, str(model))
    train_s = time.monotonic() - t0
    log = pd.read_parquet(model / "train_log.parquet")
    result = {
        "problems": args.problems, "seed": args.seed, "hidden": args.hidden, "layers": args.layers,
        "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
        "format_steps": args.format_steps, "slip_rate": args.slip_rate,
        "train_s": round(train_s, 1), "train_tokens": int(log["tokens"].sum()),
        "tokens_per_s": round(float(log["tokens"].sum()) / train_s),
        "final_loss": round(float(log["loss"].tail(20).mean()), 4),
        "threads": torch_threads(), "samples": args.samples, "top_p": args.top_p,
        "greedy": _accuracy(model, bench, out / "greedy.parquet", 0.0, 1),
    }
    for t in args.temperature:
        result[f"t{t:g}"] = _accuracy(model, bench, out / f"t{t:g}.parquet", t, args.samples,
                                      args.top_p)
    keys = ["greedy"] + [f"t{t:g}" for t in args.temperature]
    print(f"trained {train_s:.0f} s; held-out pass@1 "
          + ", ".join(f"{k} {result[k]['pass@1']:.3f}" for k in keys))
    for key in keys:
        print(f"  {key:>6}: " + ", ".join(f"{f} {v:.2f}"
                                          for f, v in result[key]["by_family"].items()))
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
