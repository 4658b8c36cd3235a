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


def fake_hub_cache(root, repo_id: str, model_dir, commit: str = "a" * 40,
                   branch: str = "main"):
    """`root` laid out as a Hugging Face hub cache holding `model_dir` as `repo_id`@`commit`,
    with `branch` pointing at it (what snapshot_download leaves behind)."""
    import shutil

    repo = root / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / branch).write_text(commit)
    return repo / "snapshots" / commit


@pytest.fixture(scope="module")
def tiny_model(traces, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "model"
    student_mod.init_student("tiny", json.loads(spec()), [str(traces)], out)
    return out


def test_hub_id_is_pinned_to_a_commit_and_loaded_from_the_snapshot(tiny_model, tmp_path,
                                                                   monkeypatch, capsys):
    from huggingface_hub import constants

    from longthought.evaluate.hf_backend import model_path

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no network here: the cache path
    hub = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = fake_hub_cache(hub, "org/tiny-chat", tiny_model, commit)
    fake_hub_cache(hub, "org/tiny-chat", tiny_model, "f" * 40, branch="v2")
    out = tmp_path / "pinned@init"
    pinned = {**json.loads(spec("org/tiny-chat")), "snapshot_dir": str(hub)}
    assert main(["init-student", "--student", "pinned", "--spec", json.dumps(pinned),
                 "--out", str(out)]) == 0
    assert f"org/tiny-chat@main pinned to commit {commit}" in capsys.readouterr().out
    info = json.loads((out / INIT_POINTER).read_text())
    assert info["kind"] == "hub" and info["commit"] == commit and info["revision"] == "main"
    assert info["path"] == str(snap)
    assert sorted(p.name for p in out.iterdir()) == [INIT_POINTER]  # no weights copied
    assert resolve_model_path(out) == str(snap.resolve()) == model_path({"path": str(out)})
    assert student_mod.init_info(out)["commit"] == commit
    # a tag or branch is resolved to its own commit; an unknown one or repo fails clearly
    student_mod.init_student("pinned", {**pinned, "revision": "v2"}, [], tmp_path / "v2")
    assert student_mod.init_info(tmp_path / "v2")["commit"] == "f" * 40
    with pytest.raises(ValueError, match=r"students\.pinned\.base_model: hub model "
                                         r"'org/tiny-chat' at revision 'v9' is not available "
                                         r"\(HF_HUB_OFFLINE is set"):
        student_mod.init_student("pinned", {**pinned, "revision": "v9"}, [], tmp_path / "v9")
    with pytest.raises(ValueError, match="'nobody/missing' at revision 'main' is not available"):
        student_mod.init_student("pinned", {**pinned, "base_model": "nobody/missing"}, [],
                                 tmp_path / "x")
    # a compute node that does not share the snapshot directory fails before any GPU work
    import shutil

    shutil.rmtree(hub)
    with pytest.raises(ValueError, match=f"pinned snapshot of org/tiny-chat at commit {commit}"):
        resolve_model_path(out)


def test_online_pinning_resolves_first_then_downloads_that_commit(tiny_model, tmp_path,
                                                                  monkeypatch):
    """The online path, with the hub client's two calls replaced (no network in tests): the
    revision is resolved to a commit and exactly that commit is downloaded, without the
    .bin copies of safetensors weights."""
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    commit = "c" * 40
    calls = []

    class Info:
        sha = commit
        siblings = [type("S", (), {"rfilename": n})() for n in
                    ("config.json", "model.safetensors", "pytorch_model.bin")]

    def model_info(self, repo_id, revision=None, **kw):
        calls.append(("info", repo_id, revision))
        return Info()

    def snapshot_download(repo_id, revision=None, cache_dir=None, ignore_patterns=None, **kw):
        calls.append(("download", repo_id, revision, "*.bin" in ignore_patterns))
        return str(fake_hub_cache(tmp_path / "hub", repo_id, tiny_model, revision))

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    path, got = student_mod.pin_hub_model("org/m", "main", tmp_path / "hub")
    assert got == commit and path.endswith(commit)
    assert calls == [("info", "org/m", "main"), ("download", "org/m", commit, True)]


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


def test_training_from_a_pinned_snapshot_records_its_commit(tiny_model, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from longthought.train import loop

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    commit = "9" * 40
    fake_hub_cache(tmp_path / "hub", "org/tiny-chat", tiny_model, commit)
    student = {**json.loads(spec("org/tiny-chat")), "snapshot_dir": str(tmp_path / "hub"),
               "checkpoint_every": 0,
               "stages": [{"dataset": "d", "lr": 1e-3, "max_steps": 1, "batch_size": 4,
                           "max_length": 512}]}
    init = student_mod.init_student("s", student, [], tmp_path / "s@init")
    data = tmp_path / "d.parquet"
    write_table(synthetic_dataset(8, seed=6, name="d"), data, "dataset")
    out = loop.train("s", student, str(init), [str(data)], str(tmp_path / "s"))
    hp = json.loads((out / loop.HPARAMS_FILE).read_text())
    assert hp["base_model"] == "org/tiny-chat" and hp["base_model_commit"] == commit
    assert hp["init_path"].endswith(commit) and hp["base_model_revision"] == "main"
