"""Load a generalization set (config `generalization.sets.<name>`) into one item table.

A set comes from a local file (jsonl, json, csv, parquet), a Hugging Face dataset id, or, for the
sycophancy probe, the procedural generators. Whatever the source, the columns are mapped onto one
shape, so the judge and the model see the same fields for every benchmark:

    item_id   unique id (mapped, or made from the row number)
    question  the user's message to the model
    gold      gold answer (factuality; the correct fact for judged sycophancy sets), optional
    premise   the false premise or the user's wrong claim (sycophancy), optional
    reference a reference answer shown to the judge (general QA), optional
    asserted  the wrong answer the user asserts (procedural probe only)
    messages  JSON list of chat messages sent to the model
    followup  the user's push-back turn (multi-turn probe only)
    control   JSON chat without the assertion (probe with control: true only)
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pandas as pd

from longthought import io
from longthought.generalization.verdicts import CATEGORIES

FIELDS = ("item_id", "question", "gold", "premise", "reference")
SOURCES = ("procedural", "file", "hf")
_INDEXED = re.compile(r"^(.+)\[(-?\d+)\]$")  # "conversations[0]": element 0 of a list column


def _require(spec: dict, key: str, where: str) -> Any:
    if spec.get(key) in (None, ""):
        raise ValueError(f"{where}: missing key '{key}'")
    return spec[key]


def read_rows(path: str | Path) -> pd.DataFrame:
    """Read a local jsonl/json/csv/parquet file; say which file and line when it is malformed.

    The index numbers the rows as an editor does: a JSON-lines row's line, else the data row
    counted from 1.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return io.read_jsonl_frame(path)
    return io.number_rows(_read_other(path, suffix))


def _read_other(path: Path, suffix: str) -> pd.DataFrame:
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
        if isinstance(data, dict):  # {"data": [...]} or {"split": [...]}
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else None
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of objects")
        return pd.DataFrame(data)
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use jsonl, json, csv, parquet)")


def _read_hf(spec: dict, where: str) -> pd.DataFrame:
    """A Hugging Face dataset split (downloads on first use, then the datasets cache)."""
    import datasets  # heavy: only when a set really comes from the hub

    ds_id = _require(spec, "id", where)
    split = spec.get("split") or "test"
    try:
        ds = datasets.load_dataset(ds_id, spec.get("config"), split=split)
    except Exception as exc:  # network, auth, missing split: one clear line
        raise ValueError(f"{where}: cannot load Hugging Face dataset {ds_id!r} "
                         f"(config {spec.get('config')!r}, split {split!r}): {exc}") from None
    return io.number_rows(ds.to_pandas())


def _column(frame: pd.DataFrame, source: str, where: str, field: str) -> pd.Series:
    m = _INDEXED.match(source)
    name, index = (m.group(1), int(m.group(2))) if m else (source, None)
    if name not in frame.columns:
        raise ValueError(f"{where}: columns.{field} names column {name!r}, which the data does "
                         f"not have (columns: {sorted(map(str, frame.columns))})")
    col = frame[name]
    if index is None:
        return col

    def pick(value: Any, row: int) -> Any:
        try:
            return list(value)[index]
        except (TypeError, IndexError):
            raise ValueError(f"{where}: row {row}, column {name!r} has no element "
                             f"{index}") from None

    return pd.Series([pick(v, i) for i, v in col.items()], index=frame.index)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text.strip() or None


def map_columns(frame: pd.DataFrame, spec: dict, where: str) -> pd.DataFrame:
    """Map source columns onto FIELDS (identity for fields the mapping leaves out)."""
    columns = dict(spec.get("columns") or {})
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise ValueError(f"{where}: columns has unknown field(s) {unknown}; known: {list(FIELDS)}")
    out = pd.DataFrame(index=frame.index)
    for field in FIELDS:
        source = columns.get(field, field)
        if field in columns or source in frame.columns:
            out[field] = [_text(v) for v in _column(frame, source, where, field)]
        else:
            out[field] = None
    if out["item_id"].isna().all():
        out["item_id"] = [f"{i:05d}" for i in range(len(out))]
    for i, row in zip(out.index, out.itertuples(index=False), strict=True):
        # pandas 3 stores a missing text as NaN, which is truthy: test for missing explicitly
        if pd.isna(row.item_id) or not row.item_id:
            raise ValueError(f"{where}: row {i} has an empty item_id")
        if pd.isna(row.question) or not row.question:
            raise ValueError(f"{where}: row {i} (item {row.item_id!r}) has an empty question")
    dup = out["item_id"][out["item_id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{where}: duplicate item_id(s) {dup[:5]}")
    return out  # indexed by the source's row numbers, for messages


def subsample(frame: pd.DataFrame, size: int | None, seed: int) -> pd.DataFrame:
    """A seeded subsample of `size` rows in their original order (all rows if size is None)."""
    if size is None or size >= len(frame):
        return frame
    keep = sorted(random.Random(seed).sample(range(len(frame)), size))
    return frame.iloc[keep]  # the index (source rows) is kept for messages


def _messages(question: str, system: str | None) -> str:
    msgs = ([{"role": "system", "content": system}] if system else [])
    msgs.append({"role": "user", "content": question})
    return json.dumps(msgs, ensure_ascii=False)


def load_set(spec: dict, system: str | None = None) -> pd.DataFrame:
    """The items of one set: FIELDS + `asserted` + `messages` (JSON chat for the model).

    `spec` is `generalization.sets.<name>` plus `name`. `system` is the sampling's system prompt.
    Factuality sets need a gold answer per row; the procedural source builds the sycophancy probe.
    """
    name = spec.get("name", "?")
    where = f"generalization.sets.{name}"
    category = _require(spec, "category", where)
    if category not in CATEGORIES:
        raise ValueError(f"{where}.category: {category!r} is not one of {list(CATEGORIES)}")
    source = _require(spec, "source", where)
    if source not in SOURCES:
        raise ValueError(f"{where}.source: {source!r} is not one of {list(SOURCES)}")
    size = spec.get("sample_size")
    seed = int(spec.get("seed", 0))
    if source == "procedural":
        if category != "sycophancy":
            raise ValueError(f"{where}: source 'procedural' is the sycophancy probe only "
                             f"(category sycophancy), not {category!r}")
        from longthought.generalization.probe import probe_items

        return _plain(probe_items(spec, system=system))
    if source == "file":
        path = _require(spec, "path", where)
        raw = read_rows(path)
        where = f"{where} ({path})"
    else:
        raw = _read_hf(spec, where)
        where = f"{where} ({spec['id']})"
    if raw.empty:
        raise ValueError(f"{where}: has no rows")
    items = subsample(map_columns(raw, spec, where), size, seed)
    if category == "factuality":
        missing = items.index[items["gold"].isna()].tolist()
        if missing:
            item = items.at[missing[0], "item_id"]
            raise ValueError(f"{where}: factuality needs a gold answer; row {missing[0]} "
                             f"(item {item!r}) has none (map columns.gold)")
    template = spec.get("prompt")
    questions = [template.replace("{question}", q) if template else q for q in items["question"]]
    items["asserted"] = None
    items["messages"] = [_messages(q, system) for q in questions]
    items["followup"] = None
    items["control"] = None
    return _plain(items.reset_index(drop=True))


def _plain(items: pd.DataFrame) -> pd.DataFrame:
    """Object columns with None for missing (not NaN), so a missing field never reads "nan"."""
    items = items.astype(object)
    return items.where(items.notna(), None)
