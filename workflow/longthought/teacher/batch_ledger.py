"""What a Batch API collection remembers across a crash: every file it submits, step by step.

A batch costs money once created, so its id must be on disk before anything waits on it. Each
file the batch transport builds gets a record under `<cache_dir>/transport-state/<endpoint>/
batches/`, written (fsync'd, replaced atomically) before each step that talks to the API:

  new        the input JSONL is on disk (`<id>.jsonl`, the exact bytes uploaded: the requests'
             bodies, so any process can store the answers of any record)
  uploaded   the file was accepted (`file_id`)
  submitted  the batch exists (`batch_id`): a re-run polls it instead of submitting again
  lost       the endpoint answered 404 for the batch id (it may exist under another key or
             project, and be billed there): its requests are not asked again until the record
             is deleted; a later run polls it again, and carries on if it is found
  done       its output and error lines are in the request cache; the local files are removed

`upload_tried` / `create_tried` are set before the call: a process killed while a call was in
flight cannot know whether it succeeded, so the next one first looks the file up by its name
and the batch up by its metadata (`longthought_file`) before it creates either again. Records
that are done keep their summary (ids, counts) and nothing else.

A record's lock (`<id>.lock`, an exclusive `flock`) is held by the process that uploads its file
and creates its batch (from before the record is visible until its batch id is on disk) and by
the one storing its lines, so two processes never submit or store the same file twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from longthought.files import file_mode

STATES = ("new", "uploaded", "submitted", "lost", "done")


@dataclass
class Record:
    """One submitted (or about to be submitted) batch input file."""

    local_id: str
    created: float
    tag: str | None
    model: str
    n: int  # requests in the file
    tokens: int  # their prompt tokens (estimated): what an enqueued-token limit counts
    bytes: int
    retries: dict[str, int] = field(default_factory=dict)  # key -> submission number, if > 1
    file_id: str | None = None
    batch_id: str | None = None
    state: str = "new"
    upload_tried: bool = False
    create_tried: bool = False
    outcome: str | None = None  # when done: the batch's final status and line counts

    @property
    def filename(self) -> str:
        return f"longthought-{self.local_id}.jsonl"


class Ledger:
    """The records of one endpoint's batches (one directory, shared by every task)."""

    def __init__(self, root: str | Path) -> None:
        self.dir = Path(root)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _json(self, local_id: str) -> Path:
        return self.dir / f"{local_id}.json"

    def record_path(self, rec: Record) -> Path:
        return self._json(rec.local_id)

    def input_path(self, rec: Record) -> Path:
        return self.dir / f"{rec.local_id}.jsonl"

    def download_path(self, rec: Record, kind: str) -> Path:
        return self.dir / f"{rec.local_id}.{kind}.jsonl"

    def input_file(self) -> InputFile:
        """A new input file to write line by line (the next `create` makes it a record's)."""
        return InputFile(self.dir)

    @staticmethod
    def new_id() -> str:
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:10]}"

    def create(self, lines: Iterable[bytes] | InputFile, *, tag: str | None, model: str,
               tokens: int, retries: dict[str, int], local_id: str | None = None) -> Record:
        """Make the input file durable, then write its record, before anything is sent. Take
        `lock(local_id)` first to keep other processes off the record until it is submitted."""
        inp = lines if isinstance(lines, InputFile) else InputFile.of(self.dir, lines)
        rec = Record(local_id or self.new_id(), time.time(), tag, model, inp.n, tokens,
                     inp.bytes, retries)
        inp.commit(self.input_path(rec))
        self.save(rec)
        return rec

    def save(self, rec: Record) -> None:
        _durable(self._json(rec.local_id), json.dumps(asdict(rec)).encode())

    def reload(self, rec: Record) -> Record:
        return self.load(self._json(rec.local_id))

    @staticmethod
    def load(path: Path) -> Record:
        return Record(**json.loads(path.read_text()))

    def pending(self) -> list[Record]:
        """Every record not done yet, oldest first (a damaged record file is skipped)."""
        out = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                rec = self.load(path)
            except (json.JSONDecodeError, TypeError, OSError):
                continue
            if rec.state != "done":
                out.append(rec)
        return out

    def keys(self, rec: Record) -> list[str]:
        """The request keys (custom_ids) of a record, read back from its input file."""
        return [key for key, _ in self.bodies(rec)]

    def bodies(self, rec: Record) -> Iterator[tuple[str, dict[str, Any]]]:
        """(custom_id, body) of each line of a record's input file."""
        path = self.input_path(rec)
        if not path.exists():
            return
        with open(path, "rb") as fh:
            for raw in fh:
                if raw.strip():
                    obj = json.loads(raw)
                    yield obj["custom_id"], obj["body"]

    def done(self, rec: Record, outcome: str) -> None:
        """Its lines are stored: keep the summary, remove the local copies."""
        rec.state, rec.outcome = "done", outcome
        self.save(rec)
        for path in (self.input_path(rec), self.download_path(rec, "output"),
                     self.download_path(rec, "error"), self.dir / f"{rec.local_id}.lock"):
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self, rec: Record | str) -> Iterator[bool]:
        """Hold the record's lock (True), or False when another process holds it: it is
        submitting the record's file, or storing its lines (two tasks sharing a request may
        both wait on one batch). Never blocks."""
        local_id = rec if isinstance(rec, str) else rec.local_id
        with open(self.dir / f"{local_id}.lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class InputFile:
    """A batch input file written line by line as its requests are chosen, so a 200 MB file is
    never held in memory; a hidden temporary name until `commit`."""

    def __init__(self, directory: Path) -> None:
        self.tmp = directory / f".input-{uuid.uuid4().hex}.jsonl.tmp"
        self.fh = open(self.tmp, "wb")  # noqa: SIM115 (closed by commit / discard)
        self.n = 0
        self.bytes = 0

    @classmethod
    def of(cls, directory: Path, lines: Iterable[bytes]) -> InputFile:
        out = cls(directory)
        for line in lines:
            out.add(line)
        return out

    def add(self, line: bytes) -> None:
        self.fh.write(line)
        self.n += 1
        self.bytes += len(line)

    def commit(self, path: Path) -> None:
        """Durably at `path` (fsync'd, renamed, the directory fsync'd)."""
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.chmod(self.tmp, file_mode())
        os.replace(self.tmp, path)
        _fsync_dir(path.parent)

    def discard(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


def _durable(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, file_mode())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` survive a crash."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
