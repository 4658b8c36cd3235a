"""Grading you can publish (issue 14): agreement with labels, and throughput against math-verify.

1. **Agreement** on the labelled regression corpus `tests/grading_corpus.py` (gold / response /
   is-it-correct, written from real answer shapes): the project's checker (`AnswerChecker`,
   evaluation's default `full` extraction) against math-verify called directly as its
   documentation shows, `verify(parse(gold), parse(response))` with its default LaTeX +
   expression extraction (a bare gold is given its `$...$`, as in the documentation's example).
   Every disagreement of either is printed.
2. **Throughput** on `--rows` long R1-style responses (a `<think>` block of `--min-tokens` ..
   `--max-tokens` tokens of varied reasoning, then a final part drawn from the corpus): the
   project's checker with `--workers` processes (started inside the timing), against a plain
   one-process loop of math-verify `parse` + `verify` over the same responses, with no guard.

    .venv/bin/python benchmarks/bench_grading.py                 # 10,000 rows, ~6 min on 2 cores
    .venv/bin/python benchmarks/bench_grading.py --rows 2000     # a quicker check

The last line is a JSON object: cases, agree, agree_math_verify, undecided, rows,
rows_per_s, rows_per_s_math_verify, speedup (target: agree >= agree_math_verify, speedup >= 1.5).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _corpus():
    spec = importlib.util.spec_from_file_location("grading_corpus", ROOT / "tests" /
                                                  "grading_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["grading_corpus"] = module
    spec.loader.exec_module(module)
    return module


def _mv_gold(gold: str) -> str:
    return gold if "$" in gold.replace("\\$", "") or "\\boxed" in gold else f"${gold}$"


def _math_verify(golds: list[str], responses: list[str]) -> list[bool]:
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    out = []
    for gold, resp in zip(golds, responses, strict=True):
        try:
            out.append(bool(verify(parse(_mv_gold(gold)), parse(resp))))
        except Exception:
            out.append(False)
    return out


def agreement(workers: int, timeout_s: float) -> dict:
    from longthought.answers import AnswerChecker

    corpus = _corpus()
    cases = corpus.CASES
    responses = [corpus.response(c, i) for i, c in enumerate(cases)]
    golds = [c.gold for c in cases]
    with AnswerChecker(workers=workers, timeout_s=timeout_s) as checker:
        verdicts = checker.check(golds, responses, problems=[c.problem for c in cases])
    mv = _math_verify(golds, responses)
    ours_ok = [(v.correct is True) == c.label for v, c in zip(verdicts, cases, strict=True)]
    mv_ok = [m == c.label for m, c in zip(mv, cases, strict=True)]
    by_kind: dict[str, list[int]] = {}
    for c, o, m in zip(cases, ours_ok, mv_ok, strict=True):
        row = by_kind.setdefault(c.kind, [0, 0, 0])
        row[0] += 1
        row[1] += o
        row[2] += m
    print(f"{'kind':<10} {'cases':>5} {'checker':>8} {'math-verify':>12}")
    for kind, (n, o, m) in by_kind.items():
        print(f"{kind:<10} {n:>5} {o:>8} {m:>12}")
    for i, (c, v, o, m, ok_mv) in enumerate(zip(cases, verdicts, ours_ok, mv, mv_ok,
                                                strict=True)):
        if not o or not ok_mv:
            who = " & ".join(w for w, bad in (("checker", not o), ("math-verify", not ok_mv))
                             if bad)
            print(f"  miss ({who}) #{i} {c.kind}: gold {c.gold[:40]!r} label {c.label}; "
                  f"checker {v.reason} {v.extracted!r} [{v.method}]; math-verify {m}; "
                  f"final {c.final[-60:]!r}")
    return {"cases": len(cases), "agree": sum(ours_ok), "agree_math_verify": sum(mv_ok),
            "undecided": sum(v.correct is None for v in verdicts),
            "agree_by_kind": {k: {"cases": n, "agree": o, "agree_math_verify": m}
                              for k, (n, o, m) in by_kind.items()}}


def long_responses(rows: int, min_tokens: int, max_tokens: int, seed: int):
    """(golds, responses, problems): long R1-style thoughts, final parts from the corpus."""
    from longthought.curate.synthetic import _paragraphs, _thought

    corpus = _corpus()
    cases = [c for c in corpus.CASES if c.shape != "raw"]
    rng = random.Random(seed)
    paras = _paragraphs(rng)
    golds, responses, problems = [], [], []
    for i in range(rows):
        c = cases[i % len(cases)]
        thought = _thought(rng, paras, rng.randint(min_tokens, max_tokens))
        if c.boxed_in_thought:
            thought += f"\n\nSo tentatively $\\boxed{{{c.boxed_in_thought}}}$; let me check."
        # a distinct final part per row (a word, no digits): no verdict is served from a cache
        tag = "".join(chr(97 + (i // 26**k) % 26) for k in range(4))
        golds.append(c.gold)
        responses.append(f"<think>\n{thought}\n</think>\n\nChecked as run {tag}.\n\n{c.final}")
        problems.append(c.problem)
    return golds, responses, problems


def throughput(rows: int, workers: int, timeout_s: float, min_tokens: int, max_tokens: int,
               seed: int) -> dict:
    from longthought.answers import AnswerChecker

    golds, responses, problems = long_responses(rows, min_tokens, max_tokens, seed)
    chars = sum(map(len, responses)) / rows
    print(f"{rows} responses, {chars:.0f} characters each on average")
    t0 = time.perf_counter()
    with AnswerChecker(workers=workers, timeout_s=timeout_s) as checker:
        verdicts = checker.check(golds, responses, problems=problems)
        parser_calls = checker.parser_calls
    ours_s = time.perf_counter() - t0
    print(f"checker, {workers} workers: {ours_s:.1f} s ({rows / ours_s:.1f} rows/s; "
          f"{parser_calls} distinct items needed math-verify)")
    t0 = time.perf_counter()
    mv = _math_verify(golds, responses)
    mv_s = time.perf_counter() - t0
    print(f"math-verify, plain loop, 1 process: {mv_s:.1f} s ({rows / mv_s:.1f} rows/s)")
    same = sum((v.correct is True) == m for v, m in zip(verdicts, mv, strict=True))
    return {"rows": rows, "rows_per_s": round(rows / ours_s, 1),
            "rows_per_s_math_verify": round(rows / mv_s, 1),
            "speedup": round(mv_s / ours_s, 2), "workers": workers,
            "parser_items": parser_calls, "same_verdict_as_math_verify": same,
            "chars_per_response": round(chars), "load_average": round(os.getloadavg()[0], 2),
            "cpu_count": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--min-tokens", type=int, default=2000)
    parser.add_argument("--max-tokens", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = agreement(args.workers, args.timeout)
    print(f"agreement: checker {result['agree']}/{result['cases']}, math-verify "
          f"{result['agree_math_verify']}/{result['cases']}, undecided {result['undecided']}")
    result.update(throughput(args.rows, args.workers, args.timeout, args.min_tokens,
                             args.max_tokens, args.seed))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
