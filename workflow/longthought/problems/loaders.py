"""Load problem sets into the `problems` table: procedural, local files, or Hugging Face datasets.

One spec shape serves pools and benchmarks (config `pools.<name>` / `benchmarks.<name>`):

    {source: procedural, split, n, seed, families: {...}}
    {source: file, path: x.jsonl|.json|.parquet|.csv, columns: {...}, answer_type, limit, seed}
    {source: hf, id: "HuggingFaceH4/MATH-500", config: null, split: test, revision: null,
     columns: {...}, answer_type, limit, seed}

`columns` maps our fields to the set's columns: problem_id, problem, answer, solution,
answer_type (all optional except problem; defaults are the same names). With no answer column
(NuminaMath-style rows), the answer is the last \\boxed{} of the solution. With no problem_id
column, ids are stable hashes of the problem text. `answer_type: auto` (default) infers each
row's type from its gold answer; a fixed type applies to all rows. `meta: [cols]` picks the
columns kept in the `meta` JSON (default: every other short scalar column).

Missing values: a row without problem text is an error naming the file, row and key (rows are
numbered as an editor counts: the first data row is row 1; in a JSON-lines file, its line). A row
without an answer is an error too, unless the spec says `allow_missing_answer: true` (large pools
where some rows lack an answer): such rows get answer "" and the pool filter `no_answer` moves
them to the pool's rejected table with a reason. Nothing is dropped here.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import pandas as pd

from longthought import io
from longthought.answers.extract import has_box
from longthought.answers.gold import normalize_gold
from longthought.schemas import ANSWER_TYPES

FIELDS = ("problem_id", "problem", "answer", "solution", "answer_type")
SOURCES = ("procedural", "file", "hf")
MAX_META_CHARS = 1000


def load_problems(spec: dict, base_dir: str = ".") -> pd.DataFrame:
    """Rows of the `problems` schema for `spec` (see the module docstring), validated."""
    source = spec.get("source")
    if source not in SOURCES:
        raise ValueError(f"problem spec: source must be one of {SOURCES}, got {source!r}")
    if source == "procedural":
        from longthought.problems.procedural import generate

        rows = generate(spec.get("families") or {}, int(spec.get("n", 0)),
                        int(spec.get("seed", 0)), spec.get("split", "train"))
        return io.validate(pd.DataFrame(rows), "problems", "procedural problems")
    if source == "file":
        if not spec.get("path"):
            raise ValueError("problem spec: source 'file' needs a 'path'")
        path = Path(spec["path"])
        if not path.is_absolute():
            path = Path(base_dir) / path
        raw, where = read_records(path), str(path)
        default_name = path.name
    else:
        if not spec.get("id"):
            raise ValueError("problem spec: source 'hf' needs an 'id' (hub id or local path)")
        raw, where = read_hf(spec, base_dir), f"hf:{spec['id']}"
        default_name = spec["id"] + (f":{spec['config']}" if spec.get("config") else "")
    if spec.get("multiple_choice"):
        raw, spec = apply_multiple_choice(raw, spec, where)
    return to_problems(raw, spec, where, spec.get("name") or default_name)


def apply_multiple_choice(raw: pd.DataFrame, spec: dict, where: str) -> tuple[pd.DataFrame, dict]:
    """GPQA-style rows (question + correct + incorrect option columns) -> lettered problems.

    Options are shuffled per question with a seed derived from `shuffle_seed` and the question
    text, so the letter of the right answer is stable across runs and machines; the gold answer
    becomes that letter and the answer type `choice`.
    """
    mc = spec["multiple_choice"]
    correct, incorrect = mc.get("correct"), list(mc.get("incorrect") or [])
    problem_col = (spec.get("columns") or {}).get("problem", "problem")
    for key, col in [("correct", correct), *[("incorrect", c) for c in incorrect],
                     ("columns.problem", problem_col)]:
        if not col or col not in raw.columns:
            raise ValueError(f"{where}: multiple_choice.{key}: no column {col!r}; "
                             f"columns are {sorted(raw.columns)}")
    problems, letters = [], []
    for row_no, row in zip(raw.index, raw.itertuples(index=False), strict=True):
        rec = dict(zip(raw.columns, row, strict=True))
        options = [str(rec[correct]).strip()] + [str(rec[c]).strip() for c in incorrect]
        if any(not o or o == "nan" for o in options):
            raise ValueError(f"{where}: row {row_no}: an empty option in multiple_choice columns")
        question = str(rec[problem_col]).strip()
        order = list(range(len(options)))
        random.Random(f"{mc.get('shuffle_seed', 0)}:{question}").shuffle(order)
        labels = "ABCDEFGHIJ"[: len(options)]
        lines = [f"{labels[j]}) {options[k]}" for j, k in enumerate(order)]
        problems.append(question + "\n\n" + "\n".join(lines))
        letters.append(labels[order.index(0)])
    out = raw.copy()
    out[problem_col] = problems
    out["_mc_answer"] = letters
    spec = {**spec, "answer_type": "choice",
            "columns": {**(spec.get("columns") or {}), "answer": "_mc_answer"}}
    return out, spec


def read_records(path: Path) -> pd.DataFrame:
    """A local .jsonl / .json / .parquet / .csv file as a DataFrame (CSV cells stay text).

    The index numbers the rows as an editor does: a JSON-lines row's line number, else the data
    row counted from 1 (a CSV's header is not a row).
    """
    if not path.exists():
        raise FileNotFoundError(f"problem file not found: {path}")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix in (".jsonl", ".ndjson"):
        return io.read_jsonl_frame(path)
    return io.number_rows(_read_other(path, suffix))


def _read_other(path: Path, suffix: str) -> pd.DataFrame:
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):  # {"data": [...]} or {"rows": [...]}
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise ValueError(f"{path}: expected a JSON list of records")
            data = lists[0]
        return pd.DataFrame(data)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    raise ValueError(f"{path}: unsupported problem file type {suffix!r} "
                     "(use .jsonl, .json, .parquet or .csv)")


def read_hf(spec: dict, base_dir: str = ".") -> pd.DataFrame:
    """A Hugging Face dataset split by hub id, or a local `save_to_disk` directory."""
    import datasets

    ident = spec["id"]
    local = Path(ident) if Path(ident).is_absolute() else Path(base_dir) / ident
    if local.is_dir() and ((local / "dataset_info.json").exists() or (local / "state.json").exists()
                           or (local / "dataset_dict.json").exists()):
        ds = datasets.load_from_disk(str(local))
        if isinstance(ds, datasets.DatasetDict):
            split = spec.get("split") or "train"
            if split not in ds:
                raise ValueError(f"{local}: no split {split!r}; has {sorted(ds)}")
            ds = ds[split]
    else:
        ds = datasets.load_dataset(ident, spec.get("config"), split=spec.get("split") or "train",
                                   revision=spec.get("revision"))
    wanted = set(_column_map(spec).values()) | set(spec.get("meta") or [])
    if spec.get("meta") is not None:  # only what is needed: big pools have big extra columns
        keep = [c for c in ds.column_names if c in wanted]
        ds = ds.select_columns(keep)
    return io.number_rows(ds.to_pandas())


def _column_map(spec: dict) -> dict[str, str]:
    cols = dict(spec.get("columns") or {})
    unknown = sorted(set(cols) - set(FIELDS))
    if unknown:
        raise ValueError(f"problem spec: unknown keys in 'columns': {unknown}; known: {FIELDS}")
    out = {f: f for f in FIELDS}
    out.update(cols)
    return {k: v for k, v in out.items() if v}


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and pd.isna(value):
        return True
    return isinstance(value, str) and not value.strip()


def stable_id(text: str, prefix: str = "p") -> str:
    """A problem id that depends only on the (whitespace-normalised) problem text."""
    norm = " ".join(text.split())
    return f"{prefix}-{hashlib.sha256(norm.encode('utf-8')).hexdigest()[:16]}"


def to_problems(raw: pd.DataFrame, spec: dict, where: str, source_name: str) -> pd.DataFrame:
    """Map a raw table onto the `problems` schema; errors name `where`, the row and the key."""
    cmap = _column_map(spec)
    present = set(raw.columns)
    if cmap["problem"] not in present:
        raise ValueError(f"{where}: no column {cmap['problem']!r} for columns.problem; "
                         f"columns are {sorted(present)}")
    explicit = spec.get("columns") or {}
    for key in ("problem_id", "answer", "solution", "answer_type"):
        col = cmap.get(key)
        if col and col not in present:
            if key in explicit:
                raise ValueError(f"{where}: no column {col!r} for columns.{key}; "
                                 f"columns are {sorted(present)}")
            cmap.pop(key)
    if "answer" not in cmap and "solution" not in cmap:
        raise ValueError(f"{where}: no answer column and no solution to take a \\boxed{{}} "
                         f"answer from; map columns.answer or columns.solution")
    fixed_type = spec.get("answer_type", "auto") or "auto"
    if fixed_type != "auto" and fixed_type not in ANSWER_TYPES:
        raise ValueError(f"problem spec: answer_type must be 'auto' or one of {ANSWER_TYPES}, "
                         f"got {fixed_type!r}")
    raw = _limit(raw, spec)
    meta_cols = spec.get("meta")
    if meta_cols is None:
        meta_cols = [c for c in raw.columns if c not in cmap.values()]
    allow_missing = bool(spec.get("allow_missing_answer", False))

    rows = []
    for i, rec in enumerate(raw.to_dict("records")):
        row_no = int(raw.index[i])
        problem = rec.get(cmap["problem"])
        if _missing(problem):
            raise ValueError(f"{where}: row {row_no}: missing problem text "
                             f"(column {cmap['problem']!r})")
        problem = str(problem)
        solution = rec.get(cmap["solution"]) if "solution" in cmap else None
        solution = None if _missing(solution) else str(solution)
        # one gold normaliser for every stage: bare, $...$, or a solution's last box; "27.0" -> 27
        if "answer" in cmap and not _missing(rec.get(cmap["answer"])):
            answer = normalize_gold(rec.get(cmap["answer"]))
        elif solution is not None and has_box(solution):
            answer = normalize_gold(solution)
        else:
            answer = ""
        if not answer and not allow_missing:
            key = cmap.get("answer", cmap.get("solution"))
            raise ValueError(f"{where}: row {row_no}: missing answer (column {key!r}); set "
                             "allow_missing_answer: true to keep such rows for the no_answer "
                             "filter")
        if "answer_type" in cmap and not _missing(rec.get(cmap["answer_type"])):
            atype = str(rec[cmap["answer_type"]])
            if atype not in ANSWER_TYPES:
                raise ValueError(f"{where}: row {row_no}: answer_type {atype!r} not in "
                                 f"{ANSWER_TYPES} (column {cmap['answer_type']!r})")
        elif fixed_type != "auto":
            atype = fixed_type
        else:
            atype = infer_answer_type(answer)
        pid = rec.get(cmap["problem_id"]) if "problem_id" in cmap else None
        if _missing(pid):
            pid = None
        meta = {c: _jsonable(rec.get(c)) for c in meta_cols if c in rec}
        meta = {c: v for c, v in meta.items()
                if v is not None and not (isinstance(v, str) and len(v) > MAX_META_CHARS)}
        rows.append({
            "problem_id": _id_text(pid) if pid is not None else None,
            "problem": problem,
            "answer": answer,
            "answer_type": atype,
            "source": source_name,
            "solution": solution,
            "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True) if meta else None,
            "_row": row_no,
        })
    df = pd.DataFrame(rows, columns=[*FIELDS[:3], "answer_type", "source", "solution", "meta",
                                     "_row"])
    _assign_ids(df, where, "problem_id" in cmap and "problem_id" in explicit)
    return io.validate(df.drop(columns="_row"), "problems", where, rows=df["_row"].tolist())


def _id_text(value: Any) -> str:
    """A problem id as text: whole floats lose their ".0" (ids read from a CSV or JSON)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return _id_text(value.item())
    return str(value).strip()


def _limit(raw: pd.DataFrame, spec: dict) -> pd.DataFrame:
    limit = spec.get("limit")
    if limit is None or int(limit) >= len(raw):
        return raw
    if spec.get("seed") is None:
        return raw.iloc[: int(limit)]
    return raw.sample(n=int(limit), random_state=int(spec["seed"])).sort_index()


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if pd.isna(value) else value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return value.item()
    return None  # lists, dicts, arrays: not meta material


def _assign_ids(df: pd.DataFrame, where: str, mapped: bool) -> None:
    """Fill missing ids with text hashes; duplicates are an error for mapped ids, suffixed else."""
    missing = df["problem_id"].isna()
    if missing.any():
        df.loc[missing, "problem_id"] = [stable_id(t) for t in df.loc[missing, "problem"]]
    dup = df["problem_id"].duplicated(keep=False)
    if not dup.any():
        return
    if mapped and not missing[dup].any():
        rows = df.loc[dup, "_row"].tolist()[:10]
        ids = df.loc[dup, "problem_id"].unique().tolist()[:5]
        raise ValueError(f"{where}: duplicate problem_id {ids} at rows {rows} (columns.problem_id)")
    # Same text twice without ids: keep both rows (dedup is curation's job), with distinct ids.
    counts: dict[str, int] = {}
    new = []
    for pid in df["problem_id"]:
        counts[pid] = counts.get(pid, 0) + 1
        new.append(pid if counts[pid] == 1 else f"{pid}-{counts[pid]}")
    df["problem_id"] = new


# --- answer types -----------------------------------------------------------------------------

_UNIT_RE = re.compile(
    r"(?:\^\s*\{?\\circ\}?|\\%|%|\\(?:text|mbox|mathrm)\s*\{\s*[A-Za-z .]*\}(?:\^\d)?)\s*$"
)
_ASSIGN_RE = re.compile(r"^[A-Za-z]\s*=\s*(?=[^=]+$)")
_INT_RE = re.compile(r"^[-+]?\d+$")
_DEC_RE = re.compile(r"^[-+]?(?:\d+\.\d*|\.\d+)$")
_FRAC_RE = re.compile(r"^[-+]?(?:\d+\s*)?\\[dt]?frac\s*(?:\{\s*\d+\s*\}|\d)\s*(?:\{\s*\d+\s*\}|\d)$"
                      r"|^[-+]?\d+\s*/\s*\d+$")
_CHOICE_RE = re.compile(r"^(?:\\text(?:bf)?\s*\{)?\s*\(?[A-E]\)?\s*\}?$")
_WORDS_RE = re.compile(r"^(?:\\text(?:bf)?\s*\{)?\s*[A-Za-z][A-Za-z '\-]{2,}\s*\}?$")


def infer_answer_type(answer: str) -> str:
    """integer / rational / interval / tuple / choice / text / expression for a gold answer."""
    a = normalize_gold(answer).strip().strip("$").strip()
    a = re.sub(r"\\left|\\right|\\!|\\,|\\;|\\displaystyle", "", a).strip()
    if not a:
        return "text"
    if _CHOICE_RE.match(a):
        return "choice"
    if _WORDS_RE.match(a) and "\\" not in a.replace("\\text", "") and re.search(r"[A-Za-z]{3}", a):
        return "text"
    if "\\cup" in a or "\\cap" in a or re.match(r"^[A-Za-z]\s*\\in\s*", a):
        return "interval"
    core = re.sub(r"^\\?\$", "", a).strip()  # a currency sign: \$32,348
    for _ in range(3):
        core = _UNIT_RE.sub("", core).strip()
    core = _ASSIGN_RE.sub("", core).strip()
    if _INT_RE.match(core):
        return "integer"
    if _DEC_RE.match(core) or _FRAC_RE.match(core):
        return "rational"
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\s?\d{3})+", core):
        return "integer"  # a thousands separator, e.g. 1,000
    if _is_interval(core):
        return "interval"
    if _is_tuple(core):
        return "tuple"
    return "expression"


