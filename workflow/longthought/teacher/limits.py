"""Client-side pacing and retry timing: token buckets for requests and tokens per minute,
exponential backoff with jitter, and `Retry-After` parsing.

Why a small request burst: a real API quantises its per-minute limit into (about) one-second
buckets. A client that paces itself at exactly the limit with a *small* burst leaves the server's
bucket nearly full, so ordinary jitter in arrival times never empties it and nothing is answered
429; a client that bursts a whole second's worth keeps the server's bucket near empty and gets a
429 for every late packet.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Mapping

REQUEST_BURST_S = 0.05  # request bucket holds this many seconds' worth (at least one request)
TOKEN_BURST_S = 1.0  # token bucket holds this many seconds' worth


class TokenBucket:
    """An async token bucket; `acquire` waits FIFO until the amount can be taken.

    An amount larger than the capacity is allowed (the bucket goes into debt), so one very long
    request is paced by the average rate instead of blocking forever.
    """

    def __init__(self, rate_per_s: float, capacity: float) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate must be > 0, got {rate_per_s}")
        self.rate = rate_per_s
        self.capacity = max(1.0, capacity)
        self.tokens = self.capacity
        self.t = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = now

    async def acquire(self, amount: float = 1.0) -> None:
        async with self._lock:  # FIFO: waiters are served in arrival order
            need = min(amount, self.capacity)
            while True:
                self._refill()
                if self.tokens >= need:
                    self.tokens -= amount
                    return
                await asyncio.sleep((need - self.tokens) / self.rate)

    def refund(self, amount: float) -> None:
        """Give back tokens reserved but not used (e.g. estimate minus actual usage)."""
        if amount > 0:
            self._refill()
            self.tokens = min(self.capacity, self.tokens + amount)


class Pacer:
    """Requests-per-minute and tokens-per-minute limits together (either may be None)."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.requests = None
        self.tokens = None
        if requests_per_minute:
            rate = requests_per_minute / 60.0
            self.requests = TokenBucket(rate, rate * REQUEST_BURST_S)
        if tokens_per_minute:
            rate = tokens_per_minute / 60.0
            self.tokens = TokenBucket(rate, rate * TOKEN_BURST_S)

    async def acquire(self, tokens: float) -> None:
        if self.requests is not None:
            await self.requests.acquire(1.0)
        if self.tokens is not None:
            await self.tokens.acquire(tokens)

    def refund_tokens(self, amount: float) -> None:
        if self.tokens is not None:
            self.tokens.refund(amount)


def backoff_delay(retry: int, rng: random.Random, base: float = 0.25, cap: float = 30.0) -> float:
    """Exponential backoff with jitter for the `retry`-th retry (1-based): uniform in
    [d/2, d] with d = min(cap, base * 2**(retry-1)), so retries spread out but never bunch at 0."""
    d = min(cap, base * 2 ** max(0, retry - 1))
    return rng.uniform(d / 2, d)


def retry_after_seconds(headers: Mapping[str, str] | None,
                        now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra is None:
        return None
    try:
        value = float(ra)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
