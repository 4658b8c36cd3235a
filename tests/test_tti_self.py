"""`longthought tti self`: the run's own scorecard, from tiny recorded files built here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from longthought.cli import main
from longthought.io import write_table
from longthought.transparency.cards import load_card
from longthought.transparency.rubric import load_rubric
from longthought.transparency.self_assess import assess_run

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = load_rubric(ROOT / "config" / "tti" / "rubric.yaml")
R = "results"
MODELS = ["tiny@init", "tiny", "sim-o1"]


def _config() -> dict:
    fam = {"addition": {"digits": 3}}
    return {
        "seed": 1,
        "pools": {"arith": {"source": "procedural", "split": "train", "n": 4, "seed": 1,
                            "families": fam, "filters": {}}},
        "benchmarks": {"heldout": {"source": "procedural", "split": "heldout", "n": 2,
                                   "seed": 2, "families": fam}},
        "teachers": {"sim-o1": {"base_url": "sim", "model": "sim-o1",
                                "sampling": {"temperature": 0.7, "top_p": 0.95}}},
        "prompts": {"distill": {"system": None, "user": "Solve: {problem}"}},
        "tasks": {"distill-arith": {"teacher": "sim-o1", "prompt": "distill", "pool": "arith"}},
        "datasets": {"longthought-arith": {"tasks": ["distill-arith"], "filters": {}}},
        "students": {"tiny": {"base_model": "tiny", "tiny": {"hidden_size": 16, "num_layers": 1},
                              "stages": [{"dataset": "longthought-arith", "lr": 1e-3}]}},
        "evaluation": {"models": MODELS, "benchmarks": ["heldout"], "k": [1, 2],
                       "sampling": {"n": 2, "temperature": 0.7, "top_p": 0.95,
                                    "max_new_tokens": 64, "seed": 0}},
    }


def _traces(task: str) -> list[dict]:
    rows = []
    for i in range(2):
        req = {"model": "sim-o1", "messages": [{"role": "user", "content": f"Solve: {i}+1"}],
               "temperature": 0.7}
        rows.append({
            "trace_id": f"{task}/p{i}/0", "task": task, "teacher": "sim-o1", "prompt": "distill",
            "problem_id": f"p{i}", "problem": f"{i}+1", "answer": str(i + 1), "sample_index": 0,
            "request_key": f"k{i}", "request": json.dumps(req), "response": "{}",
            "content": f"\\boxed{{{i + 1}}}", "reasoning_content": None, "finish_reason": "stop",
            "max_tokens": None,
            "model": "sim-o1", "prompt_tokens": 5, "completion_tokens": 20,
            "reasoning_tokens": None, "latency_s": 0.1, "attempts": 1, "cached": False,
            "status": "ok", "error": None, "cost_usd": 0.001})
    return rows


def _generations(model: str, temperature: float = 0.7) -> list[dict]:
    return [{"model": model, "benchmark": "heldout", "problem_id": f"h{p}", "sample_index": s,
             "budget": None, "prompt": "q", "output": "\\boxed{1}", "output_tokens": 10 + s,
             "thinking_tokens": None, "finish_reason": "stop", "extracted_answer": "1",
             "correct": True, "verdict": "correct", "latency_s": 0.1, "backend": "transformers",
             "temperature": temperature, "top_p": 0.95, "max_new_tokens": 64, "seed": s}
            for p in range(2) for s in range(2)]


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A repo root with config, code, README and a complete tiny run under results/."""
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_text(yaml.safe_dump(_config()))
    for pkg, mod in (("train", "sft.py"), ("evaluate", "metrics.py")):
        d = Path("workflow/longthought") / pkg
        d.mkdir(parents=True)
        (d / "__init__.py").write_text("")
        (d / mod).write_text('"""code"""\n')
    Path("README.md").write_text("# longthought\n\nRun it: `snakemake --cores 2`.\n")

    write_table(pd.DataFrame(_traces("distill-arith")), f"{R}/traces/distill-arith.parquet",
                "traces")
    ds = "longthought-arith"
    write_table(pd.DataFrame([{
        "sample_id": "distill-arith/p0/0", "dataset": ds, "task": "distill-arith",
        "problem_id": "p0", "problem": "0+1", "answer": "1",
        "messages": json.dumps([{"role": "user", "content": "0+1"},
                                {"role": "assistant", "content": "<think>..</think> 1"}]),
        "completion_tokens": 20}]), f"{R}/datasets/{ds}.parquet", "dataset")
    write_table(pd.DataFrame([
        {"dataset": ds, "step": 0, "filter": "truncated", "rows_in": 2, "removed": 0,
         "rows_out": 2},
        {"dataset": ds, "step": 1, "filter": "correct", "rows_in": 2, "removed": 1,
         "rows_out": 1}]), f"{R}/datasets/{ds}.funnel.parquet", "funnel")
    write_table(pd.DataFrame([{"sample_id": "distill-arith/p1/0", "dataset": ds,
                               "task": "distill-arith", "problem_id": "p1", "filter": "correct",
                               "reason": "wrong answer", "detail": "3"}]),
                f"{R}/datasets/{ds}.rejected.parquet", "rejected")
    Path(f"{R}/datasets/{ds}.hf").mkdir()
    (Path(f"{R}/datasets/{ds}.hf") / "dataset_info.json").write_text("{}")

    mdir = Path(f"{R}/models/tiny")
    mdir.mkdir(parents=True)
    (mdir / "hparams.json").write_text(json.dumps({
        "student": "tiny", "base_model": "tiny",
        "stages": [{"dataset": ds, "lr": 1e-3, "epochs": 1, "batch_size": 2}],
        "device": "cpu", "num_processes": 1}))
    (mdir / "model.safetensors").write_bytes(b"\0" * 16)
    write_table(pd.DataFrame([{"student": "tiny", "stage": 0, "dataset": ds, "step": 1,
                               "epoch": 1.0, "loss": 1.0, "lr": 1e-3, "grad_norm": 1.0,
                               "tokens": 100, "tokens_per_s": 50.0, "mem_mb": None}]),
                mdir / "train_log.parquet", "train_log")
    for m in MODELS:
        write_table(pd.DataFrame(_generations(m)), f"{R}/generations/{m}/heldout.parquet",
                    "generations")
    return tmp_path


