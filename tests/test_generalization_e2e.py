"""Generalization suite end to end: real HTTP to the sim server (its judge persona and its
teacher persona as the model under test), the one API client with its cache, a local tiny model
for the sycophancy probe, and the CLI verbs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from longthought.cli import main
from longthought.generalization.items import read_items
from longthought.generalization.probe import PROBE_LABELS
from longthought.generalization.report import generalization_markdown
from longthought.generalization.run import generalize
from longthought.io import read_table
from longthought.teacher.endpoint import open_endpoint

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
GEN = CONFIG["generalization"]
JUDGED = ["safety-demo", "facts-demo", "premises-demo", "qa-demo"]


def _set(name: str, **over: object) -> dict:
    spec = {"name": name, **GEN["sets"][name], **over}
    if spec.get("path"):
        spec["path"] = str(ROOT / spec["path"])
    return spec


def _spec(model: dict, gset: dict, judge: dict | None) -> dict:
    return {"model": model, "set": gset, "judge": judge,
            "judge_prompt": GEN["judge_prompts"][gset["category"]],
            "sampling": {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 64,
                         "seed": 0, "system": None}}


@pytest.fixture(scope="module")
def sim_url() -> str:
    """One sim server for the module: the judge persona ("judge-sim") and the model under test."""
    with open_endpoint({"base_url": "sim", "model": "judge-sim", "sim": {"seed": 9}}) as url:
        yield url


def _api_model(url: str, name: str = "sim-4o-mini") -> dict:
    teacher = {**CONFIG["teachers"]["sim-4o-mini"], "base_url": url, "api_key_env": None}
    return {"name": name, "kind": "api", "teacher": teacher}


def _judge(url: str) -> dict:
    return {"name": "sim-judge", **CONFIG["teachers"]["sim-judge"], "base_url": url,
            "api_key_env": None}


def test_judged_sets_against_the_sim_judge(sim_url: str, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    failures = 0
    for name in JUDGED:
        gset = _set(name)
        out, items_path = tmp_path / f"{name}.parquet", tmp_path / f"{name}.items.parquet"
        table = generalize(_spec(_api_model(sim_url), gset, _judge(sim_url)), str(out),
                           str(items_path), cache)
        items = read_items(items_path)
        assert set(items["judge"]) == {"sim-judge"} and items["request_key"].notna().all()
        assert len(items) == len(pd.read_json(gset["path"], lines=True))
        bad = items[items["status"] != "ok"]
        failures += len(bad)
        assert not bad["passed"].any()  # off-format / refused never pass
        assert bad["label"].isna().all() and bad["score"].isna().all()
        ok = items[items["status"] == "ok"]
        if gset["category"] == "general_qa":
            assert ok["score"].between(0, 100).all() and not items["passed"].any()
        else:
            assert ok["label"].notna().all()
        got = read_table(out, "generalization").set_index("metric")
        assert got.equals(table.set_index("metric"))
        for status in ("unparseable", "refused", "judge_error"):
            share = 100.0 * (items["status"] == status).mean()
            assert got.loc[status, "value"] == pytest.approx(share)
        if gset["category"] == "safety":  # the sim model refuses off-topic requests: safe
            assert got.loc["safe", "value"] == pytest.approx(100.0 * items["passed"].mean())
            assert (ok["label"] == "safe").all()
    assert failures > 0  # the persona's off-format answers and refusals reached the parser

    # a re-run pays nothing and changes nothing: every judge answer comes from the cache
    again = tmp_path / "again.items.parquet"
    generalize(_spec(_api_model(sim_url), _set("facts-demo"), _judge(sim_url)),
               str(tmp_path / "again.parquet"), str(again), cache)
    pd.testing.assert_frame_equal(read_items(again), read_items(tmp_path / "facts-demo.items."
                                                                           "parquet"))


def test_failing_and_hanging_judge_is_counted_as_judge_error(sim_url: str,
                                                             tmp_path: Path) -> None:
    judge = {**CONFIG["teachers"]["sim-judge"], "name": "flaky-judge",
             "limits": {"max_concurrency": 8, "timeout_s": 0.5, "max_retries": 0},
             "sim": {"seed": 9, "faults": {"rate_500": 0.5, "rate_hang": 0.5, "hang_s": 5}}}
    gset = _set("safety-demo", sample_size=6, seed=1)
    table = generalize(_spec(_api_model(sim_url), gset, judge), str(tmp_path / "t.parquet"),
                       str(tmp_path / "i.parquet"), str(tmp_path / "cache"))
    items = read_items(tmp_path / "i.parquet")
    assert (items["status"] == "judge_error").all() and not items["passed"].any()
    details = " ".join(items["detail"])
    assert "failed" in details
    got = table.set_index("metric")["value"]
    assert got["safe"] == 0.0 and got["judge_error"] == 100.0


def test_probe_with_the_sim_teacher_as_model(sim_url: str, tmp_path: Path) -> None:
    gset = _set("syco-probe", sample_size=8)
    model = _api_model(sim_url, "sim-o1")
    model["teacher"] = {**CONFIG["teachers"]["sim-o1"], "base_url": sim_url,
                        "api_key_env": None}
    spec = _spec(model, gset, None)
    spec["sampling"]["max_new_tokens"] = 1024  # room for the whole long thought
    table = generalize(spec, str(tmp_path / "p.parquet"), str(tmp_path / "p.items.parquet"),
                       str(tmp_path / "cache"))
    items = read_items(tmp_path / "p.items.parquet")
    assert set(items["judge"]) == {"rule"} and set(items["label"]) <= set(PROBE_LABELS)
    assert (items["passed"] == (items["label"] == "kept_correct")).all()
    assert items["control_label"].notna().all()
    got = table.set_index("metric")["value"]
    # the sim solves the problem and ignores the user's claim: it keeps the right answer
    assert got["non_sycophantic"] >= 75.0 and got["agreed_wrong"] == 0.0
    assert got["non_sycophantic"] == pytest.approx(100.0 * items["passed"].mean())


def test_probe_with_a_local_tiny_model_multi_turn(tmp_path: Path, monkeypatch) -> None:
    import longthought.evaluate.backends as backends
    from longthought.evaluate.fixtures import build_tiny_chat_model

    path = build_tiny_chat_model(tmp_path / "tiny")
    model = {"name": "tiny@init", "kind": "local", "path": str(path),
             "backend": "transformers"}
    gset = _set("syco-probe", sample_size=4, probe={"style": "multi_turn"})
    spec = {**_spec(model, gset, None), "batch_size": 3, "refill": True}
    spec["sampling"]["max_new_tokens"] = 12
    calls = []
    original = backends.generate_texts

    def spy(*args, **kwargs):  # the set's batch settings reach the model's generation
        calls.append({k: kwargs.get(k) for k in ("batch_size", "refill")})
        return original(*args, **kwargs)

    monkeypatch.setattr(backends, "generate_texts", spy)
    table = generalize(spec, str(tmp_path / "p.parquet"), str(tmp_path / "p.items.parquet"),
                       None)
    items = read_items(tmp_path / "p.items.parquet")
    assert len(items) == 4 and set(items["label"]) <= set(PROBE_LABELS)
    assert items["control_label"].notna().all()  # the first answer, before the push-back
    # the question recorded is the push-back turn, which asserts the wrong answer
    assert all(f"${a}$" in q for a, q in zip(items["asserted"], items["question"], strict=True))
    assert set(table["metric"]) == {"non_sycophantic", "agreed_wrong", "no_answer",
                                    "control_correct"}
    assert calls == [{"batch_size": 3, "refill": True}] * 2  # the question, then the push-back


def test_cli_verbs_and_human_scores(sim_url: str, tmp_path: Path) -> None:
    csv = ROOT / "data" / "generalization" / "qa_demo_human_example.csv"
    gset = _set("qa-demo", human_scores=str(csv))
    model = _api_model(sim_url, "tiny")
    judge = {"name": "sim-judge", **CONFIG["teachers"]["sim-judge"]}  # base_url: sim, started
    assert judge["base_url"] == "sim"  # by open_endpoint inside the verb
    out, items = tmp_path / "qa.parquet", tmp_path / "qa.items.parquet"
    rc = main(["generalize", "--model", "tiny", "--set", "qa-demo",
               "--spec", json.dumps(_spec(model, gset, judge)), "--out", str(out),
               "--items", str(items), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    table = read_table(out, "generalization")
    human = table[table["judge"] == "human"].set_index("metric")
    assert {"human_score", "rater_alpha", "rater_pearson"} <= set(human.index)
    assert human.loc["human_score", "n"] == 10

    # the same scores through the stand-alone verb, checked against the items table
    h_out = tmp_path / "human.parquet"
    assert main(["generalize-human", "--set", "qa-demo", "--model", "tiny", "--csv", str(csv),
                 "--items", str(items), "--out", str(h_out)]) == 0
    alone = read_table(h_out, "generalization").set_index("metric")
    assert alone.loc["human_score", "value"] == pytest.approx(human.loc["human_score", "value"])

    # a scores file naming items the set does not have fails with a clear one-line error
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,model,rater,score\nq99,tiny,a,50\nq01,tiny,a,40\n")
    assert main(["generalize-human", "--set", "qa-demo", "--model", "tiny", "--csv", str(bad),
                 "--items", str(items), "--out", str(tmp_path / "x.parquet")]) == 2
    assert not (tmp_path / "x.parquet").exists()
    gset_bad = _set("qa-demo", human_scores=str(bad))
    assert main(["generalize", "--model", "tiny", "--set", "qa-demo",
                 "--spec", json.dumps(_spec(model, gset_bad, judge)),
                 "--out", str(tmp_path / "y.parquet"), "--items", str(tmp_path / "y.i.parquet"),
                 "--cache-dir", str(tmp_path / "cache")]) == 2

    # a judged set without a judge or a cache, and a spec naming another model, are refused
    assert main(["generalize", "--model", "tiny", "--set", "qa-demo",
                 "--spec", json.dumps(_spec(model, gset, judge)), "--out", str(out),
                 "--items", str(items)]) == 2
    assert main(["generalize", "--model", "tiny", "--set", "qa-demo",
                 "--spec", json.dumps(_spec(model, gset, None)), "--out", str(out),
                 "--items", str(items)]) == 2
    assert main(["generalize", "--model", "other", "--set", "qa-demo",
                 "--spec", json.dumps(_spec(model, gset, judge)), "--out", str(out),
                 "--items", str(items)]) == 2

    # the report section reads the rows of a pair
    before = table.assign(model="tiny@init")
    md = generalization_markdown(pd.concat([before, table], ignore_index=True))
    assert "| general QA | qa-demo | score 0-100, mean over judged | sim-judge |" in md


def test_one_call_runs_several_sets(sim_url: str, tmp_path: Path) -> None:
    """The rule's form: repeated --set/--spec/--out/--items pairs in one process."""
    model = _api_model(sim_url, "tiny")
    judge = {"name": "sim-judge", **CONFIG["teachers"]["sim-judge"]}
    argv = ["generalize", "--model", "tiny", "--cache-dir", str(tmp_path / "cache")]
    for name in ("facts-demo", "syco-probe"):
        gset = _set(name, sample_size=4) if name == "syco-probe" else _set(name)
        argv += ["--set", name, "--spec", json.dumps(_spec(model, gset, judge)),
                 "--out", str(tmp_path / f"{name}.parquet"),
                 "--items", str(tmp_path / f"{name}.items.parquet")]
    assert main(argv) == 0
    facts = read_table(tmp_path / "facts-demo.parquet", "generalization")
    probe = read_table(tmp_path / "syco-probe.parquet", "generalization")
    assert set(facts["benchmark"]) == {"facts-demo"} and set(probe["benchmark"]) == {"syco-probe"}
    assert set(probe["judge"]) == {"rule"} and set(facts["judge"]) == {"sim-judge"}

    # an unpaired --items is refused before any set runs
    again = [a.replace(str(tmp_path), str(tmp_path / "again")) for a in argv[:-2]]
    (tmp_path / "again").mkdir()
    assert main(again) == 2
    assert not list((tmp_path / "again").iterdir())


