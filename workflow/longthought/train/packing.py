"""Samples -> model inputs: balanced packing into short rows, without cross-contamination.

A micro-batch is a fixed set of samples (the stage's `batch_size`); packing only changes how they
are laid out, never which samples a step sees, so packed and unpacked training follow the same
optimisation. Samples are spread over as few rows as fit `capacity` tokens, balanced so the rows
end up nearly the same length (little padding). Position ids restart at 0 for every sample and a
block-diagonal causal mask keeps samples from attending to each other:

- sdpa / eager: one [rows, 1, L, L] mask per micro-batch (rows are short, so its cost is small);
- flash_attention_2/3: the rows are concatenated into one unpadded row and the restarting
  position ids tell flash-attn's varlen kernel where each sample starts (no mask at all).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
import torch

from longthought.train.data import IGNORE, Encoded

VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")


def pack_rows(lengths: Sequence[int], capacity: int, tries: int = 4) -> list[list[int]]:
    """Group sample indices into rows of at most `capacity` tokens with the fewest padded slots.

    For a few row counts from the lower bound ceil(total / capacity) up, spread the samples
    longest first, each into the currently shortest row (LPT); keep the layout whose
    rows x longest-row is smallest and fits `capacity`.
    """
    if not lengths:
        return []
    if max(lengths) > capacity:
        raise ValueError(f"a sample of {max(lengths)} tokens exceeds the row capacity {capacity}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    lower = max(1, -(-sum(lengths) // capacity))
    best: tuple[int, list[list[int]]] | None = None
    n_rows = lower
    while best is None or n_rows < lower + tries:
        heap = [(0, r) for r in range(min(n_rows, len(lengths)))]  # (tokens so far, row)
        rows: list[list[int]] = [[] for _ in heap]
        for i in order:
            used, r = heapq.heappop(heap)
            rows[r].append(i)
            heapq.heappush(heap, (used + lengths[i], r))
        width = max(used for used, _ in heap)
        if width <= capacity and (best is None or len(rows) * width < best[0]):
            best = (len(rows) * width, rows)
        if n_rows >= len(lengths):
            break
        n_rows += 1
    assert best is not None  # n_rows == len(lengths) always fits: one sample per row
    return best[1]


def collate(samples: Sequence[Encoded], packing: bool, capacity: int, pad_id: int,
            attn_implementation: str = "sdpa", mask_dtype: torch.dtype = torch.float32,
            ) -> dict[str, torch.Tensor]:
    """Lay out `samples` as model inputs: input_ids, position_ids, labels, attention_mask.

    Returns also `n_tokens` (real, non-pad tokens) and `n_slots` (token positions computed).
    """
    lengths = [len(s.input_ids) for s in samples]
    if packing:
        rows = pack_rows(lengths, capacity)
    else:
        rows = [[i] for i in range(len(samples))]
    if attn_implementation in VARLEN_ATTENTION:
        rows = [[i for row in rows for i in row]]  # one unpadded row; positions mark the samples
    width = max(sum(lengths[i] for i in row) for row in rows)
    n = len(rows)
    input_ids = np.full((n, width), pad_id, dtype=np.int64)
    labels = np.full((n, width), IGNORE, dtype=np.int64)
    position_ids = np.zeros((n, width), dtype=np.int64)
    segment = np.zeros((n, width), dtype=np.int64)  # which sample each slot holds; pad = its own
    for r, row in enumerate(rows):
        start = 0
        for seg, i in enumerate(row, start=1):
            s, m = samples[i], lengths[i]
            input_ids[r, start:start + m] = s.input_ids
            labels[r, start:start + m] = s.labels
            position_ids[r, start:start + m] = np.arange(m)
            segment[r, start:start + m] = seg
            start += m
        position_ids[r, start:] = np.arange(width - start)  # pad: a causal run of its own
    batch = {
        "input_ids": torch.from_numpy(input_ids),
        "position_ids": torch.from_numpy(position_ids),
        "labels": torch.from_numpy(labels),
        "n_tokens": torch.tensor(sum(lengths)),
        "n_slots": torch.tensor(n * width),
    }
    if attn_implementation not in VARLEN_ATTENTION:
        batch["attention_mask"] = block_causal_mask(torch.from_numpy(segment),
                                                    attn_implementation, mask_dtype)
    return batch


def block_causal_mask(segment: torch.Tensor, attn_implementation: str = "sdpa",
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[rows, 1, L, L] mask: a query sees keys of its own segment at or before it.

    Boolean (True = attend) for sdpa, which keeps its fused kernels; additive (0 / dtype min)
    for eager attention, which adds the mask to the scores.
    """
    length = segment.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    allowed = (segment[:, :, None] == segment[:, None, :]) & causal
    allowed = allowed[:, None]
    if attn_implementation == "sdpa":
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
