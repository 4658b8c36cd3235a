"""longthought.evaluate: generate on benchmarks, score, and measure accuracy at a stated cost.

Public API: `generate_texts` and `Output` (backends), `compute_metrics`, `cost_curve` and
`budget_curve` (metrics), `run_generate` (the `longthought generate` verb); plots live in
`longthought.evaluate.plots` (imports matplotlib), the paper's points in `.paper`.

The names are imported on first use: a process that needs only the light modules (the local
teacher reads `backends`' checks on the login node) does not load pandas with `metrics`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real names for type checkers and editors
    from longthought.evaluate.backends import generate_texts
    from longthought.evaluate.metrics import budget_curve, compute_metrics, cost_curve
    from longthought.evaluate.outputs import Output
    from longthought.evaluate.run import run_generate

_EXPORTS = {"generate_texts": "backends", "Output": "outputs", "budget_curve": "metrics",
            "compute_metrics": "metrics", "cost_curve": "metrics", "run_generate": "run"}

__all__ = ["Output", "budget_curve", "compute_metrics", "cost_curve", "generate_texts",
           "run_generate"]
assert sorted(__all__) == sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
