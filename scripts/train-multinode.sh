#!/usr/bin/env bash
# Multi-node SFT inside a SLURM allocation: `srun` starts one `accelerate launch` per node, each
# with its machine rank (SLURM_NODEID), the first node of the allocation as the main process,
# and as many processes per node as it has GPUs. All ranks run `python -m longthought.train`.
#
# usage, inside `sbatch`/`salloc --nodes N --gpus-per-node G` (`longthought train` calls this
# itself when its spec has an accelerate_config and the allocation has more than one node):
#   scripts/train-multinode.sh config/accelerate/fsdp.yaml \
#       --student NAME --spec '{...}' --init DIR --datasets D1 [D2 ...] --out DIR
#
# Environment: LONGTHOUGHT_PYTHON (python with longthought installed; default: python3),
# MASTER_PORT (default: derived from the job id), GPUS_PER_NODE (default: SLURM_GPUS_ON_NODE,
# else nvidia-smi's count, at least 1), LONGTHOUGHT_SRUN_ARGS (extra srun options; default
# --overlap, so the step may start from inside Snakemake's own job step on the first node).
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,16p' "$0" >&2
  exit 2
fi
config=$1
shift
: "${SLURM_JOB_ID:?run inside a SLURM allocation (sbatch or salloc)}"
[ -f "$config" ] || { echo "train-multinode: no accelerate config $config" >&2; exit 2; }

nnodes=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}
# awk reads all of scontrol's output: `head -n 1` could end the pipe early (SIGPIPE, exit 141)
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | awk 'NR == 1')
port=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}
gpus=${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l || true)}}
gpus=${gpus%%(*}  # SLURM may write e.g. "4(IDX:0-3)"
[ "${gpus:-0}" -ge 1 ] 2>/dev/null || gpus=1
python=${LONGTHOUGHT_PYTHON:-python3}
export LONGTHOUGHT_TRAIN_LAUNCHED=1  # the workers train; they never relaunch

echo "[train-multinode] $nnodes nodes x $gpus processes, main $head_node:$port, config $config" >&2
# One task per node; SLURM_NODEID is expanded on each node, hence the single quotes.
# shellcheck disable=SC2086  # LONGTHOUGHT_SRUN_ARGS is a list of options
srun --nodes="$nnodes" --ntasks="$nnodes" --ntasks-per-node=1 --kill-on-bad-exit=1 \
  ${LONGTHOUGHT_SRUN_ARGS---overlap} \
  bash -c 'exec "$0" -m accelerate.commands.launch --config_file "$1" \
    --num_machines "$2" --num_processes "$(( $2 * $3 ))" --machine_rank "$SLURM_NODEID" \
    --main_process_ip "$4" --main_process_port "$5" --rdzv_backend static \
    -m longthought.train "${@:6}"' \
  "$python" "$config" "$nnodes" "$gpus" "$head_node" "$port" "$@"
