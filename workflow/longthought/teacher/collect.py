"""The one API client: every chat request the pipeline pays for goes through `run_requests`.

Trace collection, API-model evaluation and LLM judges all call it, so they share one set of
guarantees:

- **Never pay twice.** Each request is keyed by the sha256 of its canonical form (endpoint,
  model, messages, params, sample index); responses are committed to the SQLite cache
  (`cache.RequestCache`) as they arrive, and a re-run (also after `kill -9`) reads them back.
- **As fast as the API allows, no faster.** `max_concurrency` requests in flight over the SDK's
  aiohttp transport; requests and tokens per minute paced client-side (`limits.Pacer`).
- **Retries that don't stall the rest.** 429 waits out `Retry-After`; 5xx, timeouts and dropped
  connections back off with jitter (short while most attempts succeed, growing exponentially
  once most recent attempts fail); malformed or empty bodies are retried a few times. A request
  waiting to retry gives its slot to fresh work. The SDK's own retries are off. A request that
  runs out of retries is recorded `failed` with its reason; the others go on.
- **A hard budget.** A request is issued only if money spent plus the worst case of everything
  in flight (and its own) stays within `budget_usd`; past that, the rest is `skipped_budget`.
- **Secrets stay out.** The key is read from the environment variable named by `api_key_env`
  and is scrubbed from any error text; request bodies never hold it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx2
import openai
from openai import AsyncOpenAI, DefaultAioHttpClient

from longthought.teacher.cache import CacheEntry, RequestCache, canonical_json, request_key
from longthought.teacher.limits import Pacer, backoff_delay, retry_after_seconds
from longthought.teacher.pricing import Pricing, max_output_tokens
from longthought.teacher.progress import Progress
from longthought.teacher.responses import MalformedResponse, Parsed, parse_completion, usage_of
from longthought.teacher.tokens import count_prompt_tokens, count_tokens

log = logging.getLogger("longthought.teacher.collect")
# The SDK's HTTP layer logs every request at INFO; with thousands of requests that buries the
# collector's own summary in job logs, so keep it to warnings unless someone set a level already.
if logging.getLogger("httpx2").level == logging.NOTSET:
    logging.getLogger("httpx2").setLevel(logging.WARNING)

SIM_CONTENT_KEYS = ("seed", "slip_rate", "wrong_rate", "truncate_rate", "style",
                    "reasoning_content")
NO_KEY = "EMPTY"  # what local servers (vLLM, SGLang, the sim) accept when no key is configured
ERROR_CHARS = 500
DEFAULT_TPM_OUTPUT = 4096  # token-bucket estimate of a reply when no max_tokens is set


@dataclass
class ChatRequest:
    """One chat request. `params=None` uses the teacher's `sampling`; `model=None` its model."""

    messages: list[dict[str, Any]]
    sample_index: int = 0
    params: dict[str, Any] | None = None
    model: str | None = None


@dataclass(slots=True)
class ChatResult:
    """What came back for one request (status ok, failed or skipped_budget) and what it cost."""

    key: str
    request: str  # canonical JSON of the request body (never a key or header)
    status: str
    content: str | None = None
    reasoning_content: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    latency_s: float | None = None
    attempts: int = 0
    cached: bool = False
    error: str | None = None
    cost_usd: float | None = None
    response: str | None = None  # the raw response body as received


@dataclass
class Limits:
    max_concurrency: int = 32
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout_s: float = 60.0
    max_retries: int = 6  # 5xx, timeouts, dropped connections
    max_rate_limit_retries: int = 30  # 429s (expected under load, so counted apart)
    max_malformed_retries: int = 2  # malformed or empty bodies
    backoff_base_s: float = 0.25  # first retry after 0.125-0.25 s, doubling up to the max
    backoff_max_s: float = 30.0

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None, where: str) -> Limits:
        spec = dict(spec or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"{where}.limits: unknown key(s) {sorted(unknown)}; "
                             f"known: {sorted(known)}")
        out = cls()
        for k, v in spec.items():
            if v is None:
                if k in ("requests_per_minute", "tokens_per_minute"):
                    continue
                raise ValueError(f"{where}.limits.{k} must be a number, not null")
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"{where}.limits.{k} must be a number >= 0, got {v!r}")
            if k.startswith("max_") and int(v) != v:
                raise ValueError(f"{where}.limits.{k} must be an integer, got {v!r}")
            setattr(out, k, int(v) if k.startswith("max_") else float(v))
        if out.max_concurrency < 1:
            raise ValueError(f"{where}.limits.max_concurrency must be >= 1")
        if out.timeout_s <= 0:
            raise ValueError(f"{where}.limits.timeout_s must be > 0")
        return out


