"""The online transport's request path under the faults issue 18 names: long streamed replies,
stalled streams, aborted attempts and the budget, backoff that frees its slot, tokens-per-minute
refunds, and SQLite writes that never stall the event loop."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

import pytest
from sim_requests import problems, stats

from longthought.teacher.cache import CACHE_FILE, RequestCache
from longthought.teacher.collect import run_requests
from longthought.teacher.limits import Limits, Pacer
from longthought.teacher.sim_server import serve_in_thread

FAST = {"max_concurrency": 8, "timeout_s": 5, "max_retries": 6, "backoff_base_s": 0.02,
        "backoff_max_s": 0.1}


def teacher(**over) -> dict:
    spec = {"base_url": "sim", "model": "sim-o1", "api_key_env": None,
            "sampling": {"temperature": 0.7, "max_tokens": 512}, "limits": dict(FAST),
            "pricing": {"input": 1.0, "output": 2.0, "reasoning": 2.0}, "budget_usd": None,
            "sim": {"seed": 1}}
    spec.update(over)
    return spec


def test_slow_streamed_reply_completes_within_the_idle_timeout(tmp_path):
    """A reply spread over 6 s in chunks 1 s apart: streamed with a 2 s idle timeout it lands
    whole; the same reply not streamed is cut by a 3 s timeout (the failure issue 18 names)."""
    faults = {"rate_slow_stream": 1.0, "slow_stream_s": 6, "slow_stream_gap_s": 1}
    streamed = teacher(limits={**FAST, "timeout_s": 30, "idle_timeout_s": 2, "max_retries": 0})
    with serve_in_thread({"seed": 1, "faults": faults}) as base:
        t0 = time.monotonic()
        (r,) = run_requests(streamed, problems(1), str(tmp_path / "a"), base, progress=False)
        elapsed = time.monotonic() - t0
    assert r.status == "ok" and r.attempts == 1 and elapsed >= 5.5
    assert r.finish_reason == "stop" and "\\boxed" in r.content and r.completion_tokens > 0
    body = json.loads(r.response)  # the chunks assembled into one chat.completion body
    assert body["object"] == "chat.completion" and body["usage"]["completion_tokens"] > 0
    hard = teacher(limits={**FAST, "timeout_s": 3, "stream": False, "max_retries": 0})
    with serve_in_thread({"seed": 1, "faults": faults}) as base:
        (cut,) = run_requests(hard, problems(1), str(tmp_path / "b"), base, progress=False)
    assert cut.status == "failed" and "timeout" in cut.error


def test_streamed_and_plain_replies_are_the_same_cache_entry(tmp_path):
    with serve_in_thread({"seed": 1}) as base:
        plain = run_requests(teacher(limits={**FAST, "stream": False}), problems(3),
                             str(tmp_path), base, progress=False)
        n = stats(base)["requests"]
        streamed = run_requests(teacher(), problems(3), str(tmp_path), base, progress=False)
        assert stats(base)["requests"] == n  # the streamed call found them all cached
    assert [r.key for r in plain] == [r.key for r in streamed] and all(r.cached for r in streamed)
    with serve_in_thread({"seed": 1}) as base:
        fresh = run_requests(teacher(), problems(3), str(tmp_path / "s"), base, progress=False)
    assert [r.content for r in fresh] == [r.content for r in plain]
    assert [r.completion_tokens for r in fresh] == [r.completion_tokens for r in plain]


def test_stalled_stream_is_cut_by_the_idle_timeout_and_retried(tmp_path):
    spec = teacher(limits={**FAST, "timeout_s": 20, "idle_timeout_s": 0.5, "max_retries": 10})
    with serve_in_thread({"seed": 1, "faults": {"rate_stall": 0.3, "hang_s": 30}}) as base:
        results = run_requests(spec, problems(12), str(tmp_path), base, progress=False)
        s = stats(base)
    assert all(r.status == "ok" for r in results)
    assert s["by_status"].get("stall", 0) > 0 and s["duplicates"] == 0
    assert max(r.attempts for r in results) > 1


def test_an_aborted_attempt_counts_its_worst_case_against_the_budget(tmp_path, caplog):
    # every request hangs; worst case per attempt ~$0.00105 (512 tokens at $2/M + the prompt)
    spec = teacher(budget_usd=0.004, limits={**FAST, "timeout_s": 0.3, "max_retries": 0,
                                             "max_concurrency": 1})
    with serve_in_thread({"seed": 1, "faults": {"rate_hang": 1.0, "hang_s": 30}}) as base:
        results = run_requests(spec, problems(8), str(tmp_path), base, progress=False)
    statuses = [r.status for r in results]
    # each aborted attempt books its worst case: after three, a fourth no longer fits
    assert statuses.count("failed") == 3 and statuses.count("skipped_budget") == 5, statuses
    assert "budget cap reached" in caplog.text


def test_a_request_waiting_out_its_backoff_holds_no_slot(tmp_path):
    """One slot: while a 429'd request waits out its Retry-After, others are served."""
    spec = teacher(limits={**FAST, "max_concurrency": 1})
    with serve_in_thread({"seed": 3, "faults": {"rate_429": 0.4, "retry_after_s": 0.5}}) as base:
        results = run_requests(spec, problems(10), str(tmp_path), base, progress=False)
        events = stats(base)["events"]
    assert all(r.status == "ok" for r in results)
    served_during_wait = 0
    for i, (t, key, status, _) in enumerate(events):
        if status != "429":
            continue
        nxt = next((e for e in events[i + 1:] if e[1] == key), None)
        assert nxt is not None and nxt[0] - t >= 0.49
        served_during_wait += sum(1 for e in events if t < e[0] < nxt[0] and e[1] != key
                                  and e[2] == "200")
    assert served_during_wait > 0


