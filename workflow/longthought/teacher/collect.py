"""The one request path: every chat request the pipeline pays for (in dollars or GPU-hours).

Trace collection, API-model evaluation and LLM judges all come here, so they share one set of
guarantees, whichever transport carries the requests (`online`: an OpenAI-compatible endpoint;
`batch`: its Batch API, at batch prices; `local`: an open teacher generated on this machine; see
`transport` for the shape):

- **Never pay twice.** Each request is keyed by the sha256 of its canonical form (endpoint,
  model, messages, params, sample index); what the cache holds is not asked again, and every
  reply is committed to the cache as it arrives by one writer thread (`cache.CacheWriter`), so a
  re-run (also after `kill -9`) reads it back.
- **A hard budget** (`budget.Budget`): no request goes out unless spend plus the worst case of
  everything in flight stays within `budget_usd`; past that, the rest is `skipped_budget`.
- **One result per request**, in order: `ok` (read back from the cache), `failed` with its
  reason, or `skipped_budget`. `iter_results` streams them out of the cache a chunk at a time,
  so a large collection never holds every reply in memory; `run_requests` returns a list for
  callers that want one.
- **Secrets stay out.** The key is read from the environment variable named by `api_key_env`
  and is scrubbed from any error text; request bodies never hold it.
- **Escalation** (`escalate=`, trace collection only): replies cut off at their limit
  (`finish_reason: length`) are asked again at each longer limit in turn, as requests derived
  from the original (`records.with_limit`: a key of their own). A request's result is its
  longest complete-or-last answer; the original key, and every complete reply, never change.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longthought.teacher.batch import BatchOptions, BatchTransport
from longthought.teacher.budget import Budget
from longthought.teacher.cache import CacheEntry, CacheWriter, RequestCache
from longthought.teacher.limits import Limits
from longthought.teacher.local import LocalTransport
from longthought.teacher.online import OnlineTransport
from longthought.teacher.pricing import Pricing, max_output_tokens
from longthought.teacher.progress import Progress
from longthought.teacher.records import (
    ChatRequest,
    ChatResult,
    Job,
    Outcome,
    endpoint_id,
    plan_jobs,
    request_key,
    request_limit,
    result_from_entry,
    result_json,
    teacher_mode,
    with_limit,
)
from longthought.teacher.responses import MalformedResponse
from longthought.teacher.transport import Sink, Transport

__all__ = ["ChatRequest", "ChatResult", "Collection", "acollect", "arun_requests",
           "iter_results", "result_json", "run_requests"]

log = logging.getLogger("longthought.teacher.collect")
READ_CHUNK = 1000
STATE_DIR = "transport-state"


@dataclass
class Collection:
    """What one collection call produced; results are read back from the cache on demand."""

    keys: list[str]  # one per request, in request order
    cache_dir: str
    outcomes: dict[str, Outcome]  # keys that did not come back ok
    requests: dict[str, str]  # their request JSON
    fresh: set[str]  # keys answered in this run (the rest of the ok ones were cached)
    unwritten: dict[str, CacheEntry] = field(default_factory=dict)  # ok, but not in the cache
    final: dict[str, str] = field(default_factory=dict)  # request key -> its escalated answer's
    notes: dict[str, str] = field(default_factory=dict)  # request key -> why escalation failed

    def iter_results(self, chunk: int = READ_CHUNK) -> Iterator[ChatResult]:
        """One ChatResult per request, in order, read from the cache `chunk` keys at a time."""
        with RequestCache(self.cache_dir) as cache:
            for start in range(0, len(self.keys), chunk):
                part = self.keys[start:start + chunk]
                want = [f for f in (self.final.get(k, k) for k in dict.fromkeys(part))
                        if f not in self.outcomes and f not in self.unwritten]
                entries = cache.get_many(want)
                made: dict[str, ChatResult] = {}
                for key in part:
                    if key not in made:
                        made[key] = self._result(key, entries)
                    yield made[key]

    def _result(self, root: str, entries: dict[str, CacheEntry]) -> ChatResult:
        key = self.final.get(root, root)
        outcome = self.outcomes.get(key)
        if outcome is not None:
            return ChatResult(key=key, request=self.requests[key], status=outcome.status,
                              attempts=outcome.attempts, error=outcome.error,
                              max_tokens=request_limit(self.requests[key]))
        entry = entries.get(key) or self.unwritten.get(key)
        if entry is None:
            raise RuntimeError(f"request {key[:12]} was answered but is missing from the "
                               f"cache in {self.cache_dir} (removed while collecting?)")
        result = result_from_entry(entry, cached=key not in self.fresh)
        result.error = self.notes.get(root)
        return result


def _check_budget(teacher_spec: dict[str, Any], name: str) -> tuple[Pricing | None, float | None]:
    pricing = Pricing.from_spec(teacher_spec.get("pricing"), f"teacher {name}: pricing",
                                batch=teacher_mode(teacher_spec) == "batch")
    budget = teacher_spec.get("budget_usd")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)
                               or budget < 0):
        raise ValueError(f"teacher {name}: budget_usd must be a number >= 0 or null, "
                         f"got {budget!r}")
    if budget is not None and pricing is None:
        raise ValueError(f"teacher {name}: budget_usd is set but pricing is not; the cap needs "
                         "prices (USD per 1M input/output/reasoning tokens)")
    return pricing, budget


def make_transport(teacher_spec: dict[str, Any], base_url: str | None, name: str,
                   prefix: str) -> Transport:
    """The transport the teacher's `mode` asks for (limits checked before anything is sent)."""
    mode = teacher_mode(teacher_spec)
    if mode == "local":
        return LocalTransport(teacher_spec)
    real = teacher_spec.get("base_url") != "sim"
    limits = Limits.from_spec(teacher_spec.get("limits"), f"teacher {name}", real=real)
    if not base_url:
        raise ValueError(f"teacher {name}: no base_url to send requests to")
    if mode == "batch":
        opts = BatchOptions.from_spec(teacher_spec.get("batch"), f"teacher {name}")
        online = Pricing.from_spec(teacher_spec.get("pricing"), f"teacher {name}: pricing")
        return BatchTransport(teacher_spec, base_url, limits, opts, prefix, online)
    return OnlineTransport(teacher_spec, base_url, limits, prefix)


