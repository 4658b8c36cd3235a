"""`longthought traces` / `traces-status` through the real CLI entry point: distill and rewrite
tasks against the sim teacher, rerun from the cache, bad input, and importing published traces."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from longthought.cli import main
from longthought.io import read_table, write_table
from longthought.problems.procedural import generate

SIM = {"base_url": "sim", "model": "sim-o1", "api_key_env": "LONGTHOUGHT_SIM_API_KEY",
       "sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 1024},
       "samples_per_problem": 2,
       "limits": {"max_concurrency": 8, "requests_per_minute": 60000, "tokens_per_minute": None,
                  "timeout_s": 30, "max_retries": 6},
       "pricing": {"input": 3.0, "output": 12.0, "reasoning": 12.0}, "budget_usd": 10.0,
       "sim": {"slip_rate": 0.5, "wrong_rate": 0.0, "truncate_rate": 0.0, "latency_ms": 0,
               "seed": 7}}
DISTILL = {"system": None, "user": "Solve the following math problem and put the final answer "
           "in \\boxed{}.\n\n{problem}"}
REWRITE = {"system": "You rewrite solutions.", "user": "Rewrite the reference solution below "
           "step by step.\n\nProblem: {problem}\n\nReference solution: {solution}"}


def spec(prompt: dict, prompt_name: str, teacher: dict = SIM, **task) -> str:
    return json.dumps({"task": {"teacher": "sim-o1", "prompt": prompt_name, "pool": "p", **task},
                       "teacher": teacher, "prompt": prompt, "teacher_name": "sim-o1",
                       "prompt_name": prompt_name})


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("pool") / "problems.parquet"
    rows = generate({"addition": {}, "multiplication": {}, "linear": {}, "fractions": {}}, 12, 1,
                    "train")
    write_table(pd.DataFrame(rows), path, "problems")
    return path


def boxed(text: str) -> str | None:
    m = re.search(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}", text or "")
    return m.group(1) if m else None


def test_distill_and_rewrite_tasks_then_rerun_from_cache(pool, tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "traces" / "distill.parquet"
    args = ["traces", "--task", "distill", "--spec", spec(DISTILL, "distill"), "--problems",
            str(pool), "--cache-dir", str(cache), "--out", str(out), "--quiet"]
    assert main(args) == 0
    df = read_table(out, "traces")
    assert len(df) == 24 and set(df["status"]) == {"ok"} and not df["cached"].any()
    assert df["trace_id"].iloc[1] == f"distill/{df['problem_id'].iloc[1]}/1"
    assert list(df["sample_index"][:4]) == [0, 1, 0, 1]
    assert all(boxed(c) == a for c, a in zip(df["content"], df["answer"], strict=True))
    assert df["content"].str.startswith("<think>").all()
    assert (df["teacher"] == "sim-o1").all() and (df["prompt"] == "distill").all()
    req = json.loads(df["request"].iloc[0])
    assert req["messages"][0]["content"].endswith(df["problem"].iloc[0])
    assert req["model"] == "sim-o1" and req["max_tokens"] == 1024
    assert df.groupby("problem_id")["content"].nunique().max() == 2  # samples differ
    assert (df["cost_usd"] > 0).all() and (df["completion_tokens"] > 0).all()

    assert main(args) == 0  # rerun: everything from the cache
    again = read_table(out, "traces")
    assert again["cached"].all() and list(again["content"]) == list(df["content"])

    rw_out = tmp_path / "traces" / "rewrite.parquet"
    teacher = {**SIM, "model": "sim-4o-mini", "samples_per_problem": 1}
    assert main(["traces", "--task", "rewrite", "--spec", spec(REWRITE, "rewrite", teacher),
                 "--problems", str(pool), "--cache-dir", str(cache), "--out", str(rw_out),
                 "--quiet"]) == 0
    rw = read_table(rw_out, "traces")
    assert len(rw) == 12 and rw["content"].str.contains("Step 1:").all()
    msgs = json.loads(rw["request"].iloc[0])["messages"]
    assert msgs[0] == {"role": "system", "content": "You rewrite solutions."}
    assert "Reference solution: So " in msgs[1]["content"]

    capsys.readouterr()
    assert main(["traces-status", "--cache-dir", str(cache), str(out), str(rw_out),
                 str(tmp_path / "missing.parquet")]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("distill "))
    assert line.split()[1:6] == ["24", "24", "24", "0", "0"]
    assert "not written yet" in text and "request cache" in text
    assert re.search(r"^rewrite\s+12\s", text, re.M)


def test_rewrite_without_a_solution_names_the_row(pool, tmp_path, capsys):
    df = read_table(pool, "problems")
    df.loc[2, "solution"] = None
    bad = tmp_path / "nosol.parquet"
    write_table(df, bad, "problems")
    out = tmp_path / "t.parquet"
    code = main(["traces", "--task", "rewrite", "--spec", spec(REWRITE, "rewrite"), "--problems",
                 str(bad), "--cache-dir", str(tmp_path / "c"), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "row 3" in err and df.loc[2, "problem_id"] in err  # 3rd row
    assert str(bad) in err and not out.exists()
    code = main(["traces", "--task", "x", "--spec", spec(DISTILL, "distill", samples_per_problem=0),
                 "--problems", str(pool), "--cache-dir", str(tmp_path / "c"), "--out", str(out)])
    assert code == 2 and "samples_per_problem" in capsys.readouterr().err


def test_import_published_traces_from_files(pool, tmp_path, capsys):
    probs = read_table(pool, "problems")
    src = tmp_path / "published.jsonl"
    with open(src, "w") as fh:
        for i, (p, a) in enumerate(zip(probs["problem"][:4], probs["answer"][:4], strict=True)):
            fh.write(json.dumps({"question": p, "generation": f"<think>work</think> \\boxed{{{a}}}",
                                 "thought": "t" * i, "teacher_model": "o1-mini"}) + "\n")
        fh.write(json.dumps({"question": probs["problem"][0], "generation": "",
                             "thought": None, "teacher_model": "o1-mini"}) + "\n")
    task = {"import": {"source": "file", "path": str(src), "columns": {
        "problem": "question", "content": "generation", "reasoning_content": "thought",
        "model": "teacher_model"}}}
    out = tmp_path / "imported.parquet"
    sp = json.dumps({"task": task, "teacher_name": None, "prompt_name": None})
    assert main(["traces", "--task", "imp", "--spec", sp, "--problems", str(pool),
                 "--cache-dir", str(tmp_path / "c"), "--out", str(out), "--quiet"]) == 0
    df = read_table(out, "traces")
    assert len(df) == 5 and list(df["answer"][:4]) == list(probs["answer"][:4])
    assert list(df["status"]) == ["ok"] * 4 + ["failed"]
    assert df["trace_id"].iloc[4].endswith("/1")  # second sample of the same problem
    assert (df["model"] == "o1-mini").all() and df["teacher"].iloc[0] == f"import:{src}"
    assert json.loads(df["response"].iloc[1])["thought"] == "t"

    pq = tmp_path / "published.parquet"
    pd.DataFrame({"q": ["What is 1+1?"], "a": ["2"], "out": ["\\boxed{2}"]}).to_parquet(pq)
    task = {"import": {"source": "file", "path": str(pq),
                       "columns": {"problem": "q", "answer": "a", "content": "out"}}}
    sp = json.dumps({"task": task, "teacher_name": "published"})
    assert main(["traces", "--task", "imp2", "--spec", sp, "--cache-dir", str(tmp_path / "c"),
                 "--out", str(out)]) == 0
    df = read_table(out, "traces")
    assert df["answer"].tolist() == ["2"] and df["teacher"].tolist() == ["published"]

    task["import"]["columns"]["content"] = "nope"
    sp = json.dumps({"task": task})
    assert main(["traces", "--task", "imp3", "--spec", sp, "--cache-dir", str(tmp_path / "c"),
                 "--out", str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err
    assert "no column 'nope'" in err and str(pq) in err


def test_failed_and_skipped_rows_are_kept_in_the_table(pool, tmp_path):
    failing = {**SIM, "samples_per_problem": 1, "budget_usd": None,
               "limits": {**SIM["limits"], "max_retries": 0},
               "sim": {**SIM["sim"], "faults": {"rate_500": 1.0}}}
    out = tmp_path / "failed.parquet"
    assert main(["traces", "--task", "f", "--spec", spec(DISTILL, "distill", failing),
                 "--problems", str(pool), "--cache-dir", str(tmp_path / "c"), "--out", str(out),
                 "--quiet"]) == 0
    df = read_table(out, "traces")
    assert len(df) == 12 and set(df["status"]) == {"failed"}
    assert df["error"].str.contains("HTTP 500").all() and df["content"].isna().all()
    broke = {**SIM, "samples_per_problem": 1, "budget_usd": 0.0}
    assert main(["traces", "--task", "b", "--spec", spec(DISTILL, "distill", broke),
                 "--problems", str(pool), "--cache-dir", str(tmp_path / "c"), "--out", str(out),
                 "--quiet"]) == 0
    df = read_table(out, "traces")
    assert set(df["status"]) == {"skipped_budget"} and (df["attempts"] == 0).all()


def test_import_through_the_datasets_library(tmp_path):
    folder = tmp_path / "hub_like"
    folder.mkdir()
    pd.DataFrame({"problem": ["Compute $1 + 2$.", "Compute $2 + 2$."], "answer": ["3", "4"],
                  "solution": ["\\boxed{3}", "\\boxed{4}"]}).to_json(
        folder / "train.jsonl", orient="records", lines=True)
    task = {"import": {"source": "hf", "id": str(folder), "split": "train",
                       "columns": {"content": "solution"}}}
    out = tmp_path / "hf.parquet"
    assert main(["traces", "--task", "hf", "--spec", json.dumps({"task": task}), "--problems",
                 "--cache-dir", str(tmp_path / "c"), "--out", str(out), "--quiet"]) == 0
    df = read_table(out, "traces")
    assert df["answer"].tolist() == ["3", "4"] and df["content"].tolist()[0] == "\\boxed{3}"
    assert df["teacher"].iloc[0] == f"import:hf:{folder}"
