"""What a generation run records beside its table, so a number can be traced and re-made.

The sidecar `<out>.run.json` holds the config hash (sha256 of the canonical spec JSON), the spec
itself, the benchmark file's hash, package versions, the git commit (and whether the tree was
dirty), the Python version, platform and accelerator, and timings.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from longthought.io import file_sha256

PACKAGES = ["longthought", "torch", "transformers", "accelerate", "tokenizers", "vllm", "openai",
            "math-verify", "latex2sympy2-extended", "pandas", "pyarrow", "numpy"]


def config_hash(spec: dict) -> str:
    """sha256 of the spec's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()




def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(cwd: str | Path | None = None) -> dict[str, object]:
    """{"commit": sha or None, "dirty": bool or None} of the repository at `cwd`."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def device_info() -> dict[str, object]:
    try:
        import torch
    except ImportError:
        return {"cuda": False}
    info: dict[str, object] = {"cuda": torch.cuda.is_available(),
                               "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def model_files(path: str) -> dict[str, object] | None:
    """Sizes of a local model directory's files, the hash of its config.json (cheap), and the
    hub base model's pinned commit where the directory records one (an init pointer, or a
    trained student's hparams.json)."""
    p = Path(path)
    if not p.is_dir():
        return None
    files = {f.name: f.stat().st_size for f in sorted(p.iterdir()) if f.is_file()}
    config = p / "config.json"
    record: dict[str, object] = {
        "files": files, "config_sha256": file_sha256(config) if config.exists() else None}
    for name, keys in (("init.json", ("base_model", "revision", "commit")),
                       ("hparams.json", ("base_model", "base_model_revision",
                                         "base_model_commit"))):
        if (p / name).is_file():
            info = json.loads((p / name).read_text(encoding="utf-8"))
            base = {k: info.get(k) for k in keys}
            if base.get("commit") or base.get("base_model_commit"):
                record["base_model"] = base
    return record


def run_record(spec: dict, **extra: object) -> dict[str, object]:
    """The sidecar record for one run: provenance plus whatever the caller adds."""
    return {
        "config_hash": config_hash(spec),
        "spec": spec,
        "packages": package_versions(),
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device_info(),
        **extra,
    }
