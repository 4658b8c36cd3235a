"""Long thoughts at real length: loss memory, token-budget steps, resume latency, batch refill,
the in-place KV cache.

Four figures of issue 21 and one more, each from the package's own code:

- `loss_peak_mb` / `loss_peak_mb_before`: peak memory (RSS high-water mark above the process's
  memory just before, each in a fresh process) of one step's loss + backward on the CPU, for
  `--tokens` assistant tokens (default 8,192) with a 151,936-token vocabulary and hidden size 64:
  the chunked cross-entropy (`train.loss`) against the logits-materialising one (fp32 logits,
  `F.cross_entropy`, as the loop did before). Target: new <= 25% of old.
- `token_count_cv`: coefficient of variation of tokens per optimizer step over an epoch of the
  demo's data (synthetic rows of the four families, tokenized by the demo's tiny tokenizer),
  micro-batches by token budget (`max_tokens_per_batch`, default the demo's batch_size x the
  mean sample length) against today's `batch_size` samples (`token_count_cv_samples`).
  Target: <= 0.1. `*_longtail`: the same with 20% of the rows made long thoughts (2-8 rows'
  thoughts joined), where fixed sample counts vary much more.
- `resume_to_first_step_s`: a `longthought train` process resuming a preempted run of a
  `--rows`-row dataset (default 100,000): seconds from the process's start (imports included)
  to its first optimizer step. The dataset was tokenized once by the first run. Target: < 10 s.
- `gen_speedup_refill`: samples/s of the transformers backend with batch refill over fixed
  batches, on a random model of the demo's size whose samples end at a constant rate (lengths
  geometric, mean `--mean-length`, capped at 512 new tokens). Outputs are checked identical.
  Speedups are the median over `--repeats` of the ratio within one repeat (the modes run
  interleaved), steadier than best-of on a machine whose speed wanders.
  Target: >= 1.5. `gen_step_ratio` is the device-independent part: batched decode steps without
  refill over steps with it (on a GPU a step costs the same whatever its rows).
  `gen_attended_fraction_refill`: the share of the padded KV-cache columns that refill's decode
  steps attend over with ragged attention (`evaluate.ragged`: each run of rows of similar age
  over its own trailing columns); `gen_speedup_refill_full_width`: refill with sdpa over the full
  padded width, as before ragged attention; `gen_speedup_ragged`: refill with ragged attention
  over refill without it (the two run back to back in each repeat).
- `ragged_sweep` (`--parts ragged`, not run by default): refill with ragged attention at each
  per-call cost of `--ragged-costs` (`evaluate.ragged.CALL_COST_BYTES`, KB a call and CPU thread:
  an extra sdpa call must skip that many bytes of keys and values) against refill over the full
  padded width, interleaved; the median ratio per setting. How the CPU default was chosen.
- `kv_speedup_inplace` (`--parts kv`): `--kv-rows` samples decoded to `--kv-tokens` tokens each
  (end-of-sequence ignored) with the in-place KV cache (`evaluate.kvcache.GrowingCache`) over
  transformers' `DynamicCache`, which copies the whole cache at every step. Outputs are checked
  identical.

    .venv/bin/python benchmarks/bench_longctx.py                  # the issue's sizes
    .venv/bin/python benchmarks/bench_longctx.py --tokens 2048 --rows 20000 --prompts 32  # quick

Last line: a JSON object with the four figures and their context.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 151_936


# --- 1. loss memory ---------------------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def loss_worker(kind: str, tokens: int, hidden: int) -> None:
    """In a fresh process: one loss + backward; prints the peak above the memory before it."""
    import torch
    import torch.nn.functional as F

    from longthought.train.loss import linear_cross_entropy_sum

    torch.manual_seed(0)
    weight = (torch.randn(VOCAB, hidden) * 0.02).requires_grad_()
    h = torch.randn(tokens, hidden).requires_grad_()
    labels = torch.randint(0, VOCAB, (tokens,))
    before = _rss_mb()
    if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 > before + 1:
        # the high-water mark is already above: measure from it (conservative for both)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if kind == "before":
        logits = h @ weight.T
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
    else:
        loss = linear_cross_entropy_sum(h, weight, labels, "chunked")
    loss.backward()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": round(peak - before, 1), "loss": float(loss),
                      "seconds": round(seconds, 2)}))


def _available_mb() -> float:
    with open("/proc/meminfo") as fh:
        info = dict(line.split(":", 1) for line in fh)
    return int(info["MemAvailable"].split()[0]) / 1024


def loss_memory(tokens: int, hidden: int) -> dict:
    """Both losses at `tokens`; where the old one cannot fit in 70% of the available memory
    (it needs ~4 fp32 copies of the logits: ~19 GB at 8,192 tokens), it is measured at the
    largest halving of `tokens` that fits and scaled linearly (its memory is linear in the
    tokens), and the JSON says so."""
    out, measured = {}, {"after": tokens, "before": tokens}
    while measured["before"] > 256 and 4 * measured["before"] * VOCAB * 4 / 2**20 \
            > 0.7 * _available_mb():
        measured["before"] //= 2
    for kind in ("before", "after"):
        n = measured[kind]
        done = subprocess.run([sys.executable, __file__, "--loss-worker", kind, "--tokens",
                               str(n), "--hidden", str(hidden)], capture_output=True,
                              text=True, check=True)
        out[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"loss + backward, {n} tokens x {VOCAB} vocabulary, {kind}: "
              f"{out[kind]['peak_mb']:.0f} MB above the start, {out[kind]['seconds']} s, "
              f"loss {out[kind]['loss']:.2f}", flush=True)
    scale = tokens / measured["before"]
    if scale != 1:
        out["before"]["peak_mb"] = round(out["before"]["peak_mb"] * scale, 1)
        print(f"  (before: measured at {measured['before']} tokens for lack of memory, scaled "
              f"x{scale:g} to {out['before']['peak_mb']:.0f} MB)", flush=True)
    equal = scale == 1 and abs(out["after"]["loss"] - out["before"]["loss"]) <= 1e-4 * abs(
        out["before"]["loss"])
    return {"loss_peak_mb": out["after"]["peak_mb"],
            "loss_peak_mb_before": out["before"]["peak_mb"],
            "loss_before_measured_tokens": measured["before"],
            "loss_peak_ratio": round(out["after"]["peak_mb"] / out["before"]["peak_mb"], 4),
            "loss_equal": equal if scale == 1 else None, "loss_tokens": tokens,
            "loss_seconds": out["after"]["seconds"],
            "loss_seconds_before": out["before"]["seconds"]}


# --- shared: demo-like data and the demo's tokenizer -----------------------------------------
def demo_data(work: Path, rows: int, seed: int = 1):
    """`rows` demo-like dataset rows, written to work/, and the tiny student's init dir."""
    import yaml

    from longthought.io import write_table
    from longthought.train.student import init_student
    from longthought.train.synthetic import synthetic_dataset, traces_from_dataset

    spec = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["students"]["tiny"]
    df = synthetic_dataset(rows, seed=seed, name="longthought-arith")
    path = work / f"data-{rows}.parquet"
    write_table(df, path, "dataset")
    init = work / "tiny@init"
    if not init.exists():
        write_table(traces_from_dataset(df.iloc[:2000]), work / "traces.parquet", "traces")
        init_student("tiny", spec, [str(work / "traces.parquet")], init)
    return spec, path, init