def _assess(config: dict | None = None, spec: dict | None = None):
    if config is not None:
        Path("config.yaml").write_text(yaml.safe_dump(config))
    return assess_run(spec or {}, R, "config.yaml", RUBRIC)


RELEASES = {"sft_data": "https://huggingface.co/datasets/me/longthought-sft",
            "long_thought_data": "https://huggingface.co/datasets/me/longthought-traces",
            "weights": "https://huggingface.co/me/tiny", "code": "https://github.com/me/longthought",
            "paper": "https://arxiv.org/abs/2411.16489"}
PUBLISHED = ["post_training_data", "long_thought_data", "model_weights", "training_code",
             "evaluation_code", "usage_guide", "technical_paper"]


def test_complete_run_cites_the_files_that_prove_each_item(run_dir):
    card = _assess(spec={"releases": RELEASES})
    a = card.answers
    no = sorted(i for i, x in a.items() if not x.yes)
    # benchmark_choice: no reason recorded; ablations: one recipe
    assert no == ["ablations", "benchmark_choice"]
    assert all(not x.inferred for x in a.values())
    ds = "results/datasets/longthought-arith"
    assert a["data_sources"].evidence == ("config.yaml",)
    assert a["data_characteristics"].evidence == (f"{ds}.parquet",)
    assert a["data_selection"].evidence == (f"{ds}.funnel.parquet", f"{ds}.rejected.parquet")
    assert "2 in -> truncated -0, correct -1 -> 1 kept" in a["data_selection"].note
    assert a["synthetic_data_process"].evidence == ("results/traces/distill-arith.parquet",
                                                    f"{ds}.funnel.parquet")
    assert a["hyperparameters"].evidence == ("results/models/tiny/hparams.json",)
    assert a["base_model"].evidence == ("results/models/tiny/hparams.json",)
    assert a["training_pipeline"].note == "SFT stages in order: tiny: longthought-arith."
    assert a["compute"].evidence == ("results/models/tiny/hparams.json",
                                     "results/models/tiny/train_log.parquet")
    gens = tuple(f"results/generations/{m}/heldout.parquet" for m in MODELS)
    assert a["decoding_params"].evidence == gens
    assert a["consistent_evaluation"].evidence == gens
    assert "temperature 0.7" in a["decoding_params"].note
    assert a["metric_definitions"].evidence[0] == "workflow/longthought/evaluate/metrics.py"
    # published items: the release URL first, then the run's own files
    assert a["post_training_data"].evidence == (RELEASES["sft_data"], f"{ds}.hf")
    assert a["long_thought_data"].evidence == (RELEASES["long_thought_data"],
                                               "results/traces/distill-arith.parquet")
    assert a["model_weights"].evidence == (RELEASES["weights"],
                                           "results/models/tiny/model.safetensors")
    assert "not fetched" in a["model_weights"].note
    assert a["training_code"].evidence == (RELEASES["code"], "workflow/longthought/train")
    assert "commit unknown: not a git checkout" in a["training_code"].note
    assert a["usage_guide"].evidence == (RELEASES["code"], "README.md")
    assert a["technical_paper"].evidence == (RELEASES["paper"],)
    assert "Stated not used" in a["search_algorithm"].note
    assert "Stated not used" in a["rl_algorithm"].note
    assert card.subtotals()["total"] == 100 - 4 - 4


