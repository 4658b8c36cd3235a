"""The shape every transport has: jobs in, outcomes reported to a `Sink`.

A transport is how unanswered requests reach a model: `online` (an OpenAI-compatible endpoint,
one streamed HTTP request per job), `local` (a model generated on this machine's GPU or CPU) and,
next, `batch` (a provider's batch API). The core (`collect`) plans the jobs (keys, estimates),
answers what the cache already has, and hands the rest to `Transport.run(jobs, sink)`. The
transport reports each job exactly once:

- `sink.ok(job, body_text, parsed, latency_s, attempts)`: a usable chat-completion body; the sink
  books its cost, frees its budget reservation and hands the entry to the cache writer;
- `sink.failed(job, reason, attempts)`: given up, with the reason (a re-run asks again);
- `sink.skipped(job)`: never sent because the budget cap was reached.

Budget: before a job costs anything the transport reserves its worst case with
`await sink.budget.reserve(job)` (False: the cap is reached, report `skipped`), and books money
spent on attempts that produced no usable reply with `sink.budget.charge(usd)` or
`sink.budget.aborted(job)`. A submit/poll/download transport (batch) fits the same calls: it
reserves each job it puts in a batch, submits, polls, and reports each downloaded line with `ok`
or `failed`; state it must keep across a crash (a submitted batch's id, so a re-run polls
instead of paying again) goes under `sink.state_dir`, which the core keeps per endpoint next to
the cache (`batch.py` is that transport).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from longthought.teacher.budget import Budget
from longthought.teacher.cache import CacheEntry, canonical_json
from longthought.teacher.pricing import Pricing
from longthought.teacher.progress import Progress
from longthought.teacher.records import Job, Outcome
from longthought.teacher.responses import Parsed
from longthought.teacher.tokens import count_tokens

log = logging.getLogger("longthought.teacher.collect")
ERROR_CHARS = 500


class EntryWriter(Protocol):
    """Where received entries go: the SQLite cache (`CacheWriter`) or a shard (`ShardWriter`)."""

    unwritten: dict[str, CacheEntry]

    def put(self, entry: CacheEntry) -> None: ...
    def flush(self) -> None: ...


class Transport(Protocol):
    """Sends the jobs the cache could not answer and reports each one to the sink once."""

    name: str

    async def run(self, jobs: Iterable[Job], sink: Sink) -> None: ...

    def summary(self) -> str:
        """One line for the collection's log summary (attempts, errors seen...)."""
        ...


class Sink:
    """Books each outcome: cost and budget, the cache entry, the progress bar, the status."""

    def __init__(self, writer: EntryWriter, budget: Budget, pricing: Pricing | None,
                 progress: Progress, tag: str | None, state_dir: Path | None = None,
                 cache_dir: str | None = None) -> None:
        self.writer = writer
        self.budget = budget
        self.pricing = pricing
        self.progress = progress
        self.tag = tag
        self.state_dir = state_dir
        self.cache_dir = cache_dir  # the shared cache the writer commits to (None: a shard)
        self.outcomes: dict[str, Outcome] = {}  # failed / skipped, with the request kept
        self.requests: dict[str, str] = {}  # request JSON of failed / skipped keys
        self.fresh: set[str] = set()  # keys answered in this run
        self.truncated: dict[str, Job] = {}  # answered with finish_reason length (escalation)
        self.keep_truncated = False
        self.scrub: Callable[[str], str] = lambda text: text

    def cost_of(self, job: Job, parsed: Parsed) -> float | None:
        if self.pricing is None:
            return None
        if parsed.has_usage and parsed.completion_tokens is not None:
            return self.pricing.cost(parsed.prompt_tokens, parsed.completion_tokens,
                                     parsed.reasoning_tokens)
        # no usage sent: estimate from the text so the budget stays honest
        return self.pricing.cost(job.prompt_est, count_tokens(parsed.content)
                                 + count_tokens(parsed.reasoning_content), 0)

    def ok(self, job: Job, text: str, parsed: Parsed, latency_s: float | None,
           attempts: int) -> None:
        cost = self.cost_of(job, parsed)
        self.budget.charge(cost)
        self.budget.release(job)
        self.writer.put(CacheEntry(
            job.key, canonical_json(job.body), self.scrub(text),
            None if latency_s is None else round(latency_s, 6), attempts, parsed.prompt_tokens,
            parsed.completion_tokens, parsed.reasoning_tokens, cost, self.tag))
        self.fresh.add(job.key)
        self.outcomes.pop(job.key, None)  # asked again (an escalation) and answered now
        if self.keep_truncated and parsed.finish_reason == "length":
            self.truncated[job.key] = job
        self.progress.add("ok", (parsed.prompt_tokens or 0) + (parsed.completion_tokens or 0),
                          cost or 0.0)

    def failed(self, job: Job, reason: str, attempts: int) -> None:
        self.budget.release(job)
        reason = self.scrub(reason)
        self.outcomes[job.key] = Outcome(
            "failed", f"{reason[:ERROR_CHARS]} (after {attempts} attempt(s))", attempts)
        self.requests[job.key] = canonical_json(job.body)
        self.progress.add("failed", 0, 0.0)

    def skipped(self, job: Job) -> None:
        self.outcomes[job.key] = Outcome("skipped_budget",
                                         self.budget.hit or "budget cap reached", 0)
        self.requests[job.key] = canonical_json(job.body)
        self.progress.add("skipped_budget", 0, 0.0)


class Unavailable:
    """A transport for jobs nothing here may send: each is `failed` with the reason (e.g. a
    local teacher's requests that its GPU job did not generate)."""

    name = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.n = 0

    async def run(self, jobs: Iterable[Job], sink: Sink) -> None:
        for job in jobs:
            self.n += 1
            sink.failed(job, self.reason, 0)

    def summary(self) -> str:
        return f"{self.n} request(s) not available: {self.reason}"
