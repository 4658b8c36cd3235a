"""Tokenization, assistant-only loss masks, packing without cross-contamination, bad input."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from longthought.io import write_table
from longthought.train.data import IGNORE, encode_chat, load_dataset
from longthought.train.packing import collate, model_inputs, training_attention
from longthought.train.synthetic import synthetic_dataset
from longthought.train.tokenizer import CHAT_TEMPLATE, IM_END, train_tiny_tokenizer


@pytest.fixture(scope="module")
def rows():
    return synthetic_dataset(40, seed=3, name="t")


@pytest.fixture(scope="module")
def tokenizer(rows, tmp_path_factory):
    texts = [json.loads(m)[-1]["content"] for m in rows["messages"]] + list(rows["problem"])
    tok = train_tiny_tokenizer(texts, 400)
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)  # what training uses: the reloaded tokenizer


def test_tiny_tokenizer_reloads_with_chat_template_and_single_digits(tokenizer):
    assert len(tokenizer) == 400
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert tokenizer.eos_token == IM_END and tokenizer.pad_token == "<|endoftext|>"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Compute $12 + 345$."}],
                                         tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nCompute $12 + 345$.<|im_end|>\n<|im_start|>assistant\n"
    pieces = [tokenizer.decode([i]) for i in tokenizer.encode("12345", add_special_tokens=False)]
    assert pieces == ["1", "2", "3", "4", "5"]
    odd = "naïve ∑ 😀"  # bytes never seen in training still round-trip
    assert tokenizer.decode(tokenizer.encode(odd, add_special_tokens=False)) == odd


def test_loss_only_on_assistant_tokens(tokenizer, rows):
    messages = json.loads(rows["messages"][0])
    enc = encode_chat(tokenizer, messages, 1024)
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False,
                                           add_generation_prompt=True)
    n_prompt = len(tokenizer.encode(prompt, add_special_tokens=False))
    # the model sees exactly the inference-time prompt tokens first
    assert tokenizer.decode(enc.input_ids[:n_prompt]) == prompt
    # labels are next tokens; they cover the assistant text and its end-of-turn token, nothing else
    target = enc.labels[enc.labels != IGNORE]
    assert tokenizer.decode(target) == messages[1]["content"] + IM_END + "\n"
    assert (enc.labels[: n_prompt - 1] == IGNORE).all()
    assert enc.labels[-1] == IGNORE and not enc.truncated
    shifted = enc.labels[:-1] != IGNORE
    assert (enc.labels[:-1][shifted] == enc.input_ids[1:][shifted]).all()


def test_multi_turn_system_and_two_assistant_turns(tokenizer):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"},
            {"role": "assistant", "content": "2"}, {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"}]
    enc = encode_chat(tokenizer, msgs, 1024)
    target = tokenizer.decode(enc.labels[enc.labels != IGNORE])
    assert target == f"2{IM_END}\n4{IM_END}\n"


def test_long_samples_truncate_but_a_long_prompt_is_an_error(tokenizer, rows, tmp_path):
    messages = json.loads(rows["messages"][1])
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False,
                                           add_generation_prompt=True)
    n_prompt = len(tokenizer.encode(prompt, add_special_tokens=False))
    enc = encode_chat(tokenizer, messages, n_prompt + 5)
    assert len(enc.input_ids) == n_prompt + 5 and enc.truncated
    assert (enc.labels != IGNORE).sum() == 5  # the 5 assistant tokens that fit
    bad = rows.copy()
    bad.loc[2, "messages"] = json.dumps([{"role": "user", "content": "Compute $1 + 2$. " * 40},
                                         {"role": "assistant", "content": "3"}])
    path = tmp_path / "d.parquet"
    write_table(bad, path, "dataset")
    with pytest.raises(ValueError, match=r"d\.parquet: row 3 \(sample_id 't/.*'\): the prompt is "
                                         r"\d+ tokens, longer than max_length 64"):
        load_dataset(path, tokenizer, 64)


def test_zero_rows_and_malformed_messages_are_clear_errors(tokenizer, rows, tmp_path):
    empty = tmp_path / "empty.parquet"
    write_table(rows.iloc[:0], empty, "dataset")
    with pytest.raises(ValueError, match=r"empty\.parquet: dataset has zero rows"):
        load_dataset(empty, tokenizer, 512)
    bad = rows.copy()
    bad.loc[5, "messages"] = "{not json"
    path = tmp_path / "bad.parquet"
    write_table(bad, path, "dataset")
    with pytest.raises(ValueError, match=r"bad\.parquet: row 6 .*'messages' is not valid JSON"):
        load_dataset(path, tokenizer, 512)
    bad.loc[5, "messages"] = json.dumps([{"role": "user", "content": "hi"}])
    write_table(bad, path, "dataset")
    with pytest.raises(ValueError, match=r"row 6 .*no assistant turn"):
        load_dataset(path, tokenizer, 512)


def test_collate_packs_one_unpadded_row_with_restarting_positions(tokenizer, rows):
    samples = [encode_chat(tokenizer, json.loads(m), 512) for m in rows["messages"][:3]]
    n = [len(s.input_ids) for s in samples]
    b = collate(samples, True, tokenizer.pad_token_id)
    assert b["input_ids"].shape == (1, sum(n)) and b["n_tokens"] == b["n_slots"] == sum(n)
    assert b["cu_seq_lens_q"].tolist() == [0, n[0], n[0] + n[1], sum(n)]
    assert b["position_ids"][0].tolist() == [*range(n[0]), *range(n[1]), *range(n[2])]
    assert b["max_length_q"] == max(n)
    u = collate(samples, False, tokenizer.pad_token_id)
    assert u["input_ids"].shape == (3, max(n)) and u["n_slots"] == 3 * max(n)
    assert (u["labels"][0, n[0]:] == IGNORE).all() and (u["input_ids"][0, n[0]:] == 0).all()


@pytest.mark.parametrize("attn", ["sdpa", "eager",
                                  pytest.param("flex_attention", marks=pytest.mark.slow)])
def test_packed_loss_equals_unpacked_loss(tokenizer, rows, attn):
    """(flex_attention: the GPU path without flash-attn; on the CPU it runs forward only, and
    compiling its kernel takes ~30 s, hence slow.)"""
    samples = [encode_chat(tokenizer, json.loads(m), 512) for m in rows["messages"][:12]]
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
                         max_position_embeddings=1024, use_cache=False)  # as in training
    config._attn_implementation = training_attention(attn)
    model = Qwen2ForCausalLM(config).eval()

    def mean_loss(b: dict) -> float:
        with torch.no_grad():
            logits = model(**model_inputs(b, config._attn_implementation)).logits
        total = F.cross_entropy(logits.flatten(0, 1), b["labels"].flatten(), reduction="sum")
        return total.item() / int((b["labels"] != IGNORE).sum())

    packed = collate(samples, True, tokenizer.pad_token_id)
    unpacked = collate(samples, False, tokenizer.pad_token_id)
    assert packed["input_ids"].shape[0] == 1 and unpacked["input_ids"].shape[0] == 12
    assert mean_loss(packed) == pytest.approx(mean_loss(unpacked), rel=1e-5)
    # the same row attended as one sequence (no boundaries, no restarts) is another computation:
    # the logits of every sample after the first change. (Compared on logits, not the mean loss:
    # an untrained model attends almost uniformly, so leakage moves the mean loss only ~1e-5.)
    leaky = {**packed, "position_ids": torch.arange(packed["n_tokens"])[None]}
    with torch.no_grad():
        fair = model(**model_inputs(packed, config._attn_implementation)).logits
        bled = model(input_ids=leaky["input_ids"], position_ids=leaky["position_ids"]).logits
    second = slice(len(samples[0].input_ids), None)
    assert (fair[0, second] - bled[0, second]).abs().max().item() > 1e-2


def test_attention_is_chosen_per_device_and_never_silently(monkeypatch):
    import importlib.util

    from longthought.train import packing

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    real = importlib.util.find_spec
    installed: set[str] = set()

    def find_spec(name, *args):  # flash-attn is "installed" exactly when named in `installed`
        if name in packing.FLASH_MODULES.values():
            return object() if name in installed else None
        return real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert packing.choose_attention("auto", cpu) == ("sdpa", "the CPU: causal sdpa per "
                                                             "packed sample")
    assert packing.choose_attention("auto", gpu)[0] == "flex_attention"
    impl, why = packing.choose_attention("flash_attention_2", gpu)
    assert impl == "flex_attention" and why.startswith("flash_attention_2 needs the flash_attn")
    impl, why = packing.choose_attention("flex_attention", cpu)
    assert impl == "sdpa" and "no backward pass on the CPU" in why
    assert "auto would pick" in packing.choose_attention("sdpa", gpu)[1]
    installed.add("flash_attn")
    assert packing.choose_attention("auto", gpu)[0] == "flash_attention_2"
    assert packing.choose_attention("flash_attention_2", gpu)[0] == "flash_attention_2"
    assert packing.choose_attention("flash_attention_2", cpu)[0] == "sdpa"
    assert packing.choose_attention("eager", gpu)[0] == "eager"


def test_each_attention_gets_the_sample_bounds_in_its_own_form(tokenizer, rows):
    from longthought.train.packing import VARLEN, model_inputs

    samples = [encode_chat(tokenizer, json.loads(m), 512) for m in rows["messages"][:3]]
    b = collate(samples, True, tokenizer.pad_token_id)
    assert b["packed_bounds"] == tuple(b["cu_seq_lens_q"].tolist())  # plain ints, once per batch
    assert set(model_inputs(b, VARLEN)) == {"input_ids", "position_ids", "packed_bounds"}
    assert set(model_inputs(b, "flash_attention_2")) == {
        "input_ids", "position_ids", "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q",
        "max_length_k"}
    assert set(model_inputs(b, "flex_attention")) == set(model_inputs(b, "eager")) == {
        "input_ids", "position_ids"}  # transformers masks by the restarting positions
    u = collate(samples, False, tokenizer.pad_token_id)
    assert set(model_inputs(u, VARLEN)) == {"input_ids", "position_ids"}
