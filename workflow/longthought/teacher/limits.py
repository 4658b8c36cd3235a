"""Client-side limits: the `limits:` block, request and token pacing on `aiolimiter`, and the
retry timing `tenacity` is driven with.

Why a small request burst: a real API quantises its per-minute limit into (about) one-second
buckets. A client that paces itself at exactly the limit with a *small* burst leaves the server's
bucket nearly full, so ordinary jitter in arrival times never empties it and nothing is answered
429; a client that bursts a whole second's worth keeps the server's bucket near empty and gets a
429 for every late packet.

Why refunds: a tokens-per-minute limit is charged prompt + `max_tokens` when a request goes out
(the most it can use). What the attempt did not use goes back: the unused part of the reply on
success, and everything but the prompt when it failed (a 429 or a 5xx produced no reply), so a
wave of failures leaves no debt behind and the collector is back at the limit as soon as the
server is.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiolimiter import AsyncLimiter

REQUEST_BURST_S = 0.05  # request bucket holds this many seconds' worth (at least one request)
TOKEN_BURST_S = 1.0  # token bucket holds this many seconds' worth
REAL_ENDPOINT_NEEDS = ("timeout_s",)  # keys a non-sim endpoint must set explicitly


@dataclass
class Limits:
    max_concurrency: int = 32
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout_s: float = 60.0  # the whole request, streamed or not
    idle_timeout_s: float = 60.0  # streamed: the longest silence between two chunks
    stream: bool = True  # server-sent events, so a long reply is not cut by one hard timeout
    max_retries: int = 6  # 5xx, timeouts, dropped connections
    max_rate_limit_retries: int = 30  # 429s (expected under load, so counted apart)
    max_malformed_retries: int = 2  # malformed or empty bodies
    backoff_base_s: float = 0.25  # first retry after 0.125-0.25 s, doubling up to the max
    backoff_max_s: float = 30.0

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None, where: str, real: bool = False) -> Limits:
        """Parse a `limits:` block; `real` (not the sim) requires an explicit `timeout_s`."""
        spec = dict(spec or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"{where}.limits: unknown key(s) {sorted(unknown)}; "
                             f"known: {sorted(known)}")
        if real:
            missing = [k for k in REAL_ENDPOINT_NEEDS if spec.get(k) is None]
            if missing:
                raise ValueError(
                    f"{where}.limits.timeout_s must be set for a real endpoint: how long one "
                    "request may take in all (a 32k-token reasoning reply takes minutes; "
                    "streamed replies are also cut after limits.idle_timeout_s of silence)")
        out = cls()
        for k, v in spec.items():
            if k == "stream":
                if not isinstance(v, bool):
                    raise ValueError(f"{where}.limits.stream must be true or false, got {v!r}")
                out.stream = v
                continue
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
        if out.timeout_s <= 0 or out.idle_timeout_s <= 0:
            raise ValueError(f"{where}.limits.timeout_s and idle_timeout_s must be > 0")
        return out


class Bucket(AsyncLimiter):
    """aiolimiter's leaky bucket, plus taking more than its capacity and giving back."""

    async def take(self, amount: float) -> None:
        """Take `amount`; more than the capacity is taken in capacity-sized pieces, so one
        very long request is paced by the average rate instead of being refused."""
        while amount > self.max_rate:
            await self.acquire(self.max_rate)
            amount -= self.max_rate
        await self.acquire(max(0.0, amount))

    def refund(self, amount: float) -> None:
        """Give back capacity taken but not used, and wake whoever now fits."""
        if amount > 0:
            self._leak()
            self._level = max(0.0, self._level - amount)
            self._wake_next()


def bucket(per_minute: float, burst_s: float) -> Bucket:
    """A bucket passing `per_minute` on average, holding `burst_s` seconds' worth (>= 1)."""
    rate = per_minute / 60.0
    capacity = max(1.0, rate * burst_s)
    return Bucket(capacity, capacity / rate)


class Pacer:
    """Requests-per-minute and tokens-per-minute limits together (either may be None)."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.requests = bucket(requests_per_minute, REQUEST_BURST_S) if requests_per_minute \
            else None
        self.tokens = bucket(tokens_per_minute, TOKEN_BURST_S) if tokens_per_minute else None

    async def acquire(self, tokens: float) -> None:
        if self.requests is not None:
            await self.requests.take(1.0)
        if self.tokens is not None:
            await self.tokens.take(tokens)

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
    """Seconds to wait from `retry-after-ms`, or `retry-after` (seconds or an HTTP date).
    (The SDK parses these only inside its own retry loop, which the collector turns off.)"""
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
