"""The first-GPU benchmark: SFT throughput and MFU, and generation throughput, of a randomly
initialised Qwen2.5-0.5B-shaped student, through the project's own code paths.

    make bench-gpu                                   # = python benchmarks/bench_gpu.py
    python benchmarks/bench_gpu.py --smoke           # tiny sizes, CPU allowed: checks the script

1. SFT (`longthought.train.loop.train`): bf16, packed micro-batches by token budget, attention
   chosen by the loop (flash-attention varlen when installed, else FlexAttention), the chunked
   or Liger loss; tokens/s over the steps after warm-up, and MFU = achieved FLOP/s over the GPU's
   dense bf16 peak (the table below, by device name), with FLOPs per token = 6 x (the body's
   parameters that multiply: all but the input embedding and the head) + 6 x vocab x hidden x
   the labelled share of the tokens (the chunked and Liger losses compute logits only at
   labelled positions; the dataset's share stands for every step's, as each step draws from
   it; the full loss counts every token) + 6 x layers x hidden x mean sample length (causal
   attention, forward and backward). Building the full-size (151,936-entry) tokenizer takes
   ~3 s on the CPU and loading it ~5 s (measured on a loaded 2-core machine).
2. Generation (`longthought.evaluate.backends.generate_texts`) of the trained model with the
   transformers backend and with vLLM, at the same prompts and sampling (temperature 0.7,
   top-p 0.95): output tokens/s after a warm-up call; and a spot check at temperature 0: how
   many greedy outputs are identical between the two backends (bf16 kernels differ, so a
   near-tie can flip a token; the first differing position is reported).
3. Peak GPU memory of the training steps and of transformers generation.
4. Batch refill (issue 21's `gen_speedup_refill`): `bench_longctx.refill_speedup` on the GPU,
   the same workload as on the CPU (a random model of the demo's size whose outputs run 4-512
   tokens; refill, refill over the full padded width, and fixed batches, interleaved), reported
   under `refill`. On a GPU a decode step costs about the same whatever its rows, so the time
   should follow `gen_step_ratio`; on the CPU it did not (README, *Long thoughts*).
   `--parts refill` runs only this part (about a minute).

The data is synthetic and learnable (each assistant turn continues an arithmetic progression of
word tokens), so that a few dozen steps make greedy decoding confident enough for the spot check.
Sizes keep the whole run within ~9 minutes on one H100/H200; progress is printed as it goes and
the last line is one JSON object. Without a GPU it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' datasheets; matched
# against torch.cuda.get_device_name() in order (first match wins)
BF16_PEAK_TFLOPS = [
    ("GB200", 2500.0), ("B200", 2250.0), ("B100", 1750.0), ("H200", 989.4), ("GH200", 989.4),
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("H800", 989.4),
    ("A100", 312.0), ("A800", 312.0), ("L40S", 362.1), ("L40", 181.0), ("L4", 121.0),
    ("A10G", 70.0), ("A10", 125.0), ("RTX 4090", 165.2), ("RTX 6000 Ada", 364.2),
    ("A6000", 154.8), ("MI300X", 1307.4), ("MI250X", 383.0),
]
QWEN05B = {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
           "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936,
           "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
           "tie_word_embeddings": True}
SMOKE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 4096,
         "max_position_embeddings": 4096, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
         "tie_word_embeddings": True}
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def log(msg: str) -> None:
    print(f"[bench_gpu {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def peak_tflops(name: str) -> float | None:
    return next((tf for key, tf in BF16_PEAK_TFLOPS if key.lower() in name.lower()), None)


def build_tokenizer(path: Path, vocab: int) -> dict[str, int]:
    """A byte-level BPE tokenizer padded with added tokens to the model's whole vocabulary (so
    every id a random or trained model emits decodes), saved at `path`; returns the special
    tokens' ids."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=min(2048, vocab // 2), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [" ".join(f"w{i}" for i in range(k, k + 50)) for k in range(0, 5000, 50)]
    tok.train_from_iterator(["user assistant system continue"] * 20 + corpus, trainer=trainer)
    fill = vocab - tok.get_vocab_size() - len(specials)
    tok.add_tokens([AddedToken(f"<|extra_{i}|>", normalized=False) for i in range(fill)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", bos_token=None, unk_token=None)
    fast.chat_template = CHATML
    fast.save_pretrained(path)
    return {t: tok.token_to_id(t) for t in specials}


def build_model(path: Path, shape: dict, seed: int = 0) -> int:
    """A random Qwen2 of `shape` with `build_tokenizer`'s tokenizer; returns the parameter
    count."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    ids = build_tokenizer(path, shape["vocab_size"])
    torch.manual_seed(seed)
    config = Qwen2Config(**shape, bos_token_id=ids["<|endoftext|>"],
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def labelled_share(cache: Path) -> float:
    """The share of a token cache's tokens that carry the loss (its mask), i.e. where the head
    computes logits."""
    import numpy as np

    meta = json.loads((cache / "meta.json").read_text())
    mask = np.fromfile(cache / "mask.bin", dtype=np.dtype(meta["arrays"]["mask"]))
    return float(mask.sum()) / max(1, int(meta["tokens"]))


def train_flops_per_token(shape: dict, params: int, sample_len: float, labelled: float) -> float:
    """Training FLOPs per token (forward + backward = 6 x multiply-adds): the body on every
    token, the head on the `labelled` share only, causal attention over `sample_len`."""
    head = shape["vocab_size"] * shape["hidden_size"]
    # the input embedding is a lookup; tied, the same matrix is the head's, counted once
    embed = 0 if shape["tie_word_embeddings"] else head
    attention = shape["num_hidden_layers"] * shape["hidden_size"] * sample_len
    return 6 * (params - head - embed) + 6 * head * labelled + 6 * attention


def progression(rng, length: int, words: int) -> str:
    start, step = int(rng.integers(0, words)), int(rng.integers(1, 7))
    return " ".join(f"w{(start + k * step) % words}" for k in range(length))


def sft_dataset(path: Path, rows: int, length: int, words: int, seed: int = 0) -> None:
    """Chat rows: a short user turn, then an assistant turn continuing a progression."""
    import numpy as np
    import pandas as pd

    from longthought.io import write_table

    rng = np.random.default_rng(seed)
    out = []
    for i in range(rows):
        text = progression(rng, length, words)
        head, rest = text.split(" ", 8)[:8], text.split(" ", 8)[8]
        messages = [{"role": "user", "content": "continue " + " ".join(head)},
                    {"role": "assistant", "content": rest}]
        out.append({"sample_id": f"bench/{i}/0", "dataset": "bench", "task": "bench",
                    "problem_id": str(i), "problem": "continue", "answer": "0",
                    "messages": json.dumps(messages), "completion_tokens": None})
    write_table(pd.DataFrame(out), path, "dataset")


def train(model_dir: Path, data: Path, out: Path, steps: int, budget: int, max_length: int,
          precision: str) -> dict:
    from longthought.io import read_table
    from longthought.train import loop

    spec = {"base_model": str(model_dir), "precision": precision, "checkpoint_every": 0,
            "attn_implementation": "auto", "cross_entropy": "auto",
            "gradient_checkpointing": False,
            "stages": [{"dataset": "bench", "lr": 3e-4, "schedule": "constant",
                        "warmup_ratio": 0.0, "max_steps": steps, "batch_size": 1,
                        "max_length": max_length, "max_tokens_per_batch": budget,
                        "packing": True, "seed": 0}]}
    t0 = time.perf_counter()
    loop.train("bench", spec, str(model_dir), [str(data)], str(out))
    wall = time.perf_counter() - t0
    log_df = read_table(out / loop.LOG_FILE, "train_log")
    hp = json.loads((out / loop.HPARAMS_FILE).read_text())
    return {"log": log_df, "hparams": hp, "wall_s": wall}


def generation(path: Path, backend: str, prompts: list, sampling: dict,
               batch_size: int) -> tuple[list, float]:
    """(outputs, seconds) of one generate_texts call (after a one-prompt warm-up call that
    loads the model: engine start-up is not throughput)."""
    from longthought.evaluate.backends import generate_texts

    spec = {"name": "bench", "kind": "local", "path": str(path), "backend": backend,
            "dtype": "bfloat16" if backend == "vllm" else "bf16",
            "gpu_memory_utilization": 0.5, "max_model_len": 4096}
    generate_texts(spec, prompts[:1], {**sampling, "max_new_tokens": 4}, 1,
                   batch_size=batch_size)
    t0 = time.perf_counter()
    outs = generate_texts(spec, prompts, sampling, 1, batch_size=batch_size)
    return outs, time.perf_counter() - t0


WORDS = 5000  # the synthetic data's vocabulary of word tokens


def sft_part(args, work: Path, shape: dict, gpu: bool, peak: float | None) -> dict:
    """Part 1 (and 3, training memory): SFT of the 0.5B-shaped student into `work/trained`."""
    import torch

    steps = args.steps or (6 if args.smoke else 40)
    budget = args.tokens_per_batch or (1024 if args.smoke else 16384)
    max_length = 512 if args.smoke else 2048
    params = build_model(work / "init", shape)
    words = WORDS
    rows = max(64, steps * budget // (max_length // 2) + 32)
    sft_dataset(work / "data.parquet", rows, max_length // 10, words)  # ~5 tokens a word
    log(f"model: {params / 1e6:.1f}M parameters; data: {rows} rows")

    # --- 1. SFT -------------------------------------------------------------------------------
    log(f"SFT: {steps} steps of <= {budget} tokens, {'bf16' if gpu else 'fp32'}, packed")
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    run = train(work / "init", work / "data.parquet", work / "trained", steps, budget,
                max_length, "bf16" if gpu else "fp32")
    df, hp = run["log"], run["hparams"]
    warm = df.iloc[min(5, len(df) - 1):]
    step_s = (warm["tokens"] / warm["tokens_per_s"]).to_numpy()
    tok_s = float(warm["tokens"].sum() / step_s.sum())
    cache = Path(hp["token_caches"][0])
    labelled = 1.0 if hp["cross_entropy_used"] == "full" else labelled_share(cache)
    meta = json.loads((cache / "meta.json").read_text())
    sample_len = meta["tokens"] / meta["rows"]  # mean tokens per sample (attention's length)
    flops_per_token = train_flops_per_token(shape, params, sample_len, labelled)
    mfu = (tok_s * flops_per_token / (peak * 1e12)) if peak else None
    train_mem = float(df["mem_mb"].max()) if gpu else None
    log(f"SFT: {tok_s:,.0f} tokens/s after warm-up; attention {hp['attn_implementation_used']}, "
        f"loss {hp['cross_entropy_used']}; MFU {mfu if mfu is None else f'{mfu:.1%}'}; loss "
        f"{df['loss'].iloc[0]:.3f} -> {df['loss'].iloc[-1]:.3f}; peak {train_mem} MB")
    return {"params_m": round(params / 1e6, 1), "labelled_share": round(labelled, 4),
            "sft_tokens_per_s": round(tok_s, 1),
            "sft_mfu": None if mfu is None else round(mfu, 4),
            "sft_attention": hp["attn_implementation_used"],
            "sft_cross_entropy": hp["cross_entropy_used"], "sft_peak_mem_mb": train_mem,
            "sft_steps": steps, "sft_tokens_per_step": budget}


def generation_part(args, work: Path, gpu: bool) -> dict:
    """Part 2 (and 3, generation memory): the trained student through transformers and vLLM."""
    import numpy as np
    import torch

    n_prompts = args.prompts or (8 if args.smoke else 256)
    new_tokens = args.new_tokens or (16 if args.smoke else 256)
    rng = np.random.default_rng(1)
    prompts = [[{"role": "user", "content": "continue " + progression(rng, 8, WORDS)}]
               for _ in range(n_prompts)]
    sampling = {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": new_tokens, "seed": 0}
    results: dict = {}
    for backend in ("transformers", "vllm"):
        if backend == "vllm":
            try:
                import vllm  # noqa: F401
            except ImportError as exc:
                results[backend] = {"error": f"vllm not installed ({exc})"}
                log(f"generation {backend}: skipped, {results[backend]['error']}")
                continue
            if not gpu:
                results[backend] = {"error": "vllm needs a GPU"}
                continue
        if gpu:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        log(f"generation {backend}: {n_prompts} prompts x {new_tokens} new tokens")
        try:
            outs, secs = generation(work / "trained", backend, prompts, sampling, 64)
        except Exception as exc:  # report what failed, keep the other figures
            results[backend] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            log(f"generation {backend}: failed: {results[backend]['error']}")
            continue
        tokens = sum(o.output_tokens for per in outs for o in per)
        results[backend] = {"tokens_per_s": tokens / secs, "output_tokens": tokens,
                            "seconds": secs,
                            "peak_mem_mb": (torch.cuda.max_memory_allocated() / 2**20
                                            if gpu and backend == "transformers" else None)}
        greedy = {**sampling, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 32}
        spot, _ = generation(work / "trained", backend, prompts[:8], greedy, 8)
        results[backend]["greedy"] = [o[0].text for o in spot]
        log(f"generation {backend}: {results[backend]['tokens_per_s']:,.0f} output tokens/s")

    hf, vl = results.get("transformers", {}), results.get("vllm", {})
    same = first_diff = None
    if "greedy" in hf and "greedy" in vl:
        pairs = list(zip(hf["greedy"], vl["greedy"], strict=True))
        same = sum(a == b for a, b in pairs)
        first_diff = [next((i for i, (x, y) in enumerate(zip(a.split(), b.split(),
                                                               strict=False)) if x != y), None)
                      for a, b in pairs]
        log(f"greedy spot check: {same} of {len(pairs)} outputs identical; first differing "
            f"word per prompt: {first_diff}")
    speedup = (vl["tokens_per_s"] / hf["tokens_per_s"]
               if "tokens_per_s" in vl and "tokens_per_s" in hf else None)
    for r in results.values():
        r.pop("greedy", None)
    return {"gen_transformers": hf, "gen_vllm": vl, "vllm_speedup": speedup,
            "greedy_identical": same, "greedy_first_diff": first_diff}


def refill_part(args, work: Path, gpu: bool) -> dict:
    """Part 4: issue 21's refill figures on this device (`bench_longctx.refill_speedup`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_longctx import refill_speedup

    prompts = args.refill_prompts or (24 if args.smoke else 64)
    repeats = args.refill_repeats or (1 if args.smoke else 3)
    max_new = 64 if args.smoke else 512
    log(f"refill: {prompts} prompts, batch 16, up to {max_new} new tokens, {repeats} repeats")
    return refill_speedup(work / "refill", prompts, 16, min(128, max_new // 2), max_new,
                          repeats, "cuda" if gpu else "cpu")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny model, CPU allowed (checks the "
                    "script; the figures mean nothing)")
    ap.add_argument("--steps", type=int, default=None, help="SFT optimizer steps")
    ap.add_argument("--tokens-per-batch", type=int, default=None, help="micro-batch token budget")
    ap.add_argument("--prompts", type=int, default=None, help="generation prompts")
    ap.add_argument("--new-tokens", type=int, default=None, help="tokens generated per prompt")
    ap.add_argument("--keep", default=None, help="keep the model and data in this directory")
    ap.add_argument("--parts", default="sft,gen,refill",
                    help="which parts: sft, gen (needs sft), refill")
    ap.add_argument("--refill-prompts", type=int, default=None,
                    help="prompts of the refill part (default 64; 24 with --smoke)")
    ap.add_argument("--refill-repeats", type=int, default=None,
                    help="interleaved repeats of the refill part (default 3; 1 with --smoke)")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    if parts - {"sft", "gen", "refill"} or ("gen" in parts and "sft" not in parts):
        ap.error(f"--parts {args.parts}: choose from sft, gen, refill (gen needs sft)")

    import torch

    gpu = torch.cuda.is_available()
    if not gpu and not args.smoke:
        print("bench_gpu: no CUDA GPU visible (torch.cuda.is_available() is False); this "
              "benchmark measures GPU training and generation. On a GPU machine install a CUDA "
              "torch (make install TORCH=...) and, for the vLLM half, pip install -e '.[vllm]'; "
              "--smoke runs it at toy size on the CPU.", flush=True)
        print(json.dumps({"benchmark": "bench_gpu", "gpu": None, "skipped": "no GPU"}))
        return 2
    shape = SMOKE if args.smoke else QWEN05B
    device = torch.cuda.get_device_name(0) if gpu else "cpu"
    peak = peak_tflops(device) if gpu else None
    log(f"device {device}; bf16 peak {peak} TFLOP/s; shape {shape['hidden_size']} x "
        f"{shape['num_hidden_layers']} layers, vocab {shape['vocab_size']}")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_gpu."))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"benchmark": "bench_gpu", "device": device, "smoke": args.smoke,
                    "bf16_peak_tflops": peak}
    if "sft" in parts:
        result.update(sft_part(args, work, shape, gpu, peak))
    if "gen" in parts:
        result.update(generation_part(args, work, gpu))
    if "refill" in parts:
        result["refill"] = refill_part(args, work, gpu)
    result["work_dir"] = str(work) if args.keep else None
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
