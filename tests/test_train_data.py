"""Tokenization, assistant-only loss masks, packing without cross-contamination, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from longthought.io import write_table
from longthought.train.data import IGNORE, encode_chat, load_dataset
from longthought.train.packing import block_causal_mask, collate, pack_rows
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
    with pytest.raises(ValueError, match=r"d\.parquet: row 2 \(sample_id 't/.*'\): the prompt is "
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
    with pytest.raises(ValueError, match=r"bad\.parquet: row 5 .*'messages' is not valid JSON"):
        load_dataset(path, tokenizer, 512)
    bad.loc[5, "messages"] = json.dumps([{"role": "user", "content": "hi"}])
    write_table(bad, path, "dataset")
    with pytest.raises(ValueError, match=r"row 5 .*no assistant turn"):
        load_dataset(path, tokenizer, 512)


def test_pack_rows_fills_rows_evenly_within_capacity():
    rng = np.random.default_rng(0)
    lengths = rng.integers(40, 200, size=64).tolist()
    rows = pack_rows(lengths, 512)
    assert sorted(i for row in rows for i in row) == list(range(64))
    widths = [sum(lengths[i] for i in row) for row in rows]
    assert max(widths) <= 512
    assert sum(lengths) / (len(rows) * max(widths)) > 0.95
    with pytest.raises(ValueError, match="exceeds the row capacity"):
        pack_rows([600], 512)


def test_block_causal_mask_keeps_samples_apart():
    segment = torch.tensor([[1, 1, 2, 2, 2, 0]])
    m = block_causal_mask(segment)[0, 0]
    expect = torch.tensor([[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0],
                           [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1]]).bool()
    assert torch.equal(m, expect)
    additive = block_causal_mask(segment, "eager")[0, 0]
    assert (additive[expect] == 0).all() and (additive[~expect] < -1e30).all()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_loss_equals_unpacked_loss(tokenizer, rows, attn):
    samples = [encode_chat(tokenizer, json.loads(m), 512) for m in rows["messages"][:12]]
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
                         max_position_embeddings=1024)
    config._attn_implementation = attn
    model = Qwen2ForCausalLM(config).eval()

    def mean_loss(packing: bool) -> tuple[float, int]:
        b = collate(samples, packing, 512, tokenizer.pad_token_id, attn)
        assert int(b["n_tokens"]) == sum(len(s.input_ids) for s in samples)
        with torch.no_grad():
            logits = model(input_ids=b["input_ids"], position_ids=b["position_ids"],
                           attention_mask=b["attention_mask"]).logits
        total = F.cross_entropy(logits.flatten(0, 1), b["labels"].flatten(), reduction="sum")
        count = int((b["labels"] != IGNORE).sum())
        return total.item() / count, b["input_ids"].shape[0]

    packed, packed_rows = mean_loss(True)
    unpacked, unpacked_rows = mean_loss(False)
    assert packed_rows < unpacked_rows == 12  # it really packed
    assert packed == pytest.approx(unpacked, rel=1e-5)
    # and packing without the mask would be contaminated: the loss changes
    b = collate(samples, True, 512, tokenizer.pad_token_id, attn)
    with torch.no_grad():
        leaky = model(input_ids=b["input_ids"]).logits
    leaky_loss = F.cross_entropy(leaky.flatten(0, 1), b["labels"].flatten(), reduction="sum")
    assert leaky_loss.item() / int((b["labels"] != IGNORE).sum()) != pytest.approx(packed, rel=1e-4)
