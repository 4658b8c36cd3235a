"""`longthought train`: staged SFT end to end, resume after a crash, accumulation, bad input."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from longthought.cli import main
from longthought.io import read_table, write_table
from longthought.train import loop
from longthought.train.student import init_student
from longthought.train.synthetic import synthetic_dataset, traces_from_dataset

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
        "intermediate_size": 64, "vocab_size": 320}


def stage(dataset: str, **kw) -> dict:
    base = {"dataset": dataset, "lr": 1e-2, "schedule": "cosine", "warmup_ratio": 0.2,
            "epochs": 1, "max_steps": None, "batch_size": 4, "grad_accum": 1, "max_length": 512,
            "packing": True, "weight_decay": 0.01, "seed": 1}
    return {**base, **kw}


def make_spec(stages: list[dict], **kw) -> dict:
    return {"base_model": "tiny", "tiny": TINY, "precision": "fp32",
            "gradient_checkpointing": False, "attn_implementation": "sdpa",
            "checkpoint_every": 0, "accelerate_config": None, "stages": stages, **kw}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    fmt = synthetic_dataset(24, seed=1, style="format", name="format-arith")
    think = synthetic_dataset(24, seed=2, name="longthought-arith")
    write_table(fmt, root / "format.parquet", "dataset")
    write_table(think, root / "think.parquet", "dataset")
    write_table(traces_from_dataset(think), root / "traces.parquet", "traces")
    init_student("tiny", make_spec([]), [str(root / "traces.parquet")], root / "tiny@init")
    return root


def run(world: Path, spec: dict, out: str) -> Path:
    return loop.train("tiny", spec, str(world / "tiny@init"),
                      [str(world / "format.parquet"), str(world / "think.parquet")],
                      str(world / out))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def test_two_stages_write_model_log_and_hparams(world):
    spec = make_spec([stage("format-arith", max_steps=3), stage("longthought-arith", epochs=2)])
    out = run(world, spec, "m1")
    model = AutoModelForCausalLM.from_pretrained(out)
    init = AutoModelForCausalLM.from_pretrained(world / "tiny@init")
    moved = [not torch.equal(a, b) for a, b in zip(model.parameters(), init.parameters(),
                                                  strict=True)]
    assert all(moved)
    log = read_table(out / loop.LOG_FILE, "train_log")
    assert log["stage"].tolist() == [0] * 3 + [1] * 12  # 24 samples x 2 epochs / 4 per step
    assert log["step"].tolist() == list(range(1, 16))
    assert log["dataset"].iloc[-1] == "longthought-arith" and log["epoch"].iloc[-1] == 2.0
    assert (log["tokens"] > 0).all() and log["mem_mb"].isna().all()
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]
    hp = json.loads((out / loop.HPARAMS_FILE).read_text())
    assert [s["steps"] for s in hp["stages"]] == [3, 12]
    assert hp["stages"][1]["warmup_steps"] == 2 and hp["base_model"] == "tiny"
    assert {"torch", "transformers", "accelerate"} <= set(hp["packages"])
    assert hp["optimizer"].startswith("AdamW (fused)")  # one process, no sharding: fused
    assert not Path(f"{out}.ckpt").exists() and not (world / ".m1.tmp").exists()


def test_resume_after_a_crash_matches_a_straight_run(world, monkeypatch, capsys):
    spec = make_spec([stage("format-arith", max_steps=4), stage("longthought-arith", max_steps=6)],
                     checkpoint_every=5)
    straight = run(world, spec, "straight")

    real_lr_at = loop.lr_at
    calls = []

    def crash_at_global_step_8(st, step, steps):
        calls.append(step)
        if st.dataset == "longthought-arith" and step == 3:
            raise RuntimeError("preempted")
        return real_lr_at(st, step, steps)

    monkeypatch.setattr(loop, "lr_at", crash_at_global_step_8)
    with pytest.raises(RuntimeError, match="preempted"):
        run(world, spec, "resumed")
    assert not (world / "resumed").exists()  # a half-trained model is never the output
    ckpts = sorted(p.name for p in (world / "resumed.ckpt").glob("step-*"))
    assert ckpts == ["step-00000005"]

    calls.clear()
    monkeypatch.setattr(loop, "lr_at", lambda st, step, steps: calls.append(step)
                        or real_lr_at(st, step, steps))
    resumed = run(world, spec, "resumed")
    assert calls == [1, 2, 3, 4, 5]  # stage 2 from its 2nd step: only the lost steps re-ran
    assert "resuming at stage 1, step 1 (global step 5)" in capsys.readouterr().out

    a, b = weights(straight), weights(resumed)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    la = read_table(straight / loop.LOG_FILE, "train_log")
    lb = read_table(resumed / loop.LOG_FILE, "train_log")
    assert la["step"].tolist() == lb["step"].tolist() == list(range(1, 11))
    assert la["loss"].tolist() == pytest.approx(lb["loss"].tolist(), rel=1e-5)
    assert la["lr"].tolist() == pytest.approx(lb["lr"].tolist())
    assert not (world / "resumed.ckpt").exists()

    # SLURM preemption: SIGTERM mid-step -> the step finishes, is checkpointed, the job exits
    def sigterm_at_global_step_3(st, step, steps):
        if st.dataset == "format-arith" and step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_lr_at(st, step, steps)

    monkeypatch.setattr(loop, "lr_at", sigterm_at_global_step_3)
    with pytest.raises(SystemExit) as exit_info:
        run(world, spec, "preempted")
    assert exit_info.value.code == 143 and not (world / "preempted").exists()
    assert [p.name for p in (world / "preempted.ckpt").glob("step-*")] == ["step-00000003"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    monkeypatch.setattr(loop, "lr_at", real_lr_at)
    preempted = run(world, spec, "preempted")
    c = weights(preempted)
    for name in a:
        torch.testing.assert_close(a[name], c[name], rtol=1e-5, atol=1e-6)


def test_accumulation_and_packing_do_not_change_the_optimisation(world):
    """4 samples x 2 micro-steps packed == 8 samples x 1 step unpacked: same loss, same weights."""
    a = run(world, make_spec([stage("format-arith", max_steps=2, batch_size=4, grad_accum=2),
                              stage("longthought-arith", max_steps=2, batch_size=4,
                                    grad_accum=2)]), "accum")
    b = run(world, make_spec([stage("format-arith", max_steps=2, batch_size=8, packing=False),
                              stage("longthought-arith", max_steps=2, batch_size=8,
                                    packing=False)]), "plain")
    la = read_table(a / loop.LOG_FILE, "train_log")
    lb = read_table(b / loop.LOG_FILE, "train_log")
    assert la["loss"].tolist() == pytest.approx(lb["loss"].tolist(), rel=1e-5)
    assert la["tokens"].tolist() == lb["tokens"].tolist()
    wa, wb = weights(a), weights(b)
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-3, atol=1e-4)  # Adam: ~1e-2 steps


def test_bad_input_fails_before_training(world, tmp_path, capsys):
    spec = make_spec([stage("format-arith", max_steps=1), stage("longthought-arith", max_steps=1)])
    empty = tmp_path / "empty.parquet"
    write_table(read_table(world / "think.parquet", "dataset").iloc[:0], empty, "dataset")

    def cli(datasets: list[str], spec: dict = spec, init: str = str(world / "tiny@init")) -> str:
        rc = main(["train", "--student", "tiny", "--spec", json.dumps(spec), "--init", init,
                   "--datasets", *datasets, "--out", str(tmp_path / "out")])
        assert rc == 2
        return capsys.readouterr().err

    fmt = str(world / "format.parquet")
    assert "empty.parquet: dataset has zero rows" in cli([fmt, str(empty)])
    short = make_spec([stage("format-arith", max_length=8), stage("longthought-arith")])
    err = cli([fmt, fmt], short)
    assert "format.parquet: row 1 (sample_id 'format-arith/" in err and "max_length 8" in err
    assert "2 stages need 2 datasets" in cli([fmt])
    assert "neither a model directory" in cli([fmt, fmt], init=str(tmp_path / "nope"))
    bad = make_spec([stage("format-arith", schedule="step"), stage("longthought-arith")])
    assert "students.tiny.stages[0].schedule must be one of" in cli([fmt, fmt], bad)
    assert not (tmp_path / "out").exists()


def test_token_budget_steps_resume_exactly_and_say_what_ran(world, monkeypatch, capsys):
    """Micro-batches by token budget: each within budget, and 'resume = straight' still holds
    (the plan is a pure function of the step); attention and loss choices are logged."""
    spec = make_spec([stage("format-arith", max_steps=2),
                      stage("longthought-arith", epochs=2, grad_accum=2,
                            max_tokens_per_batch=1024)], checkpoint_every=3)
    straight = run(world, spec, "tok_straight")
    out = capsys.readouterr().out
    assert "[train] attention: sdpa (requested: causal sdpa per packed sample)" in out
    assert "[train] cross-entropy: chunked (liger-kernel needs a GPU)" in out
    hp = json.loads((straight / loop.HPARAMS_FILE).read_text())
    assert hp["cross_entropy_used"] == "chunked" and hp["attn_implementation_used"] == "sdpa"
    assert all(c and Path(c).is_dir() for c in hp["token_caches"])
    assert hp["stages"][1]["samples_per_step"] is None
    log = read_table(straight / loop.LOG_FILE, "train_log")
    tokens = log[log["stage"] == 1]["tokens"]
    assert len(tokens) == hp["stages"][1]["steps"] >= 3
    assert (tokens <= 2 * 1024).all()
    assert (tokens > 2 * 1024 * 0.8).sum() >= len(tokens) - 2  # one part-filled bin per epoch
    assert log["epoch"].iloc[-1] == pytest.approx(2.0, abs=0.35)

    real_lr_at = loop.lr_at

    def crash(st, step, steps):
        if st.dataset == "longthought-arith" and step == 2:
            raise RuntimeError("preempted")
        return real_lr_at(st, step, steps)

    monkeypatch.setattr(loop, "lr_at", crash)
    with pytest.raises(RuntimeError, match="preempted"):
        run(world, spec, "tok_resumed")
    monkeypatch.setattr(loop, "lr_at", real_lr_at)
    resumed = run(world, spec, "tok_resumed")
    assert "resuming at stage 1, step 1 (global step 3)" in capsys.readouterr().out
    a, b = weights(straight), weights(resumed)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    lb = read_table(resumed / loop.LOG_FILE, "train_log")
    assert log["tokens"].tolist() == lb["tokens"].tolist()
    assert log["loss"].tolist() == pytest.approx(lb["loss"].tolist(), rel=1e-5)
