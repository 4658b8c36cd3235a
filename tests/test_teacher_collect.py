"""The collector against the sim server over real HTTP: faults retried or failed with a reason,
Retry-After honoured, client-side pacing, the cache (rerun, kill -9 and resume), the budget cap,
secrets, and bad input."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from sim_requests import problems, server_key, stats

from longthought.teacher.cache import CACHE_FILE
from longthought.teacher.collect import ChatRequest, run_requests
from longthought.teacher.sim_server import serve_in_thread

FAST = {"max_concurrency": 8, "timeout_s": 5, "max_retries": 6, "backoff_base_s": 0.02,
        "backoff_max_s": 0.1}


def teacher(**over) -> dict:
    spec = {"base_url": "sim", "model": "sim-o1", "api_key_env": "LT_TEST_KEY",
            "sampling": {"temperature": 0.7, "max_tokens": 512}, "limits": dict(FAST),
            "pricing": {"input": 1.0, "output": 2.0, "reasoning": 2.0}, "budget_usd": None,
            "sim": {"seed": 1}}
    spec.update(over)
    return spec


@pytest.mark.parametrize("kind", ["429", "500", "503", "drop", "malformed", "empty", "hang"])
def test_each_fault_is_retried_and_every_request_lands_once(tmp_path, kind):
    faults = {f"rate_{kind}": 0.25, "retry_after_s": 0.05, "hang_s": 30}
    # enough retries that exhausting them (0.25**11 per request) never happens in practice
    spec = teacher(limits={**FAST, "timeout_s": 0.4, "max_retries": 10,
                           "max_malformed_retries": 10})
    with serve_in_thread({"seed": 1, "faults": faults}) as base:
        results = run_requests(spec, problems(30), str(tmp_path), base, progress=False)
        s = stats(base)
    assert [r.status for r in results] == ["ok"] * 30
    assert s["by_status"].get(kind, 0) > 0, s["by_status"]
    assert s["served"] == 30 and s["served_unique"] == 30 and s["duplicates"] == 0
    assert sorted(s["served_keys"]) == sorted(server_key(r) for r in results)
    assert max(r.attempts for r in results) > 1
    assert all(r.content and "\\boxed" in r.content for r in results
               if r.finish_reason == "stop")


@pytest.mark.parametrize("kind,reason,attempts", [
    ("500", "HTTP 500", 3), ("malformed", "malformed JSON", 3), ("empty", "empty response", 3),
    ("drop", "connection error", 3), ("hang", "timeout", 3)])
def test_persistent_faults_fail_with_their_reason(tmp_path, kind, reason, attempts):
    spec = teacher(limits={**FAST, "timeout_s": 0.3, "max_retries": 2,
                           "max_malformed_retries": 2})
    with serve_in_thread({"faults": {f"rate_{kind}": 1.0, "hang_s": 30}}) as base:
        results = run_requests(spec, problems(3), str(tmp_path), base, progress=False)
    for r in results:
        assert r.status == "failed" and reason in r.error and r.attempts == attempts, r.error
        assert r.content is None and r.response is None
    con = sqlite3.connect(tmp_path / CACHE_FILE)
    assert con.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 0  # nothing to reuse


def test_client_errors_fail_fast_without_stopping_others(tmp_path):
    reqs = problems(3) + [ChatRequest([{"role": "user", "content": "x"}],
                                      params={"max_tokens": -5})]
    with serve_in_thread({}) as base:
        results = run_requests(teacher(), reqs, str(tmp_path), base, progress=False)
    assert [r.status for r in results] == ["ok", "ok", "ok", "failed"]
    assert "HTTP 400" in results[3].error and results[3].attempts == 1


def test_retry_after_is_honoured(tmp_path):
    with serve_in_thread({"faults": {"rate_429": 0.5, "retry_after_s": 0.3}}) as base:
        results = run_requests(teacher(), problems(12), str(tmp_path), base, progress=False)
        events = stats(base)["events"]
    assert all(r.status == "ok" for r in results)
    last_429: dict[str, float] = {}
    gaps = []
    for t, key, status, _tokens in events:
        if key in last_429:
            gaps.append(t - last_429.pop(key))
        if status == "429":
            last_429[key] = t
    assert gaps and min(gaps) >= 0.29, gaps


def test_client_pacing_keeps_under_the_server_limit(tmp_path):
    spec = teacher(limits={**FAST, "requests_per_minute": 1200})  # 20 per second
    with serve_in_thread({"rate_limit_rpm": 1200}) as base:
        t0 = time.monotonic()
        results = run_requests(spec, problems(30), str(tmp_path), base, progress=False)
        elapsed = time.monotonic() - t0
        s = stats(base)
    assert all(r.status == "ok" for r in results)
    assert s["by_status"] == {"200": 30}  # paced: the server never had to say 429
    assert elapsed >= (30 - 1) / 20 * 0.9  # and no faster than the limit allows


def test_tokens_per_minute_paces_by_estimated_tokens(tmp_path):
    spec = teacher(sampling={"max_tokens": 100}, limits={**FAST, "tokens_per_minute": 60000})
    with serve_in_thread({}) as base:  # ~1000 tokens/s; each request reserves ~120 tokens
        t0 = time.monotonic()
        results = run_requests(spec, problems(20), str(tmp_path), base, progress=False)
    assert all(r.status == "ok" for r in results)
    assert time.monotonic() - t0 >= 1.0


def test_rerun_makes_zero_requests_and_changed_params_make_new_keys(tmp_path):
    with serve_in_thread({"seed": 1}) as base:
        first = run_requests(teacher(), problems(10), str(tmp_path), base, progress=False)
        n = stats(base)["requests"]
        again = run_requests(teacher(), problems(10), str(tmp_path), base, progress=False)
        assert stats(base)["requests"] == n  # nothing asked twice
        assert all(r.cached for r in again) and not any(r.cached for r in first)
        assert [r.content for r in again] == [r.content for r in first]
        assert [r.cost_usd for r in again] == [r.cost_usd for r in first]
        hotter = teacher(sampling={"temperature": 1.0, "max_tokens": 512})
        changed = run_requests(hotter, problems(10), str(tmp_path), base, progress=False)
        assert stats(base)["requests"] == n + 10 and not any(r.cached for r in changed)
        assert {r.key for r in changed}.isdisjoint({r.key for r in first})
        # duplicate requests in one call are asked once; sample indices make distinct keys
        reqs = [ChatRequest(problems(1)[0].messages, sample_index=k) for k in (0, 1, 1)]
        out = run_requests(teacher(), reqs, str(tmp_path / "b"), base, progress=False)
        assert out[1] is out[2] and out[0].key != out[1].key
        assert json.loads(out[0].request)["seed"] != json.loads(out[1].request)["seed"]
    con = sqlite3.connect(tmp_path / CACHE_FILE)
    assert con.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 20  # old entries stay


def test_reasoning_content_and_usage_are_captured(tmp_path):
    with serve_in_thread({"reasoning_content": True}) as base:
        (r,) = run_requests(teacher(model="sim-r1"), problems(1), str(tmp_path), base,
                            progress=False)
    body = json.loads(r.response)
    assert r.reasoning_content == body["choices"][0]["message"]["reasoning_content"]
    assert r.reasoning_tokens == body["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    assert r.prompt_tokens == body["usage"]["prompt_tokens"]
    assert r.model == "sim-r1" and r.finish_reason == "stop" and r.latency_s > 0
    expect = (r.prompt_tokens * 1.0 + r.completion_tokens * 2.0) / 1e6
    assert r.cost_usd == pytest.approx(expect)


COLLECT_SCRIPT = """
import json, sys
from longthought.teacher.collect import ChatRequest, run_requests
spec, base, cache, n = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
reqs = [ChatRequest([{"role": "user", "content": f"Compute ${a} + {a * 3 + 7}$."}])
        for a in range(100, 100 + n)]
