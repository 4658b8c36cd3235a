"""Reproducible sampling that does not depend on how samples are batched.

Each sample (prompt, sample index) gets its own seed, a hash of the run seed, the canonical
prompt and the sample index; from it, one uniform number per output position is drawn, on
demand and a chunk at a time (`UniformStream`: the same numbers as drawing them all up front).
The token at position t is chosen by inverse-CDF sampling with the t-th uniform over the
temperature- and top-p-adjusted distribution. Nothing depends on a global RNG, on which other
samples share the batch, or on when a neighbour finishes; so batched and sequential generation,
and reruns, give the same tokens on the CPU.

The one caveat is float arithmetic: a padded batch computes logits with different kernel shapes
than a single sequence (and multi-threaded BLAS may split sums differently), so logits can differ
in the last bits. A token flips only if its uniform lands within that distance of a CDF (or
top-p) boundary, which is rare: in benchmarks/bench_eval.py all 32 samples x 128 tokens matched
on one thread, while one 2-thread run on a heavily loaded machine had a differing sample. For
bit-exact comparisons run with one CPU thread (torch.set_num_threads(1)), as the tests do.

Because the seed does not include the thinking budget, the runs at different budgets share their
random numbers: a capped sample follows the unconstrained one until the cap (common random
numbers), so budget curves compare like with like.
"""

from __future__ import annotations

import hashlib
import json

import torch


def sample_seed(seed: int, messages: list[dict], sample_index: int) -> int:
    """The 63-bit seed of one sample: stable across runs, machines and batch layouts."""
    key = json.dumps([int(seed), messages, int(sample_index)], sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1


def uniforms(seed: int, length: int) -> torch.Tensor:
    """`length` float64 uniforms in [0, 1) from a private generator seeded with `seed`."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.rand(length, generator=gen, dtype=torch.float64)


class UniformStream:
    """The uniforms of one sample, drawn as they are needed from its private generator.

    `at(t)` is the t-th uniform of `uniforms(seed, ...)`: torch's CPU generator fills a tensor
    sequentially, so drawing `CHUNK` at a time gives the same numbers as one long draw, without
    holding a max_new_tokens-long tensor per sample. Positions must be asked in increasing order
    (a sample only moves forward); a new stream starts again from the seed.
    """

    CHUNK = 64

    def __init__(self, seed: int):
        self.seed = seed
        self._gen = torch.Generator(device="cpu").manual_seed(seed)
        self._buf: list[float] = []
        self._start = 0  # position of _buf[0]

    def at(self, t: int) -> float:
        if t < self._start:
            raise ValueError(f"uniform {t} was already passed (stream at {self._start})")
        while t >= self._start + len(self._buf):
            self._start += len(self._buf)
            self._buf = torch.rand(self.CHUNK, generator=self._gen, dtype=torch.float64).tolist()
        return self._buf[t - self._start]


def choose_tokens(logits: torch.Tensor, u: torch.Tensor, temperature: float,
                  top_p: float) -> torch.Tensor:
    """Next token per row from `logits` [rows, vocab] and one uniform per row `u` [rows].

    temperature 0 is greedy. Otherwise softmax(logits / temperature), keep the smallest set of
    most likely tokens whose mass reaches top_p (at least one), and pick by inverse CDF with u.
    """
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    if top_p < 1.0:
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p  # mass of strictly more likely tokens
        sorted_p = sorted_p * (before < top_p)
    cdf = torch.cumsum(sorted_p, dim=-1)
    target = (u.to(cdf.device, torch.float64) * cdf[:, -1]).unsqueeze(-1)
    pick = torch.searchsorted(cdf, target, right=True).clamp(max=cdf.shape[-1] - 1)
    return order.gather(-1, pick).squeeze(-1)
