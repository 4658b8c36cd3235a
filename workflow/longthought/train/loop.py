"""Staged SFT: the training loop, readable top to bottom in `train()`.

`accelerate` does device placement, mixed precision, gradient accumulation and distribution
(one process, DDP, FSDP or DeepSpeed, chosen by how the process was launched); `transformers`
provides the model. Everything this module decides itself is visible in `train()`: which
samples a step sees (`schedule.Plan`), the learning rate, the loss (mean over the step's
assistant tokens, computed without the full logits: `loss`), the attention (`packing`), the log,
the checkpoints, and the final atomic save. Datasets are tokenized once (`tokencache`).
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from longthought.hardware import hardware_info, make_deterministic
from longthought.io import apply_umask, file_sha256, write_json, write_table
from longthought.train.checkpoint import (
    Checkpoints,
    Preemption,
    TrainerState,
    fingerprint,
)
from longthought.train.data import TokenizedDataset, load_dataset
from longthought.train.loss import attach_loss, choose_loss, step_loss
from longthought.train.packing import (
    choose_attention,
    collate,
    model_inputs,
    training_attention,
)
from longthought.train.preview import PREVIEW_FILE, Preview, build_preview, generation_eos
from longthought.train.schedule import Plan, lr_at, warmup_steps
from longthought.train.spec import PRECISIONS, TrainSpec, parse_spec
from longthought.train.student import INIT_SEED_FILE, init_info, resolve_model_path

LOG_FILE = "train_log.parquet"
HPARAMS_FILE = "hparams.json"
# accelerate distributed types whose parameters are plain local tensors (fused AdamW applies)
FUSED_ADAMW_TYPES = ("NO", "MULTI_GPU", "MULTI_CPU")


def load_stages(spec: TrainSpec, datasets: list[str], tokenizer,
                shas: list[str] | None = None) -> list[TokenizedDataset]:
    """Every stage's dataset, tokenized once (cached beside it): bad rows fail here, before any
    compute. `shas` are the datasets' sha256 when the caller has them already."""
    if len(datasets) != len(spec.stages):
        raise ValueError(f"{len(spec.stages)} stages need {len(spec.stages)} datasets "
                         f"(one per stage, in order), got {len(datasets)}")
    if tokenizer.chat_template is None:
        raise ValueError("the student's tokenizer has no chat template; SFT data cannot be "
                         "rendered (use an instruct/chat tokenizer)")
    stages = []
    shas = shas or [None] * len(datasets)
    for stage, path, sha in zip(spec.stages, datasets, shas, strict=True):
        encoded = load_dataset(path, tokenizer, stage.max_length, dataset_sha256=sha)
        cut = int(encoded.truncated.sum())
        if cut:
            print(f"[train] {path}: {cut} of {len(encoded)} samples truncated to "
                  f"max_length {stage.max_length}", flush=True)
        stages.append(encoded)
    return stages


def check_inputs(student: str, spec: dict, init: str, datasets: list[str],
                 shas: list[str] | None = None):
    """Everything checkable before compute: spec, init model, every row of every dataset, and
    the data preview's checks (`preview`: its errors are raised by the caller, after it has
    shown the preview).

    Returns (spec, path for from_pretrained, tokenizer, tokenized stages, preview).
    """
    from transformers import AutoTokenizer

    cfg = parse_spec(student, spec)
    base_path = resolve_model_path(init)
    tokenizer = AutoTokenizer.from_pretrained(base_path)  # as shipped: no pad token added
    stages = load_stages(cfg, datasets, tokenizer, shas)
    preview = build_preview(student, cfg, tokenizer, generation_eos(base_path), stages, datasets,
                            cfg.extra.get("evaluation"))
    return cfg, base_path, tokenizer, stages, preview


def preview_path(out: str | Path) -> Path:
    """Where the preview is written before training (beside the model dir, kept on failure)."""
    out = Path(out)
    return out.with_name(f"{out.name}.{PREVIEW_FILE}")


