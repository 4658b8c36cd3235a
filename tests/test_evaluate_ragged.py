"""Ragged decode attention: each run of rows attends over its own trailing columns, with the
logits of sdpa over the full padded width, and generation with it gives the same samples."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from longthought.evaluate import ragged
from longthought.evaluate.fixtures import build_tiny_chat_model
from longthought.evaluate.hf_backend import TransformersGenerator
from longthought.evaluate.kvcache import GrowingCache
from longthought.evaluate.ragged import RAGGED, plan_chunks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest


def test_runs_of_similar_rows_get_their_own_width():
    assert plan_chunks([900, 880, 850, 400, 390, 100, 90], 900) == (
        (0, 3, 900), (3, 5, 400), (5, 7, 100))
    # a row a little longer than its run widens the run rather than starting another
    assert plan_chunks([900, 400, 420, 100], 900) == ((0, 1, 900), (1, 3, 420), (3, 4, 100))


def test_no_plan_where_there_is_little_padding_to_save():
    assert plan_chunks([300] * 16, 300) is None  # rows that started together
    assert plan_chunks([300, 290, 10], 300) is None  # 290 columns saved: one call is cheaper
    # 1,200 columns saved, but of 76,800: a few young rows in a big batch are not worth a split
    assert plan_chunks([300] * 250 + [100] * 6, 300) is None
    assert plan_chunks([300] * 200 + [100] * 56, 300) is not None  # 11,200 of 76,800


def test_each_extra_call_must_skip_what_it_costs():
    # 1,760 row-columns skipped with two calls beyond the first
    assert plan_chunks([900, 400, 420, 100], 900, per_call=800) is not None
    assert plan_chunks([900, 400, 420, 100], 900, per_call=1000) is None
    # the demo's cache (2 KV heads x 32, fp32: 512 bytes a row-column): 64 KB a call per CPU
    # thread; a GPU splits only where thousands of columns a row are padding
    assert ragged.min_saved_per_call(512, "cpu", threads=1) == 128
    assert ragged.min_saved_per_call(512, "cpu", threads=2) == 256
    assert ragged.min_saved_per_call(512, "cuda") == 131072


def test_every_row_is_in_one_run_wide_enough_for_it():
    rng = random.Random(0)
    for _ in range(200):
        needs = sorted((rng.randint(1, 4000) for _ in range(rng.randint(1, 40))), reverse=True)
        needs = [n + rng.randint(0, 30) for n in needs]  # roughly by age, as batches are
        width = max(needs) + rng.randint(0, 50)
        chunks = plan_chunks(needs, width)
        if chunks is None:
            continue
        assert chunks[0][0] == 0 and chunks[-1][1] == len(needs)
        for (_, end, _), (first, _, _) in zip(chunks, chunks[1:], strict=False):
            assert end == first
        for first, end, cols in chunks:
            assert max(needs[first:end]) <= cols <= width


@pytest.fixture()
def spy(monkeypatch) -> list[tuple[int, int, int]]:
    """(query positions, rows, key columns) of every sdpa call the ragged attention makes: proof
    that the plan reaches the attention and narrows it, not only that the logits agree."""
    calls: list[tuple[int, int, int]] = []
    real = ragged.sdpa_attention_forward

    def record(module, query, key, *args, **kwargs):
        calls.append((query.shape[2], key.shape[0], key.shape[2]))
        return real(module, query, key, *args, **kwargs)

    monkeypatch.setattr(ragged, "sdpa_attention_forward", record)
    return calls


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return build_tiny_chat_model(tmp_path_factory.mktemp("ragged") / "model", num_layers=2,
                                 tie_embeddings=False, mean_length=60)


def _decode(model, steps: int, chunked: bool) -> list[torch.Tensor]:
    """Rows of 180, 150, 40 and 12 tokens (right-aligned), then greedy decode steps."""
    torch.manual_seed(0)
    lengths = [180, 150, 40, 12]
    width = max(lengths)
    ids = torch.randint(5, 300, (len(lengths), width))
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        mask[b, width - n:] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache, logits = GrowingCache(), []
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache)
        for step in range(steps):
            last = out.logits[:, -1, :]
            logits.append(last.clone())
            token = last.argmax(-1, keepdim=True)
            mask = torch.cat([mask, mask.new_ones((len(mask), 1))], -1)
            pos = pos[:, -1:] + 1
            needs = [n + step + 1 for n in lengths]
            plan = {"row_chunks": plan_chunks(needs, mask.shape[1])} if chunked else {}
            assert not chunked or plan["row_chunks"] is not None
            out = model(input_ids=token, attention_mask=mask, position_ids=pos,
                        past_key_values=cache, **plan)
    return logits


def test_ragged_attention_gives_the_logits_of_full_width_sdpa(path, monkeypatch, spy):
    monkeypatch.setattr(ragged, "MIN_SAVED_COLUMNS", 0)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa").eval()
    want = _decode(model, 12, chunked=False)
    model.set_attn_implementation(RAGGED)
    got = _decode(model, 12, chunked=True)
    for a, b in zip(want, got, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # each of the 12 decode steps: one call per run in each of the 2 layers, the short rows
    # over their own columns (12 + step), never the 180-wide cache
    decode = [c for c in spy if c[0] == 1]
    assert len(decode) == 12 * 2 * 3
    assert {c[1:] for c in decode[:3]} == {(2, 181), (1, 41), (1, 13)}


def test_refill_generation_runs_ragged_steps_and_samples_do_not_change(path, monkeypatch, spy):
    # 64 row-columns a call for the test model (2 KV heads x 16, fp32: 256 bytes a row-column)
    monkeypatch.setattr(ragged, "CALL_COST_BYTES", {"cpu": 64 * 256, "cuda": 64 * 256})
    gen = TransformersGenerator(str(path))
    assert gen.ragged and gen.model.config._attn_implementation == RAGGED
    real = gen._row_chunks

    def checked(batch):  # each row's cache is its trailing `need` columns, all attended
        needs = [len(r.prompt_ids) + len(r.gen) for r in batch.rows]
        assert batch.mask.sum(-1).tolist() == needs
        for b, n in enumerate(needs):
            assert bool(batch.mask[b, batch.mask.shape[1] - n:].all())
        return real(batch)

    monkeypatch.setattr(gen, "_row_chunks", checked)
    prompts = [[{"role": "user", "content": f"Problem {i}: add {i} and {i + 7}."}]
               for i in range(12)]
    sampling = {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 200, "seed": 5}
    runs = {}
    for flag in (True, False):
        gen.ragged = flag
        gen.stats.update(ragged_steps=0, attended_columns=0, padded_columns=0)
        runs[flag] = [[(o.text, o.output_tokens) for o in per]
                      for per in gen.generate(prompts, sampling, 2, batch_size=8, refill=True)]
        if flag:
            assert gen.stats["ragged_steps"] > 0
            assert gen.stats["attended_columns"] < 0.9 * gen.stats["padded_columns"]
            # what the attention was given is what the statistics count (2 layers)
            attended = sum(rows * cols for q, rows, cols in spy if q == 1)
            assert attended == 2 * gen.stats["attended_columns"]
    assert runs[True] == runs[False]