def test_generation_and_judging_run_apart(sim_url: str, tmp_path: Path, monkeypatch) -> None:
    """The cluster split: a local model's answers in a compute-node job (the guard on: no API,
    no cache), the judging in a local step; the same numbers as one process gives."""
    from longthought.evaluate.fixtures import build_tiny_chat_model

    tiny = build_tiny_chat_model(tmp_path / "tiny")
    model = {"name": "tiny", "kind": "local", "path": str(tiny), "backend": "transformers"}
    judge = _judge(sim_url)
    cache = str(tmp_path / "cache")
    argv = ["--model", "tiny"]
    sets = {"facts-demo": _set("facts-demo"), "syco-probe": _set("syco-probe", sample_size=4)}
    for name, gset in sets.items():
        spec = json.dumps({**_spec(model, gset, judge),
                           "sampling": {"n": 1, "temperature": 0.0, "top_p": 1.0,
                                        "max_new_tokens": 12, "seed": 0, "system": None}})
        argv += ["--set", name, "--spec", spec]
    gen = [*argv]
    judge_argv = [*argv]
    for name in sets:
        gen += ["--responses", str(tmp_path / f"{name}.responses.parquet")]
        judge_argv += ["--responses", str(tmp_path / f"{name}.responses.parquet"),
                       "--out", str(tmp_path / f"{name}.parquet"),
                       "--items", str(tmp_path / f"{name}.items.parquet")]
    monkeypatch.setenv("LONGTHOUGHT_COMPUTE_NODE", "1")
    assert main(["generalize-generate", *gen]) == 0  # a GPU job: nothing here calls an API
    assert not Path(cache).exists()
    assert main(["generalize-judge", *judge_argv, "--cache-dir", cache]) == 2  # refused there
    assert not (tmp_path / "facts-demo.parquet").exists()
    monkeypatch.setenv("LONGTHOUGHT_COMPUTE_NODE", "0")
    assert main(["generalize-judge", *judge_argv, "--cache-dir", cache]) == 0  # a local rule
    facts = read_table(tmp_path / "facts-demo.parquet", "generalization")
    probe_items = read_items(tmp_path / "syco-probe.items.parquet")
    assert set(facts["judge"]) == {"sim-judge"} and len(read_items(
        tmp_path / "facts-demo.items.parquet")) == 16
    assert probe_items["control_label"].notna().all()
    # one process (generate + judge) gives the same table
    one = generalize(json.loads(gen[gen.index("facts-demo") + 2]), str(tmp_path / "one.parquet"),
                     str(tmp_path / "one.items.parquet"), cache)
    pd.testing.assert_frame_equal(one, facts)
