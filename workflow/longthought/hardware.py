"""What a number depends on besides the config: the machine, the kernels and the thread counts.

Two runs of the same config and seed give bit-identical losses and samples only on the same float
path: the same CPU instruction set (torch's `cpu_capability`, e.g. AVX2 vs AVX512) or GPU, the
same torch/CUDA build, the same thread counts and the same deterministic-algorithm flags. Every
training run (`hparams.json`) and every generation run (`<bench>.run.json`) records
`hardware_info()`, and the report prints `hardware_summary()` next to the numbers.

Bottom floor (like `io`): imports nothing from the package; torch is imported lazily.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "SLURM_CPUS_PER_TASK", "CUBLAS_WORKSPACE_CONFIG")
CUBLAS_DETERMINISTIC = ":4096:8"


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo, else what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cpus() -> int | None:
    """CPUs this process may run on (the SLURM/cgroup allocation), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _gpus(torch) -> list[dict[str, object]]:
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        out.append({"name": torch.cuda.get_device_name(i), "capability": f"{major}.{minor}"})
    return out


def hardware_info() -> dict[str, object]:
    """CPU/GPU, torch and CUDA builds, thread counts and determinism flags of this process."""
    info: dict[str, object] = {
        "host": platform.node(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
    }
    try:
        import torch
    except ImportError:
        return {**info, "torch": None}
    cuda = torch.cuda.is_available()
    info.update({
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpus": _gpus(torch),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
    })
    return info


def make_deterministic() -> None:
    """Ask torch for deterministic kernels (an error where an op has none), as
    `transformers.enable_full_determinism` does, for training where that costs little.

    On a CPU this changes little: with a fixed thread count torch's CPU kernels are already
    deterministic. On a GPU it makes cuBLAS, cuDNN and scatter/index ops deterministic at some
    speed cost. Must run before the first CUDA call (cuBLAS reads its workspace setting once).
    """
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def hardware_summary(info: dict | None) -> str:
    """One short line for a report cell: device, float path, torch/CUDA, threads, flags."""
    if not info:
        return "not recorded"
    gpus = info.get("gpus") or []
    if gpus:
        names = sorted({str(g.get("name")) for g in gpus if isinstance(g, dict)})
        device = f"{len(gpus)}x {', '.join(names)}"
    else:
        device = str(info.get("cpu_model") or "unknown CPU")
    parts = [device]
    if info.get("cpu_capability"):
        parts.append(f"CPU path {info['cpu_capability']}")
    build = f"torch {info.get('torch')}" + (f" CUDA {info['cuda']}" if info.get("cuda") else "")
    parts.append(build)
    if info.get("torch_threads") is not None:
        parts.append(f"{info['torch_threads']} threads (interop "
                     f"{info.get('torch_interop_threads')})")
    if info.get("deterministic_algorithms"):
        parts.append("deterministic algorithms")
    precision = info.get("float32_matmul_precision")
    if precision and precision != "highest":
        parts.append(f"fp32 matmul {precision}")
    return ", ".join(parts)
