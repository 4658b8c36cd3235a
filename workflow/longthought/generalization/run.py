"""`longthought generalize`: one model on one set -> per-item table + GENERALIZATION rows.

Load the set, generate the model's answers with the evaluation backends, score them (by rule for
the procedural sycophancy probe, by the LLM judge otherwise), add the experts' scores when the set
names a CSV, and write both tables atomically.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from longthought.generalization.aggregate import aggregate
from longthought.generalization.human import human_rows, read_scores
from longthought.generalization.items import COLUMNS as ITEM_COLUMNS
from longthought.generalization.items import write_items
from longthought.generalization.judge import run_judge
from longthought.generalization.probe import score_probe
from longthought.generalization.sets import load_set
from longthought.generalization.verdicts import passed
from longthought.io import write_table

log = logging.getLogger("longthought.generalization")

_NOT_SAMPLING = ("n", "system")


def _check_spec(spec: dict, model: str | None, gset: str | None) -> tuple[dict, dict]:
    for key in ("model", "set"):
        if not isinstance(spec.get(key), dict):
            raise ValueError(f"--spec: '{key}' must be an object")
    model_spec, set_spec = dict(spec["model"]), dict(spec["set"])
    if model and model_spec.setdefault("name", model) != model:
        raise ValueError(f"--model {model!r} but the spec's model is {model_spec['name']!r}")
    if gset and set_spec.setdefault("name", gset) != gset:
        raise ValueError(f"--set {gset!r} but the spec's set is {set_spec['name']!r}")
    for obj, what in ((model_spec, "model"), (set_spec, "set")):
        if not obj.get("name"):
            raise ValueError(f"--spec: the {what} has no 'name' (pass --{what})")
    return model_spec, set_spec


def _generate(model_spec: dict, prompts: list[list[dict]], sampling: dict, n: int,
              cache_dir: str | None, batch_size: int) -> list[list]:
    from longthought.evaluate.backends import generate_texts

    return generate_texts(model_spec, prompts, sampling, n, batch_size=batch_size,
                          cache_dir=cache_dir)


def _human(set_spec: dict, model: str, items: pd.DataFrame, category: str) -> pd.DataFrame | None:
    """GENERALIZATION rows from the set's expert-score CSV, or None when it has none for model."""
    path = set_spec.get("human_scores")
    if not path:
        return None
    where = f"generalization.sets.{set_spec['name']}.human_scores"
    header = pd.read_csv(str(path).replace("{model}", model), nrows=0).columns \
        if Path(str(path).replace("{model}", model)).exists() else []
    if "{model}" not in str(path) and len(header) and "model" not in header:
        raise ValueError(f"{where}: {path} has no 'model' column, so it cannot say whose answers "
                         "were scored; add a model column or put {model} in the path")
    scores = read_scores(path, model=model)
    if scores.empty:
        log.warning("%s: no human scores for model %s in %s", where, model, path)
        return None
    unknown = sorted(set(scores["item_id"]) - set(items["item_id"]))
    if unknown:
        raise ValueError(f"{where}: {path} scores item(s) {unknown[:5]} that the set "
                         f"{set_spec['name']!r} does not have (after sampling)")
    return human_rows(scores, model, set_spec["name"], category)


