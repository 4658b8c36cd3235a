"""Mixed precision and memory switches on the CPU, on a hub-shaped student: bf16 autocast,
gradient checkpointing, attention choices that fall back with a clear reason, and the chunked
loss's fallback when the head's weight is still sharded."""

from __future__ import annotations

import json
from pathlib import Path

import hub_models
import pytest
import torch
from safetensors.torch import load_file

from longthought.evaluate.hf_backend import generation_attention
from longthought.io import read_table, write_table
from longthought.train import loop
from longthought.train.loss import head_cross_entropy_sum, is_sharded, linear_cross_entropy_sum
from longthought.train.synthetic import synthetic_dataset


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("precision")
    hub_models.qwen25(root / "qwen")
    write_table(synthetic_dataset(16, seed=3, name="d"), root / "d.parquet", "dataset")
    return root


def _run(world: Path, out: str, **kw) -> Path:
    spec = {"base_model": str(world / "qwen"), "precision": "fp32", "checkpoint_every": 0,
            "attn_implementation": "sdpa", **kw,
            "stages": [{"dataset": "d", "lr": 1e-3, "schedule": "constant", "max_steps": 3,
                        "batch_size": 4, "max_length": 512, "seed": 1}]}
    return loop.train("s", spec, str(world / "qwen"), [str(world / "d.parquet")],
                      str(world / out))


def _loss(out: Path) -> list[float]:
    return read_table(out / loop.LOG_FILE, "train_log")["loss"].tolist()


@pytest.fixture(scope="module")
def fp32(world) -> Path:
    return _run(world, "fp32")


def test_bf16_autocast_trains_with_fp32_master_weights(world, fp32):
    out = _run(world, "bf16", precision="bf16")
    hp = json.loads((out / loop.HPARAMS_FILE).read_text())
    assert hp["precision"] == "bf16"
    a, b = _loss(fp32), _loss(out)
    assert all(torch.isfinite(torch.tensor(b)))
    assert b[0] == pytest.approx(a[0], rel=0.02)  # bf16 matmuls, fp32 softmax and loss
    assert b != a  # autocast really ran
    weights = load_file(out / "model.safetensors")
    assert all(w.dtype == torch.float32 for w in weights.values())  # the optimizer's copy


def test_gradient_checkpointing_changes_memory_not_the_result(world, fp32):
    out = _run(world, "ckpt", gradient_checkpointing=True)
    assert json.loads((out / loop.HPARAMS_FILE).read_text())["gradient_checkpointing"] is True
    assert _loss(out) == pytest.approx(_loss(fp32), rel=1e-5)
    wa, wb = load_file(fp32 / "model.safetensors"), load_file(out / "model.safetensors")
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("requested,reason", [
    ("flash_attention_2", "flash_attention_2 needs the flash_attn package and a GPU"),
    ("flex_attention", "flex_attention has no backward pass on the CPU"),
])
def test_unavailable_attention_falls_back_and_says_why(world, fp32, capsys, requested, reason):
    out = _run(world, f"attn-{requested}", attn_implementation=requested)
    hp = json.loads((out / loop.HPARAMS_FILE).read_text())
    assert hp["attn_implementation"] == requested and hp["attn_implementation_used"] == "sdpa"
    assert reason in hp["attn_reason"] and reason in capsys.readouterr().out
    assert _loss(out) == pytest.approx(_loss(fp32), rel=1e-5)


def test_eager_attention_gives_the_same_packed_loss(world, fp32):
    out = _run(world, "eager", attn_implementation="eager")
    assert _loss(out) == pytest.approx(_loss(fp32), rel=1e-4)


def test_generation_falls_back_from_flash_attention_on_the_cpu(capsys):
    assert generation_attention("flash_attention_2", torch.device("cpu"), "m") == "sdpa"
    assert "not available (no GPU); using sdpa" in capsys.readouterr().out
    assert generation_attention("eager", torch.device("cpu"), "m") == "eager"


def test_a_sharded_head_weight_falls_back_to_the_head_module(tmp_path, capsys):
    """A head sharded by FSDP2 (`fully_shard`, its weight a DTensor outside its own forward) is
    never read as if whole: the head module, whose forward gathers the weight, computes the
    labelled positions' logits instead, with the same loss and the same gradient."""
    import copy

    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0,
                            world_size=1)
    try:
        torch.manual_seed(0)
        ref = torch.nn.Linear(16, 50, bias=False)
        hidden = torch.randn(2, 7, 16)
        labels = torch.randint(0, 50, (2, 7))
        labels[:, :3] = -100
        want = linear_cross_entropy_sum(hidden, ref.weight, labels)
        want.backward()
        assert not is_sharded(ref.weight)
        head = fully_shard(copy.deepcopy(ref), mesh=init_device_mesh("cpu", (1,)))
        assert is_sharded(head.weight)  # the real FSDP2 state between forwards
        assert "head runs as a module" in capsys.readouterr().out
        got = head_cross_entropy_sum(head, hidden, labels)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        got.backward()
        torch.testing.assert_close(head.weight.grad.full_tensor(), ref.weight.grad,
                                   rtol=1e-5, atol=1e-6)
    finally:
        dist.destroy_process_group()
