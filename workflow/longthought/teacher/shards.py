"""Per-job cache shards: how a compute-node job stores responses without touching the SQLite.

The shared cache is SQLite in WAL mode, safe only for writers on one host. A job on a compute
node (the local teacher's GPU job) instead appends its entries to its own file in a shard
directory on the shared filesystem: JSON lines, one cache entry per line with the sha256 of its
canonical JSON, flushed and fsync'd after every batch. One writer per file and append-only
writes hold on NFS and Lustre. A local rule then merges the shards into the SQLite
(`merge_shards`): every intact line is inserted (first writer wins, so merging twice is
harmless), a line cut short by a killed job or damaged in any way is skipped and counted, and a
merged shard is removed only after its entries are committed.

Keys are the same as in the cache (`records.request_key`), so a job that restarts after
preemption reads the shards already there (`shard_keys`) and generates only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longthought.teacher.cache import ENTRY_FIELDS, CacheEntry, RequestCache, canonical_json

log = logging.getLogger("longthought.teacher.shards")

SUFFIX = ".jsonl"


def _check(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(entry).encode()).hexdigest()


class ShardWriter:
    """Appends cache entries to a new shard file of its own under `shard_dir`."""

    def __init__(self, shard_dir: str | Path) -> None:
        self.dir = Path(shard_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        job = os.environ.get("SLURM_JOB_ID") or str(os.getpid())
        name = f"{socket.gethostname()}-{job}-{int(time.time())}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self.path = self.dir / name
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.unwritten: dict[str, CacheEntry] = {}
        self.written = 0

    def put(self, entry: CacheEntry) -> None:
        record = entry.as_dict()
        line = json.dumps({"entry": record, "sha256": _check(record)}, ensure_ascii=False)
        self._fh.write(line + "\n")
        self.written += 1

    def flush(self) -> None:
        """Make what was put durable: a job killed after this loses none of it."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self.flush()
            self._fh.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ShardRead:
    entries: list[CacheEntry]
    damaged: int  # lines cut short or failing their checksum


def read_shard(path: str | Path) -> ShardRead:
    """The intact entries of one shard; damaged lines (a killed writer's last line) skipped."""
    entries, damaged = [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                record = obj["entry"]
                ok = obj["sha256"] == _check(record) and set(record) == set(ENTRY_FIELDS)
            except (json.JSONDecodeError, KeyError, TypeError):
                ok = False
            if not ok:
                damaged += 1
                continue
            entries.append(CacheEntry(**record))
    return ShardRead(entries, damaged)


def shard_files(shard_dir: str | Path) -> list[Path]:
    d = Path(shard_dir)
    return sorted(d.glob(f"*{SUFFIX}")) if d.is_dir() else []


def iter_shard_entries(shard_dir: str | Path) -> Iterator[CacheEntry]:
    for path in shard_files(shard_dir):
        yield from read_shard(path).entries


def shard_keys(shard_dir: str | Path) -> set[str]:
    """Keys already stored in the shards under `shard_dir` (what a resumed job skips)."""
    return {e.key for e in iter_shard_entries(shard_dir)}


@dataclass
class MergeReport:
    shards: int
    entries: int  # intact entries read
    damaged: int  # lines skipped
    new: int  # entries the cache did not have before

    def line(self) -> str:
        return (f"merged {self.shards} shard(s): {self.entries} entries ({self.new} new), "
                f"{self.damaged} damaged line(s) skipped")


def merge_shards(shard_dir: str | Path, cache_dir: str | Path, remove: bool = True) -> MergeReport:
    """Insert every intact shard entry into the SQLite cache; remove each merged shard."""
    files = shard_files(shard_dir)
    total = damaged = new = 0
    if not files:
        return MergeReport(0, 0, 0, 0)
    with RequestCache(cache_dir) as cache:
        for path in files:
            read = read_shard(path)
            have = cache.has_many(e.key for e in read.entries)
            cache.put_many(read.entries)
            total += len(read.entries)
            damaged += read.damaged
            new += len({e.key for e in read.entries} - have)
            if read.damaged:
                log.warning("%s: %d damaged line(s) skipped (a job killed mid-write); their "
                            "requests will be generated again", path, read.damaged)
            if remove:
                path.unlink()
    report = MergeReport(len(files), total, damaged, new)
    log.info("%s into %s", report.line(), Path(cache_dir))
    return report