def show_preview(preview: Preview, out: str | Path) -> None:
    """Print the preview to the job log and write it beside the model dir, before any step."""
    print(preview.text, flush=True)
    try:
        where = preview.write(preview_path(out))
        print(f"[train] data preview: {where}", flush=True)
    except OSError as exc:
        print(f"[train] data preview not written ({exc}); it is in this log", flush=True)


def pad_id(tokenizer) -> int:
    """The id padded (unpacked) batches fill with: the pad token, else end-of-sequence (padding
    carries no loss and, right-padded under causal attention, is never attended to)."""
    pid = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pid is None:
        raise ValueError("the student's tokenizer has neither a pad nor an eos token")
    return int(pid)


def fresh_precision(mixed_precision: str) -> None:
    """Let a second in-process run use another precision: accelerate keeps the first run's
    state for the life of the process and refuses a different `mixed_precision`."""
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") not in (None, mixed_precision):
        AcceleratorState._reset_state()


def fsdp_on_cpu(accelerator) -> bool:
    """Turn on FSDP for processes launched with an FSDP config on the CPU (gloo).

    `accelerate launch` with an FSDP config exports ACCELERATE_USE_FSDP and the FSDP_* settings,
    but on a machine without GPUs accelerate's state makes the run MULTI_CPU and silently trains
    plain DDP. Switching the state to FSDP with the plugin read from those settings makes
    `prepare` shard the model with accelerate's own FSDP2 code, so the FSDP path (sharded
    parameters, the full state dict gathered for the save, sharded checkpoints) runs, and is
    tested, on the CPU exactly as on GPUs. Returns whether it did.
    """
    import os

    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    if (os.environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true"
            or accelerator.distributed_type != DistributedType.MULTI_CPU):
        return False
    from accelerate.state import PartialState

    plugin = FullyShardedDataParallelPlugin()
    # both shared states: AcceleratorState copies PartialState's when it is re-created
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    accelerator.state.distributed_type = DistributedType.FSDP
    accelerator.state.fsdp_plugin = plugin
    return True


def save_gathered(model, state_dict: dict | None, out: Path, is_main: bool) -> None:
    """Write a gathered full state dict as `save_pretrained` lays it out (safetensors shards of
    at most SAVE_SHARD_SIZE with their index, config, generation config), for every FSDP run.

    One path for the CPU test and for GPUs: on the CPU transformers' save still reads the wrapped
    model's parameters, whose storage FSDP has freed after resharding, so it cannot be used there;
    using this everywhere means the save the tests prove is the one a cluster run makes.
    """
    from torch.distributed.tensor import DTensor

    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in (state_dict or {}).items():
        if isinstance(value, DTensor):  # still sharded: gather it (collective, every process)
            value = value.full_tensor()
        if is_main:
            value = value.detach()
            ptr = value.untyped_storage().data_ptr()
            # a gathered copy is its own storage; only one that shares another's is copied
            tensors[key] = value.clone().contiguous() if ptr in seen else value.contiguous()
            seen.add(ptr)
    if not is_main:
        return
    out.mkdir(parents=True, exist_ok=True)
    if getattr(model.config, "tie_word_embeddings", False):
        for key in getattr(model, "_tied_weights_keys", None) or ["lm_head.weight"]:
            tensors.pop(key, None)  # the tied copy: from_pretrained ties it back
    write_safetensors(tensors, out)
    model.config.save_pretrained(out)
    model.generation_config.save_pretrained(out)


SAVE_SHARD_SIZE = "50GB"  # transformers 5's save_pretrained default


def write_safetensors(tensors: dict[str, torch.Tensor], out: Path,
                      max_shard_size: int | str = SAVE_SHARD_SIZE) -> list[str]:
    """`model.safetensors`, or shards plus `model.safetensors.index.json` as from_pretrained
    reads them; returns the file names written."""
    import json

    from huggingface_hub import split_torch_state_dict_into_shards
    from safetensors.torch import save_file

    split = split_torch_state_dict_into_shards(tensors, max_shard_size=max_shard_size)
    for name, keys in split.filename_to_tensors.items():
        save_file({k: tensors[k] for k in keys}, out / name, metadata={"format": "pt"})
    if split.is_sharded:
        index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return sorted(split.filename_to_tensors)