def _read_hits(cache_dir: str, keys: list[str]) -> tuple[set[str], float, int, set[str]]:
    """(cached keys, their cost, their tokens, those cut off at their limit); an unreadable
    entry is dropped to be re-asked."""
    hits: set[str] = set()
    truncated: set[str] = set()
    usd, tokens = 0.0, 0
    with RequestCache(cache_dir) as cache:
        for start in range(0, len(keys), READ_CHUNK):
            for key, e in cache.get_many(keys[start:start + READ_CHUNK]).items():
                try:
                    result = result_from_entry(e, cached=True)
                except MalformedResponse as exc:
                    log.warning("cache entry %s is unreadable (%s); requesting it again",
                                key[:12], exc)
                    cache.delete(key)
                    continue
                hits.add(key)
                if result.finish_reason == "length":
                    truncated.add(key)
                usd += e.cost_usd or 0.0
                tokens += (e.prompt_tokens or 0) + (e.completion_tokens or 0)
    return hits, usd, tokens, truncated


def state_dir_for(cache_dir: str, endpoint: str) -> Path:
    """Where a transport keeps what must outlive a crash (e.g. a submitted batch's id)."""
    return Path(cache_dir) / STATE_DIR / hashlib.sha256(endpoint.encode()).hexdigest()[:16]


