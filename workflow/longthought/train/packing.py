"""Samples -> model inputs: packing without padding and without cross-contamination.

A micro-batch is a set of samples (chosen by `schedule.Plan`: `batch_size` samples, or a token
budget); packing only changes how they are laid out, never which samples a step sees, so packed
and unpacked training follow the same optimisation (the loss is the mean over the step's
assistant tokens either way).

Packed: the samples are concatenated into one row with no padding at all; position ids restart
at 0 for every sample, and the attention attends within each sample only (`choose_attention`
picks one per device and says why):

- `flash_attention_2/3` (GPU, flash-attn installed): flash-attn's varlen kernel on `cu_seq_lens`;
- `flex_attention` (GPU without flash-attn): transformers builds a block mask per sample from the
  restarting position ids, and FlexAttention skips the blocks outside it;
- `sdpa` (CPU): `sdpa_varlen` below, registered with transformers' `AttentionInterface`: causal
  sdpa per sample, so the cost grows with each sample's length, not with the row's (a dense
  block-diagonal mask over the whole row grows with its square). The sample bounds reach it as
  plain integers computed once per batch, so no layer converts a tensor to find them;
- `eager`: transformers sees the restarting position ids and builds the block-diagonal mask.

Unpacked: one right-padded row per sample and no mask; causal attention already keeps real
tokens from seeing the padding after them, and padding has no labels.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

from longthought.train.data import IGNORE, Encoded

VARLEN = "sdpa_varlen"


def sdpa_varlen(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                value: torch.Tensor, attention_mask: torch.Tensor | None, dropout: float = 0.0,
                scaling: float | None = None, cu_seq_lens_q: torch.Tensor | None = None,
                packed_bounds: tuple[int, ...] | None = None,
                **kwargs) -> tuple[torch.Tensor, None]:
    """Causal attention within each packed sample of a [1, heads, tokens, dim] row.

    `packed_bounds` (0, end of sample 1, ..., total) as integers; `cu_seq_lens_q` (the same as
    a tensor) is read only when they are missing. Without either (unpacked batches,
    generation) it is plain sdpa.
    """
    if (packed_bounds is None and cu_seq_lens_q is None) or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    bounds = packed_bounds if packed_bounds is not None else cu_seq_lens_q.tolist()
    out = [F.scaled_dot_product_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e],
                                          dropout_p=dropout, scale=scaling, is_causal=True)
           for s, e in zip(bounds[:-1], bounds[1:], strict=True)]
    return torch.cat(out, dim=2).transpose(1, 2).contiguous(), None


AttentionInterface.register(VARLEN, sdpa_varlen)


def training_attention(attn_implementation: str) -> str:
    """The attention the training model runs: sdpa becomes its per-sample (varlen) form."""
    return VARLEN if attn_implementation == "sdpa" else attn_implementation


FLASH_MODULES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


def flex_available() -> bool:
    try:
        from torch.nn.attention.flex_attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


WHAT = {
    "sdpa": "causal sdpa per packed sample",
    "eager": "a dense block-diagonal mask per packed row",
    "flex_attention": "per-sample block masks from the restarting position ids",
    "flash_attention_2": "flash-attn's varlen kernel",
    "flash_attention_3": "flash-attn 3's varlen kernel",
}


def choose_attention(requested: str, device: torch.device) -> tuple[str, str]:
    """(attention implementation, why) for `attn_implementation` on `device`.

    `auto`: flash-attn varlen on a GPU where it is installed, else FlexAttention with per-sample
    block masks on a GPU, else per-sample sdpa (the CPU). An explicit choice is honoured where it
    can run and replaced by the best one that can (with the reason) where it cannot.
    """
    gpu = device.type == "cuda"
    flash = next((name for name, module in FLASH_MODULES.items()
                  if importlib.util.find_spec(module) is not None), None)
    why = ""
    if requested in FLASH_MODULES:
        module = FLASH_MODULES[requested]
        if gpu and importlib.util.find_spec(module) is not None:
            return requested, f"requested: {WHAT[requested]}"
        requested, why = "auto", f"{requested} needs the {module} package and a GPU"
    if requested == "flex_attention" and not gpu:
        requested, why = "auto", "flex_attention has no backward pass on the CPU"
    if requested != "auto":
        note = ("; on a GPU this is one kernel per sample, auto would pick flash-attn or "
                "flex_attention" if gpu and requested == "sdpa" else "")
        return requested, f"requested: {WHAT[requested]}{note}"
    if gpu and flash is not None and not why:
        chosen, reason = flash, f"a GPU with the {FLASH_MODULES[flash]} package"
    elif gpu and flex_available():
        chosen, reason = "flex_attention", "a GPU without flash-attn"
    elif gpu:
        chosen, reason = "sdpa", "a GPU without flash-attn or FlexAttention"
    else:
        chosen, reason = "sdpa", "the CPU"
    reason = f"{reason}: {WHAT[chosen]}"
    return chosen, f"{why}; {reason}" if why else reason


def model_inputs(batch: dict, attn: str) -> dict:
    """The keyword arguments of the model's forward for a `collate` batch under attention `attn`:
    each implementation gets the sample boundaries in the form it reads."""
    keys = ["input_ids", "position_ids"]
    if "cu_seq_lens_q" in batch and attn.startswith("flash_attention"):
        keys += ["cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"]
    elif "packed_bounds" in batch and attn in ("sdpa", VARLEN):
        keys += ["packed_bounds"]
    return {k: batch[k] for k in keys}


def collate(samples: Sequence[Encoded], packing: bool, pad_id: int) -> dict[str, torch.Tensor]:
    """Lay out `samples` as model inputs (input_ids, position_ids, and for packed rows the
    cu_seq_lens / max_length kwargs of varlen attention) plus `labels`, `n_tokens` (real tokens)
    and `n_slots` (token positions computed, padding included)."""
    lengths = [len(s.input_ids) for s in samples]
    if packing:
        cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        cu_t = torch.from_numpy(cu)
        batch = {
            "input_ids": torch.from_numpy(
                np.concatenate([s.input_ids for s in samples]).astype(np.int64))[None],
            "labels": torch.from_numpy(np.concatenate([s.labels for s in samples]))[None],
            "position_ids": torch.from_numpy(np.concatenate([np.arange(n) for n in lengths]))[None],
            "cu_seq_lens_q": cu_t, "cu_seq_lens_k": cu_t,
            "max_length_q": max(lengths), "max_length_k": max(lengths),
            "packed_bounds": tuple(int(b) for b in cu),
        }
    else:
        width = max(lengths)
        input_ids = np.full((len(samples), width), pad_id, dtype=np.int64)
        labels = np.full((len(samples), width), IGNORE, dtype=np.int64)
        for r, s in enumerate(samples):
            input_ids[r, :lengths[r]] = s.input_ids
            labels[r, :lengths[r]] = s.labels
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "labels": torch.from_numpy(labels),
            "position_ids": torch.arange(width).expand(len(samples), width),
        }
    batch["n_tokens"] = sum(lengths)
    batch["n_slots"] = int(batch["input_ids"].numel())
    return batch
