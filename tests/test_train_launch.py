"""Launching: accelerate configs, relaunch command, multi-node script, a real 2-process DDP."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from longthought.cli import main
from longthought.io import read_table, write_table
from longthought.train import launch, loop
from longthought.train.student import init_student
from longthought.train.synthetic import synthetic_dataset, traces_from_dataset

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "config" / "accelerate"
SCRIPT = ROOT / "scripts" / "train-multinode.sh"


def test_accelerate_configs_load_with_accelerate():
    from accelerate.commands.config.config_args import load_config_from_file

    want = {"single_gpu": "NO", "ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero3": "DEEPSPEED"}
    for name, dist in want.items():
        cfg = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
        assert str(cfg.distributed_type).endswith(dist), name
    fsdp = yaml.safe_load((CONFIGS / "fsdp.yaml").read_text())["fsdp_config"]
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_reshard_after_forward"] is True  # full shard
    ds = yaml.safe_load((CONFIGS / "deepspeed_zero3.yaml").read_text())["deepspeed_config"]
    assert ds["zero_stage"] == 3


def test_launch_command_in_and_out_of_slurm():
    cfg = str(CONFIGS / "fsdp.yaml")
    args = ["--student", "s", "--out", "o"]
    assert launch.should_relaunch(cfg, {}) and not launch.should_relaunch(None, {})
    assert not launch.should_relaunch(cfg, {launch.LAUNCHED_ENV: "1"})  # workers never relaunch
    argv = launch.launch_argv(cfg, args, {})
    assert argv[:5] == [sys.executable, "-m", "accelerate.commands.launch", "--config_file", cfg]
    assert argv[-6:] == ["-m", "longthought.train", *args] and "--num_processes" not in argv
    one_node = {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "1", "SLURM_GPUS_ON_NODE": "4(IDX:0-3)"}
    argv = launch.launch_argv(cfg, args, one_node)
    assert argv[argv.index("--num_processes") + 1] == "4"  # the allocation decides, not the file
    single = launch.launch_argv(str(CONFIGS / "single_gpu.yaml"), args, one_node)
    assert "--num_processes" not in single
    multi = launch.launch_argv(cfg, args, {**one_node, "SLURM_JOB_NUM_NODES": "2"})
    assert multi[:3] == ["bash", str(SCRIPT), cfg] and multi[3:] == args
    with pytest.raises(ValueError, match="does not exist"):
        launch.launch_argv("config/accelerate/nope.yaml", args, {})


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_multinode_script_runs_one_accelerate_launch_per_node(tmp_path):
    """A fake srun/scontrol/python record what each node of a 3-node allocation would run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "scontrol", 'printf "gpu-a\\ngpu-b\\ngpu-c\\n"\n')
    # srun: drop its own options, run the command once per node with that node's SLURM_NODEID
    _fake(bin_dir, "srun", 'while [[ $1 == --* ]]; do shift; done\n'
                           'for i in 0 1 2; do SLURM_NODEID=$i "$@"; done\n')
    _fake(bin_dir, "fakepython", 'echo "NODE $*"\n')
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NUM_NODES": "3", "SLURM_JOB_NODELIST": "gpu-[a-c]",
           "SLURM_GPUS_ON_NODE": "4", "LONGTHOUGHT_PYTHON": "fakepython"}
    cfg = str(CONFIGS / "fsdp.yaml")
    res = subprocess.run(["bash", str(SCRIPT), cfg, "--student", "s", "--spec", '{"a": 1}'],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("NODE")]
    assert len(lines) == 3, res.stdout + res.stderr
    for rank, line in enumerate(lines):
        assert (f"-m accelerate.commands.launch --config_file {cfg} --num_machines 3 "
                f"--num_processes 12 --machine_rank {rank} --main_process_ip gpu-a "
                f"--main_process_port {20000 + 4242} --rdzv_backend static "
                "-m longthought.train --student s --spec {\"a\": 1}") in line
    res = subprocess.run(["bash", str(SCRIPT), cfg, "--x"], env={"PATH": os.environ["PATH"]},
                         capture_output=True, text=True)
    assert res.returncode != 0 and "SLURM allocation" in res.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SLOW_SECOND_RANK = """
import os
if os.environ.get("RANK") == "1":
    import time
    import accelerate
    _real = accelerate.Accelerator.get_state_dict
    def _late(self, *args, **kwargs):
        open(os.environ["SLOW_RANK_MARKER"], "w").close()  # proof the delay ran
        time.sleep(3)
        return _real(self, *args, **kwargs)
    accelerate.Accelerator.get_state_dict = _late
"""


