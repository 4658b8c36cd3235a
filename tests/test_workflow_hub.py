"""The workflow with hub-shaped students (tests/hub_models.py): `base_model: <path>` -> init ->
two SFT stages -> evaluation -> report, for Qwen2.5-Instruct, Qwen2.5-Math and Llama-3, in one
`snakemake --cores 2` run of the small overlay."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import hub_models
import pytest
import yaml
from conftest import SNAKEMAKE, copy_workflow, workflow_env
from transformers import AutoTokenizer, GenerationConfig

from longthought.chat import as_id_list, end_of_turn

SMALL = "tests/configs/small.yaml"
FAMILIES = {"qwen25": "qwen2.5-instruct", "qwen25-math": "qwen2.5-math",
            "llama3": "llama-3-instruct"}


@pytest.mark.slow
def test_hub_students_init_train_two_stages_evaluate_and_report(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    models = {name: hub_models.build(family, tmp_path / "hub" / family)
              for name, family in FAMILIES.items()}
    stages = [{"dataset": "format-arith", "lr": 2.0e-3, "max_steps": 2, "batch_size": 8,
               "max_length": 384, "seed": 1},
              {"dataset": "longthought-arith", "lr": 2.0e-3, "max_steps": 2, "batch_size": 8,
               "max_length": 384, "seed": 2}]
    overlay = {
        "students": {name: {"base_model": str(path), "precision": "fp32",
                            "attn_implementation": "sdpa", "checkpoint_every": 0,
                            "stages": stages} for name, path in models.items()},
        "evaluation": {"models": [*models, "qwen25@init"],
                       "sampling": {"n": 2, "temperature": 0.7, "top_p": 0.95,
                                    "max_new_tokens": 48, "seed": 0, "system": None},
                       "budgets": [], "budget_models": None},
        "generalization": {"models": ["tiny@init", "tiny"]},
    }
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(overlay))
    proc = subprocess.run([SNAKEMAKE, "--cores", "2", "--configfile", SMALL,
                           str(tmp_path / "hub.yaml")], cwd=wd, env=workflow_env(),
                          capture_output=True, text=True, timeout=1800)
    logs = "\n".join(p.read_text()[-2000:] for p in (wd / "results/logs/train").glob("*.log")) \
        if (wd / "results/logs/train").exists() else ""
    assert proc.returncode == 0, proc.stderr[-5000:] + logs

    con = duckdb.connect(str(wd / "results" / "results.duckdb"), read_only=True)
    rows = dict(con.execute("select model, count(*) from generations group by model").fetchall())
    assert all(rows.get(m, 0) == 12 * 2 for m in [*models, "qwen25@init"]), rows
    for name, family in FAMILIES.items():
        out = wd / "results" / "models" / name
        hp = json.loads((out / "hparams.json").read_text())
        assert [s["steps"] for s in hp["stages"]] == [2, 2]
        checks = {c["name"]: c["level"] for c in hp["preview_checks"]}
        assert checks["system prompt"] == "ok" and checks["thinking markers"] == "ok", checks
        assert checks["end of turn"] == ("fixed" if family == "qwen2.5-math" else "ok")
        assert (out / "data_preview.md").read_text().count("«") >= 2
        tok = AutoTokenizer.from_pretrained(out)
        assert end_of_turn(tok)[0] in as_id_list(GenerationConfig.from_pretrained(out)
                                                  .eos_token_id)
        init = json.loads((wd / "results" / "models" / f"{name}@init" / "init.json").read_text())
        assert init["kind"] == "local" and Path(init["path"]) == models[name].resolve()
    assert "qwen25" in (wd / "results" / "report" / "summary.md").read_text()
