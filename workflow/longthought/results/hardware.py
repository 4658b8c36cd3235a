"""The report's hardware section: where each trained and generated number was made.

Identical config and seed give identical numbers only on the same float path; this section puts
the machine of every training run (`hparams.json`) and generation run (`<bench>.run.json`) next
to the tables above it, so a reader can tell a different number from a different machine.
"""

from __future__ import annotations

import json

import pandas as pd

from longthought.hardware import hardware_summary


def _json(text: object) -> dict:
    try:
        data = json.loads(str(text))
    except (TypeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def hardware_rows(hparams: pd.DataFrame, runs: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(what, model, hardware summary) per training run and per generation run."""
    rows = []
    for r in hparams.itertuples():
        hp = _json(r.hparams)
        hw = hp.get("hardware")
        seeds = f" (replicate seed {hp['replicate_seed']})" if hp.get("replicate_seed") else ""
        rows.append(("train", f"`{r.student}`{seeds}", hardware_summary(hw)))
    for r in runs.itertuples():
        run = _json(r.run)
        where = f"`{run.get('model', '?')}` on {run.get('benchmark', '?')}"
        if run.get("backend") == "api":
            rows.append(("generate", where, "API model: computed by its provider (this "
                         "machine only sent the requests)"))
        else:
            rows.append(("generate", where, hardware_summary(run.get("hardware"))))
    return rows


def hardware_markdown(hparams: pd.DataFrame, runs: pd.DataFrame) -> str:
    """The section body: one row per run; identical config and seed reproduce a number bit for
    bit only where this column matches (CPU instruction set or GPU, torch/CUDA, threads)."""
    rows = hardware_rows(hparams, runs)
    if not rows:
        return "_no training or generation runs recorded_\n"
    lines = ["Losses and samples are bit-identical across reruns of the same config and seed only "
             "on the same float path: the same CPU instruction set (or GPU), torch/CUDA build "
             "and thread counts. Another machine gives another draw of the same distribution.",
             "", "| run | model | hardware (float path) |", "|---|---|---|"]
    lines += [f"| {what} | {model} | {hw} |" for what, model, hw in rows]
    return "\n".join(lines) + "\n"
