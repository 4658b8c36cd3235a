"""Batched vs sequential generation on the transformers backend, on the demo-sized student.

Uses the trained demo student (results/models/tiny) when it exists, else builds a random model of
the demo config's size (`students.tiny.tiny` in config/config.yaml) locally.
Generates the same samples twice, batched (batch_size = --batch-size) and sequentially
(batch_size = 1), checks they are identical, and prints samples per second. Last line: JSON.

    .venv/bin/python benchmarks/bench_eval.py [--problems 32] [--n 1] [--max-new-tokens 128]
        [--batch-size 64] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from longthought.evaluate.backends import generate_texts
from longthought.evaluate.fixtures import build_tiny_chat_model
from longthought.io import read_yaml
from longthought.problems.procedural import generate

ROOT = Path(__file__).resolve().parents[1]
CONFIG = read_yaml(ROOT / "config" / "config.yaml")
# the demo student's shape and the demo pool's families, read from the config so they stay in step
_TINY = CONFIG["students"]["tiny"]["tiny"]
DEMO = {k: _TINY[k] for k in ("hidden_size", "num_layers", "num_heads", "num_kv_heads",
                              "intermediate_size", "vocab_size")}
FAMILIES = CONFIG["pools"]["arith"]["families"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="results/models/tiny")
    ap.add_argument("--problems", type=int, default=32)
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = tempfile.TemporaryDirectory()
    model_dir = Path(args.model)
    source = "trained demo student"
    if not (model_dir / "config.json").is_file():
        model_dir = build_tiny_chat_model(Path(tmp.name) / "tiny", **DEMO)
        source = "random model of the demo student's size (no trained student found)"
    spec = {"name": "tiny", "kind": "local", "path": str(model_dir), "backend": "transformers"}
    rows = generate(FAMILIES, args.problems, seed=11, split="heldout")
    prompts = [[{"role": "user", "content": r["problem"]}] for r in rows]
    sampling = {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": args.max_new_tokens,
                "seed": 0}
    generate_texts(spec, prompts[:2], sampling, 1, batch_size=2)  # load + warm up

    results = {}
    for name, batch in [("batched", args.batch_size), ("sequential", 1)]:
        t0 = time.perf_counter()
        out = generate_texts(spec, prompts, sampling, args.n, batch_size=batch)
        wall = time.perf_counter() - t0
        samples = [o for per in out for o in per]
        tokens = sum(o.output_tokens for o in samples)
        results[name] = {"out": [(o.text, o.output_tokens) for o in samples], "wall": wall,
                         "samples": len(samples), "tokens": tokens}
        print(f"{name:>10}: {len(samples)} samples, {tokens} tokens in {wall:.2f} s "
              f"({len(samples) / wall:.2f} samples/s, {tokens / wall:.0f} tokens/s)")
    b, s = results["batched"], results["sequential"]
    same = [x == y for x, y in zip(b["out"], s["out"], strict=True)]
    for i, (x, y) in enumerate(zip(b["out"], s["out"], strict=True)):
        if x != y:
            at = next((j for j, (c, d) in enumerate(zip(x[0], y[0], strict=False)) if c != d),
                      min(len(x[0]), len(y[0])))
            print(f"sample {i} differs from character {at}: batched {x[0][at:at + 20]!r} "
                  f"({x[1]} tokens) vs sequential {y[0][at:at + 20]!r} ({y[1]} tokens)")
    summary = {
        "model": source,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "problems": args.problems, "n": args.n, "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "samples_per_s_batched": round(b["samples"] / b["wall"], 3),
        "samples_per_s_sequential": round(s["samples"] / s["wall"], 3),
        "tokens_per_s_batched": round(b["tokens"] / b["wall"], 1),
        "tokens_per_s_sequential": round(s["tokens"] / s["wall"], 1),
        "speedup": round(s["wall"] / b["wall"], 2),
        "identical_samples": sum(same),
        "identical_outputs": all(same),
    }
    print(json.dumps(summary))
    tmp.cleanup()


if __name__ == "__main__":
    main()