def test_tokens_per_minute_refunds_what_a_failed_attempt_did_not_use():
    async def scenario() -> tuple[float, float]:
        pacer = Pacer(None, 60_000)  # 1,000 tokens/s, bucket of 1,000
        await pacer.acquire(1000)  # an attempt charged its worst case ...
        pacer.refund_tokens(1000)  # ... and answered 429: it used nothing
        t0 = time.monotonic()
        await pacer.acquire(1000)
        refunded = time.monotonic() - t0
        t0 = time.monotonic()
        await pacer.acquire(1000)  # no refund this time: waits for the bucket to drain
        return refunded, time.monotonic() - t0

    refunded, unrefunded = asyncio.run(scenario())
    assert refunded < 0.1 and unrefunded > 0.8


def test_a_429_wave_leaves_no_token_debt(tmp_path):
    """Tokens-per-minute paced at 30k/min: after 2 s of nothing but 429s the collector is back
    at the limit at once (failed attempts were refunded, so no debt was left)."""
    spec = teacher(sampling={"max_tokens": 24}, limits={
        **FAST, "max_concurrency": 16, "tokens_per_minute": 30_000, "max_rate_limit_retries": 50})
    sim = {"seed": 1, "faults": {"outage": {"after_s": 0, "for_s": 2, "status": 429},
                                 "retry_after_s": 0.2}}
    with serve_in_thread(sim) as base:
        results = run_requests(spec, problems(40), str(tmp_path), base, progress=False)
        events = stats(base)["events"]
    assert all(r.status == "ok" for r in results)
    wave = [t for t, _, status, _ in events if status == "429"]
    ok = [(t, tokens) for t, _, status, tokens in events if status == "200"]
    assert len(wave) >= 16 and ok and max(wave) - min(wave) >= 1.0  # a real wave
    first = min(t for t, _ in ok)
    assert first >= max(wave) - 0.05  # nothing got through during it
    window = [tok for t, tok in ok if first <= t < first + 2.0]
    assert sum(window) / 2.0 >= 0.7 * 30_000 / 60  # at the limit right after the wave


def test_cache_writes_never_stall_requests_in_flight(tmp_path):
    """Another process holds the cache's write lock for 2 s: the requests (0.5 s timeout) still
    complete on their first attempt, and their entries are committed once the lock is free."""
    with RequestCache(tmp_path):
        pass
    con = sqlite3.connect(tmp_path / CACHE_FILE, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN IMMEDIATE")
    release = threading.Timer(2.0, lambda: con.execute("COMMIT"))
    release.start()
    spec = teacher(limits={**FAST, "timeout_s": 0.5, "max_retries": 0})
    with serve_in_thread({"seed": 1, "latency_ms": 50}) as base:
        results = run_requests(spec, problems(20), str(tmp_path), base, progress=False)
    release.join()
    assert all(r.status == "ok" and r.attempts == 1 for r in results)
    assert all(not r.cached and r.content for r in results)
    with RequestCache(tmp_path) as cache:
        assert len(cache.get_many(r.key for r in results)) == 20


def test_a_real_endpoint_needs_an_explicit_timeout(tmp_path):
    spec = teacher(base_url="https://api.example.invalid/v1",
                   limits={"max_concurrency": 2})
    with pytest.raises(ValueError, match="timeout_s must be set for a real endpoint"):
        run_requests(spec, problems(1), str(tmp_path), "https://api.example.invalid/v1")
    with pytest.raises(ValueError, match="limits.stream must be true or false"):
        Limits.from_spec({"stream": "yes"}, "teacher t")


def test_a_server_that_ignores_stream_is_read_as_a_plain_reply(tmp_path):
    """Some OpenAI-compatible servers answer a streamed request with one JSON body."""
    from aiohttp import web

    asked = []

    async def plain(request: web.Request) -> web.Response:
        body = await request.json()
        asked.append(body.get("stream"))
        text = body["messages"][-1]["content"]
        return web.json_response({
            "id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"{text} \\boxed{{1}}"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", plain)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        results = run_requests(teacher(), problems(3), str(tmp_path),
                               f"http://127.0.0.1:{port}/v1", progress=False)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert asked == [True, True, True]
    assert all(r.status == "ok" and r.attempts == 1 and "\\boxed{1}" in r.content
               and r.completion_tokens == 4 for r in results)
