"""SFT throughput: this stage vs TRL's SFTTrainer (defaults) on the same tiny model, data and batch.

Both train the tiny student of config/config.yaml (`students.tiny`, built here from the data) on
the same chat rows with the same per-device batch. Throughput is real (non-pad) tokens per
second of training, counted the same way for both: the tokens of the samples each step saw,
over the wall time of the steps after the first `--warmup` (so start-up is not counted).
`packing_efficiency` is real tokens / token slots computed by this stage's packed batches over
one epoch of the data. The runs alternate (ours, TRL, ours, TRL, ...) and the best of each is
kept, so a busy shared machine penalises both alike.

    .venv/bin/python benchmarks/bench_train.py                      # synthetic demo-like data
    .venv/bin/python benchmarks/bench_train.py --dataset results/datasets/longthought-arith.parquet

Last line: a JSON object with tokens_per_s, trl_tokens_per_s, ratio, packing_efficiency.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import yaml

from longthought.io import read_table, write_table
from longthought.train import loop
from longthought.train.data import load_dataset
from longthought.train.packing import collate
from longthought.train.schedule import micro_batch, sample_stream, total_steps
from longthought.train.spec import parse_spec
from longthought.train.student import init_student
from longthought.train.synthetic import synthetic_dataset, traces_from_dataset

ROOT = Path(__file__).resolve().parents[1]


def tiny_spec(steps: int, batch: int) -> dict:
    spec = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["students"]["tiny"]
    stage = {**spec["stages"][-1], "max_steps": steps, "batch_size": batch, "grad_accum": 1}
    return {**spec, "stages": [stage], "checkpoint_every": 0, "accelerate_config": None}


def packing_efficiency(spec: dict, data_path: Path, init: Path, packing: bool = True) -> float:
    """Real tokens / token slots of this stage's micro-batches over one epoch."""
    from transformers import AutoTokenizer

    stage = parse_spec("tiny", spec).stages[0]
    tok = AutoTokenizer.from_pretrained(init)
    samples = load_dataset(data_path, tok, stage.max_length)
    steps = total_steps(stage.__class__(**{**stage.__dict__, "max_steps": None, "epochs": 1}),
                        len(samples), 1)
    stream = sample_stream(len(samples), steps * stage.batch_size, stage.seed)
    real = slots = 0
    for step in range(steps):
        batch = collate([samples[i] for i in micro_batch(stream, stage, 1, step, 0, 0)],
                        packing, tok.pad_token_id)
        real += int(batch["n_tokens"])
        slots += int(batch["n_slots"])
    return real / slots


def run_ours(spec: dict, data_path: Path, init: Path, work: Path, warmup: int) -> float:
    out = loop.train("tiny", spec, str(init), [str(data_path)], str(work / "ours"))
    log = read_table(out / loop.LOG_FILE, "train_log").iloc[warmup:]
    return float(log["tokens"].sum() / (log["tokens"] / log["tokens_per_s"]).sum())


def run_trl(rows: list[dict], init: Path, work: Path, steps: int, batch: int,
            warmup: int) -> tuple[float, dict]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    tokens: list[int] = []
    ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            ends.append(time.perf_counter())

    # TRL's defaults, except what makes it the same run: batch, steps, no saving or reporting;
    # on a machine without a GPU its bf16 default refuses to start, so it runs fp32 like ours
    cpu = {} if torch.cuda.is_available() else {"use_cpu": True, "bf16": False}
    args = SFTConfig(output_dir=str(work / "trl"), per_device_train_batch_size=batch,
                     max_steps=steps, report_to="none", save_strategy="no",
                     disable_tqdm=True, **cpu)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(init), args=args,
                         train_dataset=Dataset.from_list(rows),
                         processing_class=AutoTokenizer.from_pretrained(init),
                         callbacks=[StepClock()])
    collator = trainer.data_collator

    def counting(examples):
        batch_ = collator(examples)
        tokens.append(int(batch_["attention_mask"].sum()) if "attention_mask" in batch_
                      else int(batch_["input_ids"].numel()))
        return batch_

    trainer.data_collator = counting
    trainer.train()
    # tokens[i] is step i's batch; time of steps warmup+1..n = ends[n-1] - ends[warmup-1]
    n = min(len(tokens), len(ends))
    rate = sum(tokens[warmup:n]) / (ends[n - 1] - ends[warmup - 1])
    used = {"gradient_checkpointing": args.gradient_checkpointing, "bf16": args.bf16,
            "packing": args.packing, "padding_free": args.padding_free,
            "max_length": args.max_length}
    return rate, used


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", help="a `dataset` table (default: synthetic demo-like rows)")
    ap.add_argument("--n", type=int, default=2000, help="synthetic rows (no --dataset)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3, help="first steps left out of the timing")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_train.") as tmp:
        work = Path(tmp)
        if args.dataset:
            df = read_table(args.dataset, "dataset")
        else:
            df = synthetic_dataset(args.n, seed=1, name="longthought-arith")
        data_path = work / "data.parquet"
        write_table(df, data_path, "dataset")
        write_table(traces_from_dataset(df), work / "traces.parquet", "traces")
        spec = tiny_spec(args.steps, args.batch)
        init = init_student("tiny", spec, [str(work / "traces.parquet")], work / "init")
        rows = [{"messages": json.loads(m)} for m in df["messages"]]
        eff = packing_efficiency(spec, data_path, init)
        padded = packing_efficiency(spec, data_path, init, packing=False)
        print(f"data: {len(df)} rows; token slots filled: packed {eff:.3f}, "
              f"padded {padded:.3f}", flush=True)

        ours, trl = [], []
        trl_settings: dict = {}
        for r in range(args.repeats):
            ours.append(run_ours(spec, data_path, init, work, args.warmup))
            print(f"run {r}: ours {ours[-1]:,.0f} tokens/s", flush=True)
            rate, trl_settings = run_trl(rows, init, work, args.steps, args.batch, args.warmup)
            trl.append(rate)
            print(f"run {r}: TRL  {trl[-1]:,.0f} tokens/s {trl_settings}", flush=True)

    best, best_trl = max(ours), max(trl)
    print(json.dumps({"tokens_per_s": round(best), "trl_tokens_per_s": round(best_trl),
                      "ratio": round(best / best_trl, 3), "packing_efficiency": round(eff, 4),
                      "padded_efficiency": round(padded, 4),
                      "rows": len(df), "steps": args.steps, "batch": args.batch,
                      "threads": args.threads, "ours_runs": [round(x) for x in ours],
                      "trl_runs": [round(x) for x in trl], "trl_settings": trl_settings}))


if __name__ == "__main__":
    main()
