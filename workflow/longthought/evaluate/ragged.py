"""Decode-step attention over each row's own context, not the batch's padded width.

With refill (continuous batching, `hf_backend`) a batch holds rows of different ages: their KV
caches are right-aligned in one buffer, so a prompt that joined a batch whose oldest row is at
30k tokens is padded to 30k columns, and plain sdpa reads (and multiplies) every padded column
for every row. Rows join at the end and leave in place, so the batch is ordered by age and the
columns a row needs shrink along it. `plan_chunks` cuts the batch into contiguous runs of rows
with similar context lengths and `sdpa_ragged` runs sdpa on each run over only the trailing
columns its rows use (a view: nothing is copied). Prefill steps and unplanned calls are plain
sdpa.

Flash-attention's varlen path needs none of this (it unpads); this is for sdpa, the default
wherever flash-attn is not installed, the CPU included.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

RAGGED = "sdpa_ragged"
# a run of rows is cut where a row needs less than this fraction of the run's width (or more
# than its inverse)
CUT_BELOW = 0.5
# One sdpa call over the padded width is cheaper than several unless the runs skip enough: at
# least this share of the padded columns (a batch of 256 rows at 97% of the width ran 9% slower
# split than whole: bench_longctx --prompts 400 --batch 256), and for each extra call the keys
# and values that cost about as much to read as the call itself. CPU: paired runs of refill on
# the demo's shape (2 KV heads x 32, fp32: 512 bytes a row-column of a layer), one thread, 64
# prompts: splitting where an extra call skips >= 128 row-columns (64 KB) ran 1.14x faster than
# full width, >= 1,024 (512 KB) 1.06x; so 64 KB a call and thread (more threads read a column
# faster, the call costs the same; two-thread runs here wandered too much to fit). GPU: ~30 us of
# Python and launches against ~3 TB/s, so ~64 MB, an estimate not yet measured
# (benchmarks/bench_gpu.py --parts refill reports gen_speedup_ragged): there only long contexts,
# thousands of padded columns a row, are split.
MIN_SAVED_FRACTION = 0.1
CALL_COST_BYTES = {"cpu": 64 * 1024, "cuda": 64 * 2**20}
MIN_SAVED_COLUMNS = 512  # per extra call, when the caller does not say (plan_chunks' default)

Chunks = tuple[tuple[int, int, int], ...]  # (first row, end row, columns) per run


def min_saved_per_call(kv_bytes_per_column: int, device_type: str, threads: int = 1) -> int:
    """Row-columns an extra sdpa call must skip to pay for itself, for a cache whose keys and
    values take `kv_bytes_per_column` bytes per row and column of one layer."""
    cost = CALL_COST_BYTES.get(device_type, CALL_COST_BYTES["cuda"])
    if device_type == "cpu":
        cost *= max(1, threads)
    return max(1, -(-cost // max(1, kv_bytes_per_column)))


def plan_chunks(needs: list[int], width: int, per_call: int | None = None) -> Chunks | None:
    """Contiguous runs of rows, each with the columns its longest row needs (right-aligned).

    `needs[b]`: how many trailing columns of the `width`-wide cache row b attends to. None when
    one call over the full width is as good: the runs would skip less than `MIN_SAVED_FRACTION`
    of the padded columns, or less than `per_call` row-columns for each call beyond the first
    (`min_saved_per_call`; default `MIN_SAVED_COLUMNS`).
    """
    chunks: list[tuple[int, int, int]] = []
    start, cols = 0, needs[0] if needs else 0
    for b in range(1, len(needs)):
        n = needs[b]
        if CUT_BELOW * cols <= n <= cols / CUT_BELOW:  # within a factor of the run: join it
            cols = max(cols, n)
        else:
            chunks.append((start, b, cols))
            start, cols = b, n
    chunks.append((start, len(needs), cols))
    padded = len(needs) * width
    saved = padded - sum((end - first) * cols for first, end, cols in chunks)
    per_call = MIN_SAVED_COLUMNS if per_call is None else per_call
    if saved <= 0 or saved < max(MIN_SAVED_FRACTION * padded,
                                 per_call * (len(chunks) - 1)):
        return None
    return tuple(chunks)


def sdpa_ragged(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                value: torch.Tensor, attention_mask: torch.Tensor | None, dropout: float = 0.0,
                scaling: float | None = None, row_chunks: Chunks | None = None,
                **kwargs) -> tuple[torch.Tensor, None]:
    """sdpa per run of rows over its trailing columns (`row_chunks`); plain sdpa without a plan,
    when more than one query position is attended (a prefill), or for a model that adds a
    position bias (its own full-width tensor)."""
    if row_chunks is None or query.shape[2] != 1 or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    out = []
    for first, end, cols in row_chunks:
        mask = attention_mask
        if mask is not None:  # a mask broadcast over the batch keeps its single row
            mask = mask[..., -cols:] if mask.shape[0] == 1 else mask[first:end, ..., -cols:]
        part, _ = sdpa_attention_forward(module, query[first:end], key[first:end, :, -cols:],
                                         value[first:end, :, -cols:], mask, dropout=dropout,
                                         scaling=scaling, **kwargs)
        out.append(part)
    return torch.cat(out), None


AttentionInterface.register(RAGGED, sdpa_ragged)
ALL_MASK_ATTENTION_FUNCTIONS.register(RAGGED, sdpa_mask)  # the same mask as sdpa
