"""Generalization, in two steps a cluster can place apart: generate, then judge.

`generate_responses` (`longthought generalize-generate`, the GPU job for a local model) loads the
set and writes the model's answers with the evaluation backends: no judge, no API, no cache.
`judge_responses` (`longthought generalize-judge`, a local rule, since it calls the judge's API
and writes the request cache) scores them (by rule for the procedural sycophancy probe, by the
LLM judge otherwise), adds the experts' scores when the set names a CSV, and writes the per-item
table and the GENERALIZATION rows. `generalize` does both in one process.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from longthought.evaluate.backends import validate_refill
from longthought.generalization.aggregate import aggregate
from longthought.generalization.human import human_rows, read_scores
from longthought.generalization.items import COLUMNS as ITEM_COLUMNS
from longthought.generalization.items import (
    RESPONSE_COLUMNS,
    read_responses,
    write_items,
    write_responses,
)
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
              cache_dir: str | None, batch: dict) -> list[list]:
    from longthought.evaluate.backends import generate_texts

    return generate_texts(model_spec, prompts, sampling, n, cache_dir=cache_dir, **batch)


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


def generate_responses(spec: dict, responses_out: str, cache_dir: str | None,
                       model: str | None = None, gset: str | None = None) -> pd.DataFrame:
    """The model's side of a set (a GPU job for a local model): its answers, and for the
    probe the answers it is scored against (the control prompt, or the turn before the
    push-back). Calls no judge; `cache_dir` is used only by an API model. Writes and returns
    the responses table."""
    model_spec, set_spec = _check_spec(spec, model, gset)
    name, bench, category = model_spec["name"], set_spec["name"], set_spec.get("category")
    sampling = dict(spec.get("sampling") or {})
    n = int(sampling.get("n", 1))
    gen_sampling = {k: v for k, v in sampling.items() if k not in _NOT_SAMPLING}
    items = load_set(set_spec, system=sampling.get("system"))
    log.info("%s on %s: %d items x %d samples", name, bench, len(items), n)
    batch = {"batch_size": int(spec.get("batch_size") or 32),
             "refill": validate_refill(spec.get("refill"), "--spec: refill")}
    prompts = [json.loads(m) for m in items["messages"]]
    outputs = _generate(model_spec, prompts, gen_sampling, n, cache_dir, batch)
    control = None
    if items["followup"].notna().any():  # multi-turn probe: push back on the model's own answer
        control = outputs
        second = [prompts[i] + [{"role": "assistant", "content": outputs[i][j].text},
                                {"role": "user", "content": items.at[i, "followup"]}]
                  for i in range(len(items)) for j in range(n)]
        flat = _generate(model_spec, second, gen_sampling, 1, cache_dir, batch)
        outputs = [[flat[i * n + j][0] for j in range(n)] for i in range(len(items))]
    elif set_spec.get("source") == "procedural" and items["control"].notna().any():
        control = _generate(model_spec, [json.loads(m) for m in items["control"]], gen_sampling,
                            n, cache_dir, batch)
    rows = []
    for i, item in enumerate(items.itertuples(index=False)):
        user_turns = [m for m in prompts[i] if m["role"] == "user"]
        multi = item.followup is not None and not pd.isna(item.followup)
        question = item.followup if multi else user_turns[-1]["content"]
        for j in range(n):
            o = outputs[i][j]
            rows.append({
                "model": name, "benchmark": bench, "category": category, "item_id": item.item_id,
                "sample_index": j, "question": question, "gold": item.gold,
                "asserted": item.asserted, "response": o.text or "",
                "output_tokens": o.output_tokens, "finish_reason": o.finish_reason,
                "premise": item.premise, "reference": item.reference,
                "control_response": None if control is None else (control[i][j].text or ""),
            })
    return write_responses(pd.DataFrame(rows, columns=RESPONSE_COLUMNS), responses_out)


def judge_responses(spec: dict, responses_path: str, out: str, items_out: str,
                    cache_dir: str | None, model: str | None = None,
                    gset: str | None = None) -> pd.DataFrame:
    """Score a set's responses (a local rule: it calls the judge's API): by rule for the
    procedural sycophancy probe, by the LLM judge otherwise; add the experts' scores when the
    set names a CSV. Writes the per-item table and returns the GENERALIZATION rows."""
    model_spec, set_spec = _check_spec(spec, model, gset)
    name, bench, category = model_spec["name"], set_spec["name"], set_spec.get("category")
    is_probe = set_spec.get("source") == "procedural"
    judge = spec.get("judge")
    if not is_probe and not (isinstance(judge, dict) and judge.get("model")):
        raise ValueError(f"generalization.sets.{bench} ({category}) is judged by an LLM: set "
                         "generalization.judge to a name under teachers:")
    if not is_probe and not cache_dir:
        raise ValueError("judging needs the API request cache: pass --cache-dir")
    responses = read_responses(responses_path)
    if set(responses["model"]) - {name} or set(responses["benchmark"]) - {bench}:
        raise ValueError(f"{responses_path}: holds responses of another model or set than "
                         f"{name} on {bench}")
    human = _human(set_spec, name, responses, category)  # a bad scores file fails before work
    rows = [{k: (None if _missing(v) else v) for k, v in r.items()}
            for r in responses.to_dict("records")]
    if is_probe:
        _score_probe_rows(rows, spec.get("checker") or {})
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


def generalize(spec: dict, out: str, items_out: str, cache_dir: str | None,
               model: str | None = None, gset: str | None = None) -> pd.DataFrame:
    """Generate and judge in one process (an API model, or a laptop): `generate_responses`
    then `judge_responses`, the responses kept next to `items_out`. Returns the rows."""
    _, set_spec = _check_spec(spec, model, gset)
    is_probe = set_spec.get("source") == "procedural"
    if not is_probe and not (isinstance(spec.get("judge"), dict) and spec["judge"].get("model")):
        raise ValueError(f"generalization.sets.{set_spec['name']} is judged by an LLM: set "
                         "generalization.judge to a name under teachers:")
    if not is_probe and not cache_dir:
        raise ValueError("judging needs the API request cache: pass --cache-dir")
    items = load_set(set_spec, system=(spec.get("sampling") or {}).get("system"))
    _human(set_spec, spec["model"].get("name") or str(model), items,  # fails before any work
           set_spec.get("category"))
    responses = str(items_out).removesuffix(".items.parquet") + ".responses.parquet"
    generate_responses(spec, responses, cache_dir, model, gset)
    return judge_responses(spec, responses, out, items_out, cache_dir, model, gset)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA


def _score_probe_rows(rows: list[dict], checker_cfg: dict) -> None:
    """Rule-score the probe rows in place; the control is the plain prompt or the first turn
    (`control_response`, generated with the responses)."""
    from longthought.answers.checker import AnswerChecker

    golds = [r["gold"] for r in rows]
    asserted = [r["asserted"] for r in rows]
    with AnswerChecker(workers=int(checker_cfg.get("workers", 1)),
                       timeout_s=float(checker_cfg.get("timeout_s", 5))) as checker:
        scored = score_probe(golds, asserted, [r["response"] for r in rows], checker=checker)
        control = None
        if any(r.get("control_response") is not None for r in rows):
            control = score_probe(golds, asserted, [r.get("control_response") or "" for r in rows],
                                  checker=checker)
    for k, (row, s) in enumerate(zip(rows, scored, strict=True)):
        row.update(judge="rule", request_key=None, judge_output=None, status="ok",
                   label=s["label"], score=None, passed=s["passed"],
                   extracted_answer=s["extracted"],
                   control_label=control[k]["label"] if control else None, detail=None)
