"""Problem deduplication (exact and MinHash LSH near-duplicates) and the per-problem keep policy.

Problems are clustered by normalised text (`exact`) and, optionally, by estimated Jaccard
similarity of character n-gram shingles (`near: {threshold, num_perm, ngram}` with datasketch's
MinHash LSH). The first problem of a cluster (in input order) represents it; traces of the other
problems in the cluster are duplicates. Among a problem's traces, identical responses are
duplicates, and the keep policy picks which survive: `all`, `first` k, or the `shortest` k.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

KEEP = ("all", "first", "shortest")


def normalize_problem(text: str) -> str:
    """Lower-case, collapse whitespace, drop trailing punctuation: the exact-dedup key."""
    return " ".join(text.lower().split()).rstrip(" .?!")


@dataclass(frozen=True)
class Cluster:
    rep: str  # problem_id representing the cluster
    how: str  # "self", "exact" or "near"
    score: float = 1.0  # estimated Jaccard similarity for near duplicates


def _shingles(text: str, n: int) -> set[bytes]:
    norm = re.sub(r"\s+", " ", text.lower()).strip()
    if len(norm) <= n:
        return {norm.encode("utf-8")}
    return {norm[i : i + n].encode("utf-8") for i in range(len(norm) - n + 1)}


def cluster_problems(problems: Sequence[tuple[str, str]], exact: bool = True,
                     near: dict | None = None) -> dict[str, Cluster]:
    """problem_id -> Cluster for (problem_id, text) pairs in input order (first one wins)."""
    out: dict[str, Cluster] = {}
    by_text: dict[str, str] = {}
    reps: list[tuple[str, str]] = []
    for pid, text in problems:
        if pid in out:
            continue
        key = normalize_problem(text)
        if exact and key in by_text:
            out[pid] = Cluster(by_text[key], "exact")
            continue
        by_text.setdefault(key, pid)
        out[pid] = Cluster(pid, "self")
        reps.append((pid, text))
    if near:
        _near_duplicates(reps, out, near)
    return out


def _near_duplicates(reps: list[tuple[str, str]], out: dict[str, Cluster], near: dict) -> None:
    from datasketch import MinHash, MinHashLSH

    threshold = float(near.get("threshold", 0.8))
    num_perm = int(near.get("num_perm", 128))
    n = int(near.get("ngram", 5))
    if not 0 < threshold <= 1:
        raise ValueError(f"dedup.near.threshold must be in (0, 1], got {threshold}")
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes: dict[str, MinHash] = {}
    order = {pid: i for i, (pid, _) in enumerate(reps)}
    for pid, text in reps:
        mh = MinHash(num_perm=num_perm, seed=1)
        mh.update_batch(list(_shingles(text, n)))
        best = None
        for cand in lsh.query(mh):
            score = mh.jaccard(hashes[cand])
            if score >= threshold and (best is None or order[cand] < order[best[0]]):
                best = (cand, score)
        if best is not None:
            out[pid] = Cluster(out[best[0]].rep, "near", round(best[1], 3))
            continue
        lsh.insert(pid, mh)
        hashes[pid] = mh


@dataclass
class Candidate:
    """A surviving trace, as the keep policy sees it."""

    index: int  # position in the caller's list
    sample_id: str
    problem_id: str
    tokens: int | None
    response_hash: str


def keep_policy(cands: Sequence[Candidate], clusters: dict[str, Cluster], keep: str = "all",
                k: int = 1) -> dict[int, tuple[str, str]]:
    """index -> (reason, detail) for each candidate dedup removes; the rest are kept."""
    if keep not in KEEP:
        raise ValueError(f"dedup.keep must be one of {KEEP}, got {keep!r}")
    if keep != "all" and int(k) < 1:
        raise ValueError(f"dedup.k must be >= 1, got {k}")
    removed: dict[int, tuple[str, str]] = {}
    groups: dict[str, list[Candidate]] = {}
    for c in cands:
        cl = clusters[c.problem_id]
        if cl.rep != c.problem_id:
            how = "same text" if cl.how == "exact" else f"near duplicate, Jaccard ~{cl.score}"
            removed[c.index] = (f"duplicate problem of {cl.rep}", how)
            continue
        groups.setdefault(c.problem_id, []).append(c)
    for pid, group in groups.items():
        seen: dict[str, str] = {}
        unique = []
        for c in group:
            if c.response_hash and c.response_hash in seen:
                removed[c.index] = ("identical response", f"same as {seen[c.response_hash]}")
                continue
            seen.setdefault(c.response_hash, c.sample_id)
            unique.append(c)
        if keep == "all" or len(unique) <= k:
            continue
        if keep == "first":
            chosen = unique[:k]
        else:
            chosen = sorted(unique, key=lambda c: (c.tokens if c.tokens is not None
                                                   else float("inf"), c.index))[:k]
        kept_ids = {c.index for c in chosen}
        names = ", ".join(c.sample_id for c in chosen)
        for c in unique:
            if c.index not in kept_ids:
                removed[c.index] = (f"keep={keep} k={k}: problem {pid} has {len(unique)} traces",
                                    f"kept {names}")
    return removed
