"""longthought.evaluate: generate on benchmarks, score, and measure accuracy at a stated cost.

Public API: `generate_texts` and `Output` (backends), `compute_metrics`, `cost_curve` and
`budget_curve` (metrics), `run_generate` (the `longthought generate` verb); plots live in
`longthought.evaluate.plots` (imports matplotlib), the paper's points in `.paper`.
"""

from longthought.evaluate.backends import generate_texts
from longthought.evaluate.metrics import budget_curve, compute_metrics, cost_curve
from longthought.evaluate.outputs import Output

__all__ = ["Output", "budget_curve", "compute_metrics", "cost_curve", "generate_texts"]
