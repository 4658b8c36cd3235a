"""What each optimizer step sees and at what learning rate: pure functions of the stage spec.

Because the data order and the learning rate are functions of (seed, step), resuming needs only
the step number: no sampler or scheduler object has to be pickled, and a resumed run sees exactly
the samples and rates the uninterrupted run would have.
"""

from __future__ import annotations

import math

import numpy as np

from longthought.train.spec import Stage


def samples_per_step(stage: Stage, world: int) -> int:
    return stage.batch_size * stage.grad_accum * world


def total_steps(stage: Stage, n_samples: int, world: int) -> int:
    """`max_steps` if set, else enough steps to show every sample `epochs` times (rounded up)."""
    if stage.max_steps is not None:
        return stage.max_steps
    return max(1, math.ceil(n_samples * stage.epochs / samples_per_step(stage, world)))


def sample_stream(n_samples: int, n_needed: int, seed: int) -> np.ndarray:
    """Sample indices in training order: a fresh permutation per epoch, as many epochs as needed."""
    epochs = max(1, math.ceil(n_needed / n_samples))
    perms = [np.random.default_rng([seed, e]).permutation(n_samples) for e in range(epochs)]
    return np.concatenate(perms)[:n_needed]


def micro_batch(stream: np.ndarray, stage: Stage, world: int, step: int, micro: int,
                rank: int) -> np.ndarray:
    """Sample indices process `rank` trains on in micro-step `micro` of optimizer step `step`."""
    start = step * samples_per_step(stage, world) + (micro * world + rank) * stage.batch_size
    return stream[start:start + stage.batch_size]


def step_samples(stream: np.ndarray, stage: Stage, world: int, step: int) -> np.ndarray:
    """All sample indices of optimizer step `step`, over every process and micro-step."""
    n = samples_per_step(stage, world)
    return stream[step * n:(step + 1) * n]


def warmup_steps(stage: Stage, steps: int) -> int:
    return int(round(stage.warmup_ratio * steps))


def lr_at(stage: Stage, step: int, steps: int) -> float:
    """Learning rate of optimizer step `step` (0-based) of `steps`: linear warmup, then decay."""
    warm = warmup_steps(stage, steps)
    if step < warm:
        return stage.lr * (step + 1) / (warm + 1)
    if stage.schedule == "constant":
        return stage.lr
    progress = (step - warm) / max(1, steps - warm)
    if stage.schedule == "linear":
        return stage.lr * (1.0 - progress)
    return stage.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def best_fit_decreasing(order: np.ndarray, lengths: np.ndarray, capacity: int) -> list[list[int]]:
    """Bins of sample indices, each summing to at most `capacity` tokens (best-fit decreasing).

    Samples are placed longest first (ties in `order`'s order) into the open bin with the least
    room that still fits them, as TRL's `bfd` packing does; a bin too full for the shortest
    sample is closed. Every sample must fit alone (`lengths <= capacity`).
    """
    from bisect import bisect_left, insort

    ranked = order[np.argsort(-lengths[order], kind="stable")]
    shortest = int(lengths[order].min()) if len(order) else 0
    bins: list[list[int]] = []
    room: list[tuple[int, int]] = []  # (free tokens, bin) of open bins, sorted
    for i in ranked.tolist():
        n = int(lengths[i])
        k = bisect_left(room, (n, -1))
        if k == len(room):
            bins.append([i])
            free, b = capacity - n, len(bins) - 1
        else:
            free, b = room.pop(k)
            bins[b].append(i)
            free -= n
        if free >= shortest:
            insort(room, (free, b))
    return bins


class Plan:
    """Which samples each (optimizer step, micro-step, rank) trains on: a pure function of the
    stage spec, the sample lengths and the world size, so a resumed run sees what a straight
    run would.

    By samples (`max_tokens_per_batch` null): `batch_size` samples per micro-batch from a fresh
    permutation per epoch (`sample_stream`). By token budget: each epoch's permutation is packed
    into micro-batches of at most `max_tokens_per_batch` tokens (`best_fit_decreasing`), the
    micro-batches are shuffled, and a step takes `grad_accum x world` of them.
    """

    def __init__(self, stage: Stage, lengths: np.ndarray, world: int):
        self.stage, self.world = stage, world
        self.lengths = np.asarray(lengths)
        self.n = len(self.lengths)
        self.per_step = stage.grad_accum * world  # micro-batches per optimizer step
        self.by_tokens = stage.max_tokens_per_batch is not None
        if not self.by_tokens:
            self.steps = total_steps(stage, self.n, world)
            self.stream = sample_stream(self.n, self.steps * samples_per_step(stage, world),
                                        stage.seed)
            return
        self._epochs: list[list[np.ndarray]] = []
        self._counts: list[np.ndarray] = []  # per epoch: samples in its first k+1 bins
        per_epoch = len(self._epoch(0))
        self.steps = stage.max_steps or max(1, math.ceil(stage.epochs * per_epoch
                                                         / self.per_step))

    def _epoch(self, e: int) -> list[np.ndarray]:
        while len(self._epochs) <= e:
            k = len(self._epochs)
            order = np.random.default_rng([self.stage.seed, k]).permutation(self.n)
            bins = best_fit_decreasing(order, self.lengths, self.stage.max_tokens_per_batch)
            shuffle = np.random.default_rng([self.stage.seed, k, 1]).permutation(len(bins))
            self._epochs.append([np.asarray(bins[j], dtype=np.int64) for j in shuffle])
            self._counts.append(np.cumsum([len(b) for b in self._epochs[-1]]))
        return self._epochs[e]

    def _bin(self, index: int) -> np.ndarray:
        e = 0
        while index >= len(self._epoch(e)):
            index -= len(self._epoch(e))
            e += 1
        return self._epoch(e)[index]

    def micro(self, step: int, micro: int, rank: int) -> np.ndarray:
        """Sample indices process `rank` trains on in micro-step `micro` of step `step`."""
        if not self.by_tokens:
            return micro_batch(self.stream, self.stage, self.world, step, micro, rank)
        return self._bin(step * self.per_step + micro * self.world + rank)

    def step_samples(self, step: int) -> np.ndarray:
        """All sample indices of optimizer step `step`, over every process and micro-step."""
        if not self.by_tokens:
            return step_samples(self.stream, self.stage, self.world, step)
        return np.concatenate([self._bin(step * self.per_step + j) for j in range(self.per_step)])

    def samples_seen(self, step: int) -> int:
        """Samples trained on after `step + 1` steps (for the epoch count in the log)."""
        if not self.by_tokens:
            return (step + 1) * samples_per_step(self.stage, self.world)
        bins, seen, e = (step + 1) * self.per_step, 0, 0
        while bins > 0:
            epoch = self._epoch(e)
            take = min(bins, len(epoch))
            seen += int(self._counts[e][take - 1])
            bins -= take
            e += 1
        return seen
