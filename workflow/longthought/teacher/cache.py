"""The persistent request cache: never pay for the same response twice.

One SQLite file (`<cache_dir>/requests.sqlite`) in WAL mode, so several collection jobs *on one
host* (and readers such as `traces-status`) can use it at once; a writer waits on a busy timeout
instead of failing. WAL is not safe across hosts (NFS, Lustre), so on a cluster only local rules
open it: a compute-node job writes its own shard (`shards`) that a local rule merges in.

Writes go through `CacheWriter`, one thread with its own connection that commits what arrives
in small transactions, so a busy lock never stalls an event loop and its requests' timers. Each
response is committed within milliseconds of arriving, so after `kill -9` a re-run finds
everything that was received. Entries are keyed by the sha256 of the canonical request
(`records.request_key`); a changed parameter makes a new key and old entries stay. Only complete
responses are stored (a failed or skipped request is asked again next time). No API key or
header is ever part of an entry.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from longthought.files import file_mode
from longthought.teacher.guard import forbid

log = logging.getLogger("longthought.teacher.cache")

CACHE_FILE = "requests.sqlite"
_CHUNK = 500
_WRITE_BATCH = 512

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,          -- sha256 of the canonical request
    tag TEXT,                      -- who asked first (e.g. the task name), for status views
    request TEXT NOT NULL,         -- JSON request body (never a key or header)
    response TEXT NOT NULL,        -- the raw response body as received
    latency_s REAL,
    attempts INTEGER,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    reasoning_tokens INTEGER,
    cost_usd REAL,
    created REAL NOT NULL
)
"""
_INSERT = ("INSERT OR IGNORE INTO responses (key, request, response, latency_s, attempts, "
           "prompt_tokens, completion_tokens, reasoning_tokens, cost_usd, tag, created) "
           "VALUES (?,?,?,?,?,?,?,?,?,?,?)")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, unicode kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class CacheEntry:
    key: str
    request: str
    response: str
    latency_s: float | None
    attempts: int
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    tag: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ENTRY_FIELDS = [f.name for f in fields(CacheEntry)]


def _connect(path: Path) -> sqlite3.Connection:
    new = not path.exists()
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=60000")
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives the process being killed (it is in the OS's page
    # cache); only a power loss could drop the last commits.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(_SCHEMA)
    if new:  # SQLite creates 0644 whatever the umask (a group's shared cache needs 0664);
        for f in (path, *path.parent.glob(f"{path.name}-*")):  # -wal/-shm follow the db
            f.chmod(file_mode())
    return db


def insert_entries(db: sqlite3.Connection, entries: list[CacheEntry]) -> None:
    """Insert entries in one transaction (first writer wins for a key already there)."""
    now = time.time()
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(_INSERT, [(*astuple(e), now) for e in entries])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class RequestCache:
    """Open (creating if needed) the cache under `cache_dir`; use as a context manager.

    Reading is the common use here; writes during a collection go through `CacheWriter`."""

    def __init__(self, cache_dir: str | Path) -> None:
        forbid(f"opening the shared request cache {cache_dir}")
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / CACHE_FILE
        self.db = _connect(self.path)

    def __enter__(self) -> RequestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def get_many(self, keys: Iterable[str]) -> dict[str, CacheEntry]:
        """Entries for the keys that are cached (others are simply absent)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, CacheEntry] = {}
        cols = ", ".join(ENTRY_FIELDS)
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT {cols} FROM responses WHERE key IN ({marks})", chunk)
            for row in rows:
                out[row[0]] = CacheEntry(*row)
        return out

    def has_many(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` are cached (reads keys only, not bodies)."""
        keys = list(dict.fromkeys(keys))
        found: set[str] = set()
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(k for (k,) in self.db.execute(
                f"SELECT key FROM responses WHERE key IN ({marks})", chunk))
        return found

    def put(self, e: CacheEntry) -> None:
        """Store one response now (first writer wins if two jobs received the same key)."""
        insert_entries(self.db, [e])

    def put_many(self, entries: list[CacheEntry]) -> None:
        """Store many responses in one transaction (used to merge shards)."""
        if entries:
            insert_entries(self.db, entries)

    def delete(self, key: str) -> None:
        """Drop one entry (used only for an entry that can no longer be read)."""
        self.db.execute("DELETE FROM responses WHERE key = ?", (key,))

    def summary_by_tag(self) -> Iterator[tuple[str | None, int, int, float]]:
        """(tag, responses, tokens, USD) per tag: a live view while a collection runs."""
        yield from self.db.execute(
            "SELECT tag, COUNT(*), COALESCE(SUM(COALESCE(prompt_tokens,0) + "
            "COALESCE(completion_tokens,0)),0), COALESCE(SUM(cost_usd),0) FROM responses "
            "GROUP BY tag ORDER BY tag")


class CacheWriter:
    """Commits entries to the cache from one thread, so no event loop ever waits on SQLite.

    `put` only enqueues; the thread drains what has arrived and commits it in one transaction
    (a busy lock delays that thread alone). An entry that could not be committed stays in
    `unwritten`, so its result is still returned (a re-run would ask for it again)."""

    def __init__(self, cache_dir: str | Path) -> None:
        forbid(f"writing the shared request cache {cache_dir}")
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / CACHE_FILE
        self.unwritten: dict[str, CacheEntry] = {}
        self.written = 0
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._db = _connect(self.path)  # opened here so a bad path fails in the caller
        self._thread = threading.Thread(target=self._run, name="cache-writer", daemon=True)
        self._thread.start()

    def put(self, entry: CacheEntry) -> None:
        self._q.put(entry)

    def flush(self) -> None:
        """Block until everything put so far is committed (or recorded as unwritten)."""
        done = threading.Event()
        self._q.put(done)
        done.wait()

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        self._db.close()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._q.get()]
            while len(items) < _WRITE_BATCH:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            entries = [i for i in items if isinstance(i, CacheEntry)]
            if entries:
                self._commit(entries)
            for i in items:
                if isinstance(i, threading.Event):
                    i.set()
                elif i is None:
                    stop = True

    def _commit(self, entries: list[CacheEntry]) -> None:
        try:
            insert_entries(self._db, entries)
            self.written += len(entries)
        except Exception as exc:  # noqa: BLE001 (the thread must live on: flush() waits on it)
            for e in entries:
                self.unwritten[e.key] = e
            log.error("could not store %d response(s) in the request cache %s (%s): they are "
                      "returned, but a re-run would ask for them again", len(entries), self.path,
                      exc)