async def acollect(teacher_spec: dict[str, Any], requests: Sequence[ChatRequest], cache_dir: str,
                   base_url: str | None, progress: bool = True, tag: str | None = None,
                   transport: Transport | None = None,
                   escalate: Sequence[int] = ()) -> Collection:
    """Answer `requests` from the cache, send the rest through the teacher's transport (or
    `transport`), and return the Collection to read results from. `escalate`: rising output
    limits at which replies cut off at their limit are asked again (trace collection)."""
    name = tag or str(teacher_spec.get("model"))
    prefix = f"[{tag}] " if tag else ""
    pricing, cap = _check_budget(teacher_spec, name)
    transport = transport or make_transport(teacher_spec, base_url, name, prefix)
    endpoint = endpoint_id(teacher_spec, base_url)
    keys, jobs = plan_jobs(teacher_spec, list(requests), endpoint, pricing)
    budget = Budget(cap, pricing, 0.0, prefix)
    writer = CacheWriter(cache_dir)
    sink = Sink(writer, budget, pricing, Progress(0, 0, "", False), tag,
                state_dir_for(cache_dir, endpoint), cache_dir)
    sink.keep_truncated = bool(escalate)
    col = Collection(keys, cache_dir, sink.outcomes, sink.requests, sink.fresh, writer.unwritten)
    t0 = time.monotonic()
    try:
        n_unique, n_hits = await _round(jobs, sink, transport, tag or "collect", progress)
        for level in escalate:
            derived, parent = _escalations(sink, level, endpoint, pricing)
            if derived:
                log.info("%s%d repl(y/ies) cut off at their limit: asking again at max_tokens "
                         "%d", prefix, len(derived), level)
                await _round(derived, sink, transport, f"{tag or 'collect'} @{level}", progress)
                _settle(col, sink, parent, level, prefix)
    finally:
        await asyncio.to_thread(writer.flush)
        writer.close()
    col.unwritten = writer.unwritten
    _log_summary(col, n_unique, n_hits, transport, budget, time.monotonic() - t0, prefix)
    if escalate and sink.truncated:
        log.info("%s%d repl(y/ies) still cut off at the longest limit they were asked at "
                 "(escalate_max_tokens %s)", prefix, len(sink.truncated), list(escalate))
    return col


async def _round(jobs: dict[str, Job], sink: Sink, transport: Transport, desc: str,
                 progress: bool) -> tuple[int, int]:
    """Answer `jobs` from the cache, send the rest; returns (unique requests, cache hits)."""
    unique = list(jobs)
    hits, spent, tokens, truncated = await asyncio.to_thread(_read_hits, sink.cache_dir or "",
                                                             unique)
    if sink.keep_truncated:
        sink.truncated.update((k, jobs[k]) for k in truncated)
    todo: deque[Job] = deque(j for k, j in jobs.items() if k not in hits)
    jobs.clear()  # the transport consumes the queue: each job is freed once sent
    bar = Progress(len(unique), len(hits), desc, progress)
    bar.tokens, bar.usd = tokens, spent
    sink.progress = bar
    sink.budget.spent += spent  # cached answers count against the cap
    try:
        if todo:
            await transport.run(_drain(todo), sink)
    finally:
        bar.close()
    return len(unique), len(hits)


def _escalations(sink: Sink, level: int, endpoint: str, pricing: Pricing | None
                 ) -> tuple[dict[str, Job], dict[str, str]]:
    """The derived requests at `level` for the replies cut off below it: (jobs by key, derived
    key -> the key it escalates)."""
    derived: dict[str, Job] = {}
    parent: dict[str, str] = {}
    for key, job in list(sink.truncated.items()):
        limit = max_output_tokens(job.body)
        if limit is None or limit >= level:
            continue
        body = with_limit(job.body, level)
        k2 = request_key(endpoint, body, job.sample_index)
        worst = pricing.worst_case(job.prompt_est, level) if pricing else 0.0
        derived[k2] = Job(k2, body, job.sample_index, job.prompt_est, job.prompt_est + level,
                          worst)
        parent[k2] = key
        del sink.truncated[key]
    return derived, parent


