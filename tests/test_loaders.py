"""Problem loaders: procedural, local files (MATH- and NuminaMath-style), Hugging Face datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import BENCH_DIR

from longthought import io
from longthought.problems.loaders import infer_answer_type, load_problems, stable_id

needs_shared = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared benchmarks absent")

MATH_ROWS = [
    {"problem": "What is $1+1$?", "solution": "Clearly $\\boxed{2}$.", "answer": "2",
     "subject": "Algebra", "level": 1, "unique_id": "test/algebra/1.json"},
    {"problem": "Convert $(0,3)$ to polar.", "solution": "$\\boxed{(3,\\frac{\\pi}{2})}$",
     "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus", "level": 2,
     "unique_id": "test/precalculus/807.json"},
]
NUMINA_ROWS = [  # NuminaMath-CoT style: no answer column, answer boxed in the solution
    {"source": "olympiads", "problem": "Find $x$ if $2x=6$.",
     "solution": "Divide: $x=3$. So \\boxed{3}.", "messages": [{"role": "user", "content": "x"}]},
    {"source": "synthetic_math", "problem": "Compute $\\frac{1}{2}+\\frac{1}{3}$.",
     "solution": "We get $\\boxed{\\frac{5}{6}}$.", "messages": []},
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_procedural_source():
    spec = {"source": "procedural", "split": "heldout", "n": 12, "seed": 3,
            "families": {"addition": {"digits": 3}, "fractions": {"max_den": 9}}}
    df = load_problems(spec)
    assert len(df) == 12 and df["problem_id"].is_unique
    assert set(df["answer_type"]) <= {"integer", "rational"}
    assert df.equals(load_problems(spec))  # seeded


def test_math_style_file(tmp_path):
    path = _jsonl(tmp_path / "math.jsonl", MATH_ROWS)
    df = load_problems({"source": "file", "path": "math.jsonl",
                        "columns": {"problem_id": "unique_id"}}, base_dir=str(tmp_path))
    assert df["problem_id"].tolist() == ["test/algebra/1.json", "test/precalculus/807.json"]
    assert df["answer_type"].tolist() == ["integer", "tuple"]
    assert df["source"].tolist() == ["math.jsonl"] * 2
    assert json.loads(df["meta"][1]) == {"level": 2, "subject": "Precalculus"}
    io.validate(df, "problems", str(path))


def test_numina_style_file_takes_answer_from_solution(tmp_path):
    _jsonl(tmp_path / "numina.jsonl", NUMINA_ROWS)
    spec = {"source": "file", "path": str(tmp_path / "numina.jsonl"), "name": "numina",
            "meta": ["source"]}
    df = load_problems(spec)
    assert df["answer"].tolist() == ["3", "\\frac{5}{6}"]
    assert df["answer_type"].tolist() == ["integer", "rational"]
    assert df["problem_id"].tolist() == [stable_id(r["problem"]) for r in NUMINA_ROWS]
    assert df["problem_id"].tolist() == load_problems(spec)["problem_id"].tolist()  # stable
    assert json.loads(df["meta"][0]) == {"source": "olympiads"}
    assert set(df["source"]) == {"numina"}


def test_golds_in_every_shape_go_through_one_normaliser(tmp_path):
    rows = [{"problem": "P1?", "answer": "$28\\%$"}, {"problem": "P2?", "answer": "27.0"},
            {"problem": "P3?", "answer": "So the total is $\\boxed{10{,}455}$ dollars."},
            {"problem": "P4?", "answer": "\\(\\dfrac{1}{4}\\)"},
            {"problem": "P5?", "answer": None, "solution": "Both work: $x=\\boxed{1}$ or "
                                                           "$x=\\boxed{5}$."}]
    _jsonl(tmp_path / "g.jsonl", rows)
    df = load_problems({"source": "file", "path": str(tmp_path / "g.jsonl")})
    assert df["answer"].tolist() == ["28\\%", "27", "10{,}455", "\\dfrac{1}{4}", "1, 5"]


def test_csv_and_parquet_and_float_answers(tmp_path):
    rows = [{"id": 0, "question": "Q one?", "answer": 27.0},
            {"id": 1, "question": "Q two?", "answer": 2.5}]
    pd.DataFrame(rows).to_parquet(tmp_path / "amc.parquet")
    pd.DataFrame(rows).to_csv(tmp_path / "amc.csv", index=False)
    for name in ("amc.parquet", "amc.csv"):
        df = load_problems({"source": "file", "path": str(tmp_path / name),
                            "columns": {"problem_id": "id", "problem": "question"}})
        assert df["problem_id"].tolist() == ["0", "1"]
        assert df["answer"].tolist() == ["27", "2.5"]
        assert df["answer_type"].tolist() == ["integer", "rational"]


def test_limit_with_seed_is_reproducible(tmp_path):
    rows = [{"problem": f"Problem {i}?", "answer": str(i)} for i in range(50)]
    path = _jsonl(tmp_path / "p.jsonl", rows)
    spec = {"source": "file", "path": str(path), "limit": 10, "seed": 4}
    a, b = load_problems(spec), load_problems(spec)
    assert len(a) == 10 and a.equals(b)
    assert a["problem"].tolist() != [f"Problem {i}?" for i in range(10)]
    first = load_problems({"source": "file", "path": str(path), "limit": 3})
    assert first["answer"].tolist() == ["0", "1", "2"]


def test_fixed_and_per_row_answer_types(tmp_path):
    rows = [{"problem": "P?", "answer": "x+1", "kind": "expression"},
            {"problem": "Q?", "answer": "7", "kind": "integer"}]
    path = _jsonl(tmp_path / "t.jsonl", rows)
    df = load_problems({"source": "file", "path": str(path), "answer_type": "text"})
    assert set(df["answer_type"]) == {"text"}
    df = load_problems({"source": "file", "path": str(path), "columns": {"answer_type": "kind"}})
    assert df["answer_type"].tolist() == ["expression", "integer"]
    with pytest.raises(ValueError, match="answer_type must be"):
        load_problems({"source": "file", "path": str(path), "answer_type": "number"})


def test_missing_values_name_file_row_and_key(tmp_path):
    rows = [{"problem": "ok?", "answer": "1"}, {"problem": "", "answer": "2"}]
    path = _jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ValueError, match=r"bad\.jsonl: row 2: missing problem text.*'problem'"):
        load_problems({"source": "file", "path": str(path)})
    rows = [{"problem": "ok?", "answer": "1"}, {"problem": "no answer?", "answer": None}]
    path = _jsonl(tmp_path / "noans.jsonl", rows)
    with pytest.raises(ValueError, match=r"noans\.jsonl: row 2: missing answer .*'answer'"):
        load_problems({"source": "file", "path": str(path)})
    df = load_problems({"source": "file", "path": str(path), "allow_missing_answer": True})
    assert df["answer"].tolist() == ["1", ""]


def test_bad_columns_and_specs(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{"q": "x?", "a": "1", "pid": "a"},
                                        {"q": "y?", "a": "2", "pid": "a"}])
    with pytest.raises(ValueError, match=r"no column 'problem' for columns.problem"):
        load_problems({"source": "file", "path": str(path)})
    with pytest.raises(ValueError, match=r"no column 'nope' for columns.answer"):
        load_problems({"source": "file", "path": str(path),
                       "columns": {"problem": "q", "answer": "nope"}})
    with pytest.raises(ValueError, match=r"duplicate problem_id \['a'\] at rows \[1, 2\]"):
        load_problems({"source": "file", "path": str(path),
                       "columns": {"problem": "q", "answer": "a", "problem_id": "pid"}})
    with pytest.raises(ValueError, match="unknown keys in 'columns'"):
        load_problems({"source": "file", "path": str(path), "columns": {"question": "q"}})
    with pytest.raises(ValueError, match="source must be one of"):
        load_problems({"source": "ftp"})
    with pytest.raises(FileNotFoundError):
        load_problems({"source": "file", "path": str(tmp_path / "absent.jsonl")})
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="unsupported problem file type"):
        load_problems({"source": "file", "path": str(tmp_path / "x.txt")})


def test_duplicate_texts_without_ids_get_distinct_ids(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [{"problem": "Same?", "answer": "1"},
                                        {"problem": "Same?", "answer": "1"}])
    df = load_problems({"source": "file", "path": str(path)})
    pid = stable_id("Same?")
    assert df["problem_id"].tolist() == [pid, f"{pid}-2"]


def test_hf_local_save_to_disk(tmp_path):
    import datasets

    datasets.Dataset.from_list(MATH_ROWS).save_to_disk(str(tmp_path / "ds"))
    df = load_problems({"source": "hf", "id": str(tmp_path / "ds"), "split": "test",
                        "columns": {"problem_id": "unique_id"}, "meta": ["level"]})
    assert df["answer"].tolist() == ["2", "\\left( 3, \\frac{\\pi}{2} \\right)"]
    assert json.loads(df["meta"][0]) == {"level": 1}
    datasets.DatasetDict({"test": datasets.Dataset.from_list(NUMINA_ROWS)}).save_to_disk(
        str(tmp_path / "dd"))
    df = load_problems({"source": "hf", "id": "dd", "split": "test"}, base_dir=str(tmp_path))
    assert df["answer"].tolist() == ["3", "\\frac{5}{6}"]
    with pytest.raises(ValueError, match="no split 'train'"):
        load_problems({"source": "hf", "id": str(tmp_path / "dd"), "split": "train"})


def test_hf_hub_id_calls_load_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(ident, config, split, revision):
        calls.append((ident, config, split, revision))
        return datasets.Dataset.from_list(MATH_ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    df = load_problems({"source": "hf", "id": "HuggingFaceH4/MATH-500", "config": None,
                        "split": "test", "columns": {"problem_id": "unique_id"}})
    assert calls == [("HuggingFaceH4/MATH-500", None, "test", None)]
    assert set(df["source"]) == {"HuggingFaceH4/MATH-500"} and len(df) == 2


@pytest.mark.parametrize(("answer", "kind"), [
    ("42", "integer"), ("-7", "integer"), (27.0, "integer"), ("x=5", "integer"),
    ("90^\\circ", "integer"), ("10,\\!080", "integer"), ("\\$36", "integer"),
    ("\\frac{14}{3}", "rational"), ("0.15", "rational"), ("-\\frac 59", "rational"),
    ("3/4", "rational"), ("1\\frac{4}{5}", "rational"),
    ("(2,\\infty)", "interval"), ("[2,5)", "interval"), ("(0,9) \\cup (9,36)", "interval"),
    ("x \\in [-2,7]", "interval"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "tuple"), ("(15,-29)", "tuple"), ("3, 5, 7", "tuple"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "tuple"), ("\\{1,-2\\}", "tuple"),
    ("\\text{Evelyn}", "text"), ("\\text{even}", "text"), ("", "text"),
    ("\\text{(C)}", "choice"), ("B", "choice"), ("(D)", "choice"),
    ("p - q", "expression"), ("3\\sqrt{13}", "expression"), ("(a+5)(b+2)", "expression"),
    ("6 - 5i", "expression"), ("\\pi", "expression"),
])
def test_infer_answer_type(answer, kind):
    assert infer_answer_type(answer) == kind


@needs_shared
def test_real_benchmark_files_load():
    aime = load_problems({"source": "file", "path": str(BENCH_DIR / "aime24.jsonl"),
                          "columns": {"problem_id": "id"}, "name": "aime24"})
    amc = load_problems({"source": "file", "path": str(BENCH_DIR / "amc23.jsonl"),
                         "columns": {"problem_id": "id"}, "name": "amc23"})
    math = load_problems({"source": "file", "path": str(BENCH_DIR / "math500.jsonl"),
                          "columns": {"problem_id": "unique_id"}, "name": "math500"})
    assert (len(aime), len(amc), len(math)) == (30, 40, 500)
    assert set(aime["answer_type"]) == {"integer"}
    assert amc["answer"].iloc[0] == "27" and not amc["answer"].str.endswith(".0").any()
    assert set(math["answer_type"]) == {"integer", "rational", "expression", "interval", "tuple",
                                        "text", "choice"}


def test_multiple_choice_rows_become_lettered_problems(tmp_path):
    """GPQA-style columns: options are shuffled per question, stably; gold is the letter."""
    import json as _json

    path = tmp_path / "gpqa.jsonl"
    rows = [{"Question": f"Which is element {i}?", "Correct Answer": f"right {i}",
             "Incorrect Answer 1": f"wrong a{i}", "Incorrect Answer 2": f"wrong b{i}",
             "Incorrect Answer 3": f"wrong c{i}"} for i in range(12)]
    path.write_text("\n".join(_json.dumps(r) for r in rows))
    spec = {"source": "file", "path": str(path), "columns": {"problem": "Question"},
            "multiple_choice": {"correct": "Correct Answer", "shuffle_seed": 0,
                                "incorrect": ["Incorrect Answer 1", "Incorrect Answer 2",
                                              "Incorrect Answer 3"]}}
    df = load_problems(spec)
    assert set(df["answer_type"]) == {"choice"}
    letters = set()
    for i, r in enumerate(df.itertuples()):
        line = next(ln for ln in r.problem.splitlines() if ln.startswith(f"{r.answer})"))
        assert line == f"{r.answer}) right {i}"
        letters.add(r.answer)
    assert len(letters) > 1  # shuffled, not always A
    assert load_problems(spec).equals(df)  # stable
    bad = {**spec, "multiple_choice": {**spec["multiple_choice"], "correct": "Nope"}}
    with pytest.raises(ValueError, match="multiple_choice.correct"):
        load_problems(bad)
