"""The online transport: one request per job to an OpenAI-compatible endpoint.

- **Concurrency**: `max_concurrency` attempts in flight over the SDK's aiohttp transport. A slot
  is held for an HTTP attempt only: a request waiting out its backoff gives it back, so fresh
  work keeps the endpoint busy (tenacity drives the attempts; its sleep releases the slot).
- **Pacing** (`limits.Pacer`, aiolimiter): requests and tokens per minute; a tokens-per-minute
  charge is prompt + `max_tokens`, and what an attempt did not use is refunded, failures too.
- **Streaming** (server-sent events, on by default): a reply may take as long as `timeout_s`
  allows in all, and is cut only when no chunk has come for `idle_timeout_s`; a 32k-token
  reasoning answer is not lost to one hard timeout. The chunks are assembled into the same
  chat-completion body a non-streamed reply has, and that body is what the cache keeps.
- **Retries**: 429 waits out `Retry-After`; 5xx, timeouts, stalled streams and dropped
  connections back off with jitter (short while most attempts succeed, growing exponentially
  once most recent attempts fail); malformed or empty bodies are retried a few times. The SDK's
  own retries are off. An attempt cut off mid-way counts its worst case against the budget.
- **Secrets**: the key comes from the environment variable `api_key_env` names and is scrubbed
  from any error text; request bodies never hold it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx2
import openai
from openai import AsyncOpenAI, AsyncStream, DefaultAioHttpClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from longthought.teacher.guard import forbid
from longthought.teacher.limits import Limits, Pacer, backoff_delay, retry_after_seconds
from longthought.teacher.records import NO_KEY, Job, api_key_for
from longthought.teacher.responses import (
    MalformedResponse,
    Parsed,
    StreamAssembler,
    parse_completion,
    usage_of,
)
from longthought.teacher.tokens import count_tokens
from longthought.teacher.transport import ERROR_CHARS, Sink

ABORTED = ("timeout", "idle", "dropped")  # cut off mid-way: may be billed in full
SERVER_TROUBLE = ("server", "timeout", "idle", "dropped", "connection")


class _Retry(Exception):
    """A failed attempt worth another; `used`: tokens it consumed of its tokens-per-minute
    charge (the rest is refunded)."""

    def __init__(self, kind: str, reason: str, delay: float | None = None, used: int = 0) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.delay, self.used = kind, reason, delay, used


class _Fatal(Exception):
    """A failure no retry fixes (a 4xx other than 408/409/429)."""


@dataclass
class _Attempts:
    """One job's attempts so far, and how many of each kind failed."""

    n: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class OnlineTransport:
    name = "online"

    def __init__(self, teacher_spec: dict[str, Any], base_url: str, limits: Limits,
                 prefix: str = "") -> None:
        self.spec = teacher_spec
        self.base_url = base_url
        self.limits = limits
        self.prefix = prefix
        self.pacer = Pacer(limits.requests_per_minute, limits.tokens_per_minute)
        self.rng = random.Random()
        self.http_attempts = 0
        self.http_429 = 0
        self.recent: deque[bool] = deque(maxlen=100)  # last attempts: True = server trouble
        self.api_key = ""

    def summary(self) -> str:
        return f"{self.http_attempts} HTTP attempts ({self.http_429} answered 429)"

    # --- the run ---------------------------------------------------------------------------

    async def run(self, jobs: Iterable[Job], sink: Sink) -> None:
        forbid(f"an API request to {self.base_url}")
        self.api_key = api_key_for(self.spec)
        sink.scrub = self._scrub
        conc = self.limits.max_concurrency
        http = DefaultAioHttpClient(
            limits=httpx2.Limits(max_connections=conc + 8, max_keepalive_connections=conc + 8),
            timeout=httpx2.Timeout(self.limits.timeout_s,
                                   connect=min(10.0, self.limits.timeout_s)))
        client = AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                             timeout=self.limits.timeout_s, http_client=http)
        slots = asyncio.Semaphore(conc)
        live: set[asyncio.Task[None]] = set()
        try:
            for job in jobs:
                if not await sink.budget.reserve(job):
                    sink.skipped(job)
                    continue
                await slots.acquire()  # the first attempt's slot
                task = asyncio.create_task(self._job(client, job, sink, slots))
                live.add(task)
                task.add_done_callback(live.discard)
            while live:
                await asyncio.gather(*list(live))
        finally:
            await client.close()

    async def _job(self, client: AsyncOpenAI, job: Job, sink: Sink,
                   slots: asyncio.Semaphore) -> None:
        """All attempts of one job; reports it to the sink exactly once."""
        tries = _Attempts()
        held = True

        async def wait_out(delay: float) -> None:  # a backoff holds no slot
            nonlocal held
            slots.release()
            held = False
            await asyncio.sleep(delay)
            await slots.acquire()
            held = True

        retrying = AsyncRetrying(retry=retry_if_exception_type(_Retry),
                                 stop=lambda rs: self._out_of_retries(tries, rs),
                                 wait=lambda rs: self._delay(tries, rs), sleep=wait_out,
                                 reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    await self._attempt(client, job, sink, tries)
        except _Retry as r:
            sink.failed(job, r.reason, tries.n)
        except _Fatal as f:
            sink.failed(job, str(f), tries.n)
        except Exception as exc:  # a bug must not strand the job or stop the others
            sink.failed(job, f"internal error: {type(exc).__name__}: {exc}", tries.n)
        finally:
            if held:
                slots.release()

    async def _attempt(self, client: AsyncOpenAI, job: Job, sink: Sink, tries: _Attempts) -> None:
        await self.pacer.acquire(job.token_est)
        tries.n += 1
        self.http_attempts += 1
        t0 = time.monotonic()
        try:
            text, parsed = await self._send(client, job, sink)
        except _Retry as r:
            tries.by_kind[r.kind] = tries.by_kind.get(r.kind, 0) + 1
            self.recent.append(r.kind in SERVER_TROUBLE)
            self.pacer.refund_tokens(job.token_est - r.used)
            if r.kind in ABORTED:
                sink.budget.aborted(job)
            raise
        except _Fatal:
            self.pacer.refund_tokens(job.token_est)
            raise
        self.recent.append(False)
        used = (parsed.prompt_tokens or job.prompt_est) + (parsed.completion_tokens or 0)
        self.pacer.refund_tokens(job.token_est - used)
        sink.ok(job, text, parsed, time.monotonic() - t0, tries.n)

    # --- tenacity's stop and wait ----------------------------------------------------------

    def _limit(self, kind: str) -> int:
        lim = self.limits
        if kind == "rate_limit":
            return lim.max_rate_limit_retries
        if kind == "malformed":
            return lim.max_malformed_retries
        return lim.max_retries

    def _out_of_retries(self, tries: _Attempts, rs: RetryCallState) -> bool:
        exc = rs.outcome.exception() if rs.outcome else None
        if not isinstance(exc, _Retry):
            return True
        kind = exc.kind
        if kind in SERVER_TROUBLE:  # 5xx, timeouts and connections share one allowance
            used = sum(n for k, n in tries.by_kind.items() if k in SERVER_TROUBLE)
        else:
            used = tries.by_kind.get(kind, 0)
        return used > self._limit(kind)

    def _delay(self, tries: _Attempts, rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        assert isinstance(exc, _Retry)
        lim = self.limits
        if exc.kind == "rate_limit":
            if exc.delay is not None:  # honour Retry-After, plus a little jitter to spread
                return exc.delay + self.rng.uniform(0.0, min(1.0, 0.1 * exc.delay + 0.05))
            return backoff_delay(tries.by_kind["rate_limit"], self.rng, lim.backoff_base_s,
                                 lim.backoff_max_s)
        if exc.kind == "malformed":
            return backoff_delay(tries.by_kind["malformed"], self.rng, lim.backoff_base_s,
                                 lim.backoff_max_s)
        # While most attempts succeed, a request failing again is bad luck, not an outage:
        # keep its backoff short so it doesn't trail the run. When most recent attempts fail,
        # the endpoint is in trouble and backoff grows exponentially.
        n = sum(v for k, v in tries.by_kind.items() if k in SERVER_TROUBLE)
        outage = len(self.recent) >= 8 and sum(self.recent) * 2 >= len(self.recent)
        delay = backoff_delay(n if outage else min(n, 2), self.rng, lim.backoff_base_s,
                              lim.backoff_max_s)
        return max(delay, exc.delay) if exc.delay is not None else delay

    # --- one HTTP attempt ------------------------------------------------------------------

    async def _send(self, client: AsyncOpenAI, job: Job, sink: Sink) -> tuple[str, Parsed]:
        stream = self.limits.stream
        asm = StreamAssembler()
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                if stream:
                    text = await self._streamed(client, job, asm)
                else:
                    # The body goes out exactly as keyed and cached (no SDK-side
                    # transformation, which also costs more CPU than the rest of a request),
                    # and the raw response comes back unparsed: we keep it verbatim.
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
                raise _Retry("server", reason, delay, used=job.prompt_est) from None
            raise _Fatal(reason) from None
        except (openai.APIConnectionError, TimeoutError, aiohttp.ClientError) as exc:
            used = job.prompt_est + count_tokens(asm.text_so_far())
            if asm.chunks == 0 and not stream:
                used = job.token_est  # not streamed: what it used is unknown, assume all
            # (APITimeoutError is an APIConnectionError.) The aiohttp transport reports a dropped
            # connection as a connect timeout, so look at the root cause to say which it was.
            dropped = _dropped_connection(exc)
            if dropped is not None:
                raise _Retry("dropped", self._scrub(f"connection error: {dropped}"),
                             used=used) from None
            if isinstance(exc, openai.APITimeoutError | TimeoutError):
                raise _Retry("timeout", f"timeout: no complete response within "
                             f"{self.limits.timeout_s:g} s", used=used) from None
            cause = _root_cause(exc)
            raise _Retry("connection", self._scrub(
                f"connection error: {type(cause).__name__}: {cause}")) from None
        except openai.APIError as exc:  # an error event inside a stream
            raise _Retry("server", self._scrub(f"error in the stream: {exc.message}"),
                         used=job.prompt_est + count_tokens(asm.text_so_far())) from None
        try:
            parsed = parse_completion(text)
        except MalformedResponse as exc:
            usage = usage_of(text)
            # a billed but unusable reply still counts against the budget
            sink.budget.charge(sink.pricing.cost(*usage) if (usage and sink.pricing) else 0.0)
            raise _Retry("malformed", str(exc), used=job.prompt_est) from None
        return text, parsed

    async def _streamed(self, client: AsyncOpenAI, job: Job, asm: StreamAssembler) -> str:
        """Send `job` as a streamed request; every wait (for the headers, for each chunk) is
        bounded by `idle_timeout_s`. Returns the assembled body's JSON."""
        idle = self.limits.idle_timeout_s
        body = {**job.body, "stream": True, "stream_options": {"include_usage": True}}
        try:
            events = await asyncio.wait_for(
                client.post("/chat/completions", body=body, cast_to=object, stream=True,
                            stream_cls=AsyncStream[object]), idle)
        except TimeoutError:
            raise _Retry("idle", f"stream idle: no response headers within {idle:g} s "
                         "(limits.idle_timeout_s)", used=job.prompt_est) from None
        if events.response.headers.get("content-type", "").startswith("application/json"):
            # a server that ignores `stream` answers with a plain body: take it as it is
            try:
                return (await asyncio.wait_for(events.response.aread(), idle)).decode()
            except TimeoutError:
                raise _Retry("idle", f"no complete body within {idle:g} s after the headers",
                             used=job.token_est) from None
            finally:
                await events.close()
        it = events.__aiter__()
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(it.__anext__(), idle)
                except StopAsyncIteration:
                    break
                except json.JSONDecodeError as exc:
                    raise _Retry("malformed", f"malformed JSON in the stream: {exc}",
                                 used=job.prompt_est) from None
                except TimeoutError:
                    raise _Retry("idle", f"stream idle: no chunk for {idle:g} s after "
                                 f"{asm.chunks} chunk(s) (limits.idle_timeout_s)",
                                 used=job.prompt_est + count_tokens(asm.text_so_far())) from None
                try:
                    asm.add(chunk)
                except MalformedResponse as exc:
                    raise _Retry("malformed", str(exc), used=job.prompt_est) from None
        finally:
            await events.close()
        if asm.chunks == 0:
            raise _Retry("malformed", "empty response: the stream carried no chunk",
                         used=job.prompt_est)
        return asm.text()

    def _scrub(self, text: str) -> str:
        if self.api_key and self.api_key != NO_KEY and len(self.api_key) >= 4:
            return text.replace(self.api_key, "[REDACTED]")
        return text


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