# --- 2. tokens per step -----------------------------------------------------------------------
def with_long_tail(df, fraction: float, seed: int = 0):
    """`df` with `fraction` of its rows made long thoughts: the assistant turn of 2-8 rows
    joined (up to ~4k tokens), as a pool of long traces mixed with short ones looks."""
    rng = np.random.default_rng(seed)
    df = df.copy()
    texts = [json.loads(m)[-1]["content"] for m in df["messages"]]
    for i in rng.choice(len(df), int(fraction * len(df)), replace=False):
        messages = json.loads(df.at[i, "messages"])
        parts = [texts[j] for j in rng.choice(len(df), int(rng.integers(2, 9)))]
        messages[-1]["content"] = "\n\n".join(parts)
        df.at[i, "messages"] = json.dumps(messages)
    return df


def token_cv(work: Path, rows: int, budget: int | None, long_fraction: float) -> dict:
    from transformers import AutoTokenizer

    from longthought.io import read_table, write_table
    from longthought.train.data import load_dataset
    from longthought.train.schedule import Plan
    from longthought.train.spec import parse_spec

    spec, path, init = demo_data(work, rows)
    stage = parse_spec("tiny", spec).stages[0]
    tokenizer = AutoTokenizer.from_pretrained(init)
    mixed = work / "longtail.parquet"
    write_table(with_long_tail(read_table(path, "dataset"), long_fraction), mixed, "dataset")
    result: dict = {"samples_per_batch": stage.batch_size}
    for name, data, max_length in (("", path, stage.max_length), ("_longtail", mixed, 4096)):
        lens = load_dataset(data, tokenizer, max_length).lengths
        tokens_budget = budget or max(max_length,
                                      int(np.ceil(stage.batch_size * lens.mean() / 64) * 64))

        def per_step(lens=lens, max_length=max_length, **kw) -> np.ndarray:
            st = stage.__class__(**{**stage.__dict__, "epochs": 1, "max_steps": None,
                                    "max_length": max_length, **kw})
            plan = Plan(st, lens, 1)
            return np.array([lens[plan.step_samples(s)].sum() for s in range(plan.steps)])

        samples = per_step()
        tokens = per_step(max_tokens_per_batch=tokens_budget)
        cv_s, cv_t = (float(x.std() / x.mean()) for x in (samples, tokens))
        print(f"tokens per step over an epoch of {len(lens)} {name.strip('_') or 'demo'} rows "
              f"(lengths {lens.min()}-{lens.max()}, mean {lens.mean():.0f}): "
              f"{stage.batch_size} samples per batch (today) cv {cv_s:.3f} "
              f"({samples.min()}-{samples.max()} tokens); budget {tokens_budget} tokens cv "
              f"{cv_t:.3f} ({tokens.min()}-{tokens.max()}), {len(lens) / len(tokens):.1f} "
              "samples per batch on average", flush=True)
        result.update({f"token_count_cv{name}": round(cv_t, 4),
                       f"token_count_cv{name}_samples": round(cv_s, 4),
                       f"max_tokens_per_batch{name}": tokens_budget})
    return result


