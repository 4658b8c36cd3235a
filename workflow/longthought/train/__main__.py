"""`python -m longthought.train ARGS` = `longthought train ARGS`, for `accelerate launch -m`.

    accelerate launch --config_file config/accelerate/fsdp.yaml -m longthought.train \\
        --student tiny --spec '{...}' --init results/models/tiny@init \\
        --datasets results/datasets/{format,longthought}-arith.parquet \\
        --out results/models/tiny
"""

import os
import sys

from longthought.cli import main
from longthought.train.launch import LAUNCHED_ENV

if __name__ == "__main__":
    os.environ[LAUNCHED_ENV] = "1"  # a launched worker trains; it never relaunches itself
    sys.exit(main(["train", *sys.argv[1:]]))
