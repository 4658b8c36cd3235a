"""The paper's published evaluation points (Huang et al. 2024, arXiv 2411.16489, Table 1).

Kept as data so that plots can draw them as a reference layer next to our own models: the paper
compares models at comparable *average output tokens*, so each point is (accuracy, avg tokens).
AIME 2024 accuracy is published as solved/30; we store the fraction.
"""

from __future__ import annotations

import re

import pandas as pd

# (model, benchmark, accuracy as a fraction, average output tokens, accuracy as printed)
TABLE1: list[tuple[str, str, float, float, str]] = [
    ("o1-preview", "aime2024", 12 / 30, 9083, "12/30"),
    ("o1-mini", "aime2024", 21 / 30, 9903, "21/30"),
    ("distilled Qwen2.5-Math-72B", "aime2024", 13 / 30, 8016, "13/30"),
    ("o1-preview", "math500", 0.855, 1501, "85.5"),
    ("o1-mini", "math500", 0.900, 944, "90.0"),
    ("distilled Qwen2.5-Math-72B", "math500", 0.872, 2235, "87.2"),
]

# benchmark names in config that mean the paper's sets: compared after lowercasing and removing
# everything but letters and digits, by prefix, so "AIME 2024", "aime_24", "aime24" and
# "aime24-local" all match
_PREFIXES: list[tuple[str, str]] = [("aime2024", "aime2024"), ("aime24", "aime2024"),
                                    ("math500", "math500")]


def canonical_benchmark(name: str) -> str | None:
    """The paper's benchmark key for one of our benchmark names, or None if it is not one."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return next((paper for prefix, paper in _PREFIXES if key.startswith(prefix)), None)


def reference_points(benchmark: str | None = None) -> pd.DataFrame:
    """The paper's Table 1 points, optionally only those for our benchmark `benchmark`."""
    df = pd.DataFrame(TABLE1, columns=["model", "benchmark", "accuracy", "avg_output_tokens",
                                       "printed"])
    if benchmark is None:
        return df
    key = canonical_benchmark(benchmark)
    return df[df["benchmark"] == key].reset_index(drop=True)
