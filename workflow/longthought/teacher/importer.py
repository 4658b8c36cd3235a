"""Import a published trace set (jsonl/json/parquet/csv file, or a Hugging Face dataset) into
the `traces` table, so a user can start from existing distilled data instead of paying for it.

A task's `import:` block says where and how to read it:

    import: {source: file, path: data/traces.jsonl, columns: {problem: question,
             content: generation, answer: gold}}
    import: {source: hf, id: org/dataset, config: null, split: train, limit: null,
             columns: {...}}

`columns` maps traces columns to source columns (an unmapped one is read from a source column of
the same name if there is one). `problem` and `content` are required;
`answer`, `problem_id`, `sample_index`, `reasoning_content`, `finish_reason`, `model`,
`prompt_tokens`, `completion_tokens` are optional. Without an `answer` column the gold answer is
taken from `--problems` (matched by problem_id, else by problem text) when given.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from longthought.io import number_rows, read_jsonl_frame, read_table
from longthought.teacher.cache import canonical_json
from longthought.teacher.tracestore import TRACE_COLUMNS

REQUIRED = ("problem", "content")
OPTIONAL = ("answer", "problem_id", "sample_index", "reasoning_content", "finish_reason", "model",
            "prompt_tokens", "completion_tokens")
_KEYS = {"source", "path", "id", "config", "split", "limit", "columns"}


def load_source(imp: dict[str, Any], where: str) -> tuple[pd.DataFrame, str]:
    """(the source table, a name for it) for an import block."""
    unknown = set(imp) - _KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    source = imp.get("source")
    if source == "file":
        path = imp.get("path")
        if not path:
            raise ValueError(f"{where}: source 'file' needs 'path'")
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"{where}: {path} does not exist")
        suffix = "".join(p.suffixes[-2:]) if p.suffix == ".gz" else p.suffix
        if suffix in (".jsonl", ".jsonl.gz"):  # rows numbered by their line (as an editor)
            df = read_jsonl_frame(p) if suffix == ".jsonl" else number_rows(
                pd.read_json(p, lines=True))
        elif suffix == ".json":
            df = number_rows(pd.read_json(p))
        elif suffix == ".parquet":
            df = number_rows(pd.read_parquet(p))
        elif suffix == ".csv":
            df = number_rows(pd.read_csv(p))
        else:
            raise ValueError(f"{where}: {path}: unsupported file type {suffix!r} "
                             "(jsonl, json, parquet, csv)")
        name = str(path)
    elif source == "hf":
        ds_id = imp.get("id")
        if not ds_id:
            raise ValueError(f"{where}: source 'hf' needs 'id' (a Hugging Face dataset id)")
        import datasets

        ds = datasets.load_dataset(ds_id, imp.get("config"), split=imp.get("split") or "train")
        df = number_rows(ds.to_pandas())
        name = f"hf:{ds_id}"
    else:
        raise ValueError(f"{where}: source must be 'file' or 'hf', got {source!r}")
    limit = imp.get("limit")
    if limit is not None:
        df = df.head(int(limit))
    return df, name


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _int(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected an integer, got {value!r}") from None
    if out < 0:
        raise ValueError(f"{where}: expected an integer >= 0, got {value!r}")
    return out


def import_traces(task: str, spec: dict[str, Any], problems_path: str | None) -> pd.DataFrame:
    """Read the task's `import:` source into a traces-shaped frame (validated on write)."""
    imp = spec["task"]["import"]
    where = f"task {task!r} import"
    if not isinstance(imp, dict):
        raise ValueError(f"{where}: must be a mapping")
    cols = imp.get("columns") or {}
    if not isinstance(cols, dict):
        raise ValueError(f"{where}: columns must map traces columns to source columns")
    bad = set(cols) - set(REQUIRED) - set(OPTIONAL)
    if bad:
        raise ValueError(f"{where}: columns: unknown traces column(s) {sorted(bad)}; "
                         f"known: {sorted(REQUIRED + OPTIONAL)}")
    df, name = load_source(imp, where)
    # unmapped columns default to a source column of the same name, when there is one
    cols = {k: cols.get(k, k if (k in REQUIRED or k in df.columns) else None)
            for k in REQUIRED + OPTIONAL}
    for target, col in cols.items():
        if col is not None and col not in df.columns:
            raise ValueError(f"{where}: {name} has no column {col!r} (mapped to {target!r}); "
                             f"its columns: {list(df.columns)[:20]}")

    gold_by_id: dict[str, str] = {}
    gold_by_text: dict[str, str] = {}
    if cols["answer"] is None and problems_path:
        probs = read_table(problems_path, "problems")
        gold_by_id = dict(zip(probs["problem_id"], probs["answer"], strict=True))
        gold_by_text = {str(p).strip(): a for p, a in zip(probs["problem"], probs["answer"],
                                                          strict=True)}

    teacher = spec.get("teacher_name") or f"import:{name}"
    counts: dict[str, int] = {}
    rows = []
    for i, (row_no, rec) in enumerate(zip(df.index, df.to_dict("records"), strict=True)):
        at = f"{name}: row {row_no}"  # as an editor counts (a JSON-lines row: its line)
        problem = _text(rec[cols["problem"]])
        if not problem:
            raise ValueError(f"{at}: empty problem (column {cols['problem']!r})")
        pid = _text(rec[cols["problem_id"]]) if cols["problem_id"] else None
        pid = pid or "p-" + hashlib.sha256(problem.strip().encode()).hexdigest()[:16]
        if cols["sample_index"]:
            k = _int(rec[cols["sample_index"]], f"{at}, column {cols['sample_index']!r}") or 0
        else:
            k = counts.get(pid, 0)
        counts[pid] = max(counts.get(pid, 0), k + 1)
        if cols["answer"]:
            answer = _text(rec[cols["answer"]]) or ""
        else:
            answer = gold_by_id.get(pid) or gold_by_text.get(problem.strip(), "")
        content = _text(rec[cols["content"]])
        request = canonical_json({"import": {k2: imp.get(k2) for k2 in
                                             ("source", "path", "id", "config", "split")},
                                  "row": i})

        def get(c: str, rec: dict = rec) -> Any:
            return rec[cols[c]] if cols[c] else None

        rows.append({
            "trace_id": f"{task}/{pid}/{k}", "task": task, "teacher": teacher,
            "prompt": "import", "problem_id": pid, "problem": problem, "answer": answer,
            "sample_index": k, "request_key": hashlib.sha256(request.encode()).hexdigest(),
            "request": request,
            "response": json.dumps(rec, ensure_ascii=False, default=str),
            "content": content, "reasoning_content": _text(get("reasoning_content")),
            "finish_reason": _text(get("finish_reason")) or ("stop" if content else None),
            "max_tokens": None,  # a published set does not say what limit it was made at
            "model": _text(get("model")),
            "prompt_tokens": _int(get("prompt_tokens"), f"{at}, prompt_tokens"),
            "completion_tokens": _int(get("completion_tokens"), f"{at}, completion_tokens"),
            "reasoning_tokens": None, "latency_s": None, "attempts": 0, "cached": False,
            "status": "ok" if content else "failed",
            "error": None if content else f"empty content in {at}", "cost_usd": 0.0,
        })
    out = pd.DataFrame(rows, columns=TRACE_COLUMNS)
    dup = out["trace_id"].duplicated(keep=False)
    if dup.any():
        first = out.loc[dup, "trace_id"].iloc[0]
        raise ValueError(f"{where}: {name}: duplicate trace {first!r} (same problem_id and "
                         "sample_index); map a sample_index column or fix the source")
    return out
