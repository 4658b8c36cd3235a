"""Content digests beside tables: the value a downstream job compares instead of a file's mtime.

Snakemake re-runs a job when an input is newer than its output, and it touches every output of a
job that ran, so a re-collection served entirely from the request cache (or a curation that kept
the same rows) would retrain the student. At the expensive boundaries (problems -> traces ->
curate -> train, benchmarks -> curate/evaluation) the producing job
writes `<output>.digest.json` beside its output, and the consuming rule takes that output as
`ancient()` (no mtime trigger) and the recorded digest as a param (a value trigger): it re-runs
exactly when the content changed. See `rules/common.smk` (`content_input`, `content_digests`).

The digest is of the *content*: a parquet table is hashed column by column over its values (a
row's provenance columns, such as whether a trace came from the cache, can be left out), any
other file over its bytes, a directory over its files' names and bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SUFFIX = ".digest.json"
ABSENT = "absent"
BATCH_ROWS = 4096


def sidecar(path: str | os.PathLike[str]) -> Path:
    """Where the digest of `path` is recorded: `<path>.digest.json`."""
    return Path(f"{os.fspath(path)}{SUFFIX}")


def _file_bytes(h: Any, path: Path) -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def _parquet(h: Any, path: Path, exclude: Iterable[str]) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    skip = set(exclude)
    columns = [c for c in pf.schema_arrow.names if c not in skip]
    h.update(json.dumps([[c, str(pf.schema_arrow.field(c).type)] for c in columns]).encode())
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns, use_threads=False):
        frame = batch.to_pandas()
        for col in columns:
            values = frame[col]
            try:
                hashed = pd.util.hash_pandas_object(values, index=False)
            except TypeError:  # nested values (lists, dicts, arrays): hash their JSON
                hashed = pd.util.hash_pandas_object(values.map(_as_json), index=False)
            h.update(hashed.to_numpy().tobytes())


def _as_json(value: Any) -> str:
    if hasattr(value, "tolist"):
        value = value.tolist()
    return json.dumps(value, default=str, sort_keys=True)


def content_digest(path: str | os.PathLike[str], exclude: Iterable[str] = ()) -> str:
    """sha256 of `path`'s content: a parquet table's values (minus `exclude` columns), another
    file's bytes, or a directory's relative names and file bytes (in sorted order)."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(str(f.relative_to(p)).encode() + b"\0")
            _file_bytes(h, f)
    elif p.suffix == ".parquet":
        _parquet(h, p, exclude)
    else:
        _file_bytes(h, p)
    return "sha256:" + h.hexdigest()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def write_digest(path: str | os.PathLike[str], exclude: Iterable[str] = (),
                 digest: str | None = None, **extra: Any) -> dict[str, Any]:
    """Hash `path`'s content (or take `digest`, already computed) and record it beside it, with
    the file's size and `extra` facts; returns the record."""
    p = Path(path)
    exclude = tuple(exclude)
    record = {"file": p.name, "digest": digest or content_digest(p, exclude), "size": _size(p),
              **extra}
    out = sidecar(p)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # honours the umask
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return record


def read_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record beside `path` if it is there, readable, and still describes the file (same
    size); None otherwise."""
    p = Path(path)
    try:
        record = json.loads(sidecar(p).read_text(encoding="utf-8"))
        if isinstance(record, dict) and p.exists() and record.get("size") == _size(p):
            return record
    except (OSError, ValueError):
        pass
    return None


def recorded_digest(path: str | os.PathLike[str]) -> str:
    """The content digest of `path` as its producer recorded it; `absent` if there is no such
    file; recomputed from the file when the record is missing or no longer matches it (an
    output edited by hand counts as changed)."""
    p = Path(path)
    if not p.exists():
        return ABSENT
    record = read_record(p)
    if record is not None and isinstance(record.get("digest"), str):
        return record["digest"]
    return content_digest(p)