def test_published_items_need_a_release_url(run_dir):
    """A file on this machine is ready to publish, not published: no URL, no points."""
    card = _assess()
    a = card.answers
    assert sorted(i for i, x in a.items() if not x.yes) == sorted(
        ["ablations", "benchmark_choice", *PUBLISHED])
    assert card.subtotals()["open_source"] == 0
    ds = "results/datasets/longthought-arith"
    # each no names the config key it looked for and the local files it found
    assert a["post_training_data"].evidence == ("config.yaml: tti.releases.sft_data", f"{ds}.hf")
    assert "exported (results/datasets/longthought-arith.hf)" in a["post_training_data"].note
    assert a["model_weights"].evidence == ("config.yaml: tti.releases.weights",
                                           "results/models/tiny/model.safetensors")
    assert a["training_code"].evidence == ("config.yaml: tti.releases.code",
                                           "workflow/longthought/train")
    assert "a checkout is not a release" in a["training_code"].note
    assert "tti.releases.code" in a["usage_guide"].note
    # the same URLs from the config's own tti block (what the workflow's rule passes)
    cfg = _config()
    cfg["tti"] = {"releases": {"weights": {"tiny": RELEASES["weights"]}}}
    a = _assess(cfg).answers
    assert a["model_weights"].yes and a["model_weights"].evidence[0] == RELEASES["weights"]
    # one URL per student: a student without one is named
    cfg["students"]["big"] = cfg["students"]["tiny"]
    a = _assess(cfg).answers
    assert not a["model_weights"].yes and "trained student(s) big" in a["model_weights"].note


@pytest.mark.parametrize("releases, message", [
    ({"weights": "hf.co/me/tiny"}, r"tti\.releases\.weights: must be an http\(s\) URL"),
    ({"weights": {"nobody": "https://hf.co/x"}}, r"tti\.releases\.weights\.nobody: no such"),
    ({"code": {"tiny": "https://github.com/x"}}, r"tti\.releases\.code: must be an http"),
    ({"model": "https://hf.co/x"}, r"tti\.releases: unknown key\(s\) \['model'\]"),
])
def test_bad_release_urls_are_named(run_dir, releases, message):
    with pytest.raises(ValueError, match=message):
        _assess(spec={"releases": releases})


