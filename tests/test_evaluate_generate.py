"""`longthought generate` end to end: a local tiny model and the sim teacher's API, scored."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from longthought.cli import main
from longthought.evaluate.fixtures import build_tiny_chat_model
from longthought.evaluate.metrics import compute_metrics
from longthought.io import read_table, write_table
from longthought.problems.procedural import generate

FAMILIES = {"addition": {"digits": 2}, "linear": {"max_coef": 5, "max_x": 9, "max_b": 20}}
SAMPLING = {"n": 2, "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 16, "seed": 0,
            "system": None}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "heldout.parquet"
    write_table(pd.DataFrame(generate(FAMILIES, 3, seed=5, split="heldout")), path, "problems")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "model")


def run(tmp_path, spec, bench, name="m", out=None):
    out = out or tmp_path / "generations" / name / "heldout.parquet"
    code = main(["generate", "--model", name, "--spec", json.dumps(spec), "--bench", str(bench),
                 "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    return code, out


def test_local_model_with_budgets(tmp_path, bench, tiny, capsys):
    spec = {"model": {"name": "tiny@init", "kind": "local", "path": str(tiny),
                      "backend": "transformers"},
            "sampling": SAMPLING, "budgets": [4, 8], "batch_size": 4,
            "checker": {"timeout_s": 5, "workers": 1}, "prompt": "Solve: {problem}"}
    code, out = run(tmp_path, spec, bench, name="tiny@init")
    assert code == 0, capsys.readouterr().err
    table = read_table(out, "generations")
    assert len(table) == 3 * 2 * 3  # problems x n x (unconstrained + 2 budgets)
    assert table.groupby("budget", dropna=False).size().tolist() == [6, 6, 6]
    assert set(table["backend"]) == {"transformers"} and set(table["seed"]) == {0}
    assert set(table["temperature"]) == {0.7} and set(table["max_new_tokens"]) == {16}
    assert table["model"].eq("tiny@init").all() and table["benchmark"].eq("heldout").all()
    capped = table[table["budget"].notna()]
    assert (capped["thinking_tokens"] <= capped["budget"]).all()
    first = json.loads(table["prompt"].iloc[0])
    assert first == [{"role": "user", "content": "Solve: " + read_table(bench, "problems")[
        "problem"].iloc[0]}]
    assert table["verdict"].isin(["correct", "wrong", "no_answer", "undecided", "timeout",
                                  "error"]).all()
    record = json.loads(out.with_name("heldout.run.json").read_text())
    assert len(record["config_hash"]) == 64 and record["spec"] == spec
    assert record["packages"]["torch"] and record["packages"]["transformers"]
    assert record["rows"] == 18 and record["model_files"]["config_sha256"]
    assert "commit" in record["git"] and record["bench_sha256"]
    metrics = compute_metrics(table, ks=[1, 2])
    assert set(metrics["budget"].dropna()) == {4, 8}
    # the same config and seed reproduce the generations exactly
    code, again = run(tmp_path, spec, bench, name="tiny@init", out=tmp_path / "again.parquet")
    assert code == 0
    cols = ["problem_id", "sample_index", "budget", "output", "output_tokens", "thinking_tokens",
            "finish_reason", "extracted_answer", "correct"]
    pd.testing.assert_frame_equal(read_table(again, "generations")[cols], table[cols])


@pytest.fixture(scope="module")
def stopper(tmp_path_factory):
    """A tiny model whose samples end after ~6 tokens (geometric lengths): rows finish at
    different steps, so a refilled batch runs another schedule than fixed batches."""
    return build_tiny_chat_model(tmp_path_factory.mktemp("stopper") / "model", mean_length=6,
                                 tie_embeddings=False)


@pytest.mark.parametrize("refill,want", [("auto", None), (True, True), (False, False)])
def test_refill_reaches_the_transformers_backend_and_changes_no_sample(
        tmp_path, bench, stopper, capsys, monkeypatch, refill, want):
    """`refill` is how the batch runs (operational in the workflow): the spec's value reaches the
    generator, which then runs fewer batched steps, and the generations are the ones fixed
    batches give (the property itself: test_evaluate_backends, refill == fixed == sequential)."""
    import inspect

    from longthought.evaluate.hf_backend import TransformersGenerator

    seen = []
    original = TransformersGenerator.generate_budgets

    def spy(self, *args, **kwargs):
        before = self.stats["decode_steps"]
        out = original(self, *args, **kwargs)
        seen.append((inspect.signature(original).bind(self, *args, **kwargs).arguments.get(
            "refill"), self.stats["decode_steps"] - before))
        return out

    monkeypatch.setattr(TransformersGenerator, "generate_budgets", spy)
    spec = {"model": {"name": "tiny@init", "kind": "local", "path": str(stopper),
                      "backend": "transformers"},
            "sampling": {**SAMPLING, "n": 4, "max_new_tokens": 24}, "batch_size": 4,
            "checker": {"timeout_s": 5, "workers": 1}, "benchmark": "heldout"}
    tables = []
    for value in (False, True, refill):
        code, out = run(tmp_path, {**spec, "refill": value}, bench,
                        out=tmp_path / f"{value}-{len(tables)}.parquet")
        assert code == 0, capsys.readouterr().err
        tables.append(read_table(out, "generations").drop(columns=["latency_s"]))
    (_, fixed_steps), (_, refill_steps), (got, _) = seen
    assert got is want
    assert refill_steps < fixed_steps  # the value did change how the batch ran
    assert tables[0]["output_tokens"].nunique() > 3  # samples of many lengths
    pd.testing.assert_frame_equal(tables[0], tables[1])
    pd.testing.assert_frame_equal(tables[0], tables[2])


@pytest.mark.parametrize("spec,match", [
    ({"sampling": SAMPLING}, "'model' must be an object"),
    ({"model": {"kind": "local", "path": "x"}, "sampling": SAMPLING, "budgets": [0]},
     "budgets\\[0\\]"),
    ({"model": {"kind": "api", "teacher": {}}, "sampling": SAMPLING, "budgets": [8]},
     "needs a local model"),
    ({"model": {"kind": "local", "path": "x"}, "sampling": SAMPLING, "prompt": "no slot"},
     "\\{problem\\}"),
    ({"model": {"kind": "local", "path": "x"}, "sampling": SAMPLING, "temperature": 1},
     "unknown key"),
    ({"model": {"kind": "local", "path": "x"}, "sampling": {**SAMPLING, "n": 0}},
     "sampling.n"),
    ({"model": {"kind": "local", "path": "x"}, "sampling": SAMPLING, "refill": "yes"},
     "refill must be auto, true or false"),
])
def test_bad_spec_is_one_clear_line(tmp_path, bench, capsys, spec, match):
    code, out = run(tmp_path, spec, bench)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(match, err), err


def test_api_model_through_the_sim_teacher(tmp_path, bench, capsys):
    pytest.importorskip("longthought.teacher.endpoint")
    teacher = {"base_url": "sim", "model": "sim-o1", "api_key_env": "LONGTHOUGHT_SIM_API_KEY",
               "sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 1024},
               "limits": {"max_concurrency": 8, "timeout_s": 30, "max_retries": 2},
               "sim": {"slip_rate": 0.3, "wrong_rate": 0.0, "truncate_rate": 0.0,
                       "latency_ms": 0, "seed": 7}}
    spec = {"model": {"name": "sim-o1", "kind": "api", "teacher": teacher},
            "sampling": {**SAMPLING, "max_new_tokens": 2048}, "budgets": [],
            "checker": {"timeout_s": 5, "workers": 1}}
    code, out = run(tmp_path, spec, bench, name="sim-o1")
    assert code == 0, capsys.readouterr().err
    table = read_table(out, "generations")
    assert len(table) == 6 and set(table["backend"]) == {"api"}
    assert table["correct"].all(), table[["output", "extracted_answer", "verdict"]]
    assert (table["output_tokens"] > 0).all()
    assert (table["thinking_tokens"] > 0).all()
    assert (table["thinking_tokens"] <= table["output_tokens"]).all()
    assert table["output"].str.contains("</think>").all()
    assert (table["extraction"] == "boxed").all()  # which extraction found each answer
    # the same answers with `answer_extraction: boxed` (the spec key the rules pass per benchmark)
    code, boxed = run(tmp_path, {**spec, "answer_extraction": "boxed"}, bench, name="sim-o1",
                      out=tmp_path / "boxed.parquet")
    assert code == 0 and read_table(boxed, "generations")["correct"].all()
    code, _ = run(tmp_path, {**spec, "answer_extraction": "lenient"}, bench, name="sim-o1",
                  out=tmp_path / "bad.parquet")
    assert code == 2 and "answer_extraction" in capsys.readouterr().err
    # a re-run is served from the request cache and gives the same table
    code, again = run(tmp_path, spec, bench, name="sim-o1", out=tmp_path / "again.parquet")
    assert code == 0
    cols = ["problem_id", "sample_index", "output", "output_tokens", "correct"]
    pd.testing.assert_frame_equal(read_table(again, "generations")[cols], table[cols])
