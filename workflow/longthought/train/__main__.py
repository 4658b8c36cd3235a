"""`python -m longthought.train ARGS` = `longthought train ARGS`, for `accelerate launch -m`.

    accelerate launch --config_file config/accelerate/fsdp.yaml -m longthought.train \\
        --student tiny --spec '{...}' --init results/models/tiny@init \\
        --datasets results/datasets/{format,longthought}-arith.parquet \\
        --out results/models/tiny

A launched worker leaves with `os._exit` once its outputs are written and its streams flushed,
without tearing the process group down. Tearing down a gloo process group from Python can hang
for ever: its destructor joins gloo's worker threads while holding the GIL, and a worker thread
that is just freeing a finished collective's tensors waits for the GIL (seen in the CPU DDP test:
one rank stuck in `~ProcessGroupGloo`, the other long gone, torchrun waiting). Nothing is lost by
skipping it: the model, checkpoints and logs are on disk before `train` returns, and torchrun
only reads the exit status.
"""

import logging
import os
import sys
import traceback

from longthought.cli import main
from longthought.train.launch import LAUNCHED_ENV


def run_worker(argv: list[str]) -> int:
    """`longthought train ARGV` in a launched worker; its exit status (tracebacks printed)."""
    os.environ[LAUNCHED_ENV] = "1"  # a launched worker trains; it never relaunches itself
    try:
        return main(["train", *argv])
    except SystemExit as exc:  # preemption (143), argument errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    code = run_worker(sys.argv[1:])
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
