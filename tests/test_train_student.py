"""`longthought init-student`: the tiny student built and reloaded, pointers for base models."""

from __future__ import annotations

import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from longthought.cli import main
from longthought.io import write_table
from longthought.train import student as student_mod
from longthought.train.student import INIT_POINTER, classify_base_model, resolve_model_path
from longthought.train.synthetic import synthetic_dataset, traces_from_dataset

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
        "intermediate_size": 64, "vocab_size": 300, "tokenizer_tasks": ["distill-arith"]}


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    path = tmp_path_factory.mktemp("traces") / "distill-arith.parquet"
    write_table(traces_from_dataset(synthetic_dataset(30, seed=5)), path, "traces")
    return path


def spec(base: str = "tiny") -> str:
    return json.dumps({"base_model": base, "tiny": TINY, "stages": []})


def test_init_tiny_student_saves_and_reloads(traces, tmp_path):
    out = tmp_path / "models" / "tiny@init"
    rc = main(["init-student", "--student", "tiny", "--spec", spec(), "--traces", str(traces),
               "--out", str(out)])
    assert rc == 0
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == "qwen2" and model.config.hidden_size == 32
    assert model.config.num_hidden_layers == 2 and model.config.vocab_size == len(tok) == 300
    assert model.config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True).endswith("<|im_start|>assistant\n")
    assert resolve_model_path(out) == str(out)
    assert not list(out.parent.glob(".tiny@init.*"))  # no temp dirs left behind
    # the tokenizer learned merges from the traces, and the Auto class reloads the same pipeline
    from tokenizers import Tokenizer

    line = "Let me work through this step by step: 12 + 345 = 357. naïve 😀"
    ids = tok.encode(line, add_special_tokens=False)
    assert len(ids) < len(line.encode())
    assert ids == Tokenizer.from_file(str(out / "tokenizer.json")).encode(line).ids


def test_hub_id_is_recorded_not_downloaded(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    out = tmp_path / "qwen@init"
    assert main(["init-student", "--student", "qwen", "--spec", spec("Qwen/Qwen2.5-0.5B-Instruct"),
                 "--out", str(out)]) == 0
    info = json.loads((out / INIT_POINTER).read_text())
    assert info["kind"] == "hub" and info["path"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert sorted(p.name for p in out.iterdir()) == [INIT_POINTER]  # no weights copied
    assert resolve_model_path(out) == "Qwen/Qwen2.5-0.5B-Instruct"
    # offline, an uncached hub id fails now rather than in the GPU job
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="not in the local Hugging Face cache"):
        student_mod.init_student("qwen", json.loads(spec("nobody/not-cached-model")), [],
                                 tmp_path / "x")


def test_local_path_points_at_the_model(traces, tmp_path):
    base = tmp_path / "base"
    student_mod.init_student("tiny", json.loads(spec()), [str(traces)], base)
    out = tmp_path / "local@init"
    assert main(["init-student", "--student", "local", "--spec", spec(str(base)),
                 "--out", str(out)]) == 0
    assert resolve_model_path(out) == str(base.resolve())


def test_unknown_base_model_path_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    rc = main(["init-student", "--student", "s", "--spec", spec(str(missing)),
               "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "students.s.base_model" in err and "does not exist" in err and str(missing) in err
    assert not (tmp_path / "o").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no config.json"):
        student_mod.init_student("s", json.loads(spec(str(tmp_path / "empty"))), [],
                                 tmp_path / "o")


def test_classify_base_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    assert classify_base_model("tiny") == "tiny"
    assert classify_base_model("Qwen/Qwen2.5-Math-7B-Instruct") == "hub"
    assert classify_base_model("results/missing") == "local"  # first part is a local dir
    assert classify_base_model("./model") == "local"
    assert classify_base_model("a/b/c") == "local"
    assert classify_base_model("gpt2") == "hub"  # legacy ids have no org
    with pytest.raises(ValueError, match="neither 'tiny'"):
        classify_base_model("not a model!")


def test_tiny_without_traces_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="needs --traces"):
        student_mod.init_student("tiny", json.loads(spec()), [], tmp_path / "o")
