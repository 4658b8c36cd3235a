"""A synthetic run's results database, for the run browser's tests and `bench_viewer.py`.

Real parts where they matter: procedural problems, the curation benchmark's synthetic long
traces (`curate.synthetic`, with its faults), the real `curate` stage on them (so the rejection
reasons and details are the real ones), and generations of three models (an API teacher, a
trained student, the untrained student) on a held-out benchmark with budget-forced samples for
the student, scored at rates that make "teacher right, student wrong" happen. The database is
written by the same functions as the report rule's.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from longthought import io
from longthought.curate.synthetic import synthetic_traces, write_traces
from longthought.problems.procedural import generate
from longthought.results import database

# the families `curate.synthetic.synthetic_traces` draws its training problems from
TRAIN_FAMILIES = {"addition": {"digits": 4}, "multiplication": {"digits": 3, "by_digits": 2},
                  "linear": {"max_coef": 20, "max_x": 99, "max_b": 500},
                  "fractions": {"max_den": 40}}
BENCH_FAMILIES = {"addition": {"digits": 3}, "multiplication": {"digits": 2, "by_digits": 1}}
MODELS = {"teacher": 0.9, "student": 0.6, "student@init": 0.02}  # chance a sample is right
CURATE_SPEC = {
    "tasks": ["synthetic"],
    "filters": {"truncated": True, "thought_markers": True, "final_answer": True,
                "correct": True, "min_tokens": None, "max_tokens": None,
                "repetition": {"ngram": 8, "max_ratio": 0.5},
                "language": {"scripts": ["latin"], "min_share": 0.9}},
    "dedup": {"exact": True, "near": None, "keep": "all", "k": 1},
    "decontaminate": {"benchmarks": "all", "ngram": 8},
    "format": {"thinking": "think", "system": None},
}


def _generations(bench: list[dict], samples: int, budgets: list[int], seed: int,
                 output_tokens: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    filler = "Let me add the ones column first, then carry. " * max(1, output_tokens // 10)
    for model, rate in MODELS.items():
        for budget in [None, *(budgets if model == "student" else [])]:
            for p in bench:
                for i in range(samples):
                    right = rng.random() < (rate if budget is None else rate * budget / 256)
                    answer = p["answer"] if right else str(rng.randint(1, 999))
                    think = model != "student@init" or rng.random() < 0.01
                    text = (f"<think>\n{filler[:rng.randint(40, len(filler))]}\n</think>\n\n"
                            if think else "") + f"The answer is $\\boxed{{{answer}}}$."
                    tokens = max(1, len(text) // 4)
                    rows.append({
                        "model": model, "benchmark": "heldout", "problem_id": p["problem_id"],
                        "sample_index": i, "budget": budget,
                        "prompt": json.dumps([{"role": "user", "content": p["problem"]}]),
                        "output": text, "output_tokens": tokens,
                        "thinking_tokens": tokens - 8 if think else None,
                        "finish_reason": "stop", "extracted_answer": answer, "correct": right,
                        "verdict": "correct" if right else "wrong", "latency_s": 0.1,
                        "backend": "api" if model == "teacher" else "transformers",
                        "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 512, "seed": 0})
    df = pd.DataFrame(rows)
    df["budget"] = df["budget"].astype("Int64")
    df["thinking_tokens"] = df["thinking_tokens"].astype("Int64")
    df["correct"] = df["correct"].astype("boolean")
    return io.validate(df, "generations", "synthetic generations")


def synthetic_run(workdir: str | Path, traces: int, *, bench_problems: int = 40,
                  samples: int = 4, budgets: tuple[int, ...] = (64, 128),
                  min_tokens: int = 200, max_tokens: int = 600, seed: int = 0,
                  workers: int = 2) -> dict[str, str]:
    """Write a synthetic run under `workdir` and its `results.duckdb`; returns their paths."""
    from longthought.curate.pipeline import curate

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    per_problem = 2
    pool = pd.DataFrame(generate(TRAIN_FAMILIES, -(-traces // per_problem), seed, "train"))
    bench = generate(BENCH_FAMILIES, bench_problems, seed + 1, "heldout")
    paths = {name: str(work / f"{name}.parquet") for name in
             ("pool", "heldout", "traces", "kept", "rejected", "funnel", "generations")}
    io.write_table(pool, paths["pool"], "problems")
    io.write_table(pd.DataFrame(bench), paths["heldout"], "problems")
    write_traces(paths["traces"], synthetic_traces(traces, seed=seed, min_tokens=min_tokens,
                                                   max_tokens=max_tokens, samples=per_problem))
    curate("synthetic", CURATE_SPEC, [paths["traces"]], [paths["heldout"]], paths["kept"],
           paths["rejected"], paths["funnel"], workers=workers)
    gens = _generations(bench, samples, list(budgets), seed, max_tokens)
    io.write_table(gens, paths["generations"], "generations")
    paths["db"] = str(work / "results.duckdb")
    build_database(paths)
    return paths


def build_database(paths: dict[str, str]) -> list[str]:
    """The report rule's database for a synthetic run's files (pool named `pool`)."""
    from longthought.evaluate.metrics import compute_metrics

    gens = database.load_generations([paths["generations"]])
    tables = {
        "problems": database.load_problems([paths["pool"]], [paths["heldout"]]),
        "tasks": database.load_tasks({"synthetic": {"teacher": "synthetic", "prompt": "distill",
                                                    "pool": "pool"}}),
        "generations": gens,
        "metrics": compute_metrics(gens, [1, 4]),
        "funnel": database.load_funnels([paths["funnel"]]),
        # no training, generalization or TTI in a synthetic run: empty tables, same columns
        "train_log": database.load_train_logs([]),
        "hparams": database.load_hparams([]),
        "runs": database.load_runs([]),
        "generalization": io.read_tables([], "generalization"),
        "generalization_items": database.load_generalization_items([]),
        "tti_scores": io.read_tables([], "tti_scores"),
    }
    statements = {"traces": database.traces_sql([paths["traces"]]),
                  "curation": database.curation_sql([paths["kept"]], [paths["rejected"]])}
    return database.write_database(paths["db"], tables, statements)