def generalize(spec: dict, out: str, items_out: str, cache_dir: str | None,
               model: str | None = None, gset: str | None = None) -> pd.DataFrame:
    """Run one model on one set; write `items_out` (per item) and `out` (GENERALIZATION rows).

    spec: {"model": model spec, "set": set config + name, "judge": teacher config + name or
    null, "judge_prompt": prompt config or null, "sampling": {n, temperature, top_p,
    max_new_tokens, seed, system}, "batch_size": int, "checker": {timeout_s, workers}}.
    Returns the GENERALIZATION rows written to `out`.
    """
    model_spec, set_spec = _check_spec(spec, model, gset)
    name, bench, category = model_spec["name"], set_spec["name"], set_spec.get("category")
    sampling = dict(spec.get("sampling") or {})
    n = int(sampling.get("n", 1))
    gen_sampling = {k: v for k, v in sampling.items() if k not in _NOT_SAMPLING}
    is_probe = set_spec.get("source") == "procedural"
    judge = spec.get("judge")
    if not is_probe and not (isinstance(judge, dict) and judge.get("model")):
        raise ValueError(f"generalization.sets.{bench} ({category}) is judged by an LLM: set "
                         "generalization.judge to a name under teachers:")
    if not is_probe and not cache_dir:
        raise ValueError("judging needs the API request cache: pass --cache-dir")
    items = load_set(set_spec, system=sampling.get("system"))
    human = _human(set_spec, name, items, category)  # a bad scores file fails before any work
    log.info("%s on %s: %d items x %d samples", name, bench, len(items), n)
    batch = int(spec.get("batch_size") or 32)
    prompts = [json.loads(m) for m in items["messages"]]
    outputs = _generate(model_spec, prompts, gen_sampling, n, cache_dir, batch)
    first_turn = None
    if items["followup"].notna().any():  # multi-turn probe: push back on the model's own answer
        first_turn = outputs
        second = [prompts[i] + [{"role": "assistant", "content": outputs[i][j].text},
                                {"role": "user", "content": items.at[i, "followup"]}]
                  for i in range(len(items)) for j in range(n)]
        flat = _generate(model_spec, second, gen_sampling, 1, cache_dir, batch)
        outputs = [[flat[i * n + j][0] for j in range(n)] for i in range(len(items))]
    rows = []
    for i, item in enumerate(items.itertuples(index=False)):
        user_turns = [m for m in prompts[i] if m["role"] == "user"]
        question = item.followup if first_turn is not None else user_turns[-1]["content"]
        for j in range(n):
            o = outputs[i][j]
            rows.append({
                "model": name, "benchmark": bench, "category": category, "item_id": item.item_id,
                "sample_index": j, "question": question, "gold": item.gold,
                "asserted": item.asserted, "response": o.text or "",
                "output_tokens": o.output_tokens, "finish_reason": o.finish_reason,
                "premise": item.premise, "reference": item.reference,
            })
    if is_probe:
        _score_probe_rows(rows, items, model_spec, first_turn, gen_sampling, n, cache_dir, batch,
                          spec.get("checker") or {})
    else:
        calls = run_judge(judge, category, spec.get("judge_prompt"), rows, str(cache_dir),
                          tag=f"judge:{name}/{bench}")
        for row, call in zip(rows, calls, strict=True):
            jd = call.judgement
            row.update(judge=judge.get("name") or judge["model"], request_key=call.request_key,
                       judge_output=call.output, status=jd.status, label=jd.label,
                       score=jd.score, passed=passed(category, jd), extracted_answer=None,
                       control_label=None, detail=jd.detail if not jd.ok else None)
    table = pd.DataFrame(rows)[ITEM_COLUMNS]
    table = write_items(table, items_out)
    result = aggregate(table)
    if human is not None:
        result = pd.concat([result, human], ignore_index=True)
    result = write_table(result, out, "generalization")
    primary = result.iloc[0]
    log.info("%s on %s: %s = %.1f (n=%d, judge %s)", name, bench, primary["metric"],
             primary["value"], primary["n"], primary["judge"])
    return result


def _score_probe_rows(rows: list[dict], items: pd.DataFrame, model_spec: dict,
                      first_turn: list[list] | None, gen_sampling: dict, n: int,
                      cache_dir: str | None, batch: int, checker_cfg: dict) -> None:
    """Rule-score the probe rows in place; the control is the plain prompt or the first turn."""
    from longthought.answers.checker import AnswerChecker

    golds = [r["gold"] for r in rows]
    asserted = [r["asserted"] for r in rows]
    with AnswerChecker(workers=int(checker_cfg.get("workers", 1)),
                       timeout_s=float(checker_cfg.get("timeout_s", 5))) as checker:
        scored = score_probe(golds, asserted, [r["response"] for r in rows], checker=checker)
        control_texts = None
        if first_turn is not None:
            control_texts = [first_turn[i][j].text for i in range(len(items)) for j in range(n)]
        elif items["control"].notna().any():
            ctrl = _generate(model_spec, [json.loads(m) for m in items["control"]], gen_sampling,
                             n, cache_dir, batch)
            control_texts = [ctrl[i][j].text for i in range(len(items)) for j in range(n)]
        control = None
        if control_texts is not None:
            control = score_probe(golds, asserted, control_texts, checker=checker)
    for k, (row, s) in enumerate(zip(rows, scored, strict=True)):
        row.update(judge="rule", request_key=None, judge_output=None, status="ok",
                   label=s["label"], score=None, passed=s["passed"],
                   extracted_answer=s["extracted"],
                   control_label=control[k]["label"] if control else None, detail=None)
