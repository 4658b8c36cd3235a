"""Determinism: the same config, seed and machine (thread count fixed) give identical training
logs, weights, samples and metrics; the replicate seed changes data order and init; the run's
hardware and float path are recorded beside the numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from longthought.evaluate.metrics import compute_metrics
from longthought.evaluate.run import run_generate, run_json_path
from longthought.io import read_table, write_table
from longthought.problems import procedural
from longthought.results.database import load_hparams, load_runs
from longthought.results.hardware import hardware_markdown
from longthought.train import loop
from longthought.train.spec import derive_seed, parse_spec
from longthought.train.student import INIT_SEED_FILE, init_student
from longthought.train.synthetic import synthetic_dataset, traces_from_dataset

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
        "intermediate_size": 64, "vocab_size": 320}
THREADS = 2  # what the workflow's train rule runs with (Snakemake sets OMP_NUM_THREADS)
TIMING = ["latency_s"]  # the only generation columns allowed to differ between reruns


def spec(seed: int | None = None) -> dict:
    stage = {"dataset": "longthought-arith", "lr": 1e-2, "schedule": "cosine",
             "warmup_ratio": 0.2, "epochs": 2, "max_steps": None, "batch_size": 4,
             "grad_accum": 1, "max_length": 512, "packing": True, "weight_decay": 0.01,
             "seed": 1}
    out = {"base_model": "tiny", "tiny": TINY, "precision": "fp32",
           "gradient_checkpointing": False, "attn_implementation": "sdpa",
           "checkpoint_every": 0, "accelerate_config": None, "stages": [stage]}
    return out if seed is None else {**out, "seed": seed}


@pytest.fixture(scope="module")
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory, threads):
    root = tmp_path_factory.mktemp("determinism")
    think = synthetic_dataset(24, seed=2, name="longthought-arith")
    write_table(think, root / "think.parquet", "dataset")
    write_table(traces_from_dataset(think), root / "traces.parquet", "traces")
    bench = procedural.generate(["addition", "multiplication"], 6, 2, "heldout")
    write_table(pd.DataFrame(bench), root / "heldout.parquet", "problems")
    return root


def build(world: Path, name: str, seed: int | None) -> Path:
    """init-student + train, as the workflow's two rules run them."""
    init = init_student("tiny", spec(seed), [str(world / "traces.parquet")],
                        world / f"{name}@init")
    return loop.train("tiny", spec(seed), str(init), [str(world / "think.parquet")],
                      str(world / name))


def log(model: Path) -> pd.DataFrame:
    return read_table(model / loop.LOG_FILE, "train_log")


def generate(model: Path, out: Path) -> pd.DataFrame:
    gen_spec = {"model": {"name": "tiny", "kind": "local", "path": str(model),
                          "backend": "transformers"},
                "sampling": {"n": 2, "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 24,
                             "seed": 0},
                "budgets": [], "batch_size": 4, "checker": {"timeout_s": 5, "workers": 1}}
    return run_generate("tiny", gen_spec, str(model.parent / "heldout.parquet"), str(out))


@pytest.fixture(scope="module")
def twins(world):
    """The same student trained twice with the same replicate seed, and once with another."""
    return build(world, "a", 2), build(world, "b", 2), build(world, "c", 3)


def test_same_seed_same_machine_gives_identical_training(twins, threads):
    a, b, _ = twins
    la, lb = log(a), log(b)
    assert len(la) == 12  # 24 samples x 2 epochs / 4 per step
    for col in ("step", "loss", "lr", "grad_norm", "tokens"):
        assert la[col].tolist() == lb[col].tolist(), col  # bit for bit, not approximately
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    hp = json.loads((a / loop.HPARAMS_FILE).read_text())
    hw = hp["hardware"]
    assert hw["torch_threads"] == threads and hw["torch_interop_threads"] >= 1
    assert hw["cpu_model"] and hw["cpu_capability"] and hw["torch"] == torch.__version__
    assert hw["deterministic_algorithms"] is False and hw["float32_matmul_precision"]
    assert {"cuda", "gpus", "cudnn_deterministic", "cuda_matmul_allow_tf32"} <= set(hw)


def test_the_replicate_seed_varies_data_order_and_init(twins, world):
    a, _, c = twins
    hp_a = json.loads((a / loop.HPARAMS_FILE).read_text())
    hp_c = json.loads((c / loop.HPARAMS_FILE).read_text())
    assert hp_a["replicate_seed"] == 2 and hp_c["replicate_seed"] == 3
    assert hp_a["seeds"] == [derive_seed(1, 2)] and hp_c["seeds"] == [derive_seed(1, 3)]
    assert hp_a["stages"][0]["seed"] == 1 == hp_c["stages"][0]["seed"]  # as configured
    assert hp_a["init_seed"] == derive_seed(0, 2) != hp_c["init_seed"]
    ia, ic = load_file(world / "a@init" / "model.safetensors"), \
        load_file(world / "c@init" / "model.safetensors")
    assert not torch.equal(ia["model.embed_tokens.weight"], ic["model.embed_tokens.weight"])
    # same tokenizer for every replicate: only the weights and the data order differ
    assert (world / "a@init" / "tokenizer.json").read_bytes() == \
        (world / "c@init" / "tokenizer.json").read_bytes()
    assert log(a)["loss"].tolist() != log(c)["loss"].tolist()
    assert json.loads((world / "c@init" / INIT_SEED_FILE).read_text())["replicate_seed"] == 3


def test_replicate_seed_zero_is_the_student_as_configured():
    assert derive_seed(7, 0) == 7
    assert len({derive_seed(7, r) for r in range(1, 50)}) == 49  # independent per replicate
    assert parse_spec("tiny", spec()).stage_seeds() == [1]
    assert parse_spec("tiny", spec(4)).stage_seeds() == [derive_seed(1, 4)]
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"students\.tiny\.seed must be an integer >= 0"):
            parse_spec("tiny", spec(bad))


def test_same_model_same_machine_gives_identical_samples_and_metrics(twins, world):
    a, b, _ = twins
    ga = generate(a, world / "gen" / "a" / "heldout.parquet")
    gb = generate(b, world / "gen" / "b" / "heldout.parquet")
    gc = generate(a, world / "gen" / "a2" / "heldout.parquet")
    for other in (gb, gc):  # a retrained twin, and the same model sampled again
        pd.testing.assert_frame_equal(ga.drop(columns=TIMING), other.drop(columns=TIMING))
        pd.testing.assert_frame_equal(compute_metrics(ga, [1, 2]), compute_metrics(other, [1, 2]))
    run = json.loads(run_json_path(world / "gen" / "a" / "heldout.parquet").read_text())
    assert run["hardware"]["torch_threads"] == THREADS
    assert run["hardware"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    # the report puts the float path of each training and generation run next to the numbers
    md = hardware_markdown(load_hparams([str(a)]), load_runs([str(world / "gen" / "a" /
                                                                  "heldout.parquet")]))
    path = f"CPU path {torch.backends.cpu.get_cpu_capability()}"
    assert "| train | `a` (replicate seed 2) | " in md
    assert "| generate | `tiny` on heldout | " in md
    assert md.count(path) == 2 and md.count(f"{THREADS} threads") == 2


def test_deterministic_flag_is_checked_and_recorded():
    assert parse_spec("tiny", {**spec(), "deterministic": True}).deterministic is True
    with pytest.raises(ValueError, match=r"students\.tiny\.deterministic must be true or false"):
        parse_spec("tiny", {**spec(), "deterministic": "yes"})