def _wrapped(a: str, pairs: tuple[tuple[str, str], ...]) -> str | None:
    """The inside of `a` if one bracket pair wraps all of it, else None."""
    for left, right in pairs:
        if a.startswith(left) and a.endswith(right) and len(a) >= len(left) + len(right):
            inner = a[len(left):len(a) - len(right)]
            depth = 0
            for ch in inner:
                depth += ch in "({[" and 1 or 0
                depth -= ch in ")}]" and 1 or 0
                if depth < 0:
                    break
            else:
                if depth == 0:
                    return inner
    return None


def _is_tuple(a: str) -> bool:
    if a.startswith(("\\begin{pmatrix}", "\\begin{bmatrix}")):
        return True
    inner = _wrapped(a, (("(", ")"), ("[", "]"), ("\\{", "\\}")))
    if inner is not None:
        return _top_level_commas(inner) >= 1 or a.startswith("\\{")
    return _top_level_commas(a) >= 1


def _is_interval(a: str) -> bool:
    if len(a) < 5 or a[0] not in "([" or a[-1] not in ")]":
        return False
    if _top_level_commas(a[1:-1]) != 1:
        return False
    half_open = a[0] != "(" or a[-1] != ")"
    # (a, b) is a point unless an end is infinite; [a, b], [a, b) and (a, b] are intervals
    return half_open or "\\infty" in a


def _top_level_commas(s: str) -> int:
    depth = n = 0
    for ch in s:
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == "," and depth == 0:
            n += 1
    return n