def test_two_process_ddp_on_cpu_matches_one_process(tmp_path, monkeypatch):
    """`train` with an accelerate config relaunches itself; 2 workers x 2 samples == 1 x 4."""
    think = synthetic_dataset(16, seed=4, name="longthought-arith")
    write_table(think, tmp_path / "think.parquet", "dataset")
    write_table(traces_from_dataset(think), tmp_path / "traces.parquet", "traces")
    tiny = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
            "intermediate_size": 64, "vocab_size": 300}

    def spec(batch: int, accelerate_config: str | None) -> dict:
        st = {"dataset": "longthought-arith", "lr": 1e-2, "schedule": "linear",
              "warmup_ratio": 0.0, "epochs": 1, "batch_size": batch, "grad_accum": 1,
              "max_length": 512, "packing": True, "weight_decay": 0.0, "seed": 3}
        return {"base_model": "tiny", "tiny": tiny, "stages": [st], "checkpoint_every": 2,
                "accelerate_config": accelerate_config}

    init_student("tiny", spec(4, None), [str(tmp_path / "traces.parquet")], tmp_path / "init")
    cfg = tmp_path / "cpu_ddp.yaml"
    cfg.write_text(yaml.safe_dump({
        "compute_environment": "LOCAL_MACHINE", "distributed_type": "MULTI_GPU",
        "num_machines": 1, "num_processes": 2, "mixed_precision": "no", "use_cpu": False,
        "rdzv_backend": "static", "main_process_port": _free_port()}))
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")  # DDP over gloo on a machine without GPUs
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # the second worker reaches the final save 3 s late (a slow rank, as a loaded node makes
    # one): the save must not race the main process's rename of the temporary directory
    hook = tmp_path / "slow_rank"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_SECOND_RANK)
    marker = tmp_path / "slow_rank_ran"
    monkeypatch.setenv("SLOW_RANK_MARKER", str(marker))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(hook), os.environ.get("PYTHONPATH")) if p))

    def train(batch: int, config: str | None, out: str) -> Path:
        args = ["train", "--student", "tiny", "--spec", json.dumps(spec(batch, config)),
                "--init", str(tmp_path / "init"), "--datasets", str(tmp_path / "think.parquet"),
                "--out", str(tmp_path / out)]
        assert main(args) == 0
        return tmp_path / out

    ddp = train(2, str(cfg), "ddp")
    one = train(4, None, "one")
    assert marker.exists()  # the second rank was late (with the old save: a stray .ddp.tmp)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    hp = json.loads((ddp / loop.HPARAMS_FILE).read_text())
    assert hp["world_size"] == 2 and "MULTI_CPU" in hp["distributed_type"]
    la, lb = (read_table(p / loop.LOG_FILE, "train_log") for p in (ddp, one))
    assert len(la) == len(lb) == 4
    assert la["loss"].tolist() == pytest.approx(lb["loss"].tolist(), rel=1e-5)
    assert la["tokens"].tolist() == lb["tokens"].tolist()  # counted over both processes
    wa, wb = load_file(ddp / "model.safetensors"), load_file(one / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-3, atol=1e-4)


@pytest.mark.slurm
def test_multinode_script_under_a_real_slurm_allocation(tmp_path, cluster):
    """sbatch -> scripts/train-multinode.sh -> srun -> accelerate launch (2 processes, CPU gloo).

    On the session's local cluster (the `cluster` fixture: scripts/slurm-up.sh); a one-node
    cluster, so this checks the SLURM plumbing, not several nodes.
    """
    think = synthetic_dataset(8, seed=4, name="longthought-arith")
    write_table(think, tmp_path / "think.parquet", "dataset")
    write_table(traces_from_dataset(think), tmp_path / "traces.parquet", "traces")
    tiny = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
            "intermediate_size": 64, "vocab_size": 300}
    spec = {"base_model": "tiny", "tiny": tiny, "checkpoint_every": 0,
            "stages": [{"dataset": "longthought-arith", "lr": 1e-2, "max_steps": 2,
                        "batch_size": 2, "max_length": 512, "seed": 3}]}
    init_student("tiny", spec, [str(tmp_path / "traces.parquet")], tmp_path / "init")
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump({"compute_environment": "LOCAL_MACHINE",
                                   "distributed_type": "MULTI_GPU", "num_machines": 1,
                                   "num_processes": 1, "mixed_precision": "no",
                                   "use_cpu": False}))
    out = tmp_path / "model"
    args = ["--student", "tiny", "--spec", json.dumps(spec), "--init", str(tmp_path / "init"),
            "--datasets", str(tmp_path / "think.parquet"), "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(LONGTHOUGHT_PYTHON=sys.executable, GPUS_PER_NODE="2", ACCELERATE_USE_CPU="true",
               OMP_NUM_THREADS="1", MASTER_PORT=str(_free_port()))
    job = subprocess.run(
        ["sbatch", "--wait", "--parsable", "--nodes=1", "--ntasks=1", "--cpus-per-task=2",
         f"--output={tmp_path / 'job.log'}", "--wrap",
         " ".join(["bash", str(SCRIPT), str(cfg), *(f"'{a}'" for a in args)])],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = (tmp_path / "job.log").read_text() if (tmp_path / "job.log").exists() else ""
    assert job.returncode == 0, job.stderr + log
    hp = json.loads((out / loop.HPARAMS_FILE).read_text())
    assert hp["world_size"] == 2 and hp["slurm_job_id"] == job.stdout.strip().split(";")[0]