run_requests(spec, reqs, cache, base, progress=False)
"""


def test_kill_9_then_resume_rerequests_nothing_received(tmp_path):
    n = 120
    spec = teacher(limits={**FAST, "max_concurrency": 2})
    # first run: a slow server (~20 requests/s), killed with SIGKILL a little way in
    with serve_in_thread({"latency_ms": 100}) as slow:
        proc = subprocess.Popen([sys.executable, "-c", COLLECT_SCRIPT, json.dumps(spec), slow,
                                 str(tmp_path), str(n)])
        deadline = time.monotonic() + 60
        while stats(slow)["served"] < 15 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        first = set(stats(slow)["served_keys"])
    con = sqlite3.connect(tmp_path / CACHE_FILE)
    received = {hashlib.sha256(req.encode()).hexdigest()
                for (req,) in con.execute("SELECT request FROM responses")}
    con.close()
    assert 0 < len(received) < n and received <= first, (len(received), len(first))
    # resume against a fresh server (same sim content settings, so the same cache keys)
    with serve_in_thread({}) as fresh:
        results = run_requests(spec, problems(n), str(tmp_path), fresh, progress=False)
        second = stats(fresh)["served_keys"]
    assert all(r.status == "ok" for r in results)
    assert received.isdisjoint(second)  # zero re-requests of anything received
    assert len(second) == n - len(received) and all(c == 1 for c in second.values())
    assert sum(r.cached for r in results) == len(received)


def test_budget_cap_stops_issuing_and_keeps_what_was_received(tmp_path, caplog):
    # worst case per request: prompt estimate x2 at $1/M + 512 tokens at $2/M ~= $0.00105;
    # an actual reply costs ~$0.00025, so about 8 of 20 fit in $0.003
    spec = teacher(budget_usd=0.003)
    with serve_in_thread({"seed": 1}) as base, caplog.at_level(logging.INFO):
        results = run_requests(spec, problems(20), str(tmp_path), base, progress=False)
        served = stats(base)["served"]
    ok = [r for r in results if r.status == "ok"]
    skipped = [r for r in results if r.status == "skipped_budget"]
    assert ok and skipped and len(ok) + len(skipped) == 20 and served == len(ok)
    assert sum(r.cost_usd for r in ok) <= 0.003
    assert all("budget cap reached" in r.error and r.attempts == 0 for r in skipped)
    assert "budget cap reached" in caplog.text and "budget_usd $0.0030" in caplog.text
    # a bigger budget asks only for what was skipped; cached spend counts against it
    with serve_in_thread({"seed": 1}) as base:
        again = run_requests(teacher(budget_usd=1.0), problems(20), str(tmp_path), base,
                             progress=False)
        assert stats(base)["served"] == len(skipped)
    assert all(r.status == "ok" for r in again)
    assert sum(r.cached for r in again) == len(ok)


@contextmanager
def echo_key_server():
    """A server that answers 401 quoting the key it was sent, as some real APIs do."""
    async def handler(request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return web.json_response({"error": {"message": f"Incorrect API key provided: {key}",
                                             "code": "invalid_api_key"}}, status=401)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    loop = __import__("asyncio").new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_secret_sentinel_never_lands_in_any_file(tmp_path, monkeypatch):
    sentinel = "sk-SENTINEL-9f8e7d6c5b4a"
    monkeypatch.setenv("LT_TEST_KEY", sentinel)
    work = tmp_path / "work"
    with echo_key_server() as base:
        real = teacher(base_url=base, model="gpt-x")
        results = run_requests(real, problems(2), str(work / "cache"), base, progress=False)
    assert all(r.status == "failed" and "HTTP 401" in r.error for r in results)
    assert all(sentinel not in r.error and "[REDACTED]" in r.error for r in results)
    # a full `longthought traces` run with the sentinel in the environment
    import pandas as pd

    from longthought.io import write_table
    from longthought.problems.procedural import generate

    write_table(pd.DataFrame(generate(["addition"], 5, 1, "train")), work / "p.parquet",
                "problems")
    spec = {"task": {"teacher": "t", "prompt": "distill", "pool": "p"},
            "teacher": teacher(), "prompt": {"system": None, "user": "Solve: {problem}"},
            "teacher_name": "t", "prompt_name": "distill"}
    proc = subprocess.run(
        [sys.executable, "-m", "longthought.cli", "traces", "--task", "d", "--spec",
         json.dumps(spec), "--problems", str(work / "p.parquet"), "--cache-dir",
         str(work / "cache"), "--out", str(work / "traces.parquet")],
        capture_output=True, timeout=120, env={**os.environ, "LT_TEST_KEY": sentinel})
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    (work / "traces.log").write_bytes(proc.stdout + proc.stderr)
    files = [p for p in work.rglob("*") if p.is_file()]
    assert any(p.name == CACHE_FILE for p in files) and any(p.suffix == ".parquet" for p in files)
    for p in files:
        assert sentinel.encode() not in p.read_bytes(), p


def test_bad_input_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("LT_TEST_KEY", raising=False)
    req = problems(1)
    with pytest.raises(ValueError, match="limits: unknown key.*max_concurency"):
        run_requests(teacher(limits={"max_concurency": 3}), req, str(tmp_path), "http://x/v1")
    with pytest.raises(ValueError, match="budget_usd is set but pricing is not"):
        run_requests(teacher(pricing=None, budget_usd=1.0), req, str(tmp_path), "http://x/v1")
    with pytest.raises(ValueError, match="pricing.*unknown key.*outptu"):
        run_requests(teacher(pricing={"outptu": 1}), req, str(tmp_path), "http://x/v1")
    with pytest.raises(ValueError, match="stream"):
        run_requests(teacher(sampling={"stream": True}), req, str(tmp_path), "http://x/v1")
    with pytest.raises(ValueError, match="request 0: a request needs a non-empty list"):
        run_requests(teacher(), [ChatRequest([])], str(tmp_path), "http://x/v1")
    with pytest.raises(ValueError, match="'LT_TEST_KEY'.*not set"):
        run_requests(teacher(base_url="https://api.example.invalid/v1"), req, str(tmp_path),
                     "https://api.example.invalid/v1")
    assert not list(Path(tmp_path).glob("*.sqlite-journal"))


@pytest.mark.parametrize("module", ["longthought.teacher.collect", "longthought.teacher.local"])
def test_the_collector_does_not_import_the_table_stack(module):
    """A collection holds every request of a run; pandas and pandera (~90 MB resident, pulled in
    once through a chmod helper, later through the evaluate package's own imports) have no place
    in that process."""
    heavy = ("pandas", "pandera", "pyarrow", "torch", "transformers", "duckdb")
    code = (f"import sys, {module}; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
