"""The curate pipeline end to end on hand-made traces: every filter, the funnel, the export."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from longthought import io
from longthought.cli import main as cli_main
from longthought.curate.pipeline import STEPS, curate, resolve_spec
from longthought.curate.synthetic import trace_record

GOOD_THOUGHT = ("First add the ones column: 3 plus 4 is 7. Then the tens: 2 plus 5 is 7. "
                "Then the hundreds: 1 plus 1 is 2. Check by subtracting: 277 minus 154 is 123.")
PLANTED = ("Let $x$ be the number of red marbles in a jar of forty marbles where the ratio of "
           "red to blue marbles is three to five. Find $x$.")


def think(thought: str, final: str) -> str:
    return f"<think>\n{thought}\n</think>\n\n{final}"


def _rows() -> list[dict]:
    p1 = ("p1", "Compute $123 + 154$.", "277")
    r = []

    def add(key: str, problem=p1, **kw):
        pid, text, gold = problem
        sample = kw.pop("sample_index", 0)
        kw.setdefault("completion_tokens", 100)
        content = kw.pop("content", think(GOOD_THOUGHT, "So the sum is $\\boxed{277}$."))
        r.append(trace_record("t", pid, text, gold, content, sample_index=sample,
                              trace_id=f"t/{key}", **kw))

    add("good")
    add("failed", status="failed", error="HTTP 500", finish_reason=None)
    add("skipped", status="skipped_budget", error="budget cap reached", finish_reason=None)
    add("empty", content="   ")
    add("truncated", content=f"<think>\n{GOOD_THOUGHT}", finish_reason="length")
    add("nomarkers", content=f"{GOOD_THOUGHT} So $\\boxed{{277}}$.")
    add("unbalanced", content=f"<think>a<think>{GOOD_THOUGHT}</think>\n\n\\boxed{{277}}")
    add("boxinthought", content=think(GOOD_THOUGHT + " \\boxed{277}", "Done."))
    add("wrong", content=think(GOOD_THOUGHT, "The sum is $\\boxed{278}$."))
    add("tower", content=think(GOOD_THOUGHT, "\\boxed{9^{9^{9^{9}}}}"))
    add("short", completion_tokens=5)
    add("long", completion_tokens=50_000)
    add("loop", content=think(" ".join(["Wait, let me add the ones again."] * 60),
                              "\\boxed{277}"))
    add("script", content=think("我们先把个位相加，然后把十位相加，最后检查结果是否正确。" * 5,
                                "\\boxed{277}"))
    add("dupproblem", problem=("p1-copy", "Compute  $123 + 154$.", "277"))
    add("sameresponse", sample_index=1)
    add("planted", problem=("p9", "Exercise: " + PLANTED, "15"),
        content=think(GOOD_THOUGHT, "\\boxed{15}"))
    r.append(trace_record("t", "p2", "Compute $3 \\times 4$.", "12", "So \\boxed{12}.",
                          trace_id="t/reasoning", reasoning_content="Three fours are twelve.",
                          completion_tokens=100))
    r.append(trace_record("t", "p3", "Solve for $x$: $2x + 1 = 7$", "3",
                          "<|begin_of_thought|>\nSubtract one, halve.\n<|end_of_thought|>\n\n"
                          "<|begin_of_solution|>\n$x=\\boxed{3}$\n<|end_of_solution|>",
                          trace_id="t/sky", completion_tokens=100))
    r.append(trace_record("t", "p4", "What is half of one?", "\\frac{1}{2}",
                          think("Half of one is a half.", "\\boxed{0.5}"), trace_id="t/equiv",
                          completion_tokens=100))
    return r


EXPECTED = {
    "t/failed": "missing", "t/skipped": "missing", "t/empty": "malformed",
    "t/truncated": "truncated",
    "t/nomarkers": "thought_markers", "t/unbalanced": "thought_markers",
    "t/boxinthought": "final_answer", "t/wrong": "correct", "t/tower": "correct",
    "t/short": "length", "t/long": "length", "t/loop": "repetition", "t/script": "language",
    "t/dupproblem": "dedup", "t/sameresponse": "dedup", "t/planted": "decontaminate",
}
KEPT = {"t/good", "t/reasoning", "t/sky", "t/equiv"}

SPEC = {
    "tasks": ["t"],
    "filters": {"truncated": True, "thought_markers": True, "final_answer": True,
                "correct": True, "min_tokens": 10, "max_tokens": 4000,
                "repetition": {"ngram": 8, "max_ratio": 0.5},
                "language": {"scripts": ["latin"], "min_share": 0.9}},
    "dedup": {"exact": True, "near": None, "keep": "all", "k": 1},
    "decontaminate": {"benchmarks": "all", "ngram": 8},
    "format": {"thinking": "think", "system": "You are a careful solver."},
}


def _write_raw(path: Path, rows: list[dict]) -> None:
    """Write rows with plain pyarrow (no schema check): inputs may be malformed."""
    pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.fixture()
def inputs(tmp_path):
    rows = _rows()
    # a corrupt row the traces schema would refuse: no problem_id; and a repeated trace_id
    bad = trace_record("t", "p1", "Compute $123 + 154$.", "277", "\\boxed{277}",
                       trace_id="t/noid")
    bad["problem_id"] = None
    rows += [bad, dict(rows[0])]
    _write_raw(tmp_path / "traces.parquet", rows)
    bench = pd.DataFrame([{"problem_id": "b1", "problem": PLANTED, "answer": "15",
                           "answer_type": "integer", "source": "mini", "solution": None,
                           "meta": None}])
    io.write_table(bench, tmp_path / "mini.parquet", "problems")
    return tmp_path, len(rows)


def test_every_filter_and_the_funnel(inputs):
    tmp, n = inputs
    out = tmp / "d.parquet"
    summary = curate("d", SPEC, [str(tmp / "traces.parquet")], [str(tmp / "mini.parquet")],
                     out=str(out), rejected=str(tmp / "d.rej.parquet"),
                     funnel=str(tmp / "d.fun.parquet"), export_dir=str(tmp / "d.hf"),
                     workers=1, timeout_s=5)
    kept = io.read_table(out, "dataset")
    rej = io.read_table(tmp / "d.rej.parquet", "rejected")
    fun = io.read_table(tmp / "d.fun.parquet", "funnel")
    assert len(kept) + len(rej) == n == summary["rows"]
    assert set(kept["sample_id"]) == KEPT
    got = dict(zip(rej["sample_id"], rej["filter"], strict=True))
    for sid, name in EXPECTED.items():
        assert got.pop(sid) == name, sid
    # the two corrupt rows: no problem_id, and a repeated trace_id (renamed to stay unique)
    assert got == {"t/noid": "malformed", "t/good@traces.parquet:row22": "malformed"}
    reasons = dict(zip(rej["sample_id"], rej["reason"], strict=True))
    details = dict(zip(rej["sample_id"], rej["detail"], strict=True))
    assert reasons["t/wrong"] == "wrong answer" and "'278'" in details["t/wrong"]
    assert reasons["t/tower"] == "undecided" and "exponent tower" in details["t/tower"]
    assert reasons["t/truncated"] == "finish_reason=length"
    assert reasons["t/planted"] == "shares a 8-gram with benchmark mini"
    assert details["t/planted"].startswith("mini/b1: 'let x be the number of red marbles")
    assert reasons["t/dupproblem"] == "duplicate problem of p1"
    assert reasons["t/sameresponse"] == "identical response"
    assert reasons["t/failed"] == "status=failed" and details["t/failed"] == "HTTP 500"
    assert reasons["t/noid"] == "missing problem_id"
    assert reasons["t/good@traces.parquet:row22"] == "duplicate trace_id"
    assert details["t/good@traces.parquet:row22"] == "first seen at traces.parquet:row1"

    # funnel: every step in order, counts chain, totals match
    assert fun["filter"].tolist() == list(STEPS)
    assert (fun["rows_in"] - fun["removed"] == fun["rows_out"]).all()
    assert (fun["rows_out"].iloc[:-1].to_numpy() == fun["rows_in"].iloc[1:].to_numpy()).all()
    assert fun["rows_in"].iloc[0] == n and fun["rows_out"].iloc[-1] == len(kept)
    by_filter = rej["filter"].value_counts()
    assert all(by_filter.get(f, 0) == r for f, r in zip(fun["filter"], fun["removed"],
                                                         strict=True))

    # formatting: system, the problem (not the teacher prompt), the thought in <think>
    msgs = {s: json.loads(m) for s, m in zip(kept["sample_id"], kept["messages"], strict=True)}
    good = msgs["t/good"]
    assert [m["role"] for m in good] == ["system", "user", "assistant"]
    assert good[1]["content"] == "Compute $123 + 154$."
    assert good[2]["content"] == f"<think>\n{GOOD_THOUGHT}\n</think>\n\nSo the sum is " \
                                 "$\\boxed{277}$."
    assert msgs["t/reasoning"][2]["content"] == \
        "<think>\nThree fours are twelve.\n</think>\n\nSo \\boxed{12}."
    assert msgs["t/sky"][2]["content"] == "<think>\nSubtract one, halve.\n</think>\n\n" \
                                          "$x=\\boxed{3}$"

    # export: jsonl and a datasets directory with the same rows
    import datasets

    lines = (tmp / "d.hf" / "data.jsonl").read_text().splitlines()
    assert len(lines) == len(kept)
    ds = datasets.load_from_disk(str(tmp / "d.hf" / "hf"))
    assert len(ds) == len(kept) and set(ds["sample_id"]) == KEPT
    assert ds[0]["messages"][1]["role"] == "user"


def test_formats_and_keep_policy(tmp_path):
    rows = []
    for i, (tokens, final) in enumerate([(300, "\\boxed{7}"), (100, "so \\boxed{7}"),
                                         (200, "thus \\boxed{7}")]):
        rows.append(trace_record("t", "q", "What is $3+4$?", "7",
                                 think(f"Three plus four, try {i}.", final),
                                 sample_index=i, completion_tokens=tokens))
    io.write_table(pd.DataFrame(rows), tmp_path / "t.parquet", "traces")
    spec = {"tasks": ["t"], "filters": {"thought_markers": "think"},
            "dedup": {"keep": "shortest", "k": 1}, "decontaminate": None,
            "format": {"thinking": "sky", "user": "Problem: {problem}\nAnswer in a box."}}
    curate("s", spec, [str(tmp_path / "t.parquet")], [], out=str(tmp_path / "s.parquet"),
           rejected=str(tmp_path / "s.rej.parquet"), funnel=str(tmp_path / "s.fun.parquet"),
           workers=1)
    kept = pd.read_parquet(tmp_path / "s.parquet")
    assert kept["sample_id"].tolist() == ["t/q/1"]  # the shortest of the three
    msgs = json.loads(kept["messages"][0])
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[0]["content"] == "Problem: What is $3+4$?\nAnswer in a box."
    assert msgs[1]["content"] == ("<|begin_of_thought|>\n\nThree plus four, try 1.\n\n"
                                  "<|end_of_thought|>\n\n<|begin_of_solution|>\n\nso \\boxed{7}"
                                  "\n\n<|end_of_solution|>")
    rej = pd.read_parquet(tmp_path / "s.rej.parquet")
    assert set(rej["filter"]) == {"dedup"} and len(rej) == 2
    assert rej["reason"].str.startswith("keep=shortest k=1").all()
    fun = pd.read_parquet(tmp_path / "s.fun.parquet")
    assert "decontaminate" not in set(fun["filter"]) and "thought_markers" in set(fun["filter"])


def test_cli_verb_and_bad_spec(tmp_path, capsys):
    rows = [trace_record("t", "q", "What is $3+4$?", "7", think("Add.", "\\boxed{7}"))]
    io.write_table(pd.DataFrame(rows), tmp_path / "t.parquet", "traces")
    args = ["curate", "--dataset", "c", "--traces", str(tmp_path / "t.parquet"),
            "--out", str(tmp_path / "c.parquet"), "--rejected", str(tmp_path / "c.rej.parquet"),
            "--funnel", str(tmp_path / "c.fun.parquet"), "--workers", "1"]
    assert cli_main([*args, "--spec", json.dumps({"tasks": ["t"]})]) == 0
    assert len(pd.read_parquet(tmp_path / "c.parquet")) == 1
    assert cli_main([*args, "--spec", json.dumps({"tasks": ["t"], "filters": {"typo": 1}})]) == 2
    assert "datasets.c.filters: unknown keys ['typo']" in capsys.readouterr().err
    bad = tmp_path / "notraces.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(bad)
    args[args.index(str(tmp_path / "t.parquet"))] = str(bad)
    assert cli_main([*args, "--spec", json.dumps({"tasks": ["t"]})]) == 2
    assert "not a traces table" in capsys.readouterr().err


def test_default_config_datasets_resolve():
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml")
                         .read_text())
    for name, spec in cfg["datasets"].items():
        resolved = resolve_spec(spec, name)
        assert resolved["format"]["thinking"] in ("think", "sky", "plain")


@pytest.mark.parametrize(("spec", "message"), [
    ({"tasks": ["t"], "filters": {"repetition": {"ngram": 0}}}, "filters.repetition"),
    ({"tasks": ["t"], "filters": {"language": {"scripts": ["klingon"]}}}, "filters.language"),
    ({"tasks": ["t"], "dedup": {"keep": "best"}}, "dedup.keep"),
    ({"tasks": ["t"], "format": {"thinking": "xml"}}, "format.thinking"),
    ({"tasks": ["t"], "filters": {"min_tokens": -1}}, "filters.min_tokens"),
    ({"tasks": ["t"], "extra": 1}, "unknown keys ['extra']"),
])
def test_bad_specs_name_the_key(spec, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resolve_spec(spec, "x")


def test_length_in_student_tokens(tmp_path):
    from longthought.train.tokenizer import train_tiny_tokenizer

    tok = train_tiny_tokenizer(["Add the ones, then the tens. \\boxed{7}"] * 10, vocab_size=300)
    tok.save_pretrained(tmp_path / "tok")
    short = think("Add.", "\\boxed{7}")
    long = think(" ".join(f"Step {i}: add the ones, then the tens." for i in range(40)),
                 "\\boxed{7}")
    rows = [trace_record("t", "q", "What is $3+4$?", "7", c, sample_index=i,
                         completion_tokens=10)  # usage says 10: the tokenizer must decide
            for i, c in enumerate([short, long])]
    io.write_table(pd.DataFrame(rows), tmp_path / "t.parquet", "traces")
    n_short = len(tok(short)["input_ids"])
    spec = {"tasks": ["t"], "filters": {"min_tokens": n_short + 5, "max_tokens": 10_000,
                                        "tokenizer": str(tmp_path / "tok")},
            "decontaminate": None}
    curate("L", spec, [str(tmp_path / "t.parquet")], [], out=str(tmp_path / "L.parquet"),
           rejected=str(tmp_path / "L.rej.parquet"), funnel=str(tmp_path / "L.fun.parquet"),
           workers=1)
    kept = pd.read_parquet(tmp_path / "L.parquet")
    rej = pd.read_parquet(tmp_path / "L.rej.parquet")
    assert kept["sample_id"].tolist() == ["t/q/1"]
    assert kept["completion_tokens"].iloc[0] > 100  # counted by the tokenizer, not usage
    assert rej["filter"].tolist() == ["length"]
    assert rej["detail"].iloc[0] == f"tokenizer {tmp_path / 'tok'}"


def test_empty_input_gives_empty_valid_outputs(tmp_path):
    import datasets

    from longthought.schemas import ALL

    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in ALL["traces"].columns})
    io.write_table(empty, tmp_path / "t.parquet", "traces")
    summary = curate("e", {"tasks": ["t"], "decontaminate": None}, [str(tmp_path / "t.parquet")],
                     [], out=str(tmp_path / "e.parquet"), rejected=str(tmp_path / "e.rej.parquet"),
                     funnel=str(tmp_path / "e.fun.parquet"), export_dir=str(tmp_path / "e.hf"),
                     workers=1)
    assert (summary["rows"], summary["kept"], summary["rejected"]) == (0, 0, 0)
    assert io.read_table(tmp_path / "e.parquet", "dataset").empty
    assert io.read_table(tmp_path / "e.rej.parquet", "rejected").empty
    assert (io.read_table(tmp_path / "e.fun.parquet", "funnel")["rows_in"] == 0).all()
    assert len(datasets.load_from_disk(str(tmp_path / "e.hf" / "hf"))) == 0


def test_answer_extraction_boxed_or_full(tmp_path):
    """Curation requires a box by default; `full` takes math-verify's extraction. A refusal, a
    thought cut off before </think>, or nothing after it is no final answer either way."""
    p = ("p1", "Compute $123 + 154$.", "277")
    refusal = ("I'm sorry, but I couldn't find a problem I know how to solve in your message. "
               "Could you state it again, for example as \"Compute $12 + 34$.\"?")
    finals = {"boxed": "So the sum is $\\boxed{277}$.", "phrase": "The answer is 277.",
              "lastmath": "Adding up, the total comes to $277$.", "refusal": refusal,
              "nothing": "", "wrongphrase": "The answer is 278."}
    rows = [trace_record("t", *p, think(GOOD_THOUGHT, f), trace_id=f"t/{k}",
                         completion_tokens=100) for k, f in finals.items()]
    rows.append(trace_record("t", *p, f"<think>\n{GOOD_THOUGHT} \\boxed{{277}}",
                             trace_id="t/cutoff", completion_tokens=100))
    io.write_table(pd.DataFrame(rows), tmp_path / "t.parquet", "traces")
    spec = {"tasks": ["t"], "filters": {"truncated": True, "final_answer": True, "correct": True},
            "dedup": {"exact": False, "near": None, "keep": "all", "k": 1},
            "decontaminate": None}
    got = {}
    for mode in ("boxed", "full"):
        curate(mode, {**spec, "answer_extraction": mode}, [str(tmp_path / "t.parquet")], [],
               out=str(tmp_path / f"{mode}.parquet"), rejected=str(tmp_path / f"{mode}.r.parquet"),
               funnel=str(tmp_path / f"{mode}.f.parquet"), workers=1, timeout_s=10)
        kept = io.read_table(tmp_path / f"{mode}.parquet", "dataset")
        rej = io.read_table(tmp_path / f"{mode}.r.parquet", "rejected").set_index("sample_id")
        got[mode] = (set(kept["sample_id"]), rej)
    kept, rej = got["boxed"]
    assert kept == {"t/boxed"}
    assert (rej["filter"] == "final_answer").all()
    assert rej.loc["t/phrase", "reason"] == "no \\boxed{} answer after the thought"
    assert rej.loc["t/cutoff", "reason"] == "thought cut off before </think>"
    kept, rej = got["full"]
    assert kept == {"t/boxed", "t/phrase", "t/lastmath"}
    assert rej.loc["t/wrongphrase", "filter"] == "correct"
    assert "found by answer_phrase" in rej.loc["t/wrongphrase", "detail"]
    assert rej.loc["t/refusal", ["filter", "reason"]].tolist() == ["final_answer",
                                                                    "a refusal, not an answer"]
    assert rej.loc["t/nothing", "filter"] == "final_answer"
    assert rej.loc["t/cutoff", "filter"] == "final_answer"
    with pytest.raises(ValueError, match="datasets.x.answer_extraction"):
        resolve_spec({**spec, "answer_extraction": "lenient"}, "x")
