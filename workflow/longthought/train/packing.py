"""Samples -> model inputs: packing without padding and without cross-contamination.

A micro-batch is a fixed set of samples (the stage's `batch_size`); packing only changes how they
are laid out, never which samples a step sees, so packed and unpacked training follow the same
optimisation (the loss is the mean over the step's assistant tokens either way).

Packed: the samples are concatenated into one row with no padding at all; position ids restart
at 0 for every sample, and `cu_seq_lens` (the sample boundaries) go to the attention, which
attends within each sample only:

- `flash_attention_2/3` (GPU): flash-attn's varlen kernel, through transformers;
- `sdpa` (CPU, or a GPU without flash-attn): `sdpa_varlen` below, registered with transformers'
  `AttentionInterface`: causal sdpa per sample, so the cost grows with each sample's length, not
  with the row's (a dense block-diagonal mask over the whole row would grow with its square);
- `eager`: transformers sees the restarting position ids and builds the block-diagonal mask.

Unpacked: one right-padded row per sample and no mask; causal attention already keeps real
tokens from seeing the padding after them, and padding has no labels.
"""

from __future__ import annotations

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
                **kwargs) -> tuple[torch.Tensor, None]:
    """Causal attention within each packed sample of a [1, heads, tokens, dim] row.

    Without `cu_seq_lens_q` (unpacked batches, generation) it is plain sdpa.
    """
    if cu_seq_lens_q is None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    bounds = cu_seq_lens_q.tolist()
    out = [F.scaled_dot_product_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e],
                                          dropout_p=dropout, scale=scaling, is_causal=True)
           for s, e in zip(bounds[:-1], bounds[1:], strict=True)]
    return torch.cat(out, dim=2).transpose(1, 2).contiguous(), None


AttentionInterface.register(VARLEN, sdpa_varlen)


def training_attention(attn_implementation: str) -> str:
    """The attention the training model runs: sdpa becomes its per-sample (varlen) form."""
    return VARLEN if attn_implementation == "sdpa" else attn_implementation


def collate(samples: Sequence[Encoded], packing: bool, pad_id: int) -> dict[str, torch.Tensor]:
    """Lay out `samples` as model inputs (input_ids, position_ids, and for packed rows the
    cu_seq_lens / max_length kwargs of varlen attention) plus `labels`, `n_tokens` (real tokens)
    and `n_slots` (token positions computed, padding included)."""
    lengths = [len(s.input_ids) for s in samples]
    if packing:
        cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        cu_t = torch.from_numpy(cu)
        batch = {
            "input_ids": torch.from_numpy(np.concatenate([s.input_ids for s in samples]))[None],
            "labels": torch.from_numpy(np.concatenate([s.labels for s in samples]))[None],
            "position_ids": torch.from_numpy(np.concatenate([np.arange(n) for n in lengths]))[None],
            "cu_seq_lens_q": cu_t, "cu_seq_lens_k": cu_t,
            "max_length_q": max(lengths), "max_length_k": max(lengths),
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


MODEL_INPUTS = ("input_ids", "position_ids", "cu_seq_lens_q", "cu_seq_lens_k",
                "max_length_q", "max_length_k")
