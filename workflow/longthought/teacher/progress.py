"""The collector's live progress bar (done / cached / failed counts, tokens, USD, ETA).

A tqdm bar on stderr when wanted. In quiet mode (batch jobs) nothing is drawn; instead one log
line every `QUIET_LOG_S` seconds says how far the collection is, so a long job's log file shows
progress without carriage-return noise. Counters are kept either way.
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

REFRESH_S = 0.5
QUIET_LOG_S = 60.0
log = logging.getLogger("longthought.teacher.collect")


class Progress:
    def __init__(self, total: int, cached: int, desc: str, enabled: bool) -> None:
        self.total = total
        self.cached = cached
        self.ok = 0
        self.failed = 0
        self.skipped = 0
        self.tokens = 0
        self.usd = 0.0
        self._last = 0.0
        self.desc = desc
        self.t0 = time.monotonic()
        self._last_log = self.t0
        self.bar = tqdm(total=total, initial=cached, desc=desc, unit="req", file=sys.stderr,
                        dynamic_ncols=True, mininterval=REFRESH_S, smoothing=0.1,
                        disable=not enabled)
        self._postfix(force=True)

    def _postfix(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.bar.disable or (not force and now - self._last < REFRESH_S):
            return
        self._last = now
        self.bar.set_postfix_str(
            f"ok={self.ok} cached={self.cached} failed={self.failed} "
            f"tok={self.tokens:,} ${self.usd:.4f}", refresh=False)

    def add(self, status: str, tokens: int, usd: float) -> None:
        if status == "ok":
            self.ok += 1
        elif status == "failed":
            self.failed += 1
        else:
            self.skipped += 1
        self.tokens += tokens
        self.usd += usd
        self._postfix()
        self.bar.update(1)
        if self.bar.disable:
            now = time.monotonic()
            if now - self._last_log >= QUIET_LOG_S:
                self._last_log = now
                log.info("[%s] %s", self.desc, self.line(now))

    def line(self, now: float) -> str:
        done = self.cached + self.ok + self.failed + self.skipped
        fresh = done - self.cached
        rate = fresh / max(1e-9, now - self.t0)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        return (f"{done}/{self.total} done (ok {self.ok}, cached {self.cached}, failed "
                f"{self.failed}, skipped {self.skipped}); {self.tokens:,} tokens, "
                f"${self.usd:.4f}; {rate:.1f} req/s, ETA {eta:.0f} s")

    def close(self) -> None:
        self._postfix(force=True)
        self.bar.close()