def sharded_parameters(model) -> int:
    """How many of the prepared model's parameters are DTensor shards: > 0 proves FSDP sharded
    it (recorded, so a run that silently trained unsharded shows it)."""
    from torch.distributed.tensor import DTensor

    return sum(isinstance(p, DTensor) for p in model.parameters())


def package_versions() -> dict[str, str]:
    import accelerate
    import tokenizers
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "accelerate": accelerate.__version__,
            "tokenizers": tokenizers.__version__}


def _init_seed(init: str) -> int | None:
    """The seed the tiny student's weights were drawn with (init-student records it)."""
    import json

    path = Path(init) / INIT_SEED_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("init_seed")


def train(student: str, spec: dict, init: str, datasets: list[str], out: str) -> Path:
    """Run every SFT stage in order on `init`; write the trained model to `out` (atomically).

    SIGTERM / SIGUSR1 (SLURM preemption, requeue, time limit) checkpoint and exit; see `sft`.
    """
    with Preemption() as preemption:
        return sft(student, spec, init, datasets, out, preemption)


def sft(student: str, spec: dict, init: str, datasets: list[str], out: str,
        preemption: Preemption) -> Path:
    """The training loop, top to bottom: data, model, resume, stages x steps, final save."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType
    from transformers import AutoModelForCausalLM

    # --- settings and data, all checked before any model is loaded -------------------------
    # (the main process tokenizes a dataset not yet in its cache; the others then map it)
    cfg = parse_spec(student, spec)
    if cfg.deterministic:
        make_deterministic()  # before the first CUDA call
    fresh_precision(PRECISIONS[cfg.precision])
    accelerator = Accelerator(mixed_precision=PRECISIONS[cfg.precision],
                              gradient_accumulation_steps=cfg.stages[0].grad_accum)
    fsdp_cpu = fsdp_on_cpu(accelerator)
    if fsdp_cpu:
        accelerator.print("[train] FSDP on the CPU: accelerate would run plain DDP here (it has no "
                          "CPU path for FSDP); sharding with its FSDP2 preparation over gloo")
    shas = [file_sha256(p) for p in datasets]
    with accelerator.main_process_first():
        cfg, base_path, tokenizer, data, preview = check_inputs(student, spec, init, datasets,
                                                                shas)
    if accelerator.is_main_process:
        show_preview(preview, out)
    preview.raise_errors()  # every process: a spoiled run stops before the model loads
    pad = pad_id(tokenizer)

    # --- model (attention and loss chosen for the device, and said), optimizer ---------------
    world, rank = accelerator.num_processes, accelerator.process_index
    attn, attn_why = choose_attention(cfg.attn_implementation, accelerator.device)
    accelerator.print(f"[train] attention: {attn} ({attn_why})")
    model = AutoModelForCausalLM.from_pretrained(
        base_path, attn_implementation=training_attention(attn), dtype=torch.float32)
    model.config.use_cache = False
    zero3 = (accelerator.distributed_type == DistributedType.DEEPSPEED
             and accelerator.state.deepspeed_plugin.zero_stage == 3)
    loss_impl, loss_why = choose_loss(cfg.cross_entropy, model.config.model_type,
                                      accelerator.device, partitioned_head=zero3)
    attach_loss(model, loss_impl)
    accelerator.print(f"[train] cross-entropy: {loss_impl} ({loss_why})")
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    # fused: one kernel per step instead of several per tensor (2.4% of the demo's CPU training
    # time); left to the default where FSDP/DeepSpeed shard or wrap the parameters
    fused = accelerator.distributed_type in FUSED_ADAMW_TYPES
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.stages[0].weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=cfg.stages[0].lr, betas=(0.9, 0.95), eps=1e-8,
                                  fused=fused or None)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # DeepSpeed fixes these when the engine is built: the first stage's values are used
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = cfg.stages[0].batch_size
        ds["gradient_accumulation_steps"] = cfg.stages[0].grad_accum
        # no dataloader goes through prepare(), so "auto" would not be resolved: set it
        ds["train_batch_size"] = cfg.stages[0].batch_size * cfg.stages[0].grad_accum * world
        if len({(s.batch_size, s.grad_accum) for s in cfg.stages}) > 1:
            raise ValueError(f"students.{student}: with DeepSpeed every stage needs the same "
                             "batch_size and grad_accum (the engine fixes them at start)")
    model, optimizer = accelerator.prepare(model, optimizer)
    on_gpu = accelerator.device.type == "cuda"
    n_sharded = sharded_parameters(model)

    # --- resume from the latest checkpoint of this same run, if any -------------------------
    same_run = {k: v for k, v in cfg.to_json().items() if k not in ("extra", "checkpoint_every")}
    init_files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                        for f in Path(init).iterdir() if f.is_file())
    base = init_info(init)
    run_id = fingerprint({"student": student, "spec": same_run, "init": [base_path, init_files],
                          "base_commit": base.get("commit"), "world": world, "datasets": shas})
    ckpts = Checkpoints(f"{out}.ckpt", run_id)
    ckpts.prepare(accelerator.is_main_process)
    accelerator.wait_for_everyone()
    state = ckpts.restore(accelerator) or TrainerState()
    resumed_from = state.global_step or None
    if state.global_step:
        accelerator.print(f"[train] resuming at stage {state.stage}, step {state.stage_step} "
                          f"(global step {state.global_step})")

    resolved = []
    first_step = True  # of this process: printed, so a resume shows when training restarted
    seeds = cfg.stage_seeds()  # the replicate's data order per stage
    for s, (stage, samples) in enumerate(zip(cfg.stages, data, strict=True)):
        plan = Plan(replace(stage, seed=seeds[s]), samples.lengths, world)
        steps = plan.steps
        resolved.append({**stage.__dict__, "data_seed": seeds[s], "samples": len(samples),
                         "steps": steps,
                         "warmup_steps": warmup_steps(stage, steps),
                         "micro_batches_per_step": plan.per_step,
                         "samples_per_step": None if plan.by_tokens else len(plan.step_samples(0)),
                         "truncated_samples": int(samples.truncated.sum())})
        if s < state.stage:
            continue
        # --- stage setup: its own weight decay and accumulation; fresh optimizer moments ----
        optimizer.param_groups[0]["weight_decay"] = stage.weight_decay  # group 1: biases, norms
        fresh = state.stage_step == 0 and s > 0
        if fresh and isinstance(optimizer.optimizer, torch.optim.Optimizer):
            optimizer.optimizer.state.clear()  # each stage starts AdamW afresh, as its own SFT run
        accelerator.gradient_accumulation_steps = stage.grad_accum
        accelerator.step = 0
        model.train()
        for step in range(state.stage_step, steps):
            t0 = time.perf_counter()
            lr = lr_at(stage, step, steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            everyone = plan.step_samples(step)
            n_labels = int(samples.n_labels[everyone].sum())  # over all processes
            n_tokens = int(samples.lengths[everyone].sum())
            loss_sum = torch.zeros((), device=accelerator.device)
            for micro in range(stage.grad_accum):
                mine = [samples[i] for i in plan.micro(step, micro, rank)]
                batch = collate(mine, stage.packing, pad)
                inputs = {k: v.to(accelerator.device) if torch.is_tensor(v) else v
                          for k, v in model_inputs(batch, attn).items()}
                labels = batch["labels"].to(accelerator.device)
                with accelerator.accumulate(model):
                    loss = step_loss(model, inputs, labels)  # summed over assistant tokens
                    # mean over the step's assistant tokens: accelerate divides by grad_accum
                    # and DDP/FSDP average over processes, so scale back by both
                    accelerator.backward(loss * world * stage.grad_accum / max(1, n_labels))
                    loss_sum += loss.detach()
            grad_norm = None
            if stage.max_grad_norm is not None:
                norm = accelerator.clip_grad_norm_(model.parameters(), stage.max_grad_norm)
                grad_norm = None if norm is None else float(norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            loss_all = accelerator.reduce(loss_sum, reduction="sum").item() / max(1, n_labels)
            dt = time.perf_counter() - t0
            state.global_step += 1
            state.stage_step = step + 1
            state.log.append({
                "student": student, "stage": s, "dataset": stage.dataset,
                "step": state.global_step,
                "epoch": plan.samples_seen(step) / len(samples),
                "loss": loss_all, "lr": lr, "grad_norm": grad_norm, "tokens": n_tokens,
                "tokens_per_s": n_tokens / dt,
                "mem_mb": torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None,
            })
            if first_step or (step + 1) % 10 == 0 or step + 1 == steps:
                first_step = False
                accelerator.print(f"[train] stage {s} step {step + 1}/{steps} loss {loss_all:.4f}"
                                  f" lr {lr:.2e} tok/s {n_tokens / dt:,.0f}")
            due = cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0
            stop = preemption.requested(accelerator, state.global_step)
            if due or stop:
                ckpts.save(accelerator, state)
            if stop:
                accelerator.print(f"[train] signal {preemption.received}: checkpointed at global "
                                  f"step {state.global_step}; exiting, a re-run resumes here")
                raise SystemExit(Preemption.EXIT_CODE)
        state.stage, state.stage_step = s + 1, 0

    # --- final save: a temp dir renamed onto `out`, so a half-written model is never "done" --
    out_path = Path(out)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.config.use_cache = True
    if preview.eos_token_id is not None:  # the template's end-of-turn token stops generation
        unwrapped.generation_config.eos_token_id = preview.eos_token_id
    state_dict = accelerator.get_state_dict(model)  # collective under FSDP / DeepSpeed
    if accelerator.distributed_type == DistributedType.FSDP:
        save_gathered(unwrapped, state_dict, tmp, accelerator.is_main_process)
    elif accelerator.is_main_process:
        # only the main process: transformers' save_pretrained makes and lists the directory on
        # every rank it runs on, which raced with the rename below (ENOENT on a second rank)
        unwrapped.save_pretrained(tmp, save_function=accelerator.save, state_dict=state_dict)
    accelerator.wait_for_everyone()  # no rank is still inside `tmp` when it is renamed
    if accelerator.is_main_process:
        tokenizer.save_pretrained(tmp)
        preview.write(tmp / PREVIEW_FILE)
        write_table(pd.DataFrame(state.log), tmp / LOG_FILE, "train_log")
        write_json(tmp / HPARAMS_FILE, {
            "student": student, "base_model": cfg.base_model, "init": str(init),
            "init_path": base_path, "datasets": list(datasets), "stages": resolved,
            "precision": cfg.precision, "gradient_checkpointing": cfg.gradient_checkpointing,
            "optimizer": f"AdamW{' (fused)' if fused else ''}, betas (0.9, 0.95), eps 1e-8",
            "attn_implementation": cfg.attn_implementation, "attn_implementation_used": attn,
            "attn_reason": attn_why,
            "preview_checks": [c.__dict__ for c in preview.checks],
            "cross_entropy": cfg.cross_entropy,
            "cross_entropy_used": loss_impl, "cross_entropy_reason": loss_why,
            "base_model_commit": base.get("commit"), "base_model_revision": base.get("revision"),
            "token_caches": [d.tokens.where or None for d in data],
            "world_size": world, "sharded_parameters": n_sharded,
            "resumed_from_step": resumed_from,
            "distributed_type": "FSDP (on the CPU, gloo)" if fsdp_cpu
            else str(accelerator.distributed_type),
            "device": str(accelerator.device), "replicate_seed": cfg.seed, "seeds": seeds,
            "init_seed": _init_seed(init), "deterministic": cfg.deterministic,
            "parameters": int(sum(p.numel() for p in unwrapped.parameters())),
            "packages": package_versions(), "hardware": hardware_info(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        })
        apply_umask(tmp)  # safetensors writes the weights as 0600: readable for colleagues
        if out_path.exists():
            shutil.rmtree(out_path)
        tmp.rename(out_path)
    accelerator.wait_for_everyone()
    ckpts.remove(accelerator.is_main_process)
    # no accelerator.end_training(): it destroys the process group, and the DDP reducer freed
    # as this frame ends would then run gloo's teardown under the GIL, which can hang (see
    # longthought/train/__main__.py: a launched worker leaves with os._exit instead)
    return out_path


