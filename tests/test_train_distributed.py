"""FSDP and DDP on the CPU (2 processes, gloo), proven equal to one process on a hub-shaped student.

`longthought train` relaunches itself under `accelerate launch` with the repository's own
config/accelerate/{fsdp,ddp}.yaml (2 processes, fp32; ACCELERATE_USE_CPU). The Llama-3-shaped
student has an untied head, the case where the chunked loss reads a weight FSDP shards in its own
unit. Numbers: the loss within 1e-3 relative of the single-process run at every step of a 20-step
fp32 run; FSDP checkpoint + resume ends with the weights of a straight run; the saved model (full
state dict, safetensors) loads with from_pretrained and generates.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import hub_models
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from longthought.cli import main
from longthought.evaluate.backends import generate_texts
from longthought.io import read_table, write_table
from longthought.train import loop
from longthought.train.checkpoint import Preemption
from longthought.train.synthetic import synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
STEPS = 20
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_config(tmp: Path, name: str) -> str:
    """The repository's accelerate config for `name`, on 2 CPU processes in fp32."""
    cfg = yaml.safe_load((ROOT / "config" / "accelerate" / f"{name}.yaml").read_text())
    cfg.update(num_processes=2, mixed_precision="no", main_process_port=_free_port())
    cfg.pop("gpu_ids", None)
    path = tmp / f"cpu_{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    hub_models.llama3(root / "llama")
    write_table(synthetic_dataset(96, seed=5, name="d"), root / "d.parquet", "dataset")
    return root


@pytest.fixture(autouse=True)
def cpu_env(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")  # gloo on a machine without GPUs
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _spec(world: Path, accelerate_config: str | None, batch: int, **kw) -> dict:
    return {"base_model": str(world / "llama"), "precision": "fp32",
            "attn_implementation": "sdpa", "checkpoint_every": 0,
            "accelerate_config": accelerate_config, **kw,
            "stages": [{"dataset": "d", "lr": 2e-3, "schedule": "cosine", "warmup_ratio": 0.1,
                        "max_steps": STEPS, "batch_size": batch, "max_length": 512,
                        "seed": 1}]}


def _train(world: Path, spec: dict, out: str) -> int:
    return main(["train", "--student", "s", "--spec", json.dumps(spec), "--init",
                 str(world / "llama"), "--datasets", str(world / "d.parquet"), "--out",
                 str(world / out)])


@pytest.fixture(scope="module")
def single(world):
    """The reference: one process, 4 samples per step."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        assert _train(world, _spec(world, None, 4), "one") == 0
    return world / "one"


def _losses(out: Path) -> np.ndarray:
    return read_table(out / loop.LOG_FILE, "train_log")["loss"].to_numpy()


@pytest.mark.parametrize("name,kind", [("fsdp", "FSDP"), ("ddp", "MULTI_CPU")])
def test_two_processes_match_one_at_every_step(world, single, tmp_path, name, kind):
    """2 processes x 2 samples == 1 x 4: the same loss curve (1e-3 relative at every step)."""
    out = f"two-{name}"
    assert _train(world, _spec(world, _cpu_config(tmp_path, name), 2), out) == 0
    hp = json.loads((world / out / loop.HPARAMS_FILE).read_text())
    assert hp["world_size"] == 2 and kind in hp["distributed_type"]
    # FSDP really sharded the model: its parameters were DTensor shards after prepare (DDP: none)
    n_params = len(load_file(single / "model.safetensors"))
    assert hp["sharded_parameters"] == (n_params if name == "fsdp" else 0), hp
    assert hp["cross_entropy_used"] == "chunked"  # the head's weight read inside the forward
    one, two = _losses(single), _losses(world / out)
    assert len(one) == len(two) == STEPS
    assert np.abs(two - one).max() / one.min() < 1e-3, (one, two)
    assert np.all(np.abs(two - one) / one < 1e-3)
    wa, wb = load_file(single / "model.safetensors"), load_file(world / out / "model.safetensors")
    assert sorted(wa) == sorted(wb)  # the full state dict, not shards
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=1e-3, atol=1e-4)
    # the saved model loads with from_pretrained and generates
    outs = generate_texts({"name": "s", "kind": "local", "path": str(world / out)},
                          [[{"role": "user", "content": "What is 7 + 5?"}]],
                          {"max_new_tokens": 6, "temperature": 0.0, "top_p": 1.0, "seed": 0}, 1)
    assert outs[0][0].output_tokens >= 1


def test_fsdp_checkpoint_and_resume_equal_a_straight_run(world, tmp_path, monkeypatch):
    cfg = _cpu_config(tmp_path, "fsdp")
    spec = _spec(world, cfg, 2, checkpoint_every=6)
    assert _train(world, spec, "straight") == 0
    monkeypatch.setenv(Preemption.AT_STEP_ENV, "9")  # preempted after step 9: checkpointed
    assert _train(world, spec, "resumed") != 0  # the workers exit 143; torchrun reports 1
    assert not (world / "resumed").exists()
    ckpts = sorted(p.name for p in (world / "resumed.ckpt").glob("step-*"))
    assert ckpts == ["step-00000006", "step-00000009"]
    # sharded DCP checkpoints (SHARDED_STATE_DICT): one shard file per process
    shards = sorted(p.name for p in (world / "resumed.ckpt" / ckpts[-1]).rglob("*.distcp"))
    assert len(shards) >= 2, shards
    monkeypatch.delenv(Preemption.AT_STEP_ENV)
    assert _train(world, spec, "resumed") == 0
    # a resume, not a restart (a deterministic restart would end with the same weights too)
    hp = json.loads((world / "resumed" / loop.HPARAMS_FILE).read_text())
    assert hp["resumed_from_step"] == 9
    assert json.loads((world / "straight" / loop.HPARAMS_FILE).read_text()
                      )["resumed_from_step"] is None
    wa = load_file(world / "straight" / "model.safetensors")
    wb = load_file(world / "resumed" / "model.safetensors")
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=1e-5, atol=1e-6)
    la, lb = _losses(world / "straight"), _losses(world / "resumed")
    assert la.tolist() == pytest.approx(lb.tolist(), rel=1e-5)


def test_gathered_save_shards_as_save_pretrained_does(world, tmp_path):
    """A model past the shard size is written in shards with their index, and loads back."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(world / "llama", dtype=torch.float32)
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    names = loop.write_safetensors(tensors, tmp_path, max_shard_size=200_000)
    assert len(names) > 1 and (tmp_path / "model.safetensors.index.json").is_file()
    model.config.save_pretrained(tmp_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    for key, value in back.state_dict().items():
        torch.testing.assert_close(value, tensors[key])