def endpoint_id(teacher_spec: dict[str, Any], base_url: str) -> str:
    """Which server answers, as part of the cache key. The sim is named by its content settings
    (its port changes every run, its fault settings don't change what it says); a real endpoint
    by its URL."""
    if teacher_spec.get("base_url") == "sim":
        sim = teacher_spec.get("sim") or {}
        return "sim:" + canonical_json({k: sim.get(k) for k in SIM_CONTENT_KEYS if k in sim})
    return str(base_url).rstrip("/")


def sample_seed(base: Any, sample_index: int) -> int:
    """A per-sample `seed` so that samples of one prompt differ yet reproduce."""
    import hashlib

    digest = hashlib.sha256(f"{base}:{sample_index}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def build_body(teacher_spec: dict[str, Any], req: ChatRequest) -> dict[str, Any]:
    """The request body: model, messages, the sampling params (None dropped), per-sample seed."""
    params = dict(teacher_spec.get("sampling") or {}) if req.params is None else dict(req.params)
    if params.get("stream"):
        raise ValueError("streaming requests are not supported by the collector (stream: true)")
    params.pop("stream", None)
    model = req.model or teacher_spec.get("model")
    if not model:
        raise ValueError("teacher spec has no 'model'")
    if not isinstance(req.messages, list) or not req.messages:
        raise ValueError("a request needs a non-empty list of messages")
    base_seed = params.pop("seed", None)
    body: dict[str, Any] = {"model": model, "messages": req.messages}
    body.update({k: v for k, v in params.items() if v is not None})
    if teacher_spec.get("send_seed", True):
        body["seed"] = sample_seed(0 if base_seed is None else base_seed, req.sample_index)
    elif base_seed is not None:
        body["seed"] = base_seed
    return body


def api_key_for(teacher_spec: dict[str, Any]) -> str:
    """The API key, only ever from the environment variable the spec names."""
    env = teacher_spec.get("api_key_env")
    key = os.environ.get(env) if env else None
    if key:
        return key
    if teacher_spec.get("base_url") == "sim" or not env:
        return NO_KEY
    raise ValueError(f"teacher {teacher_spec.get('model')!r}: the environment variable {env!r} "
                     "(api_key_env) is not set; export the API key there")


@dataclass(slots=True)
class _Job:
    key: str
    body: dict[str, Any]
    prompt_est: int
    token_est: int
    worst_usd: float
    attempts: int = 0
    retries: int = 0
    rate_limited: int = 0
    malformed: int = 0
    reserved: bool = False
    last_error: str = ""


class _Schedule:
    """Hands out jobs: retries that are due first, then fresh work. A job waiting out its
    backoff holds no worker, so the other slots keep the endpoint busy."""

    def __init__(self, jobs: deque[_Job]) -> None:
        self.fresh = jobs  # owned: a job is dropped once done, so memory falls as work finishes
        self.ready: deque[_Job] = deque()
        self.sleeping = 0
        self.active = 0
        self.stopped = False  # budget cap reached: no more fresh work
        self.blocked = False  # fresh work waits until an in-flight request settles
        self._waiters: list[asyncio.Future[None]] = []

    async def get(self) -> _Job | None:
        while True:
            if self.ready:
                job = self.ready.popleft()
            elif self.fresh and not self.stopped and not self.blocked:
                job = self.fresh.popleft()
            elif self.sleeping == 0 and self.active == 0:
                return None
            else:
                await self.wait()
                continue
            self.active += 1
            return job

    def later(self, job: _Job, delay: float) -> None:
        self.sleeping += 1
        asyncio.get_running_loop().call_later(max(0.0, delay), self._wake, job)

    def _wake(self, job: _Job) -> None:
        self.sleeping -= 1
        self.ready.append(job)
        self.notify()

    def release(self) -> None:
        self.active -= 1
        self.notify()

    async def wait(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        await fut

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)


class _Retry(Exception):
    def __init__(self, kind: str, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.delay = kind, reason, delay


class _Fatal(Exception):
    pass


class _Collector:
    def __init__(self, teacher_spec: dict[str, Any], cache: RequestCache, base_url: str,
                 tag: str | None, progress: Progress, budget: float | None,
                 pricing: Pricing | None, limits: Limits, spent: float) -> None:
        self.spec = teacher_spec
        self.cache = cache
        self.base_url = base_url
        self.tag = tag
        self.progress = progress
        self.budget = budget
        self.pricing = pricing
        self.limits = limits
        self.spent = spent  # received responses' cost (cache hits of this call included)
        self.spent_run = 0.0  # of which paid in this run
        self.reserved = 0.0
        self.reserved_n = 0
        self.budget_hit: str | None = None
        self.results: dict[str, ChatResult] = {}
        self.rng = random.Random()
        self.http_attempts = 0
        self.http_429 = 0
        self.cache_errors = 0
        self.recent: deque[bool] = deque(maxlen=100)  # last attempts: True = server-side failure
        self.pacer = Pacer(limits.requests_per_minute, limits.tokens_per_minute)
        self.api_key = ""
        self.sched: _Schedule | None = None

    # --- the run ---------------------------------------------------------------------------

    async def run(self, jobs: deque[_Job]) -> None:
        self.api_key = api_key_for(self.spec)
        conc = self.limits.max_concurrency
        http = DefaultAioHttpClient(
            limits=httpx2.Limits(max_connections=conc + 8, max_keepalive_connections=conc + 8),
            timeout=httpx2.Timeout(self.limits.timeout_s, connect=min(10.0,
                                                                      self.limits.timeout_s)))
        client = AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                             timeout=self.limits.timeout_s, http_client=http)
        self.sched = _Schedule(jobs)
        try:
            n_workers = min(conc, len(jobs))
            del jobs
            workers = [asyncio.create_task(self._worker(client)) for _ in range(n_workers)]
            await asyncio.gather(*workers)
        finally:
            await client.close()
        for job in self.sched.fresh:  # never issued: the budget stopped them
            self._finish(job, self._skipped(job))

    async def _worker(self, client: AsyncOpenAI) -> None:
        assert self.sched is not None
        while True:
            job = await self.sched.get()
            if job is None:
                return
            try:
                await self._step(client, job)
            except Exception as exc:  # a bug must not strand the job or stop the others
                self._settle(job, self._failed(job, f"internal error: {type(exc).__name__}: "
                                                     f"{self._scrub(str(exc))}"))
            finally:
                self.sched.release()

    async def _step(self, client: AsyncOpenAI, job: _Job) -> None:
        """One attempt of `job`: finish it, or schedule its retry."""
        assert self.sched is not None
        if not job.reserved:
            verdict = self._reserve(job)
            if verdict == "wait":  # in-flight work must settle first; retries still run
                self.sched.fresh.appendleft(job)
                self.sched.blocked = True
                return
            if verdict == "stop":
                self._finish(job, self._skipped(job))
                return
        await self.pacer.acquire(job.token_est)
        job.attempts += 1
        self.http_attempts += 1
        t0 = time.monotonic()
        try:
            text, parsed = await self._send(client, job)
            self.recent.append(False)
            result = self._ok(job, text, parsed, time.monotonic() - t0)
        except _Retry as r:
            job.last_error = r.reason
            if r.kind in ("server", "timeout", "connection"):
                self.recent.append(True)
            delay = self._retry_delay(job, r)
            if delay is None:
                self._settle(job, self._failed(job, r.reason))
            else:
                self.sched.later(job, delay)
            return
        except _Fatal as f:
            self._settle(job, self._failed(job, str(f)))
            return
        self.pacer.refund_tokens(job.token_est - (result.prompt_tokens or job.prompt_est)
                                 - (result.completion_tokens or 0))
        try:
            self.cache.put(CacheEntry(job.key, result.request, result.response or "",
                                      result.latency_s, result.attempts, result.prompt_tokens,
                                      result.completion_tokens, result.reasoning_tokens,
                                      result.cost_usd, self.tag))
        except sqlite3.Error as exc:  # keep the paid answer in this run's output regardless
            self.cache_errors += 1
            if self.cache_errors == 1:
                log.error("%scould not write to the request cache (%s); answers are still "
                          "returned, but a re-run would ask for them again", self._prefix(), exc)
        self._settle(job, result)

    # --- one HTTP attempt ------------------------------------------------------------------

    async def _send(self, client: AsyncOpenAI, job: _Job) -> tuple[str, Parsed]:
        try:
            async with asyncio.timeout(self.limits.timeout_s + 5.0):  # backstop to the SDK's
                # The body goes out exactly as keyed and cached (no SDK-side transformation,
                # which also costs more CPU than the rest of a request), and the raw response
                # comes back unparsed: we keep it verbatim and parse it ourselves.
                raw = await client.post("/chat/completions", body=job.body,
                                        cast_to=httpx2.Response)
                text = raw.text
        except openai.APIStatusError as exc:
            status = exc.status_code
            reason = self._scrub(f"HTTP {status}: {_error_message(exc)}")
            delay = retry_after_seconds(exc.response.headers if exc.response else None)
            if status == 429:
                self.http_429 += 1
                raise _Retry("rate_limit", reason, delay) from None
            if status >= 500 or status in (408, 409):
                raise _Retry("server", reason, delay) from None
            raise _Fatal(reason) from None
        except (openai.APIConnectionError, TimeoutError) as exc:
            # (APITimeoutError is an APIConnectionError.) The aiohttp transport reports a dropped
            # connection as a connect timeout, so look at the root cause to say which it was.
            dropped = _dropped_connection(exc)
            if dropped is not None:
                raise _Retry("connection", self._scrub(f"connection error: {dropped}")) from None
            if isinstance(exc, openai.APITimeoutError | TimeoutError):
                raise _Retry("timeout", f"timeout: no response within "
                             f"{self.limits.timeout_s:g} s") from None
            cause = _root_cause(exc)
            raise _Retry("connection", self._scrub(
                f"connection error: {type(cause).__name__}: {cause}")) from None
        try:
            parsed = parse_completion(text)
        except MalformedResponse as exc:
            usage = usage_of(text)
            cost = self.pricing.cost(*usage) if (usage and self.pricing) else 0.0
            self.spent += cost  # a billed but unusable reply still counts against the budget
            self.spent_run += cost
            raise _Retry("malformed", str(exc)) from None
        return text, parsed

    def _retry_delay(self, job: _Job, r: _Retry) -> float | None:
        """Seconds until the retry, or None once this kind of failure is out of retries."""
        lim = self.limits
        if r.kind == "rate_limit":
            job.rate_limited += 1
            if job.rate_limited > lim.max_rate_limit_retries:
                return None
            if r.delay is not None:  # honour Retry-After, plus a little jitter to spread
                return r.delay + self.rng.uniform(0.0, min(1.0, 0.1 * r.delay + 0.05))
            return backoff_delay(job.rate_limited, self.rng, lim.backoff_base_s,
                                 lim.backoff_max_s)
        if r.kind == "malformed":
            job.malformed += 1
            if job.malformed > lim.max_malformed_retries:
                return None
            return backoff_delay(job.malformed, self.rng, lim.backoff_base_s, lim.backoff_max_s)
        job.retries += 1
        if job.retries > lim.max_retries:
            return None
        # While most attempts succeed, a request failing again is bad luck, not an outage:
        # keep its backoff short so it doesn't trail the run. When most recent attempts fail,
        # the endpoint is in trouble and backoff grows exponentially.
        outage = len(self.recent) >= 8 and sum(self.recent) * 2 >= len(self.recent)
        step = job.retries if outage else min(job.retries, 2)
        delay = backoff_delay(step, self.rng, lim.backoff_base_s, lim.backoff_max_s)
        return max(delay, r.delay) if r.delay is not None else delay

    # --- budget ----------------------------------------------------------------------------

    def _reserve(self, job: _Job) -> str:
        """Reserve `job`'s worst case against the budget: "ok", "wait" (fits once in-flight
        requests settle) or "stop" (can never fit: the cap is reached)."""
        if self.budget is None or self.pricing is None:
            return "ok"
        assert self.sched is not None
        if self.spent + self.reserved + job.worst_usd > self.budget:
            if self.reserved_n > 0:
                return "wait"
            if not self.sched.stopped:
                self.sched.stopped = True
                self.budget_hit = (
                    f"budget cap reached: spent ${self.spent:.4f} + the next request's worst case "
                    f"${job.worst_usd:.4f} would pass budget_usd ${self.budget:.4f}; "
                    "no further requests are issued (their rows are status skipped_budget)")
                log.warning("%s%s", self._prefix(), self.budget_hit)
            return "stop"
        self.reserved += job.worst_usd
        self.reserved_n += 1
        job.reserved = True
        return "ok"

    # --- outcomes --------------------------------------------------------------------------

    def _ok(self, job: _Job, text: str, parsed: Parsed, latency: float) -> ChatResult:
        has_usage = parsed.has_usage and parsed.completion_tokens is not None
        cost = None
        if self.pricing is not None:
            if has_usage:
                cost = self.pricing.cost(parsed.prompt_tokens, parsed.completion_tokens,
                                         parsed.reasoning_tokens)
            else:  # no usage sent: estimate from the text so the budget stays honest
                cost = self.pricing.cost(job.prompt_est, count_tokens(parsed.content)
                                         + count_tokens(parsed.reasoning_content), 0)
        return ChatResult(
            key=job.key, request=canonical_json(job.body), status="ok",
            content=parsed.content, reasoning_content=parsed.reasoning_content,
            finish_reason=parsed.finish_reason, model=parsed.model,
            prompt_tokens=parsed.prompt_tokens, completion_tokens=parsed.completion_tokens,
            reasoning_tokens=parsed.reasoning_tokens, latency_s=round(latency, 6),
            attempts=job.attempts, cached=False, error=None, cost_usd=cost,
            response=self._scrub(text))

    def _failed(self, job: _Job, reason: str) -> ChatResult:
        return ChatResult(key=job.key, request=canonical_json(job.body), status="failed",
                          attempts=job.attempts,
                          error=f"{reason[:ERROR_CHARS]} (after {job.attempts} attempt(s))")

    def _skipped(self, job: _Job) -> ChatResult:
        return ChatResult(key=job.key, request=canonical_json(job.body), status="skipped_budget",
                          attempts=0, error=self.budget_hit or "budget cap reached")

    def _settle(self, job: _Job, result: ChatResult) -> None:
        """Final outcome of an issued job: free its reservation, book its cost."""
        if job.reserved:
            job.reserved = False
            self.reserved -= job.worst_usd
            self.reserved_n -= 1
        if result.cost_usd:
            self.spent += result.cost_usd
            self.spent_run += result.cost_usd
        self._finish(job, result)
        if self.sched is not None:
            self.sched.blocked = False  # a settled request may have made room in the budget
            self.sched.notify()

    def _finish(self, job: _Job, result: ChatResult) -> None:
        self.results[job.key] = result
        tokens = (result.prompt_tokens or 0) + (result.completion_tokens or 0)
        self.progress.add(result.status, tokens, result.cost_usd or 0.0)

    def _scrub(self, text: str) -> str:
        if self.api_key and self.api_key != NO_KEY and len(self.api_key) >= 4:
            return text.replace(self.api_key, "[REDACTED]")
        return text

    def _prefix(self) -> str:
        return f"[{self.tag}] " if self.tag else ""


def _root_cause(exc: BaseException) -> BaseException:
    seen = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def _dropped_connection(exc: BaseException) -> str | None:
    """'ServerDisconnectedError: ...' when the server closed the connection mid-request."""
    cur: BaseException | None = exc
    seen = set()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError
                      | ConnectionResetError | aiohttp.ClientPayloadError):
            return f"{type(cur).__name__}: {cur}"
        cur = cur.__cause__ or cur.__context__
    return None


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:ERROR_CHARS]
    return str(exc.message)[:ERROR_CHARS]


