"""The loss without the logits: equal to the logits-materialising loss, in value and gradients,
on a model with a real-size (151,936-token, Qwen2.5) vocabulary; chosen per model and device."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from longthought.train import loss as loss_mod
from longthought.train.data import IGNORE
from longthought.train.loss import (
    ChunkedLinearCrossEntropy,
    attach_loss,
    choose_loss,
    full_cross_entropy_sum,
    step_loss,
)

VOCAB = 151_936  # Qwen2.5's


def qwen(tie: bool = True) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, intermediate_size=32, tie_word_embeddings=tie, use_cache=False))


def batch(tokens: int = 300, prompt: int = 60, seed: int = 1) -> tuple[dict, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (1, tokens), generator=g)
    labels = ids.roll(-1, dims=1)
    labels[:, :prompt] = IGNORE  # the prompt carries no loss
    labels[:, -1] = IGNORE
    labels[:, 150:170] = IGNORE  # a second turn's prompt
    return {"input_ids": ids, "position_ids": torch.arange(tokens)[None]}, labels


@pytest.mark.parametrize("tie", [True, False])
def test_chunked_loss_and_gradients_equal_the_full_logits_loss(tie, monkeypatch):
    full, chunked = qwen(tie), qwen(tie)
    chunked.load_state_dict(full.state_dict())
    monkeypatch.setattr(loss_mod, "CHUNK_BYTES", 37 * VOCAB * 4)  # 37 tokens: 6 uneven chunks
    attach_loss(full, "full")
    attach_loss(chunked, "chunked")
    inputs, labels = batch()
    a = step_loss(full, inputs, labels)
    b = step_loss(chunked, inputs, labels)
    a.backward()
    b.backward()
    assert b.item() == pytest.approx(a.item(), rel=1e-6)
    for (name, p), (_, q) in zip(full.named_parameters(), chunked.named_parameters(),
                                 strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    # the loss is a sum over assistant tokens: the caller's normalisation stays as it was
    n = int((labels != IGNORE).sum())
    logits = full(**inputs).logits
    mean = torch.nn.functional.cross_entropy(logits[0], labels[0], ignore_index=IGNORE)
    assert a.item() / n == pytest.approx(mean.item(), rel=1e-6)


def test_chunked_function_matches_autograd_on_raw_tensors():
    torch.manual_seed(3)
    h = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(VOCAB // 64, 8, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, w.shape[0], (50,))
    ref = torch.nn.functional.cross_entropy(h @ w.T, t, reduction="sum")
    gh, gw = torch.autograd.grad(ref * 2.5, (h, w))
    out = ChunkedLinearCrossEntropy.apply(h, w, t, 7)
    ch, cw = torch.autograd.grad(out * 2.5, (h, w))
    assert out.item() == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(ch, gh)
    torch.testing.assert_close(cw, gw)
    with torch.no_grad():  # evaluation: no gradients computed or kept
        assert ChunkedLinearCrossEntropy.apply(h, w, t, 7).item() == pytest.approx(ref.item())


def test_bf16_autocast_stays_close_to_fp32():
    model = qwen()
    attach_loss(model, "chunked")
    inputs, labels = batch(120, 20)
    fp32 = step_loss(model, inputs, labels).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = step_loss(model, inputs, labels)
    low.backward()
    assert low.dtype == torch.float32 and low.item() == pytest.approx(fp32, rel=2e-2)
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())


def test_the_loss_is_chosen_per_model_and_device_and_refused_where_it_cannot_run():
    cpu = torch.device("cpu")
    assert choose_loss("auto", "qwen2", cpu) == ("chunked", "liger-kernel needs a GPU")
    assert choose_loss("chunked", "llama", cpu)[0] == "chunked"
    assert choose_loss("full", "qwen2", cpu) == ("full", "requested")
    impl, why = choose_loss("auto", "gemma2", cpu)  # logit softcapping: the head stays
    assert impl == "full" and "gemma2" in why
    with pytest.raises(ValueError, match="'liger' needs the liger-kernel package"):
        choose_loss("liger", "qwen2", cpu)
    with pytest.raises(ValueError, match="not available"):
        choose_loss("chunked", "gemma2", cpu)
    impl, why = choose_loss("auto", "qwen2", cpu, partitioned_head=True)
    assert impl == "full" and "ZeRO-3" in why


def test_llama_heads_work_too():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB // 8, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, intermediate_size=32,
                         use_cache=False)
    full, chunked = LlamaForCausalLM(config), LlamaForCausalLM(config)
    chunked.load_state_dict(full.state_dict())
    attach_loss(chunked, "chunked")
    inputs, labels = batch(80, 10)
    labels = labels.clamp(max=config.vocab_size - 1).masked_fill(labels == IGNORE, IGNORE)
    inputs["input_ids"] = inputs["input_ids"] % config.vocab_size
    ref = full_cross_entropy_sum(full(**inputs).logits, labels)
    assert step_loss(chunked, inputs, labels).item() == pytest.approx(ref.item(), rel=1e-6)
