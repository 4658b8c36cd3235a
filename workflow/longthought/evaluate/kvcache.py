"""A KV cache that appends in place: a decode step costs O(1) cache writes, not a full copy.

transformers' `DynamicCache` appends each step's key and value with `torch.cat`, which copies the
whole cache of every layer at every step: O(width) per step, O(width^2) over a generation, the
memory traffic that grows fastest on a 32k-token thought. Here each layer's keys and values are
a view of a buffer with spare columns at the end; a step writes its column into the buffer, and
only running out of room (or the batch being re-arranged) copies. On the CPU with the demo-sized
model, 4 samples of 4,096 tokens decode 1.13-1.28x faster than with `DynamicCache`; on outputs of
4-512 tokens the difference is within noise (`benchmarks/bench_longctx.py --parts kv,gen`).

The buffers are written in place, so the cache is for generation under `torch.inference_mode()`
(as `hf_backend` decodes), not for a forward pass that autograd records.

The layer stays a `DynamicLayer` to the model: `keys` / `values` are ordinary tensors of shape
[rows, kv_heads, width, head_dim] (strided views), so code that replaces them (dropping rows,
joining batches, trimming columns) keeps working: the next `update` adopts whatever it finds,
and `replace` sets them while dropping the old buffers at once.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

SPARE = 64  # columns reserved beyond the current width when a buffer is (re)allocated


class GrowingLayer(DynamicLayer):
    """One layer's keys and values as views of buffers with an eighth of their width spare."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._kbuf: torch.Tensor | None = None
        self._vbuf: torch.Tensor | None = None

    def _owns(self, keys: torch.Tensor, values: torch.Tensor) -> bool:
        """Whether keys/values are still the leading columns of this layer's buffers."""
        buf = self._kbuf
        return (buf is not None and self._vbuf is not None and keys.numel() > 0
                and keys.data_ptr() == buf.data_ptr() and values.data_ptr() == self._vbuf.data_ptr()
                and keys.shape[:2] == buf.shape[:2] and keys.stride() == buf.stride())

    def _adopt(self, keys: torch.Tensor, values: torch.Tensor, new_k: torch.Tensor,
               new_v: torch.Tensor, need: int) -> None:
        """New buffers with room for `need` columns and spare, holding the current ones. The
        spare is an eighth of the width (at least SPARE columns): at most ~12% more memory than
        the cache itself, and still a copy only every width/8 steps (linear in total)."""
        cap = need + max(SPARE, need // 8)
        width = keys.shape[-2] if keys.numel() else 0
        self._kbuf = new_k.new_empty((*new_k.shape[:2], cap, new_k.shape[-1]))
        self._vbuf = new_v.new_empty((*new_v.shape[:2], cap, new_v.shape[-1]))
        if width:
            self._kbuf[:, :, :width] = keys
            self._vbuf[:, :, :width] = values

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args,
               **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        keys, values = self.keys, self.values
        width = keys.shape[-2] if keys.numel() else 0
        need = width + key_states.shape[-2]
        if not self._owns(keys, values) or need > self._kbuf.shape[-2]:
            self._adopt(keys, values, key_states, value_states, need)
        self._kbuf[:, :, width:need] = key_states
        self._vbuf[:, :, width:need] = value_states
        self.keys, self.values = self._kbuf[:, :, :need], self._vbuf[:, :, :need]
        return self.keys, self.values

    def replace(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Set new keys and values (rows joined, columns trimmed), dropping the buffers now
        rather than at the next step, so the old cache and the new one are not held twice."""
        self._kbuf = self._vbuf = None
        self.keys, self.values = keys, values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows `indices`: one gather of the buffers (spare columns included)."""
        if self.get_seq_length() == 0:
            return
        if not self._owns(self.keys, self.values):
            super().batch_select_indices(indices)
            return
        width = self.keys.shape[-2]
        self._kbuf, self._vbuf = self._kbuf[indices], self._vbuf[indices]
        self.keys, self.values = self._kbuf[:, :, :width], self._vbuf[:, :, :width]


class GrowingCache(DynamicCache):
    """`DynamicCache` with `GrowingLayer`s (full attention in every layer, as the students have)."""

    def __init__(self) -> None:
        Cache.__init__(self, layer_class_to_replicate=GrowingLayer)
