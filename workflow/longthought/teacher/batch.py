"""The batch transport: a provider's Batch API (OpenAI's), half the price, answered within 24 h.

The requests the cache does not hold are written as Batch API JSONL (`custom_id` = the cache
key), split into files within the API's limits (`max_requests_per_batch`, `max_bytes_per_file`),
uploaded with the files API and submitted with `completion_window: 24h`; batches are polled with
a growing interval, and each finished batch's output and error files are downloaded (checked
against their size, retried when a download drops) and stored in the request cache line by
line, so everything downstream reads the same entries an online collection writes.

- **Crash safety** (`batch_ledger`): each file's record, and then its batch id, are on disk
  before the job waits; a killed or requeued job re-attaches to its batches instead of
  submitting them again, and a wait cut short (`max_wait_s`, a wall-time kill) costs nothing.
  The process submitting a file holds its record's lock: another one that finds the record
  leaves it (and its requests) alone for this run instead of submitting it a second time.
- **A batch the endpoint does not know** (404 on poll) may exist under another key or project
  and be billed there: its record becomes `lost` and its requests are not asked again until
  the record is deleted. A refused key (401/403), or `POLL_FAILURES` failed polls in a row,
  ends the wait (`BatchesPending`): nothing is lost, the next run re-attaches.
- **Partial outcomes**: an expired or cancelled batch keeps every line it completed; failed
  lines (5xx, expired, cancelled, never answered) go into a new batch (or online with
  `retry_online`), each request at most `max_retries` times more, then `failed` with the reason.
  A 4xx line is not retried (the request itself is wrong).
- **Budget**: batch prices (`pricing.batch` / `batch_discount`); each request's worst case is
  reserved before its file is submitted, so the whole file fits under `budget_usd` before it
  goes; what does not fit waits for running batches to settle, or is `skipped_budget`. A line
  billed but unusable costs its usage (its worst case when that is unreadable), and a finished
  batch whose results cannot be downloaded costs its requests' worst case.
- **Enqueued tokens**: `max_enqueued_tokens` (per model) caps the prompt tokens of the batches
  in flight: files are cut to fit and queued until earlier batches finish; a batch the server
  refuses with `token_limit_exceeded` goes back to the queue, costing nothing.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import openai
from openai import AsyncOpenAI, DefaultAioHttpClient

from longthought.teacher.batch_ledger import InputFile, Ledger, Record
from longthought.teacher.batch_lines import ENDPOINT, encode_line, read_line
from longthought.teacher.cache import CacheEntry, RequestCache, canonical_json
from longthought.teacher.guard import forbid
from longthought.teacher.limits import Limits, backoff_delay, retry_after_seconds
from longthought.teacher.pricing import Pricing, max_output_tokens
from longthought.teacher.records import NO_KEY, Job, api_key_for
from longthought.teacher.responses import MalformedResponse, parse_completion, usage_of
from longthought.teacher.tokens import count_prompt_tokens
from longthought.teacher.transport import Sink

log = logging.getLogger("longthought.teacher.batch")
T = TypeVar("T")
TERMINAL = ("completed", "failed", "expired", "cancelled")
FLUSH_LINES = 1000  # lines stored between two cache flushes (back-pressure, crash safety)
LOOKBACK_S = 3600.0  # how far back a lookup of an unrecorded file or batch searches
COMPLETION_WINDOW = "24h"
POLL_FAILURES = 10  # polls of one batch failing in a row (each after its retries) end the wait


@dataclass
class BatchOptions:
    """The teacher's `batch:` block (operational: changing it re-asks nothing)."""

    max_requests_per_batch: int = 50_000  # the API's limit per batch
    max_bytes_per_file: int = 200_000_000  # the API's 200 MB per input file
    max_enqueued_tokens: int | None = None  # per model: prompt tokens in unfinished batches
    poll_interval_s: float = 30.0  # first wait between polls; grows while nothing changes
    poll_max_interval_s: float = 600.0
    max_retries: int = 2  # re-submissions of a failed or unanswered line
    retry_online: bool = False  # re-submit failed lines online instead of in a new batch
    max_wait_s: float | None = None  # stop waiting (batches stay recorded) after this long;
    # 0: submit, then return at once (collect on a later run)

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None, where: str) -> BatchOptions:
        spec = dict(spec or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"{where}.batch: unknown key(s) {sorted(unknown)}; "
                             f"known: {sorted(known)}")
        out = cls()
        for k, v in spec.items():
            if k == "retry_online":
                if not isinstance(v, bool):
                    raise ValueError(f"{where}.batch.retry_online must be true or false, "
                                     f"got {v!r}")
                out.retry_online = v
                continue
            if v is None and k in ("max_enqueued_tokens", "max_wait_s"):
                setattr(out, k, None)
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"{where}.batch.{k} must be a number >= 0, got {v!r}")
            if k.startswith("max_") and k not in ("max_wait_s",) and int(v) != v:
                raise ValueError(f"{where}.batch.{k} must be an integer, got {v!r}")
            setattr(out, k, v if k.endswith("_s") else int(v))
        if out.max_requests_per_batch < 1 or out.max_bytes_per_file < 1:
            raise ValueError(f"{where}.batch: max_requests_per_batch and max_bytes_per_file "
                             "must be >= 1")
        if out.poll_interval_s <= 0:
            raise ValueError(f"{where}.batch.poll_interval_s must be > 0")
        return out