def _from_cache(e: CacheEntry) -> ChatResult:
    parsed = parse_completion(e.response)
    return ChatResult(
        key=e.key, request=e.request, status="ok", content=parsed.content,
        reasoning_content=parsed.reasoning_content, finish_reason=parsed.finish_reason,
        model=parsed.model, prompt_tokens=e.prompt_tokens, completion_tokens=e.completion_tokens,
        reasoning_tokens=e.reasoning_tokens, latency_s=e.latency_s, attempts=e.attempts or 0,
        cached=True, error=None, cost_usd=e.cost_usd, response=e.response)


async def arun_requests(teacher_spec: dict[str, Any], requests: Sequence[ChatRequest],
                        cache_dir: str, base_url: str, progress: bool = True,
                        tag: str | None = None) -> list[ChatResult]:
    """Async form of `run_requests`, for callers already inside an event loop."""
    name = tag or str(teacher_spec.get("model"))
    limits = Limits.from_spec(teacher_spec.get("limits"), f"teacher {name}")
    pricing = Pricing.from_spec(teacher_spec.get("pricing"), f"teacher {name}: pricing")
    budget = teacher_spec.get("budget_usd")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)
                               or budget < 0):
        raise ValueError(f"teacher {name}: budget_usd must be a number >= 0 or null, "
                         f"got {budget!r}")
    if budget is not None and pricing is None:
        raise ValueError(f"teacher {name}: budget_usd is set but pricing is not; the cap needs "
                         "prices (USD per 1M input/output/reasoning tokens)")
    endpoint = endpoint_id(teacher_spec, base_url)

    keys: list[str] = []
    jobs: dict[str, _Job] = {}
    for i, req in enumerate(requests):
        try:
            body = build_body(teacher_spec, req)
        except ValueError as exc:
            raise ValueError(f"request {i}: {exc}") from None
        key = request_key(endpoint, body, req.sample_index)
        keys.append(key)
        if key in jobs:
            continue
        prompt_est = count_prompt_tokens(body["messages"])
        max_out = max_output_tokens(body)
        worst = pricing.worst_case(prompt_est, max_out) if pricing else 0.0
        jobs[key] = _Job(key, body, prompt_est, prompt_est + (max_out or DEFAULT_TPM_OUTPUT), worst)

    with RequestCache(cache_dir) as cache:
        hits = cache.get_many(jobs)
        results: dict[str, ChatResult] = {}
        for k, e in list(hits.items()):
            try:
                results[k] = _from_cache(e)
            except MalformedResponse as exc:  # a damaged entry: ask again, replace it
                log.warning("cache entry %s is unreadable (%s); requesting it again", k[:12], exc)
                cache.delete(k)
                del hits[k]
        spent = sum(r.cost_usd or 0.0 for r in results.values())
        n_unique = len(jobs)
        todo = deque(j for k, j in jobs.items() if k not in hits)
        jobs.clear()  # the schedule owns the jobs now: each is freed once done
        bar = Progress(n_unique, len(hits), tag or "collect", progress)
        bar.tokens = sum((r.prompt_tokens or 0) + (r.completion_tokens or 0)
                         for r in results.values())
        bar.usd = spent
        col = _Collector(teacher_spec, cache, base_url, tag, bar, budget, pricing, limits, spent)
        t0 = time.monotonic()
        try:
            if todo:
                await col.run(todo)
        finally:
            bar.close()
        results.update(col.results)

    out = [results[k] for k in keys]
    n_ok = sum(1 for r in results.values() if r.status == "ok")
    n_failed = sum(1 for r in results.values() if r.status == "failed")
    n_skip = sum(1 for r in results.values() if r.status == "skipped_budget")
    log.info("%s%d unique requests: ok %d (cached %d), failed %d, skipped_budget %d; "
             "%d HTTP attempts (%d answered 429) in %.1f s; spent $%.4f this run, $%.4f in all%s",
             col._prefix(), n_unique, n_ok, len(hits), n_failed, n_skip, col.http_attempts,
             col.http_429, time.monotonic() - t0, col.spent_run, col.spent,
             f" of budget_usd ${budget:.4f}" if budget is not None else "")
    if col.budget_hit:
        log.warning("%s%s", col._prefix(), col.budget_hit)
    if n_failed:
        reasons: dict[str, int] = {}
        for r in results.values():
            if r.status == "failed":
                head = (r.error or "").split(" (after")[0][:120]
                reasons[head] = reasons.get(head, 0) + 1
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:5]
        log.warning("%s%d request(s) failed; most common reasons: %s", col._prefix(), n_failed,
                    "; ".join(f"{n}x {r}" for r, n in top))
    return out


def run_requests(teacher_spec: dict[str, Any], requests: Sequence[ChatRequest], cache_dir: str,
                 base_url: str, progress: bool = True,
                 tag: str | None = None) -> list[ChatResult]:
    """Send `requests` to the endpoint at `base_url` (limits, retries, cache, budget) and return
    one ChatResult per request, in order. `tag` names the caller (e.g. the task) in logs and in
    the cache's status view. See the module docstring for the guarantees."""
    return asyncio.run(arun_requests(teacher_spec, requests, cache_dir, base_url, progress, tag))


def result_json(result: ChatResult) -> str:
    """A ChatResult as JSON (for logs and debugging)."""
    return json.dumps({f: getattr(result, f) for f in ChatResult.__slots__}, ensure_ascii=False)
