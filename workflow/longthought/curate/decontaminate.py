"""Decontamination: drop training problems that share a word n-gram with an evaluation problem.

As in open-r1 and s1: texts are lower-cased and split into alphanumeric words (LaTeX commands
become words such as "frac"), and a training problem is contaminated if any of its word n-grams
(default 8) appears in any benchmark problem. Problems shorter than n words are compared whole
(same word sequence). The match names the benchmark, its problem id and the shared n-gram.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

_WORD_RE = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


@dataclass(frozen=True)
class Match:
    benchmark: str
    problem_id: str
    ngram: str


class BenchmarkIndex:
    """Every word n-gram of every benchmark problem, for O(words) lookups per training problem."""

    def __init__(self, benchmarks: dict[str, pd.DataFrame], n: int = 8):
        if int(n) < 1:
            raise ValueError(f"decontaminate.ngram must be >= 1, got {n}")
        self.n = int(n)
        self.grams: dict[str, tuple[str, str]] = {}
        self.short: dict[str, tuple[str, str]] = {}
        self.sizes = {name: len(df) for name, df in benchmarks.items()}
        for name, df in benchmarks.items():
            for pid, text in zip(df["problem_id"].astype(str), df["problem"].astype(str),
                                 strict=True):
                w = words(text)
                if len(w) < self.n:
                    self.short.setdefault(" ".join(w), (name, pid))
                    continue
                for i in range(len(w) - self.n + 1):
                    self.grams.setdefault(" ".join(w[i : i + self.n]), (name, pid))

    def match(self, text: str) -> Match | None:
        """The first n-gram of `text` found in a benchmark, or None if `text` is clean."""
        w = words(text)
        if len(w) < self.n:
            hit = self.short.get(" ".join(w))
            return Match(hit[0], hit[1], " ".join(w)) if hit and w else None
        for i in range(len(w) - self.n + 1):
            gram = " ".join(w[i : i + self.n])
            hit = self.grams.get(gram)
            if hit:
                return Match(hit[0], hit[1], gram)
        return None