class BatchesPending(RuntimeError):
    """Batches are still running when the wait ends (`max_wait_s`): nothing is lost, the next
    run re-attaches to them."""


class _ApiError(Exception):
    """An API call that failed for good (a 4xx, or out of retries); `status`: its HTTP status,
    if it had one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Active:
    """A batch this run waits on, with its requests this run asked for."""

    rec: Record
    jobs: dict[str, Job]
    status: str = "validating"
    counts: tuple[int, int, int] = (0, 0, 0)
    poll_failures: int = 0  # in a row


@dataclass
class _State:
    jobs: dict[str, Job]  # not reported yet
    queue: deque[Job] = field(default_factory=deque)  # to put in a batch
    online: list[Job] = field(default_factory=list)  # to send online (retry_online)
    attempts: dict[str, int] = field(default_factory=dict)  # submissions so far
    active: dict[str, _Active] = field(default_factory=dict)  # by record id
    blocked_until: float = 0.0  # after a token_limit_exceeded refusal
    refusals: int = 0
    learned_cap: int | None = None  # enqueued tokens a refusal showed to be too many
    elsewhere: dict[str, Record] = field(default_factory=dict)  # key -> the record another
    # process is submitting (left alone in this run)


class BatchTransport:
    name = "batch"

    def __init__(self, teacher_spec: dict[str, Any], base_url: str, limits: Limits,
                 opts: BatchOptions, prefix: str = "", online_pricing: Pricing | None = None
                 ) -> None:
        self.spec = teacher_spec
        self.base_url = base_url
        self.limits = limits
        self.opts = opts
        self.prefix = prefix
        self.online_pricing = online_pricing
        self.rng = random.Random()
        self.api_key = ""
        self.ledger: Ledger | None = None
        self.submitted = 0
        self.reattached = 0
        self.lines_ok = 0
        self.lines_failed = 0
        self.resubmitted = 0
        self.gave_up = 0
        self.polls = 0
        self.refused = 0

    def summary(self) -> str:
        return (f"{self.submitted} batch(es) submitted, {self.reattached} re-attached, "
                f"{self.polls} polls; {self.lines_ok} lines ok, {self.lines_failed} failed "
                f"({self.resubmitted} re-submitted, {self.gave_up} given up)"
                + (f", {self.refused} refused for the enqueued-token limit"
                   if self.refused else ""))

    # --- the run ---------------------------------------------------------------------------

    async def run(self, jobs: Iterable[Job], sink: Sink) -> None:
        forbid(f"a Batch API collection at {self.base_url}")
        if sink.state_dir is None:
            raise ValueError("the batch transport needs a state directory (sink.state_dir) to "
                             "record its batches")
        self.api_key = api_key_for(self.spec)
        sink.scrub = self._scrub
        self.ledger = Ledger(Path(sink.state_dir) / "batches")
        st = _State({j.key: j for j in jobs})
        timeout = self.limits.timeout_s
        http = DefaultAioHttpClient(timeout=httpx2.Timeout(timeout, connect=min(10.0, timeout)))
        client = AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                             timeout=timeout, http_client=http)
        try:
            await self._reattach(client, st, sink)
            st.queue.extend(j for k, j in st.jobs.items() if k not in st.attempts)
            await self._loop(client, st, sink)
            if st.online:
                await self._send_online(st, sink)
            if st.elsewhere:  # the rest is done: say what is left to the other process
                ids = sorted({r.local_id for r in st.elsewhere.values()})
                raise BatchesPending(self._pending_message(
                    f"{len(st.elsewhere)} request(s) are in file(s) another process is "
                    "submitting right now, left to it", [f"{i} (being submitted)" for i in ids]))
        finally:
            await client.close()

    async def _loop(self, client: AsyncOpenAI, st: _State, sink: Sink) -> None:
        """Submit what fits, poll, store what finished; until nothing is left to wait for (or
        `max_wait_s` has passed: then every running batch has been polled at least once)."""
        t0 = time.monotonic()
        delay = self.opts.poll_interval_s
        polled = False
        while st.queue or st.active:
            await self._submit_ready(client, st, sink)
            if not st.active:
                if st.queue and time.monotonic() < st.blocked_until:
                    await asyncio.sleep(st.blocked_until - time.monotonic())
                    continue
                for job in list(st.queue):  # nothing runs and nothing could be submitted
                    self._give_up(st, sink, job, "could not be submitted in a batch")
                st.queue.clear()
                break
            waited = time.monotonic() - t0
            if polled and self.opts.max_wait_s is not None and waited >= self.opts.max_wait_s:
                raise BatchesPending(self._pending_message(
                    f"{len(st.active)} batch(es) still running after {waited:.0f} s "
                    "(batch.max_wait_s)", self._running(st)))
            if polled:
                await asyncio.sleep(delay)
            changed = await self._poll(client, st, sink)
            polled = True
            delay = self.opts.poll_interval_s if changed else \
                min(self.opts.poll_max_interval_s, delay * 1.5)

    @staticmethod
    def _running(st: _State) -> list[str]:
        return [f"{a.rec.batch_id or a.rec.local_id} ({a.status})" for a in st.active.values()]

    def _pending_message(self, why: str, ids: list[str]) -> str:
        """Why the run stops before its batches are stored, and that nothing is lost."""
        assert self.ledger is not None
        return (f"{self.prefix}{why}: {', '.join(ids)}. Nothing is lost: their ids are "
                f"recorded in {self.ledger.dir}, and the next run re-attaches to them (no "
                "request is paid twice); answers received so far are in the cache.")

    # --- re-attach ---------------------------------------------------------------------------

    async def _reattach(self, client: AsyncOpenAI, st: _State, sink: Sink) -> None:
        """Wait on every recorded, unfinished batch that holds requests this run asks for."""
        assert self.ledger is not None
        others = 0
        pending = []
        for rec in self.ledger.pending():
            if rec.file_id is None and not self.ledger.input_path(rec).exists():
                self.ledger.done(rec, "not submitted: its input file is gone")
                continue  # never uploaded: its requests simply go in a new file
            pending.append((rec, self.ledger.keys(rec)))
        newest: dict[str, str] = {}  # key -> the newest record holding it (a re-submission)
        for rec, keys in pending:
            newest.update((k, rec.local_id) for k in keys if k in st.jobs)
        for rec, keys in pending:
            if not any(k in st.jobs for k in keys):
                others += 1
                continue
            mine = {k: st.jobs[k] for k in keys if newest.get(k) == rec.local_id}
            if rec.batch_id is None:
                with self.ledger.lock(rec) as free:
                    if not free:  # another live process is submitting it right now
                        self._leave_to_other(st, rec, mine)
                        continue
                    rec = self.ledger.reload(rec)  # it may have moved on while we looked
                    if rec.state == "done":  # given up meanwhile: its requests go in a new file
                        continue
                    act = self._attach(st, sink, rec, mine)
                    if rec.batch_id is None:
                        try:
                            await self._upload_and_create(client, rec)
                        except _ApiError as exc:
                            self._abandon(st, sink, act, f"could not submit the batch: {exc}")
                            continue
            else:
                self._attach(st, sink, rec, mine)
            log.info("%sre-attached to batch %s (%d of its %d requests asked for here, "
                     "recorded %s)", self.prefix, rec.batch_id, len(mine), rec.n,
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.created)))
        if others:
            log.info("%s%d recorded batch(es) in flight hold none of this run's requests (another "
                     "task's, or requests no longer asked for); left alone", self.prefix, others)

    def _attach(self, st: _State, sink: Sink, rec: Record, mine: dict[str, Job]) -> _Active:
        """Wait on a recorded batch for `mine`, its requests this run asks for."""
        for k, job in mine.items():
            st.attempts[k] = rec.retries.get(k, 1)
            sink.budget.hold(job)  # already submitted (or about to be): its money is due
        act = _Active(rec, mine)
        st.active[rec.local_id] = act
        self.reattached += 1
        return act

    def _leave_to_other(self, st: _State, rec: Record, mine: dict[str, Job]) -> None:
        """Another process holds the record's lock (it is uploading the file or creating the
        batch): submitting it here too would pay twice, so its requests wait for a later run,
        which re-attaches to the batch that process made."""
        for k in mine:
            st.jobs.pop(k, None)
            st.elsewhere[k] = rec
        log.warning("%sfile %s (%d of this run's requests) is being submitted by another "
                    "process right now; left to it: a later run re-attaches to its batch",
                    self.prefix, rec.local_id, len(mine))

    # --- submit ------------------------------------------------------------------------------

    async def _submit_ready(self, client: AsyncOpenAI, st: _State, sink: Sink) -> None:
        assert self.ledger is not None
        while st.queue and time.monotonic() >= st.blocked_until:
            inp = self.ledger.input_file()
            try:
                part, wait = self._fill(st, sink, inp)
            except BaseException:
                inp.discard()
                raise
            if part:
                await self._submit(client, st, sink, part, inp)
            else:
                inp.discard()
            if wait or not part:
                return

    def _fill(self, st: _State, sink: Sink, inp: InputFile) -> tuple[list[Job], bool]:
        """The next file, written to `inp` line by line: the first queued request's model (a
        batch file holds one), in queue order, within the file limits, the enqueued-token room
        and the budget. Returns (its jobs, whether the budget made it stop)."""
        opts = self.opts
        model = str(st.queue[0].body.get("model"))
        room = None
        caps = [c for c in (opts.max_enqueued_tokens, st.learned_cap) if c is not None]
        if caps:  # the limit is per model
            room = min(caps) - sum(a.rec.tokens for a in st.active.values()
                                   if a.rec.model == model)
        part: list[Job] = []
        others: list[Job] = []  # other models' requests passed over, in order
        size = tokens = 0
        wait = False
        while st.queue and len(part) < opts.max_requests_per_batch:
            job = st.queue.popleft()
            if str(job.body.get("model")) != model:
                others.append(job)
                continue
            line = encode_line(job.key, job.body)
            if (part and size + len(line) > opts.max_bytes_per_file) or (
                    room is not None and tokens + job.prompt_est > room and (part or st.active)):
                st.queue.appendleft(job)
                break
            verdict = sink.budget.try_reserve(job)
            if verdict == "wait":
                st.queue.appendleft(job)
                wait = True
                break
            if verdict == "stop":
                st.jobs.pop(job.key, None)
                sink.skipped(job)
                continue
            part.append(job)
            inp.add(line)
            size += len(line)
            tokens += job.prompt_est
        st.queue.extendleft(reversed(others))
        return part, wait

    async def _submit(self, client: AsyncOpenAI, st: _State, sink: Sink, part: list[Job],
                      inp: InputFile) -> None:
        assert self.ledger is not None
        for job in part:
            st.attempts[job.key] = st.attempts.get(job.key, 0) + 1
        retries = {j.key: st.attempts[j.key] for j in part if st.attempts[j.key] > 1}
        local_id = self.ledger.new_id()
        # locked before the record is visible: another process re-attaching leaves it alone
        with self.ledger.lock(local_id) as free:
            if not free:
                inp.discard()
                raise RuntimeError(f"the lock of the new batch record {local_id} is taken")
            rec = self.ledger.create(inp, tag=sink.tag, model=str(part[0].body.get("model")),
                                     tokens=sum(j.prompt_est for j in part), retries=retries,
                                     local_id=local_id)
            act = _Active(rec, {j.key: j for j in part})
            st.active[rec.local_id] = act
            try:
                await self._upload_and_create(client, rec)
            except _ApiError as exc:
                self._abandon(st, sink, act, f"could not submit the batch: {exc}")
                return
        self.submitted += 1
        worst = sum(j.worst_usd for j in part)
        log.info("%sbatch %s submitted: %d requests (file %s, %.1f MB, ~%d prompt tokens, worst "
                 "case $%.4f)%s", self.prefix, rec.batch_id, rec.n, rec.file_id,
                 rec.bytes / 1e6, rec.tokens, worst,
                 f", {len(retries)} of them re-submitted" if retries else "")

    async def _upload_and_create(self, client: AsyncOpenAI, rec: Record) -> None:
        """Upload the record's file and create its batch, each step recorded before and after
        the call; after an uncertain failure, look the file / batch up before making another.
        The caller holds the record's lock."""
        assert self.ledger is not None
        if rec.file_id is None:
            found = await self._lookup_file(client, rec) if rec.upload_tried else None
            if found is None:
                rec.upload_tried = True
                self.ledger.save(rec)
                found = await self._retrying("upload", lambda: self._upload(client, rec),
                                             lambda: self._lookup_file(client, rec))
            rec.file_id, rec.state = found.id, "uploaded"
            self.ledger.save(rec)
        if rec.batch_id is None:
            batch = await self._lookup_batch(client, rec) if rec.create_tried else None
            if batch is None:
                rec.create_tried = True
                self.ledger.save(rec)
                batch = await self._retrying(
                    "batch create", lambda: client.batches.create(
                        input_file_id=str(rec.file_id), endpoint=ENDPOINT,
                        completion_window=COMPLETION_WINDOW,
                        metadata={"longthought_file": rec.local_id,
                                  "longthought_tag": (rec.tag or "")[:500]}),
                    lambda: self._lookup_batch(client, rec))
            rec.batch_id, rec.state = batch.id, "submitted"
            self.ledger.save(rec)

    async def _upload(self, client: AsyncOpenAI, rec: Record) -> Any:
        """The input file, streamed from disk (each attempt reads it from the start)."""
        assert self.ledger is not None
        with open(self.ledger.input_path(rec), "rb") as fh:
            return await client.files.create(file=(rec.filename, fh, "application/jsonl"),
                                             purpose="batch")

    async def _lookup_file(self, client: AsyncOpenAI, rec: Record) -> Any:
        """The record's uploaded file, or None; retried like any call (a transient error in a
        lookup must not pass for "not there")."""
        return await self._retrying("file lookup", lambda: self._find_file(client, rec))

    async def _lookup_batch(self, client: AsyncOpenAI, rec: Record) -> Any:
        """The record's batch, or None; retried like any call."""
        return await self._retrying("batch lookup", lambda: self._find_batch(client, rec))

    async def _find_file(self, client: AsyncOpenAI, rec: Record) -> Any:
        async for f in client.files.list(purpose="batch", order="desc", limit=100):
            if f.filename == rec.filename:
                return f
            if f.created_at < rec.created - LOOKBACK_S:
                break
        return None

    async def _find_batch(self, client: AsyncOpenAI, rec: Record) -> Any:
        async for b in client.batches.list(limit=100):
            if (b.metadata or {}).get("longthought_file") == rec.local_id or (
                    rec.file_id is not None and b.input_file_id == rec.file_id):
                return b
            if b.created_at < rec.created - LOOKBACK_S:
                break
        return None

    # --- poll and store ----------------------------------------------------------------------

    async def _poll(self, client: AsyncOpenAI, st: _State, sink: Sink) -> bool:
        """Look at every running batch once; store the finished ones. True if anything moved."""
        changed = False
        for act in list(st.active.values()):
            self.polls += 1
            try:
                batch = await self._retrying(
                    "batch retrieve", lambda a=act: client.batches.retrieve(str(a.rec.batch_id)))
            except _ApiError as exc:
                changed = self._poll_failed(st, sink, act, exc) or changed
                continue
            act.poll_failures = 0
            if act.rec.state == "lost":
                self._found_again(act)
            rc = batch.request_counts
            counts = (rc.total, rc.completed, rc.failed) if rc else (0, 0, 0)
            if batch.status != act.status or counts != act.counts:
                if batch.status != act.status:
                    changed = True
                    log.info("%sbatch %s: %s (%d of %d done, %d failed)", self.prefix,
                             batch.id, batch.status, counts[1] + counts[2], counts[0],
                             counts[2])
                act.status, act.counts = batch.status, counts
            if batch.status in TERMINAL:
                await self._finish(client, st, sink, act, batch)
                changed = True
        return changed

    def _found_again(self, act: _Active) -> None:
        """A batch recorded `lost` is known to the endpoint again (the right key or project is
        back): wait on it as any other."""
        assert self.ledger is not None
        rec = self.ledger.reload(act.rec)
        if rec.state == "lost":
            rec.state = "submitted"
            self.ledger.save(rec)
        act.rec = rec
        log.info("%sbatch %s, recorded lost, is known to the endpoint again", self.prefix,
                 rec.batch_id)

    def _poll_failed(self, st: _State, sink: Sink, act: _Active, exc: _ApiError) -> bool:
        """A poll that failed for good: a 404 makes the batch `lost` (True); a refused key, or
        too many failures in a row, end the wait; anything else is tried at the next poll."""
        if exc.status == 404:
            self._lost(st, sink, act, exc)
            return True
        if exc.status in (401, 403):
            raise BatchesPending(self._pending_message(
                f"polling batch {act.rec.batch_id} was refused ({exc}): check the API key and "
                "its project; the batches", self._running(st)))
        act.poll_failures += 1
        if act.poll_failures >= POLL_FAILURES:
            raise BatchesPending(self._pending_message(
                f"batch {act.rec.batch_id} could not be polled {act.poll_failures} times in a "
                f"row (last: {exc}); the batches", self._running(st)))
        log.warning("%scould not poll batch %s: %s (trying again later)", self.prefix,
                    act.rec.batch_id, exc)
        return False

    def _lost(self, st: _State, sink: Sink, act: _Active, exc: _ApiError) -> None:
        """The endpoint does not know the batch. It may exist under another API key or project,
        and be billed there, so its requests are not asked again (their worst case counts as
        spent); its record stays, `lost`, so later runs do not ask them either."""
        assert self.ledger is not None
        path = self.ledger.record_path(act.rec)
        reason = (f"batch {act.rec.batch_id} is unknown to the endpoint (HTTP 404); it may "
                  "exist under another API key or project and be billed there, so its requests "
                  f"are not asked again: to ask them again on purpose, delete its record {path}")
        log.warning("%s%s (%s; %d of its requests asked for here)", self.prefix, reason, exc,
                    len(act.jobs))
        for key, job in act.jobs.items():
            if key in st.jobs:
                sink.budget.aborted(job)
                self._give_up(st, sink, job, reason)
        act.rec.state = "lost"
        self.ledger.save(act.rec)
        st.active.pop(act.rec.local_id, None)

    async def _finish(self, client: AsyncOpenAI, st: _State, sink: Sink, act: _Active,
                      batch: Any) -> None:
        assert self.ledger is not None
        with self.ledger.lock(act.rec) as mine:
            if not mine:  # another process is storing it: look again at the next poll
                return
            rec = self.ledger.reload(act.rec)
            if rec.state == "done":  # stored by another process (or a run before a crash)
                await self._from_cache(st, sink, act)
                return
            if batch.status == "failed":
                self._failed_batch(st, sink, act, batch)
                return
            try:
                seen = await self._store_lines(client, st, sink, act, batch)
            except _ApiError as exc:
                for key, job in act.jobs.items():
                    if key in st.jobs:
                        sink.budget.aborted(job)  # its lines were billed all the same
                        self._give_up(st, sink, job, f"batch {batch.id} {batch.status}, but its "
                                      f"results could not be downloaded ({exc}); they stay "
                                      "recorded: a re-run fetches them without paying again")
                del st.active[act.rec.local_id]
                return
            reason = (f"batch {batch.id} {batch.status} without answering this request (no line "
                      "in its output or error file)")
            for key, job in act.jobs.items():
                if key not in seen and key in st.jobs:
                    self._retry_or_fail(st, sink, job, reason, True)
            await asyncio.to_thread(sink.writer.flush)
            rc = batch.request_counts
            self._close(st, sink, act, f"{batch.status}: {rc.completed if rc else 0} completed, "
                        f"{rc.failed if rc else 0} failed", "", retry=False)

    def _failed_batch(self, st: _State, sink: Sink, act: _Active, batch: Any) -> None:
        """A batch that failed validation ran nothing and cost nothing."""
        errors = list(batch.errors.data or []) if batch.errors else []
        if any(e.code == "token_limit_exceeded" for e in errors):
            self.refused += 1
            st.refusals += 1
            others = sum(a.rec.tokens for a in st.active.values()
                         if a is not act and a.rec.model == act.rec.model)
            if others == 0 and act.rec.n == 1:  # one request alone is over the limit
                self._close(st, sink, act, "failed: token_limit_exceeded", "", retry=False)
                for key, job in act.jobs.items():
                    if key in st.jobs:
                        self._give_up(st, sink, job, f"refused by the enqueued-token limit even "
                                      f"alone: {errors[0].message}")
                return
            # the limit is below what was in flight with this file: stay under that from now
            # on (other tasks' batches count too, so this may be tighter than needed); refused
            # alone, the file itself is too big: halve it
            bound = others + act.rec.tokens - 1 if others else act.rec.tokens // 2
            st.learned_cap = bound if st.learned_cap is None else min(st.learned_cap, bound)
            # wait for a running batch to finish (that clears the block), or a while
            st.blocked_until = time.monotonic() + backoff_delay(
                st.refusals, self.rng, self.opts.poll_interval_s, self.opts.poll_max_interval_s)
            log.warning("%sbatch %s refused (%s): %s; its %d requests wait for running batches "
                        "to finish, then go in files that keep under %d enqueued tokens "
                        "(batch.max_enqueued_tokens sets the cap ahead)", self.prefix, batch.id,
                        errors[0].code, errors[0].message, len(act.jobs), st.learned_cap)
            for key, job in act.jobs.items():
                if key in st.jobs:
                    sink.budget.release(job)
                    st.attempts[key] -= 1  # never ran: not an attempt
                    st.queue.appendleft(job)
            self._finish_record(st, act, "failed: token_limit_exceeded")
            return
        shown = "; ".join(f"{'line ' + str(e.line) + ': ' if e.line else ''}{e.code}: "
                          f"{e.message}" for e in errors[:3]) or "no reason given"
        self._close(st, sink, act, "failed", f"batch {batch.id} failed validation: {shown}",
                    retry=True)

    async def _store_lines(self, client: AsyncOpenAI, st: _State, sink: Sink, act: _Active,
                           batch: Any) -> set[str]:
        """Download the output and error files and report every line; returns the keys seen."""
        assert self.ledger is not None
        seen: set[str] = set()
        foreign: dict[str, dict[str, Any]] | None = None
        n = 0
        for file_id, kind in ((batch.output_file_id, "output"), (batch.error_file_id, "error")):
            if not file_id:
                continue
            path = await self._download(client, file_id, self.ledger.download_path(act.rec,
                                                                                     kind))
            with open(path, "rb") as fh:
                for raw in fh:
                    if not raw.strip():
                        continue
                    line = read_line(raw)
                    key = line.custom_id
                    if key is None:
                        log.warning("%sbatch %s: a line without a custom_id (%s); skipped",
                                    self.prefix, batch.id, line.reason)
                        continue
                    seen.add(key)
                    job = st.jobs.get(key)  # (another record of this run may own it)
                    if job is None:
                        if line.body is not None:
                            if foreign is None:
                                foreign = dict(self.ledger.bodies(act.rec))
                            self._store_foreign(sink, key, foreign.get(key), line.body,
                                                act.rec.tag)
                        continue
                    if line.body is None:
                        if key in act.jobs:  # failed here; the owning record decides
                            self.lines_failed += 1
                            self._retry_or_fail(st, sink, job, line.reason or "failed",
                                                line.retryable)
                        continue
                    try:
                        parsed = parse_completion(line.body)
                    except MalformedResponse as exc:
                        self.lines_failed += 1
                        _charge_unusable(sink, job, line.body)
                        self._retry_or_fail(st, sink, job, f"unusable body in the batch: {exc}",
                                            True)
                        continue
                    self.lines_ok += 1
                    st.jobs.pop(key, None)
                    sink.ok(job, line.body, parsed, None, st.attempts.get(key, 1))
                    n += 1
                    if n % FLUSH_LINES == 0:
                        await asyncio.to_thread(sink.writer.flush)
        return seen

    def _store_foreign(self, sink: Sink, key: str, body: dict[str, Any] | None, text: str,
                       tag: str | None) -> None:
        """A line this run did not ask for (another task's request in a shared batch, or one
        stored before a crash): into the cache all the same, so nobody pays for it again."""
        if body is None:
            return
        try:
            parsed = parse_completion(text)
        except MalformedResponse:
            return
        cost = None
        if sink.pricing is not None:
            cost = sink.cost_of(Job(key, body, 0, count_prompt_tokens(body.get("messages") or []),
                                    0, 0.0), parsed)
        sink.writer.put(CacheEntry(key, canonical_json(body), text, None, 1,
                                   parsed.prompt_tokens, parsed.completion_tokens,
                                   parsed.reasoning_tokens, cost, tag))

    async def _from_cache(self, st: _State, sink: Sink, act: _Active) -> None:
        """Another process stored this batch: read this run's requests back from the cache."""
        cache_dir = sink.cache_dir
        entries: dict[str, CacheEntry] = {}
        if cache_dir is not None:
            with RequestCache(cache_dir) as cache:
                entries = cache.get_many(k for k in act.jobs if k in st.jobs)
        for key, job in act.jobs.items():
            if key not in st.jobs:
                continue
            entry = entries.get(key)
            if entry is None:
                self._retry_or_fail(st, sink, job, f"batch {act.rec.batch_id} was stored by "
                                    "another process without an answer to this request", True)
                continue
            try:
                parsed = parse_completion(entry.response)
            except MalformedResponse as exc:
                self._retry_or_fail(st, sink, job, f"unusable stored answer: {exc}", True)
                continue
            st.jobs.pop(key, None)
            sink.ok(job, entry.response, parsed, None, entry.attempts or 1)
        del st.active[act.rec.local_id]

    async def _download(self, client: AsyncOpenAI, file_id: str, dest: Path) -> Path:
        """A file's content to `dest`, whole: its size is checked against the file object and a
        download that drops is retried."""
        meta = await self._retrying("file retrieve", lambda: client.files.retrieve(file_id))
        tries = 0
        while True:
            tries += 1
            try:
                async with client.files.with_streaming_response.content(file_id) as resp:
                    with open(dest, "wb") as fh:
                        async for chunk in resp.iter_bytes(1 << 20):
                            fh.write(chunk)
                size = dest.stat().st_size
                if size == meta.bytes:
                    return dest
                reason = f"got {size} of {meta.bytes} bytes"
            except (openai.APIConnectionError, openai.APIStatusError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, openai.APIStatusError) and exc.status_code < 500 and \
                        exc.status_code not in (408, 409, 429):
                    raise _ApiError(self._scrub(f"download of {file_id}: {reason}")) from None
            except Exception as exc:  # httpx's RemoteProtocolError on a cut-off body, etc.
                reason = f"{type(exc).__name__}: {exc}"
            if tries > self.limits.max_retries:
                raise _ApiError(self._scrub(f"download of {file_id} failed {tries} times: "
                                            f"{reason}"))
            log.warning("%sdownload of %s dropped (%s); trying again", self.prefix, file_id,
                        reason)
            await asyncio.sleep(backoff_delay(tries, self.rng, self.limits.backoff_base_s,
                                              self.limits.backoff_max_s))

    # --- outcomes ----------------------------------------------------------------------------

    def _retry_or_fail(self, st: _State, sink: Sink, job: Job, reason: str,
                       retryable: bool) -> None:
        """A line that did not come back ok: once more (a new batch, or online), or failed."""
        n = st.attempts.get(job.key, 1)
        sink.budget.release(job)
        if retryable and n <= self.opts.max_retries:
            self.resubmitted += 1
            (st.online if self.opts.retry_online else st.queue).append(job)
            return
        self._give_up(st, sink, job, reason)

    def _give_up(self, st: _State, sink: Sink, job: Job, reason: str) -> None:
        st.jobs.pop(job.key, None)
        self.gave_up += 1
        sink.failed(job, reason, st.attempts.get(job.key, 0))

    def _close(self, st: _State, sink: Sink, act: _Active, outcome: str, reason: str,
               retry: bool) -> None:
        """The batch is over for this run: every request of it not reported yet is re-submitted
        or failed with `reason` (when `retry`), and its record is done."""
        if retry:
            for key, job in act.jobs.items():
                if key in st.jobs:
                    self._retry_or_fail(st, sink, job, reason, True)
        self._finish_record(st, act, outcome)

    def _finish_record(self, st: _State, act: _Active, outcome: str) -> None:
        assert self.ledger is not None
        self.ledger.done(act.rec, outcome)
        st.active.pop(act.rec.local_id, None)
        if not outcome.startswith("failed: token_limit"):
            st.blocked_until = 0.0  # enqueued tokens freed: a refused file may fit now

    def _abandon(self, st: _State, sink: Sink, act: _Active, reason: str) -> None:
        """A file that could not be submitted: its requests fail now (a re-run asks again)."""
        for key, job in act.jobs.items():
            if key in st.jobs:
                self._give_up(st, sink, job, reason)
        self._finish_record(st, act, f"not submitted: {reason[:200]}")

    async def _send_online(self, st: _State, sink: Sink) -> None:
        """`retry_online`: the failed lines, sent online at online prices."""
        from longthought.teacher.online import OnlineTransport

        pricing = self.online_pricing
        jobs = [Job(j.key, j.body, j.sample_index, j.prompt_est, j.token_est,
                    pricing.worst_case(j.prompt_est, max_output_tokens(j.body)) if pricing
                    else 0.0) for j in st.online]
        st.online.clear()
        log.info("%s%d failed line(s) re-sent online (batch.retry_online)", self.prefix,
                 len(jobs))
        online = copy.copy(sink)
        online.pricing = pricing
        await OnlineTransport(self.spec, self.base_url, self.limits, self.prefix).run(jobs, online)

    # --- API calls ---------------------------------------------------------------------------

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]],
                        lookup: Callable[[], Awaitable[Any]] | None = None) -> T:
        """`call` with retries on 429 (Retry-After), 5xx and connection errors. `lookup`: for a
        call that creates something, whether an earlier attempt created it after all."""
        tries = 0
        while True:
            tries += 1
            try:
                return await call()
            except openai.APIStatusError as exc:
                status = exc.status_code
                reason = self._scrub(f"{what}: HTTP {status}: {_message(exc)}")
                if status < 500 and status not in (408, 409, 429):
                    raise _ApiError(reason, status) from None
                delay = retry_after_seconds(exc.response.headers if exc.response else None)
            except openai.APIConnectionError as exc:
                reason = self._scrub(f"{what}: connection error: {exc}")
                status = None
                delay = None
            if tries > self.limits.max_retries:
                raise _ApiError(f"{reason} (after {tries} attempts)", status)
            await asyncio.sleep(delay if delay is not None else backoff_delay(
                tries, self.rng, self.limits.backoff_base_s, self.limits.backoff_max_s))
            if lookup is not None:
                found = await lookup()
                if found is not None:
                    return found

    def _scrub(self, text: str) -> str:
        if self.api_key and self.api_key != NO_KEY and len(self.api_key) >= 4:
            return text.replace(self.api_key, "[REDACTED]")
        return text


def _charge_unusable(sink: Sink, job: Job, body: str) -> None:
    """A line the batch billed but whose body is unusable costs its usage (as online), or its
    worst case when the usage cannot be read."""
    if sink.pricing is None:
        return
    usage = usage_of(body)
    sink.budget.charge(sink.pricing.cost(*usage) if usage else job.worst_usd)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
    return str(exc.message)[:300]
