"""The in-place KV cache: the same attention as transformers' DynamicCache, without a copy of
the whole cache at every decode step."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from longthought.evaluate.fixtures import build_tiny_chat_model
from longthought.evaluate.kvcache import GrowingCache


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = build_tiny_chat_model(tmp_path_factory.mktemp("kv") / "model", num_layers=2)
    return AutoModelForCausalLM.from_pretrained(path).eval()


def _decode(model, cache, steps: int, drop_at: int | None = None) -> list[torch.Tensor]:
    """Prefill 3 left-padded rows, then greedy steps; optionally drop row 1 at `drop_at`."""
    torch.manual_seed(0)
    ids = torch.randint(5, 300, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # a shorter prompt, left-padded
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = []
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache)
        for step in range(steps):
            last = out.logits[:, -1, :]
            logits.append(last.clone())
            if step == drop_at:
                keep = torch.tensor([0, 2])
                cache.batch_select_indices(keep)
                mask, pos, last = mask[keep], pos[keep], last[keep]
            token = last.argmax(-1, keepdim=True)
            mask = torch.cat([mask, mask.new_ones((len(mask), 1))], -1)
            pos = pos[:, -1:] + 1
            out = model(input_ids=token, attention_mask=mask, position_ids=pos,
                        past_key_values=cache)
    return logits


def test_same_logits_as_the_dynamic_cache_with_rows_dropped(model):
    want = _decode(model, DynamicCache(), 40, drop_at=10)
    got = _decode(model, GrowingCache(), 40, drop_at=10)
    for a, b in zip(want, got, strict=True):
        assert torch.equal(a, b)


def test_a_decode_step_writes_in_place(model):
    cache = GrowingCache()
    _decode(model, cache, 3)
    layer = cache.layers[0]
    buf = layer.keys.data_ptr()
    width = layer.keys.shape[-2]
    k = torch.zeros(3, layer.keys.shape[1], 1, layer.keys.shape[-1])
    with torch.inference_mode():
        layer.update(k, k)
    assert layer.keys.data_ptr() == buf and layer.keys.shape[-2] == width + 1
    assert torch.equal(layer.keys[:, :, -1:], k)


def test_keys_replaced_from_outside_are_adopted(model):
    """Joining batches or trimming columns assigns new tensors: the next step builds on them."""
    cache = GrowingCache()
    _decode(model, cache, 3)
    layer = cache.layers[0]
    trimmed_k, trimmed_v = layer.keys[:, :, 2:].clone(), layer.values[:, :, 2:].clone()
    layer.keys, layer.values = trimmed_k, trimmed_v
    k = torch.ones(3, trimmed_k.shape[1], 1, trimmed_k.shape[-1])
    with torch.inference_mode():
        keys, values = layer.update(k, k)
    assert torch.equal(keys[:, :, :-1], trimmed_k) and torch.equal(values[:, :, :-1], trimmed_v)
    assert torch.equal(keys[:, :, -1:], k)


def test_keys_and_values_of_different_head_sizes():
    """Multi-head latent attention (DeepSeek-V2/V3) caches keys and values of different sizes."""
    from longthought.evaluate.kvcache import GrowingLayer

    layer = GrowingLayer()
    with torch.inference_mode():
        for step in range(3):
            k, v = torch.full((2, 1, 1, 8), float(step)), torch.full((2, 1, 1, 4), -float(step))
            keys, values = layer.update(k, v)
    assert keys.shape == (2, 1, 3, 8) and values.shape == (2, 1, 3, 4)
    assert keys[0, 0, :, 0].tolist() == [0.0, 1.0, 2.0] and values[0, 0, -1, 0] == -2.0


def test_replace_drops_the_old_buffers(model):
    cache = GrowingCache()
    _decode(model, cache, 3)
    layer = cache.layers[0]
    new_k, new_v = layer.keys[:, :, 1:].clone(), layer.values[:, :, 1:].clone()
    layer.replace(new_k, new_v)
    assert layer._kbuf is None and layer.keys is new_k
