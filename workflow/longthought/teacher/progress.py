"""The collector's live progress bar (done / cached / failed counts, tokens, USD, ETA).

A tqdm bar on stderr when wanted; in quiet mode nothing is drawn and only the final summary is
logged. Counters are kept either way, so the summary and the bar never disagree.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

REFRESH_S = 0.5


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

    def close(self) -> None:
        self._postfix(force=True)
        self.bar.close()
