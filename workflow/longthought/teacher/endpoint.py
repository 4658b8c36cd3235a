"""Where the teacher lives: a configured URL, or a sim server started for the occasion.

`open_endpoint` is what every API caller wraps its work in: with `base_url: sim` it starts
`longthought teacher-sim` as a child process on a free loopback port, waits until it answers, and
stops it when the block ends (also on error or Ctrl-C; a sim whose parent is killed stops by
itself); otherwise it just yields the URL. A `mode: batch` sim teacher keeps its Batch API store
(files, batches) next to the request cache, so a collection killed while its batches run finds
them again, as it would at a real provider.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from longthought.teacher.collect import state_dir_for
from longthought.teacher.guard import forbid
from longthought.teacher.records import endpoint_id, teacher_mode
from longthought.teacher.sim_config import parse_sim_config

READY_TIMEOUT_S = 60.0


def sim_spec(teacher_spec: dict[str, Any]) -> dict[str, Any]:
    """The sim server's spec for a teacher: its `sim:` block, listing the teacher's model."""
    spec = dict(teacher_spec.get("sim") or {})
    if "models" not in spec and teacher_spec.get("model"):
        spec["models"] = [str(teacher_spec["model"])]
    return spec


def _wait_ready(proc: subprocess.Popen, port_file: Path, log_path: Path) -> int:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise RuntimeError(f"teacher-sim exited with code {proc.returncode} before it was "
                               f"ready:\n{err}")
        if port_file.exists():
            text = port_file.read_text().strip()
            if text.isdigit():
                port = int(text)
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models",
                                                timeout=5) as resp:
                        if resp.status == 200:
                            return port
                except (urllib.error.URLError, OSError):
                    pass
        time.sleep(0.05)
    raise RuntimeError(f"teacher-sim was not ready within {READY_TIMEOUT_S:g} s")


@contextmanager
def start_sim(spec: dict[str, Any], store: str | Path | None = None) -> Iterator[str]:
    """Run `longthought teacher-sim` with `spec` on a free port; yield its base URL. `store`:
    the Batch API's directory, kept across runs (default: the sim's own temporary one)."""
    parse_sim_config(spec)  # a bad spec fails here, with the key named, not in a child process
    with tempfile.TemporaryDirectory(prefix="lt-sim-") as tmp:
        port_file = Path(tmp) / "port"
        log_path = Path(tmp) / "sim.log"
        cmd = [sys.executable, "-m", "longthought.cli", "teacher-sim", "--host", "127.0.0.1",
               "--port", "0", "--port-file", str(port_file), "--spec", json.dumps(spec),
               "--parent-pid", str(os.getpid())]
        if store is not None:
            cmd += ["--store", str(store)]
        with open(log_path, "wb") as log_fh:
            proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=dict(os.environ))
        try:
            port = _wait_ready(proc, port_file, log_path)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


SIM_STORE = "sim-store"


@contextmanager
def open_endpoint(teacher_spec: dict[str, Any], cache_dir: str | None = None) -> Iterator[str]:
    """Yield the teacher's base URL; for `base_url: sim`, a sim server running for the block
    (a `mode: batch` one with its Batch API store under `cache_dir`, when given)."""
    forbid(f"opening the endpoint of teacher {teacher_spec.get('model')!r}")
    base_url = teacher_spec.get("base_url")
    if not base_url or not isinstance(base_url, str):
        raise ValueError(f"teacher {teacher_spec.get('model')!r}: base_url is missing")
    if base_url != "sim":
        yield base_url
        return
    store = None
    if cache_dir is not None and teacher_mode(teacher_spec) == "batch":
        store = state_dir_for(cache_dir, endpoint_id(teacher_spec, None)) / SIM_STORE
    with start_sim(sim_spec(teacher_spec), store) as url:
        yield url
