"""The hard spending cap every transport answers to.

A request is issued only if the money spent plus the worst case of everything in flight (and its
own) stays within `budget_usd`. What counts as spent: the cost of every reply received (cached
ones of this call included), a billed but unusable reply, and the worst case of every attempt
that was cut off mid-way (a timeout, a stalled stream, a dropped connection), since providers
may bill an aborted request in full and it cannot be known what they billed.
"""

from __future__ import annotations

import asyncio
import logging

from longthought.teacher.pricing import Pricing
from longthought.teacher.records import Job

log = logging.getLogger("longthought.teacher.collect")


class Budget:
    def __init__(self, cap: float | None, pricing: Pricing | None, spent: float = 0.0,
                 prefix: str = "") -> None:
        self.cap = cap if pricing is not None else None
        self.pricing = pricing
        self.spent = spent  # received responses' cost (cache hits of this call included)
        self.spent_run = 0.0  # of which spent in this run
        self.reserved = 0.0
        self.reserved_n = 0
        self.hit: str | None = None  # why the cap stopped new work, once it has
        self.prefix = prefix
        self._held: set[str] = set()  # keys holding a reservation
        self._changed: asyncio.Event | None = None

    def try_reserve(self, job: Job) -> str:
        """Reserve `job`'s worst case: "ok", "wait" (fits once in-flight requests settle) or
        "stop" (can never fit: the cap is reached)."""
        if self.cap is None:
            return "ok"
        if self.hit is not None:
            return "stop"
        if self.spent + self.reserved + job.worst_usd > self.cap:
            if self.reserved_n > 0:
                return "wait"
            self.hit = (
                f"budget cap reached: spent ${self.spent:.4f} + the next request's worst case "
                f"${job.worst_usd:.4f} would pass budget_usd ${self.cap:.4f}; no further "
                "requests are issued (their rows are status skipped_budget)")
            log.warning("%s%s", self.prefix, self.hit)
            return "stop"
        self.reserved += job.worst_usd
        self.reserved_n += 1
        self._held.add(job.key)
        return "ok"

    async def reserve(self, job: Job) -> bool:
        """Reserve `job`'s worst case, waiting for in-flight requests to settle if need be;
        False once the cap is reached."""
        while True:
            verdict = self.try_reserve(job)
            if verdict != "wait":
                return verdict == "ok"
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            await self._changed.wait()

    def hold(self, job: Job) -> None:
        """Reserve `job`'s worst case whatever the cap: it was sent before (a batch a re-run
        re-attaches to), so its money is due either way and must count against new work."""
        if job.key in self._held:
            return
        self.reserved += job.worst_usd
        self.reserved_n += 1
        self._held.add(job.key)

    def release(self, job: Job) -> None:
        """The job's reservation is no longer needed (it settled); a no-op if it held none."""
        if job.key not in self._held:
            return
        self._held.discard(job.key)
        self.reserved -= job.worst_usd
        self.reserved_n -= 1
        if self._changed is not None:
            self._changed.set()

    def charge(self, usd: float | None) -> None:
        """Book money spent (a reply, a billed unusable reply, an aborted attempt)."""
        if usd:
            self.spent += usd
            self.spent_run += usd

    def aborted(self, job: Job) -> None:
        """An attempt cut off mid-way: count its worst case, since it may be billed in full."""
        self.charge(job.worst_usd)
