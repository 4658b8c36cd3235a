"""Tokenize once: a content-addressed, memory-mapped int32 cache beside the dataset, equal to
tokenizing each row, shared by every stage length and every resume, rebuilt only on change."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from transformers import AutoTokenizer

from longthought.io import read_table, write_table
from longthought.train import data as data_mod
from longthought.train.data import IGNORE, encode_chat, load_dataset
from longthought.train.synthetic import synthetic_dataset
from longthought.train.tokencache import cache_root, tokenize_dataset
from longthought.train.tokenizer import train_tiny_tokenizer


@pytest.fixture(scope="module")
def rows():
    return synthetic_dataset(30, seed=4, name="c")


@pytest.fixture(scope="module")
def tokenizer(rows, tmp_path_factory):
    texts = [json.loads(m)[-1]["content"] for m in rows["messages"]] + list(rows["problem"])
    path = tmp_path_factory.mktemp("tok")
    train_tiny_tokenizer(texts, 400).save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def test_cache_equals_per_row_tokenization_and_is_reused(rows, tokenizer, tmp_path,
                                                         monkeypatch, capsys):
    path = tmp_path / "d.parquet"
    write_table(rows, path, "dataset")
    ds = load_dataset(path, tokenizer, 512)
    assert "tokenized 30 rows" in capsys.readouterr().out
    entries = list(cache_root(path).iterdir())
    assert len(entries) == 1 and (entries[0] / "meta.json").is_file()
    assert isinstance(ds.tokens.ids, np.memmap) and ds.tokens.ids.dtype == np.int32
    for i, messages in enumerate(rows["messages"]):
        ref = encode_chat(tokenizer, json.loads(messages), 512)
        got = ds[i]
        assert got.input_ids.tolist() == ref.input_ids.tolist()
        assert got.labels.tolist() == ref.labels.tolist()
        assert ds.n_labels[i] == ref.n_labels and ds.lengths[i] == len(ref.input_ids)

    # a second load (another rank, a resume, another stage's max_length) tokenizes nothing
    ref = encode_chat(tokenizer, json.loads(rows["messages"][0]), 40)

    def no_tokenizing(*a, **k):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(data_mod, "render_parts", no_tokenizing)
    short = load_dataset(path, tokenizer, 40)
    assert capsys.readouterr().out == ""
    assert short[0].input_ids.tolist() == ref.input_ids.tolist() and short.truncated.all()
    assert short.n_labels[0] == ref.n_labels == (ref.labels != IGNORE).sum()
    with pytest.raises(ValueError, match=r"d\.parquet: row \d+ \(sample_id 'c/.*'\): the prompt "
                                         r"is \d+ tokens, longer than max_length 8"):
        load_dataset(path, tokenizer, 8)


def test_a_changed_dataset_or_tokenizer_is_a_new_entry_and_stale_ones_go(rows, tokenizer,
                                                                         tmp_path):
    path = tmp_path / "d.parquet"
    write_table(rows, path, "dataset")
    first = tokenize_dataset(path, tokenizer).where
    other_tok = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    other_tok.chat_template = tokenizer.chat_template.replace("'\\n'", "'\\n\\n'")
    second = tokenize_dataset(path, other_tok).where
    assert second != first and os.path.isdir(first)  # other tokenizer: both stay
    write_table(rows.iloc[:10], path, "dataset")  # the dataset changes
    third = tokenize_dataset(path, tokenizer)
    assert len(third.offsets) == 11 and third.where not in (first, second)
    assert [p.name for p in cache_root(path).iterdir()] == [os.path.basename(third.where)]


def test_unwritable_directory_tokenizes_in_memory(rows, tokenizer, tmp_path, monkeypatch,
                                                  capsys):
    path = tmp_path / "d.parquet"
    write_table(rows.iloc[:5], path, "dataset")
    real_mkdir = type(path).mkdir

    def read_only(self, *a, **k):
        if self.name.endswith(".tokens"):
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(type(path), "mkdir", read_only)
    ds = load_dataset(path, tokenizer, 512)
    assert "cannot write a token cache" in capsys.readouterr().out
    assert len(ds) == 5 and ds.tokens.where == "" and not cache_root(path).exists()
    assert ds[4].input_ids.tolist() == encode_chat(
        tokenizer, json.loads(rows["messages"][4]), 512).input_ids.tolist()


def test_bad_rows_fail_before_anything_is_cached(rows, tokenizer, tmp_path):
    bad = rows.copy()
    bad.loc[7, "messages"] = json.dumps([{"role": "user", "content": "hi"}])
    path = tmp_path / "bad.parquet"
    write_table(bad, path, "dataset")
    with pytest.raises(ValueError, match=r"bad\.parquet: row 8 .*no assistant turn"):
        load_dataset(path, tokenizer, 512)
    assert not any(p for p in cache_root(path).iterdir() if not p.name.startswith("."))
    assert read_table(path, "dataset").shape[0] == 30
