"""The persistent request cache: never pay for the same API response twice.

One SQLite file (`<cache_dir>/requests.sqlite`) in WAL mode, so several collection jobs (and
readers such as `traces-status`) can use it at once; a writer waits on a busy timeout instead of
failing. Each response is committed the moment it arrives, so after `kill -9` at any point a
re-run finds everything that was received. Entries are keyed by the sha256 of the canonical
request (`request_key`); a changed parameter makes a new key and old entries stay. Only complete
responses are stored (a failed or skipped request is asked again next time). No API key or header
is ever part of an entry.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longthought.io import file_mode

CACHE_FILE = "requests.sqlite"
_CHUNK = 500

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


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, unicode kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(endpoint: str, body: dict[str, Any], sample_index: int) -> str:
    """sha256 of the canonical request: endpoint identity, body (model, messages, params),
    and the sample index."""
    material = {"endpoint": endpoint, "body": body, "sample_index": sample_index}
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()


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


class RequestCache:
    """Open (creating if needed) the cache under `cache_dir`; use as a context manager."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / CACHE_FILE
        new = not self.path.exists()
        self.db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout=60000")
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (it is in the OS's
        # page cache); only a power loss could drop the last commits.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(_SCHEMA)
        if new:  # SQLite creates 0644 whatever the umask (a group's shared cache needs 0664);
            for f in (self.path, *self.dir.glob(f"{CACHE_FILE}-*")):  # -wal/-shm follow the db
                f.chmod(file_mode())

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
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT key, request, response, latency_s, attempts, prompt_tokens, "
                "completion_tokens, reasoning_tokens, cost_usd, tag FROM responses "
                f"WHERE key IN ({marks})", chunk)
            for row in rows:
                out[row[0]] = CacheEntry(*row)
        return out

    def put(self, e: CacheEntry) -> None:
        """Store one response now (first writer wins if two jobs received the same key)."""
        self.db.execute(
            "INSERT OR IGNORE INTO responses (key, tag, request, response, latency_s, attempts, "
            "prompt_tokens, completion_tokens, reasoning_tokens, cost_usd, created) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (e.key, e.tag, e.request, e.response, e.latency_s, e.attempts, e.prompt_tokens,
             e.completion_tokens, e.reasoning_tokens, e.cost_usd, time.time()),
        )

    def delete(self, key: str) -> None:
        """Drop one entry (used only for an entry that can no longer be read)."""
        self.db.execute("DELETE FROM responses WHERE key = ?", (key,))

    def summary_by_tag(self) -> Iterator[tuple[str | None, int, int, float]]:
        """(tag, responses, tokens, USD) per tag: a live view while a collection runs."""
        yield from self.db.execute(
            "SELECT tag, COUNT(*), COALESCE(SUM(COALESCE(prompt_tokens,0) + "
            "COALESCE(completion_tokens,0)),0), COALESCE(SUM(cost_usd),0) FROM responses "
            "GROUP BY tag ORDER BY tag")
