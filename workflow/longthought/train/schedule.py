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