def test_code_counts_only_when_the_code_that_ran_is_committed(run_dir):
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("remote", "add", "origin", "https://user:secret@github.com/me/longthought.git")
    git("add", "workflow", "README.md")
    git("commit", "-q", "-m", "code")
    commit = git("rev-parse", "HEAD")
    a = _assess().answers["training_code"]
    assert not a.yes and "its git remote is https://github.com/me/longthought.git" in a.note
    assert "secret" not in a.note
    a = _assess(spec={"releases": {"code": RELEASES["code"]}}).answers
    assert a["training_code"].yes
    assert a["training_code"].evidence[0] == f"{RELEASES['code']} at commit {commit[:12]}"
    Path("workflow/longthought/evaluate/metrics.py").write_text('"""changed"""\n')
    a = _assess(spec={"releases": {"code": RELEASES["code"]}}).answers
    for item in ("training_code", "evaluation_code"):  # the tree's code, not just this package
        assert not a[item].yes and "uncommitted changes" in a[item].note
    Path("README.md").write_text("# changed\n\nRun `snakemake`.\n")  # not code: no effect
    git("commit", "-q", "-am", "more")
    assert _assess(spec={"releases": {"code": RELEASES["code"]}}).answers["training_code"].yes


def test_every_rubric_item_needs_a_check(tmp_path, capsys):
    """A rubric item without a check is an error when the rubric loads, never a silent no."""
    from longthought.transparency.self_assess import load_self_rubric

    raw = yaml.safe_load((ROOT / "config" / "tti" / "rubric.yaml").read_text())
    item = next(i for i in raw["items"] if i["id"] == "technical_paper")
    item["id"] = "technical_report"
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(raw))
    load_rubric(path)  # a valid rubric for scoring cards ...
    with pytest.raises(ValueError, match=r"item\(s\) \['technical_report'\] have no check; "
                                         r"check\(s\) \['technical_paper'\] answer no rubric"):
        load_self_rubric(path)  # ... but not one this pipeline can score itself on
    assert main(["tti", "validate", "--rubric", str(path)]) == 2
    assert "technical_report" in capsys.readouterr().err
    assert main(["tti", "self", "--config", "x.yaml", "--out", str(tmp_path / "c.yaml"),
                 "--rubric", str(path)]) == 2


def test_benchmark_choice_needs_a_recorded_reason(run_dir):
    a = _assess().answers["benchmark_choice"]
    assert not a.yes and "not why for heldout" in a.note
    cfg = _config()
    cfg["benchmarks"]["heldout"]["description"] = "held out from training by construction"
    cfg["benchmarks"]["aime24"] = {"source": "hf", "id": "HuggingFaceH4/aime_2024"}
    cfg["benchmarks"]["mine"] = {"source": "file", "path": "data/mine.jsonl"}
    cfg["evaluation"]["benchmarks"] = ["heldout", "aime24"]
    # generations for the new benchmark are not needed for this item
    a = _assess(cfg).answers["benchmark_choice"]
    assert a.yes and a.evidence == ("config.yaml",)
    assert "heldout: held out from training by construction" in a.note
    assert "aime24: a recognised public benchmark (hf HuggingFaceH4/aime_2024)" in a.note
    cfg["evaluation"]["benchmarks"] = ["aime24", "mine"]
    a = _assess(cfg).answers["benchmark_choice"]
    assert not a.yes and "not why for mine" in a.note


