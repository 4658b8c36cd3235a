"""The traces table on disk: read-only versions behind a link, and the record of each collection.

Traces are what the pipeline pays for, so the table is protected, but by this module rather
than by Snakemake's `protected()` (which made every legitimate re-collection stop on a
write-protected file). `results/traces/<task>.parquet` is a relative symlink to
`results/traces/.versions/<task>/<digest>.parquet`, a read-only file named by the hash of the
table's content:

- nothing the workflow does deletes a version: Snakemake removes only the link (before a re-run,
  after a failed job, with `--delete-all-output`), and `rm` of the link leaves the data;
- a re-collection writes a new version and re-points the link; one that wrote the same content
  keeps the name (so what reads the table by content does not re-run);
- the current version and the one before it are kept (the older ones go), so a re-collection
  can be undone by pointing the link back.

Beside the link, `<task>.parquet.digest.json` (longthought.digest) records the content digest
and the collection's state: rows, ok, failed, skipped_budget, whether it is partial, and which
round of collection wrote it (see rules/common.smk, `traces_round`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from longthought.digest import content_digest, read_record, write_digest
from longthought.io import atomic_path, validate

# Columns that record how a row was obtained in this run, not what the teacher said: left out of
# the content digest, so a re-collection served from the request cache has the same digest.
PROVENANCE_COLUMNS = ("cached", "latency_s", "attempts", "cost_usd", "error", "response")
MISSING_STATUSES = ("failed", "skipped_budget")
KEEP_VERSIONS = 2

TRACE_COLUMNS = ["trace_id", "task", "teacher", "prompt", "problem_id", "problem", "answer",
                 "sample_index", "request_key", "request", "response", "content",
                 "reasoning_content", "finish_reason", "max_tokens", "model", "prompt_tokens",
                 "completion_tokens", "reasoning_tokens", "latency_s", "attempts", "cached",
                 "status", "error", "cost_usd"]
_INTS = {"sample_index", "max_tokens", "prompt_tokens", "completion_tokens", "reasoning_tokens",
         "attempts"}
_FLOATS = {"latency_s", "cost_usd"}
# One arrow schema for every traces file, however it was written (in one piece or streamed in
# row groups; online or by a local teacher), so the same table always has the same types.
TRACE_ARROW = pa.schema([
    (c, pa.int64() if c in _INTS else pa.float64() if c in _FLOATS
     else pa.bool_() if c == "cached" else pa.string()) for c in TRACE_COLUMNS])
ROW_GROUP = 2000


def versions_dir(out: str | os.PathLike[str]) -> Path:
    """Where the versions of the table at `out` live: `<dir>/.versions/<stem>/`."""
    out = Path(out)
    return out.parent / ".versions" / out.stem


def collection_state(df: pd.DataFrame, collected: bool) -> dict[str, Any]:
    """Rows per status, and whether the collection is partial (rows a re-run could still get;
    an imported set's empty rows are the source's, so an import is never partial)."""
    status = df["status"].value_counts().to_dict() if len(df) else {}
    missing = sum(int(status.get(s, 0)) for s in MISSING_STATUSES)
    return {"rows": len(df), "ok": int(status.get("ok", 0)),
            "failed": int(status.get("failed", 0)),
            "skipped_budget": int(status.get("skipped_budget", 0)),
            "missing": missing, "partial": bool(collected and missing)}


def write_rows(rows: Iterable[dict[str, Any]] | pd.DataFrame, path: str | os.PathLike[str]
               ) -> int:
    """Validate and write traces rows to `path` a row group at a time (atomically), so a large
    task never holds every trace in memory. Returns the number of rows."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    it: Iterator[dict[str, Any]] = iter(rows)
    n = 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, TRACE_ARROW) as writer:
        while True:
            part = list(islice(it, ROW_GROUP))
            if not part and n:
                break
            df = validate(pd.DataFrame(part, columns=TRACE_COLUMNS), "traces",
                          f"writing {path} (rows {n + 1}-{n + len(part)})", first_row=n + 1)
            writer.write_table(pa.Table.from_pandas(df, schema=TRACE_ARROW, preserve_index=False))
            n += len(part)
            if not part:
                break
    return n


def write_traces(rows: Iterable[dict[str, Any]] | pd.DataFrame, out: str | os.PathLike[str], *,
                 round_: int = 0, collected: bool = True) -> dict[str, Any]:
    """Write the traces table as a read-only version, point `out` at it, record its state.

    `rows` streams (an iterable of row dicts) or is a whole table. Returns the record written
    beside `out` (digest, state, round, version path)."""
    out = Path(out)
    store = versions_dir(out)
    store.mkdir(parents=True, exist_ok=True)
    tmp = store / f".new-{os.getpid()}.parquet"
    try:
        write_rows(rows, tmp)
        status = pq.read_table(tmp, columns=["status"]).column("status").to_pandas()
        digest = content_digest(tmp, exclude=PROVENANCE_COLUMNS)
        version = store / f"{digest.removeprefix('sha256:')[:16]}.parquet"
        mode = tmp.stat().st_mode & ~0o222  # read-only, otherwise as the umask left it
        os.chmod(tmp, mode)
        os.replace(tmp, version)  # same content: the same name, with this run's provenance
    finally:
        if tmp.exists():
            tmp.unlink()
    _link(out, version)
    _prune(store, keep=version)
    state = collection_state(pd.DataFrame({"status": status}), collected)
    return write_digest(out, digest=digest, excluded=PROVENANCE_COLUMNS, round=int(round_),
                        version=os.path.relpath(version, out.parent), **state)


def _link(out: Path, version: Path) -> None:
    """Point `out` at `version` atomically (a relative link: results/ can move as a whole)."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.link")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(version, out.parent), tmp)
    os.replace(tmp, out)


def _prune(store: Path, keep: Path) -> None:
    """Keep `keep` and the newest other version; delete older ones (the request cache still
    holds every response they had)."""
    os.utime(keep, (time.time(), time.time()))
    others = sorted((p for p in store.glob("*.parquet") if p != keep),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[KEEP_VERSIONS - 1:]:
        old.unlink()


def latest_version(out: str | os.PathLike[str]) -> Path | None:
    """The table `out` points at, else the newest version in its store (None if there is none):
    what `traces-status` shows when a job held a partial table back."""
    out = Path(out)
    if out.exists():
        return out.resolve()
    store = versions_dir(out)
    found = sorted(store.glob("*.parquet"), key=lambda p: p.stat().st_mtime, reverse=True)
    return found[0] if found else None


def recorded_state(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record beside `out` (None if absent or stale)."""
    return read_record(out)
