"""The paper's problem-pool filters, each switchable in `pools.<pool>.filters`.

The paper keeps problems that stand on their text alone and have a checkable numerical answer.
Filters run in this order; a problem is removed by the first that matches, and goes to the
rejected table with the filter's name and a reason quoting what matched:

    figures:      true   depends on an image: Asymptote ([asy]), \\includegraphics, markdown or HTML
                         images, image links, the words "figure" / "diagram" ("figure out" is fine)
    no_answer:    true   no explicitly labelled answer (empty gold answer)
    proofs:       true   asks for a proof: "prove", "proof", "show that", "demonstrate that"
    answer_types: [...]  keep only these answer types (integer, rational, expression, interval,
                         tuple, text, choice); null or absent keeps all

A key set to false or null switches its filter off; `{}` keeps every problem.
"""

from __future__ import annotations

import re

import pandas as pd

from longthought.schemas import ANSWER_TYPES

ORDER = ("figures", "no_answer", "proofs", "answer_types")
REJECTED_COLUMNS = ["problem_id", "filter", "reason"]

FIGURE_RE = re.compile(
    r"\[asy\]|\\begin\{asy\}|\\includegraphics|!\[[^\]]*\]\([^)]*\)|<img\b"
    r"|https?://\S+\.(?:png|jpe?g|gif|svg|webp)\b"
    r"|\bfigures?\b(?!\s+out)|\bdiagrams?\b",
    re.IGNORECASE,
)
PROOF_RE = re.compile(r"\bprove\b|\bproves\b|\bproof\b|\bshow that\b|\bdemonstrate that\b",
                      re.IGNORECASE)


def _matches(texts: pd.Series, regex: re.Pattern[str]) -> pd.Series:
    """The first match of `regex` in each text (NaN where none)."""
    return texts.fillna("").astype(str).str.extract(f"({regex.pattern})", flags=regex.flags)[0]


def apply_pool_filters(df: pd.DataFrame, filters: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, rejected): `rejected` has columns problem_id, filter, reason; kept + rejected = df."""
    filters = dict(filters or {})
    unknown = sorted(set(filters) - set(ORDER))
    if unknown:
        raise ValueError(f"filters: unknown keys {unknown}; known: {list(ORDER)}")
    allowed = filters.get("answer_types")
    if allowed is not None:
        if isinstance(allowed, str):
            allowed = [allowed]
        bad = sorted(set(allowed) - set(ANSWER_TYPES))
        if bad:
            raise ValueError(f"filters.answer_types: unknown types {bad}; known: {ANSWER_TYPES}")

    reason = pd.Series([None] * len(df), index=df.index, dtype=object)
    name = pd.Series([None] * len(df), index=df.index, dtype=object)

    def mark(filter_name: str, hit: pd.Series, why: pd.Series) -> None:
        new = hit & name.isna()
        name[new] = filter_name
        reason[new] = why[new]

    if filters.get("figures"):
        found = _matches(df["problem"], FIGURE_RE)
        mark("figures", found.notna(), "refers to a figure: " + found.astype(str).str.slice(0, 80))
    if filters.get("no_answer"):
        empty = df["answer"].fillna("").astype(str).str.strip() == ""
        mark("no_answer", empty, pd.Series("no explicitly labelled answer", index=df.index))
    if filters.get("proofs"):
        found = _matches(df["problem"], PROOF_RE)
        mark("proofs", found.notna(), "asks for a proof: " + found.astype(str))
    if allowed is not None:
        types = df["answer_type"].astype(str)
        mark("answer_types", ~types.isin(allowed),
             "answer type " + types + f" not in {sorted(allowed)}")

    removed = name.notna()
    rejected = pd.DataFrame({
        "problem_id": df.loc[removed, "problem_id"].astype(str),
        "filter": name[removed].astype(str),
        "reason": reason[removed].astype(str),
    }, columns=REJECTED_COLUMNS).reset_index(drop=True)
    kept = df.loc[~removed].reset_index(drop=True)
    assert len(kept) + len(rejected) == len(df)
    return kept, rejected