def test_missing_files_answer_no_naming_them(run_dir):
    ds = "results/datasets/longthought-arith"
    Path(f"{ds}.funnel.parquet").unlink()
    Path("results/models/tiny/hparams.json").unlink()
    Path("results/models/tiny/model.safetensors").unlink()
    Path("results/generations/sim-o1/heldout.parquet").unlink()
    shutil.rmtree("workflow/longthought/train")
    a = _assess().answers
    assert not a["data_selection"].yes
    assert f"{ds}.funnel.parquet" in a["data_selection"].note
    assert not a["synthetic_data_process"].yes and not a["long_thought_workflow"].yes
    assert not a["hyperparameters"].yes
    assert "results/models/tiny/hparams.json" in a["hyperparameters"].note
    assert not a["compute"].yes and "results/models/tiny/hparams.json" in a["compute"].note
    # the stage order still comes from the train log, the base model from the config
    assert a["training_pipeline"].evidence == ("results/models/tiny/train_log.parquet",)
    assert a["base_model"].evidence == ("config.yaml",) and "tiny Qwen2" in a["base_model"].note
    assert not a["model_weights"].yes and "tiny not written" in a["model_weights"].note
    assert "results/models/tiny (not found)" in a["model_weights"].evidence
    for item in ("decoding_params", "evaluation_level", "consistent_evaluation"):
        assert not a[item].yes
        assert "results/generations/sim-o1/heldout.parquet" in a[item].note
    assert not a["training_code"].yes and "no modules" in a["training_code"].note
    # every no names what its check looked at
    assert all(x.evidence for x in a.values())
    assert a["hyperparameters"].evidence == ("results/models/tiny/hparams.json (not found)",)


def test_hparams_without_hardware_or_lr(run_dir):
    hp = Path("results/models/tiny/hparams.json")
    hp.write_text(json.dumps({"base_model": "Qwen/Qwen2.5-0.5B",
                              "stages": [{"dataset": "longthought-arith", "epochs": 1}]}))
    a = _assess().answers
    assert not a["compute"].yes and "No hardware" in a["compute"].note
    assert not a["hyperparameters"].yes and "no learning rate" in a["hyperparameters"].note
    assert a["base_model"].yes and a["base_model"].note == "tiny: Qwen/Qwen2.5-0.5B."
    # the shape `longthought train` writes (train/loop.py)
    hp.write_text(json.dumps({"student": "tiny", "base_model": "tiny", "world_size": 2,
                              "distributed_type": "MULTI_GPU", "device": "cuda:0",
                              "stages": [{"dataset": "longthought-arith", "lr": 2e-3,
                                          "epochs": 3, "batch_size": 32}],
                              "packages": {"torch": "2.13.0"},
                              "hardware": {"cpu_model": "Xeon", "cpu_capability": "AVX512",
                                           "torch": "2.13.0", "cuda": "12.8",
                                           "gpus": [{"name": "NVIDIA H100"}] * 2,
                                           "torch_threads": 8, "torch_interop_threads": 8}}))
    a = _assess().answers
    assert a["compute"].yes and "world_size=2" in a["compute"].note
    assert "device=cuda:0" in a["compute"].note
    assert "2x NVIDIA H100, CPU path AVX512, torch 2.13.0 CUDA 12.8" in a["compute"].note
    assert a["hyperparameters"].yes
    assert "1 stage(s) with batch_size, dataset, epochs, lr" in a["hyperparameters"].note


