"""One `longthought train` command for every scale: in-process, `accelerate launch`, or multi-node.

With `accelerate_config: null` the verb trains in its own process (CPU, one GPU). With a config
file it re-runs itself under `accelerate launch --config_file <file> -m longthought.train ...`
(DDP / FSDP / DeepSpeed on one node), and inside a SLURM allocation of several nodes through
`scripts/train-multinode.sh`, which `srun`s one `accelerate launch` per node with the machine
rank and main address taken from the SLURM environment. The relaunched processes see
`LONGTHOUGHT_TRAIN_LAUNCHED=1` and train in-process, so the rule calls one command either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

LAUNCHED_ENV = "LONGTHOUGHT_TRAIN_LAUNCHED"
MULTINODE_SCRIPT = "scripts/train-multinode.sh"
MULTI_GPU_TYPES = ("MULTI_GPU", "FSDP", "DEEPSPEED")


def should_relaunch(accelerate_config: str | None, env: Mapping[str, str]) -> bool:
    """Relaunch under accelerate when a config is set and we are not already a launched worker."""
    return bool(accelerate_config) and env.get(LAUNCHED_ENV) != "1"


def slurm_nodes(env: Mapping[str, str]) -> int:
    if "SLURM_JOB_ID" not in env:
        return 1
    return int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1)


def multinode_script() -> Path:
    """The launcher script of the repo this package is installed from (editable install)."""
    for root in (Path.cwd(), *Path(__file__).resolve().parents):
        candidate = root / MULTINODE_SCRIPT
        if candidate.is_file():
            return candidate
    raise ValueError(f"multi-node training needs {MULTINODE_SCRIPT} from the longthought repo; "
                     "run from the repository root")


def launch_argv(accelerate_config: str, train_args: list[str], env: Mapping[str, str]) -> list[str]:
    """The command that runs `longthought train <train_args>` under `accelerate_config`."""
    if not Path(accelerate_config).is_file():
        raise ValueError(f"accelerate_config: {accelerate_config!r} does not exist")
    if slurm_nodes(env) > 1:
        return ["bash", str(multinode_script()), accelerate_config, *train_args]
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config]
    gpus = gpus_on_node(env)
    if gpus and distributed_type(accelerate_config) in MULTI_GPU_TYPES:
        argv += ["--num_processes", str(gpus)]  # the allocation, not the file, decides
    return [*argv, "-m", "longthought.train", *train_args]


def gpus_on_node(env: Mapping[str, str]) -> int | None:
    """GPUs SLURM gave this job on this node (e.g. "4" or "4(IDX:0-3)"), None outside SLURM."""
    raw = env.get("SLURM_GPUS_ON_NODE") if "SLURM_JOB_ID" in env else None
    head = (raw or "").split("(")[0]
    return int(head) if head.isdigit() and int(head) > 0 else None


def distributed_type(accelerate_config: str) -> str:
    """The `distributed_type` of an accelerate config file ('NO' if unset)."""
    import yaml

    with open(accelerate_config, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"accelerate_config: {accelerate_config} is not a YAML mapping")
    return str(raw.get("distributed_type", "NO"))


def relaunch(accelerate_config: str, train_args: list[str]) -> int:
    """Run the training under accelerate and wait; the workers' exit status is ours."""
    env = dict(os.environ)
    argv = launch_argv(accelerate_config, train_args, env)
    env[LAUNCHED_ENV] = "1"
    env.setdefault("LONGTHOUGHT_PYTHON", sys.executable)  # for scripts/train-multinode.sh
    print(f"[train] launching: {' '.join(argv[:6])} ...", flush=True)
    return subprocess.call(argv, env=env)