# --- 3. resume -> first step ------------------------------------------------------------------
CRASH = """
import sys
from longthought.train import loop
real = loop.lr_at
def lr_at(stage, step, steps):
    if step == 3:
        raise SystemExit(143)  # preempted after the checkpoint at step 2
    return real(stage, step, steps)
loop.lr_at = lr_at
from longthought.cli import main
sys.exit(main(sys.argv[1:]))
"""


def resume_latency(work: Path, rows: int, threads: int | None) -> dict:
    spec, path, init = demo_data(work, rows, seed=2)
    stage = {**spec["stages"][0], "max_steps": 6, "epochs": 1}
    run_spec = {**spec, "stages": [stage], "checkpoint_every": 2, "accelerate_config": None}
    args = ["train", "--student", "tiny", "--spec", json.dumps(run_spec), "--init", str(init),
            "--datasets", str(path), "--out", str(work / "resumed")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    first = subprocess.run([sys.executable, "-c", CRASH, *args], capture_output=True, text=True,
                           env=env)
    first_s = time.perf_counter() - t0
    if first.returncode != 143:
        raise RuntimeError(f"the first run should stop at step 3:\n{first.stdout}\n{first.stderr}")
    tokenize = re.search(r"tokenized (\d+) rows, ([\d,]+) tokens in ([\d.]+)s", first.stdout)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "longthought.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines, first_step = [], None
    for line in proc.stdout:
        lines.append(line)
        if first_step is None and re.match(r"\[train\] stage 0 step \d+/", line):
            first_step = time.perf_counter() - t0
    proc.wait()
    if proc.returncode != 0 or first_step is None:
        raise RuntimeError("the resumed run failed:\n" + "".join(lines[-30:]))
    resumed_at = next((ln.strip() for ln in lines if "resuming at" in ln), "")
    t0 = time.perf_counter()  # what no code of ours can shorten: interpreter + library imports
    subprocess.run([sys.executable, "-c", "import longthought.train.loop, accelerate"],
                   check=True, env=env)
    imports = time.perf_counter() - t0
    made = f"{tokenize.group(2)} tokens in {tokenize.group(3)} s" if tokenize else "?"
    print(f"{rows} rows: first run {first_s:.1f} s (tokenized {made}); resumed run: "
          f"{resumed_at!r}, first step {first_step:.2f} s after the process started, of which "
          f"~{imports:.1f} s importing torch/transformers/accelerate", flush=True)
    return {"resume_to_first_step_s": round(first_step, 2), "resume_rows": rows,
            "resume_imports_s": round(imports, 2),
            "first_run_s": round(first_s, 1),
            "tokenize_once_s": float(tokenize.group(3)) if tokenize else None}


# --- 4. generation with refill ----------------------------------------------------------------
def demo_sized_model(path: Path, **kwargs) -> Path:
    """A random chat model with the demo student's shape (config/config.yaml), untied head."""
    import yaml

    from longthought.evaluate.fixtures import build_tiny_chat_model

    tiny = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["students"]["tiny"]
    shape = {k: tiny["tiny"][k] for k in ("hidden_size", "num_layers", "num_heads",
                                          "num_kv_heads", "intermediate_size", "vocab_size")}
    return build_tiny_chat_model(path, **shape, tie_embeddings=False, **kwargs)


def refill_workload(path: Path, prompts: int, mean_length: int, max_new: int,
                    device: str | None) -> tuple:
    """(generator, chats, sampling) of the refill benchmarks: the demo-sized model whose outputs
    end at a constant rate, `prompts` held-out demo problems, sampling at temperature 1; warmed
    up."""
    import yaml

    from longthought.evaluate.hf_backend import TransformersGenerator
    from longthought.problems.procedural import generate

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    gen = TransformersGenerator(str(demo_sized_model(path, mean_length=mean_length)),
                                device=device)
    rows = generate(config["pools"]["arith"]["families"], prompts, seed=11, split="heldout")
    chats = [[{"role": "user", "content": r["problem"]}] for r in rows]
    sampling = {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": max_new, "seed": 0}
    gen.generate(chats[:2], {**sampling, "max_new_tokens": 8}, 1, batch_size=2)  # warm up
    return gen, chats, sampling


def refill_speedup(work: Path, prompts: int, batch: int, mean_length: int,
                   max_new: int, repeats: int, device: str | None) -> dict:
    gen, chats, sampling = refill_workload(work / "gen", prompts, mean_length, max_new, device)
    walls: dict[str, list[float]] = {}
    outs: dict[str, list] = {}
    steps: dict[str, int] = {}
    columns: dict[str, float] = {}
    ragged = gen.ragged
    # the two refill modes run back to back (their ratio is the ragged attention's gain)
    modes = (("refill", True, ragged), ("refill_full_width", True, False), ("fixed", False, ragged))
    for r in range(repeats):  # interleaved (order alternating): a busy machine hurts all alike
        for name, refill, gen.ragged in (modes if r % 2 == 0 else modes[::-1]):
            gen.stats.update({k: 0 for k in gen.stats})
            t0 = time.perf_counter()
            out = gen.generate(chats, sampling, 1, batch_size=batch, refill=refill)
            wall = time.perf_counter() - t0
            walls.setdefault(name, []).append(wall)
            outs[name] = [(o.text, o.output_tokens) for per in out for o in per]
            steps[name] = gen.stats["decode_steps"]
            columns[name] = gen.stats["attended_columns"] / max(1, gen.stats["padded_columns"])
            print(f"{name:>17}: {len(outs[name])} samples in {wall:.1f} s, "
                  f"{gen.stats['decode_steps']} batched steps, attention over "
                  f"{columns[name]:.0%} of the padded cache", flush=True)
    gen.ragged = ragged
    lengths = np.array([n for _, n in outs["refill"]])
    same = outs["refill"] == outs["fixed"]
    same_full = outs["refill_full_width"] == outs["fixed"]
    print(f"output lengths {lengths.min()}-{lengths.max()} (median {np.median(lengths):.0f}); "
          f"refill == fixed batches: {same}; full-width refill == fixed: {same_full}", flush=True)

    def speedup(name: str, over: str = "fixed") -> float:  # median of the repeats' ratios
        return round(float(np.median(np.array(walls[over]) / np.array(walls[name]))), 3)

    best = {name: min(w) for name, w in walls.items()}
    return {"gen_speedup_refill": speedup("refill"),
            "gen_speedup_refill_full_width": speedup("refill_full_width"),
            "gen_speedup_ragged": speedup("refill", over="refill_full_width"),
            "gen_step_ratio": round(steps["fixed"] / steps["refill"], 3),
            "gen_attended_fraction_refill": round(columns["refill"], 3),
            "gen_identical": same, "gen_identical_full_width": same_full,
            "gen_samples_differing": sum(a != b for a, b in zip(outs["refill"], outs["fixed"],
                                                                strict=True)),
            "gen_prompts": prompts, "gen_batch": batch,
            "gen_lengths": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                            "p90": float(np.percentile(lengths, 90)), "max": int(lengths.max())},
            "gen_s_refill": round(best["refill"], 2), "gen_s_fixed": round(best["fixed"], 2)}


def ragged_cost_sweep(work: Path, prompts: int, batch: int, mean_length: int, max_new: int,
                      repeats: int, costs_kb: list[int], device: str | None) -> dict:
    """Refill with ragged attention at several per-call costs (`ragged.CALL_COST_BYTES`, KB a
    call and thread on the CPU) against full-width refill, interleaved: the median ratio of
    full-width time over each setting's (> 1: splitting paid)."""
    from longthought.evaluate import ragged

    gen, chats, sampling = refill_workload(work / "sweep", prompts, mean_length, max_new, device)
    settings = [0, *costs_kb]  # 0: full width
    walls: dict[int, list[float]] = {c: [] for c in settings}
    attended: dict[int, float] = {}
    saved = dict(ragged.CALL_COST_BYTES)
    ragged_ok = gen.ragged
    try:
        for r in range(repeats):
            for kb in (settings if r % 2 == 0 else settings[::-1]):
                gen.ragged = ragged_ok and kb > 0
                ragged.CALL_COST_BYTES = {k: kb * 1024 for k in saved}
                gen.stats.update({k: 0 for k in gen.stats})
                t0 = time.perf_counter()
                gen.generate(chats, sampling, 1, batch_size=batch, refill=True)
                walls[kb].append(time.perf_counter() - t0)
                attended[kb] = gen.stats["attended_columns"] / max(1, gen.stats["padded_columns"])
            print(f"ragged sweep, repeat {r}: " + ", ".join(
                f"{kb or 'full'} {w[-1]:.1f} s" for kb, w in walls.items()), flush=True)
    finally:
        ragged.CALL_COST_BYTES, gen.ragged = saved, ragged_ok
    full = np.array(walls[0])
    return {"ragged_sweep": {
        str(kb): {"speedup_over_full_width": round(float(np.median(full / np.array(walls[kb]))), 3),
                  "attended_fraction": round(attended[kb], 3)} for kb in costs_kb},
        "ragged_sweep_prompts": prompts, "ragged_sweep_batch": batch}


# --- 5. in-place KV cache -----------------------------------------------------------------------
def kv_speedup(work: Path, rows: int, tokens: int, repeats: int) -> dict:
    from transformers import DynamicCache

    from longthought.evaluate import hf_backend
    from longthought.evaluate.kvcache import GrowingCache

    path = demo_sized_model(work / "kv")
    gen = hf_backend.TransformersGenerator(str(path))
    gen.eos_ids = set()  # every sample runs to its limit: the cache reaches `tokens` columns
    chats = [[{"role": "user", "content": f"What is {i} + 7?"}] for i in range(rows)]
    sampling = {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": tokens, "seed": 0}
    best: dict[str, float] = {}
    outs: dict[str, list] = {}
    try:
        for _ in range(repeats):
            for name, cache in (("inplace", GrowingCache), ("dynamic", DynamicCache)):
                hf_backend.GrowingCache = cache  # what _prefill builds
                t0 = time.perf_counter()
                out = gen.generate(chats, sampling, 1, batch_size=rows, refill=False)
                best[name] = min(best.get(name, 1e9), time.perf_counter() - t0)
                outs[name] = [o.token_ids for per in out for o in per]
    finally:
        hf_backend.GrowingCache = GrowingCache
    print(f"kv cache: {rows} x {tokens} tokens in {best['inplace']:.1f} s in place, "
          f"{best['dynamic']:.1f} s with DynamicCache; identical: "
          f"{outs['inplace'] == outs['dynamic']}", flush=True)
    return {"kv_speedup_inplace": round(best["dynamic"] / best["inplace"], 3),
            "kv_s_inplace": round(best["inplace"], 2), "kv_s_dynamic": round(best["dynamic"], 2),
            "kv_rows": rows, "kv_tokens": tokens,
            "kv_identical": outs["inplace"] == outs["dynamic"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=8192, help="assistant tokens of the loss")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--cv-rows", type=int, default=2000, help="demo rows for the token cv")
    ap.add_argument("--budget", type=int, default=None, help="max_tokens_per_batch for the cv")
    ap.add_argument("--long-fraction", type=float, default=0.2,
                    help="share of long rows in the long-tail variant of the cv data")
    ap.add_argument("--rows", type=int, default=100_000, help="dataset rows of the resume run")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--mean-length", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--kv-rows", type=int, default=4)
    ap.add_argument("--kv-tokens", type=int, default=4096)
    ap.add_argument("--device", default=None, help="generation device (default: cuda if any)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--parts", default="loss,cv,resume,gen,kv",
                    help="loss, cv, resume, gen, kv, and (not by default) ragged: refill with "
                         "ragged attention at each of --ragged-costs against full width")
    ap.add_argument("--ragged-costs", default="64,256,512,1024",
                    help="KB a call and CPU thread (evaluate.ragged.CALL_COST_BYTES) to sweep")
    ap.add_argument("--loss-worker", choices=["before", "after"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.loss_worker:
        return loss_worker(args.loss_worker, args.tokens, args.hidden)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    result: dict = {"threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="bench_longctx.") as tmp:
        work = Path(tmp)
        if "loss" in parts:
            result.update(loss_memory(args.tokens, args.hidden))
        if "cv" in parts:
            result.update(token_cv(work, args.cv_rows, args.budget, args.long_fraction))
        if "resume" in parts:
            result.update(resume_latency(work, args.rows, args.threads))
        if "gen" in parts:
            result.update(refill_speedup(work, args.prompts, args.batch, args.mean_length,
                                         args.max_new_tokens, args.repeats, args.device))
        if "ragged" in parts:
            result.update(ragged_cost_sweep(
                work, args.prompts, args.batch, args.mean_length, args.max_new_tokens,
                args.repeats, [int(c) for c in args.ragged_costs.split(",")], args.device))
        if "kv" in parts:
            result.update(kv_speedup(work, args.kv_rows, args.kv_tokens, args.repeats))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
