"""The workflow with hub-shaped students (tests/hub_models.py): `base_model: <path>` -> init ->
two SFT stages -> evaluation -> report, for Qwen2.5-Instruct, Qwen2.5-Math and Llama-3, in one
`snakemake --cores 2` run of the small overlay (started in the background as the session begins:
tests/background_runs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from background_runs import HUB_FAMILIES
from transformers import AutoTokenizer, GenerationConfig

from longthought.chat import as_id_list, end_of_turn


@pytest.mark.slow
def test_hub_students_init_train_two_stages_evaluate_and_report(hub_run):
    """The session's background run of the hub-shaped students (tests/background_runs.py)."""
    hub_run.wait()
    wd, models = hub_run.workdir, hub_run.info["models"]
    con = duckdb.connect(str(wd / "results" / "results.duckdb"), read_only=True)
    rows = dict(con.execute("select model, count(*) from generations group by model").fetchall())
    assert all(rows.get(m, 0) == 12 * 2 for m in [*models, "qwen25@init"]), rows
    for name, family in HUB_FAMILIES.items():
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