def _settle(col: Collection, sink: Sink, parent: dict[str, str], level: int,
            prefix: str) -> None:
    """Point each escalated request at its longer answer; one that did not come back keeps the
    shorter answer, with the reason as its error (a re-run tries again)."""
    root_of = {v: k for k, v in col.final.items()}  # current answer -> the original request
    failed = 0
    for k2, k1 in parent.items():
        root = root_of.get(k1, k1)
        outcome = sink.outcomes.get(k2)
        if outcome is None:
            col.final[root] = k2
            col.notes.pop(root, None)
        else:
            failed += 1
            col.notes[root] = (f"escalation to max_tokens {level} {outcome.status}: "
                               f"{outcome.error}; the reply cut off at the lower limit is kept")
    if failed:
        log.warning("%s%d escalation(s) to max_tokens %d did not come back; their shorter, "
                    "cut-off replies are kept (a re-run asks again)", prefix, failed, level)


def _drain(queue: deque[Job]) -> Iterator[Job]:
    while queue:
        yield queue.popleft()


def _log_summary(col: Collection, n_unique: int, n_hits: int, transport: Transport,
                 budget: Budget, seconds: float, prefix: str) -> None:
    final = [col.outcomes.get(col.final.get(k, k)) for k in dict.fromkeys(col.keys)]
    failed = [o for o in final if o is not None and o.status == "failed"]
    n_skip = sum(1 for o in final if o is not None and o.status == "skipped_budget")
    n_ok = n_unique - len(failed) - n_skip
    log.info("%s%d unique requests: ok %d (cached %d), failed %d, skipped_budget %d; %s in "
             "%.1f s; spent $%.4f this run, $%.4f in all%s", prefix, n_unique, n_ok, n_hits,
             len(failed), n_skip, transport.summary(), seconds, budget.spent_run, budget.spent,
             f" of budget_usd ${budget.cap:.4f}" if budget.cap is not None else "")
    if col.final or col.notes:
        log.info("%sescalation: %d request(s) answered again at a longer limit, %d kept their "
                 "cut-off reply (the longer request failed or was skipped)", prefix,
                 len(col.final), len(col.notes))
    if budget.hit:
        log.warning("%s%s", prefix, budget.hit)
    if failed:
        reasons: dict[str, int] = {}
        for o in failed:
            head = (o.error or "").split(" (after")[0][:120]
            reasons[head] = reasons.get(head, 0) + 1
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:5]
        log.warning("%s%d request(s) failed; most common reasons: %s", prefix, len(failed),
                    "; ".join(f"{n}x {r}" for r, n in top))


async def arun_requests(teacher_spec: dict[str, Any], requests: Sequence[ChatRequest],
                        cache_dir: str, base_url: str | None, progress: bool = True,
                        tag: str | None = None) -> list[ChatResult]:
    """Async form of `run_requests`, for callers already inside an event loop."""
    col = await acollect(teacher_spec, requests, cache_dir, base_url, progress, tag)
    return await asyncio.to_thread(lambda: list(col.iter_results()))


def run_requests(teacher_spec: dict[str, Any], requests: Sequence[ChatRequest], cache_dir: str,
                 base_url: str | None, progress: bool = True,
                 tag: str | None = None) -> list[ChatResult]:
    """Send `requests` to the teacher (limits, retries, cache, budget) and return one ChatResult
    per request, in order. `base_url` is the endpoint (None for a `mode: local` teacher). `tag`
    names the caller (e.g. the task) in logs and in the cache's status view."""
    return asyncio.run(arun_requests(teacher_spec, requests, cache_dir, base_url, progress, tag))


def iter_results(teacher_spec: dict[str, Any], requests: Sequence[ChatRequest], cache_dir: str,
                 base_url: str | None, progress: bool = True, tag: str | None = None,
                 transport: Transport | None = None,
                 escalate: Sequence[int] = ()) -> Iterator[ChatResult]:
    """`run_requests`, streamed: collect, then yield results out of the cache in order."""
    col = asyncio.run(acollect(teacher_spec, requests, cache_dir, base_url, progress, tag,
                               transport, escalate))
    yield from col.iter_results()
