"""Requests and probes the collector tests share: numbered problems, the sim's counters, and
the key the sim names a request by."""

from __future__ import annotations

import hashlib
import json
import urllib.request

from longthought.teacher.collect import ChatRequest, ChatResult


def problems(n: int, start: int = 100) -> list[ChatRequest]:
    """n distinct one-line sums (distinct bodies, so distinct cache keys)."""
    return [ChatRequest([{"role": "user", "content": f"Compute ${a} + {a * 3 + 7}$."}])
            for a in range(start, start + n)]


def stats(base: str) -> dict:
    """The sim's `/sim/stats` (with its event log) for a client base URL `.../v1`."""
    with urllib.request.urlopen(base.replace("/v1", "/sim/stats?events=1")) as resp:
        return json.loads(resp.read())


def server_key(result: ChatResult) -> str:
    """The sim names a request by its body's canonical JSON, which is what `request` holds."""
    return hashlib.sha256(result.request.encode()).hexdigest()
