"""The compute-node guard: a job on a compute node never calls an API or writes the shared cache.

Compute nodes often have no route to the internet, and the request cache is one SQLite file in
WAL mode, which is safe only for processes on one host. So on a cluster every API call and every
write of the shared cache belongs to a local rule (run by Snakemake on the login node), and a GPU
job writes its own shard file instead (`shards`). A job that runs with
`LONGTHOUGHT_COMPUTE_NODE=1` in its environment (the SLURM profiles set it for submitted jobs;
tests set it to prove the split) fails at the first such attempt instead of hanging on a dead
route or corrupting the cache over NFS. Unset, a process inside a SLURM job (`SLURM_JOB_ID`) is
taken for a compute-node job: the jobs Snakemake submits are, and its local rules run in the
Snakemake process on the login node. (Running that process itself inside an allocation? Set
`LONGTHOUGHT_COMPUTE_NODE=0` for it, and make sure that node can reach the APIs.)
"""

from __future__ import annotations

import os

ENV = "LONGTHOUGHT_COMPUTE_NODE"


class ComputeNodeError(ValueError):
    """An API call or a shared-cache write was attempted from a compute-node job."""


def on_compute_node() -> bool:
    """Whether this process runs as a job on a compute node: the env var when it is set, else
    whether it runs inside a SLURM job."""
    value = os.environ.get(ENV, "").strip().lower()
    if value:
        return value not in ("0", "false", "no")
    return bool(os.environ.get("SLURM_JOB_ID"))


def forbid(what: str) -> None:
    """Raise ComputeNodeError naming `what` when this process is a compute-node job."""
    if on_compute_node():
        raise ComputeNodeError(
            f"{what} from a compute-node job ({ENV}={os.environ.get(ENV)}): compute nodes may "
            "have no network route and must not write the shared SQLite cache; this work "
            "belongs in a local rule (see README, 'What runs where')")
