"""Micro-batches by token budget: best-fit decreasing bins, a plan that is a pure function of the
step, steps that carry similar token counts, and the budget checked against max_length."""

from __future__ import annotations

import numpy as np
import pytest

from longthought.train.schedule import Plan, best_fit_decreasing
from longthought.train.spec import Stage, parse_spec


def lengths(n: int = 500, seed: int = 0) -> np.ndarray:
    """Mixed lengths: mostly short samples and a tail of long ones, as long thoughts are."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(60, 400, int(n * 0.8)),
                           rng.integers(400, 2000, n - int(n * 0.8))])


def test_best_fit_decreasing_fills_bins_without_splitting_or_losing_samples():
    lens = lengths()
    order = np.random.default_rng(1).permutation(len(lens))
    bins = best_fit_decreasing(order, lens, 4096)
    flat = sorted(i for b in bins for i in b)
    assert flat == list(range(len(lens)))  # every sample exactly once
    loads = np.array([lens[b].sum() for b in bins])
    assert loads.max() <= 4096
    assert lens.sum() / (len(bins) * 4096) > 0.97  # nearly every bin full
    assert len(bins) <= np.ceil(lens.sum() / 4096) + 2
    # ties follow the given order: another permutation changes which samples share a bin
    other = best_fit_decreasing(np.random.default_rng(2).permutation(len(lens)), lens, 4096)
    assert sorted(map(sorted, bins)) != sorted(map(sorted, other))


def stage(**kw) -> Stage:
    base = {"dataset": "d", "lr": 1e-3, "epochs": 2, "batch_size": 8, "grad_accum": 2,
            "max_length": 2048, "seed": 3}
    return Stage(**{**base, **kw})


def test_token_plan_is_a_pure_function_of_the_step_and_covers_each_epoch():
    lens = lengths()
    st = stage(max_tokens_per_batch=4096)
    a, b = Plan(st, lens, world=2), Plan(st, lens, world=2)
    for step in (a.steps - 1, 0, 7, 3):  # asked in any order, as a resumed run does
        assert [a.micro(step, m, r).tolist() for m in range(2) for r in range(2)] == \
               [b.micro(step, m, r).tolist() for m in range(2) for r in range(2)]
        assert sorted(a.step_samples(step).tolist()) == sorted(
            np.concatenate([a.micro(step, m, r) for m in range(2) for r in range(2)]).tolist())
    per_epoch = len(a._epoch(0))
    assert a.steps == int(np.ceil(2 * per_epoch / 4))
    first = np.concatenate([a._bin(i) for i in range(per_epoch)])
    assert sorted(first.tolist()) == list(range(len(lens)))
    for step in range(a.steps):
        for m in range(2):
            for r in range(2):
                assert lens[a.micro(step, m, r)].sum() <= 4096
    assert a.samples_seen(a.steps - 1) >= 2 * len(lens) - 4 * 40  # two epochs, last step partial
    # sample mode is untouched: batch_size samples per micro-batch, the same stream as before
    s = Plan(stage(), lens, world=2)
    assert len(s.micro(0, 0, 0)) == 8 and len(s.step_samples(0)) == 32


def test_steps_by_token_budget_carry_similar_token_counts():
    lens = lengths(2000)

    def cv(plan: Plan) -> float:
        per_step = [lens[plan.step_samples(s)].sum() for s in range(plan.steps)]
        return float(np.std(per_step) / np.mean(per_step))

    by_samples = cv(Plan(stage(epochs=1, batch_size=8, grad_accum=1), lens, 1))
    by_tokens = cv(Plan(stage(epochs=1, grad_accum=1, max_tokens_per_batch=4096), lens, 1))
    assert by_samples > 0.3 and by_tokens < 0.1


def test_budget_must_hold_the_longest_sample():
    spec = {"base_model": "tiny", "stages": [{"dataset": "d", "lr": 1e-3, "max_length": 1024,
                                              "max_tokens_per_batch": 512}]}
    with pytest.raises(ValueError, match=r"stages\[0\]\.max_tokens_per_batch must be null or an "
                                         r"integer >= max_length \(1024"):
        parse_spec("s", spec)
    spec["stages"][0]["max_tokens_per_batch"] = 4096
    assert parse_spec("s", spec).stages[0].max_tokens_per_batch == 4096
    spec["stages"][0]["max_tokens_per_batch"] = None
    assert parse_spec("s", spec).stages[0].max_tokens_per_batch is None
    with pytest.raises(ValueError, match="cross_entropy must be one of"):
        parse_spec("s", {**spec, "cross_entropy": "fused"})