def test_empty_run_answers_no_with_reasons(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    card = _assess({"pools": {}, "evaluation": {"models": [], "benchmarks": []}})
    a = card.answers
    assert "names no problem pools" in a["data_sources"].note
    assert "trains no student" in a["base_model"].note
    assert "evaluates nothing" in a["decoding_params"].note
    assert "no weights" in a["model_weights"].note
    assert not a["usage_guide"].yes and "README.md" in a["usage_guide"].note
    # statements of non-use still hold for a run that does nothing
    assert a["search_algorithm"].yes and a["rl_algorithm"].yes
    assert card.subtotals()["total"] == 12
    assert all(x.evidence for x in a.values())  # each answer says what it looked at
    assert a["data_sources"].evidence == ("config.yaml: pools",)


def test_search_and_rl_statements_withdrawn_when_config_contradicts(run_dir):
    cfg = _config()
    cfg["evaluation"]["sampling"]["num_beams"] = 4
    cfg["students"]["tiny"]["stages"][0]["dpo"] = {"beta": 0.1}
    a = _assess(cfg).answers
    assert not a["search_algorithm"].yes and "num_beams=4" in a["search_algorithm"].note
    assert not a["rl_algorithm"].yes and "dpo" in a["rl_algorithm"].note
    cfg["evaluation"]["sampling"]["num_beams"] = 1  # greedy/sampling: no beam search
    del cfg["students"]["tiny"]["stages"][0]["dpo"]
    a = _assess(cfg).answers
    assert a["search_algorithm"].yes and a["rl_algorithm"].yes


def test_inconsistent_decoding_is_named(run_dir):
    write_table(pd.DataFrame(_generations("sim-o1", temperature=1.0)),
                "results/generations/sim-o1/heldout.parquet", "generations")
    a = _assess().answers
    assert not a["consistent_evaluation"].yes
    assert "temperature differs" in a["consistent_evaluation"].note
    assert "sim-o1 1" in a["consistent_evaluation"].note
    assert a["decoding_params"].yes  # still recorded for every model


def test_too_few_samples_for_k(run_dir):
    cfg = _config()
    cfg["evaluation"]["k"] = [1, 8]
    a = _assess(cfg).answers["metric_definitions"]
    assert not a.yes and "k up to 8" in a.note and "2 samples per problem" in a.note


def test_malformed_table_fails_naming_the_file(run_dir):
    pd.DataFrame({"dataset": ["x"]}).to_parquet(
        "results/datasets/longthought-arith.funnel.parquet")
    with pytest.raises(ValueError, match=r"longthought-arith\.funnel\.parquet"):
        _assess()


def test_cli_self_writes_a_valid_card(run_dir, capsys):
    rubric = str(ROOT / "config" / "tti" / "rubric.yaml")
    rc = main(["tti", "self", "--spec", json.dumps({"project": "longthought (this run)"}),
               "--results-dir", R, "--config", "config.yaml",
               "--out", "results/tti/longthought.yaml", "--rubric", rubric])
    assert rc == 0
    assert "longthought (this run) 63/100" in capsys.readouterr().out  # nothing published
    card = load_card("results/tti/longthought.yaml", RUBRIC)
    assert card.project == "longthought (this run)"
    assert card.answers["model_weights"].evidence == ("config.yaml: tti.releases.weights",
                                                      "results/models/tiny/model.safetensors")
    rc = main(["tti", "self", "--spec", '{"projekt": 1}', "--config", "config.yaml",
               "--out", "x.yaml", "--rubric", rubric])
    assert rc == 2 and "unknown key(s) ['projekt']" in capsys.readouterr().err


def test_config_overlays_merge_in_order(run_dir, capsys):
    # mappings merge, anything else replaces (as Snakemake merges --configfile overlays)
    Path("small.yaml").write_text(yaml.safe_dump({
        "pools": {"arith": {"n": 3}}, "evaluation": {"models": ["sim-o1"]}}))
    card = assess_run({}, R, ["config.yaml", "small.yaml"], RUBRIC)
    a = card.answers
    assert "pool arith: procedural train (addition; n=3, seed=1)" in a["data_sources"].note
    assert a["data_sources"].evidence == ("config.yaml", "small.yaml")
    assert a["decoding_params"].evidence == ("results/generations/sim-o1/heldout.parquet",)
    assert "Only one model is evaluated (sim-o1)" in a["consistent_evaluation"].note
    assert main(["tti", "self", "--config", "config.yaml", "missing.yaml", "--out", "x.yaml",
                 "--rubric", str(ROOT / "config" / "tti" / "rubric.yaml")]) == 2
    assert "missing.yaml: config not found" in capsys.readouterr().err
