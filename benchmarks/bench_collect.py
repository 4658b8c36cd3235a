"""Benchmark the trace collector against the sim teacher (issue 3, "Numbers to reach").

Scenarios (each against a fresh `longthought teacher-sim` child process on loopback, with a fresh
request cache so nothing is served from it):

  latency   the server answers in 500 ms; concurrency 64; the collector vs the ideal
            concurrency / latency (`throughput_ratio`) and vs a bare `AsyncOpenAI` loop with a
            semaphore against the same server in the same run (`vs_bare_client`)
  ratelimit the server enforces 3,000 requests per minute (429 + Retry-After beyond it), 1 s
            latency, concurrency 256, the collector told the limit: achieved rate / limit
            (`rate_limit_ratio`) and the share of requests answered 429 (`rate_limited_share`)
  faults    20% of requests answered 500 after the normal 500 ms, concurrency 64: every request
            must land exactly once by the server's own count (`lost`, `duplicates`), at
            `fault_throughput_ratio` of the fault-adjusted ideal concurrency / latency / 1.25
  memory    100,000 small requests (no latency, tiny replies) in a fresh process: `peak_rss_mb`
  streamed  one reply streamed over 90 s in chunks 3 s apart (the sim's slow-stream fault), with
            a 30 s idle timeout and no retries: it must land whole (`streamed_long_ok`)
  tpm       a tokens-per-minute limit of 120,000 with 200 ms latency; 5 s in, the server answers
            every request 429 (Retry-After 1 s) for 30 s: seconds from the end of that wave until
            the tokens the server served over a 3 s window are back at 0.9 of the limit
            (`tpm_recovery_s`; also `tpm_before_ratio`, the same ratio before the wave)

Usage:
  .venv/bin/python benchmarks/bench_collect.py            # full size (several minutes)
  .venv/bin/python benchmarks/bench_collect.py --quick    # smoke run (~1 minute)
  .venv/bin/python benchmarks/bench_collect.py --only latency,faults --with-bare
The last line printed is a JSON object with all figures. The issue's thresholds apply to the full
sizes: at --quick sizes the ramp-up and the last requests' latency are a large share of the run,
so the ratios come out lower. CPU contention from other processes lowers them too (the JSON
records the load average at start and end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request

from longthought.teacher.collect import ChatRequest, run_requests
from longthought.teacher.endpoint import start_sim

FULL = {"latency": 5000, "ratelimit": 3000, "faults": 3000, "memory": 100_000, "streamed": 90,
        "tpm": 30}
QUICK = {"latency": 600, "ratelimit": 500, "faults": 400, "memory": 10_000, "streamed": 20,
         "tpm": 8}


def requests_for(n: int, offset: int = 0, max_tokens: int = 1024) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"Compute ${1000 + offset + i} + 7$."}],
                        params={"temperature": 0.7, "max_tokens": max_tokens})
            for i in range(n)]


def teacher(concurrency: int, rpm: float | None = None) -> dict:
    return {"base_url": "sim", "model": "sim-o1", "api_key_env": None,
            "limits": {"max_concurrency": concurrency, "requests_per_minute": rpm,
                       "timeout_s": 60, "max_retries": 10},
            "sim": {"seed": 1}}


def sim_stats(base: str, keys: bool = False) -> dict:
    url = base.replace("/v1", f"/sim/stats?keys={int(keys)}")
    with urllib.request.urlopen(url, timeout=60) as resp:
        return json.loads(resp.read())


def sim_reset(base: str) -> None:
    urllib.request.urlopen(urllib.request.Request(base.replace("/v1", "/sim/reset"), data=b""),
                           timeout=30).read()


def collect(base: str, spec: dict, reqs: list[ChatRequest]) -> tuple[float, list]:
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
        t0 = time.perf_counter()
        results = run_requests(spec, reqs, cache, base, progress=False)
        return time.perf_counter() - t0, results


async def _bare(base: str, reqs: list[ChatRequest], concurrency: int) -> tuple[float, int]:
    """What most scripts do: the SDK's default client, its own retries, a semaphore.
    Returns (seconds, requests that failed after the SDK's retries)."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base, api_key="bench")
    sem = asyncio.Semaphore(concurrency)

    async def one(r: ChatRequest) -> None:
        async with sem:
            await client.chat.completions.create(model="sim-o1", messages=r.messages,
                                                 **r.params)

    t0 = time.perf_counter()
    outcomes = await asyncio.gather(*(one(r) for r in reqs), return_exceptions=True)
    elapsed = time.perf_counter() - t0
    await client.close()
    return elapsed, sum(isinstance(o, BaseException) for o in outcomes)


def bench_latency(n: int) -> dict:
    conc, latency = 64, 0.5
    ideal = conc / latency
    with start_sim({"seed": 1, "latency_ms": latency * 1000, "models": ["sim-o1"]}) as base:
        bare_s, _ = asyncio.run(_bare(base, requests_for(n, offset=10_000_000), conc))
        sim_reset(base)
        ours_s, results = collect(base, teacher(conc), requests_for(n))
        served = sim_stats(base)
    ok = sum(r.status == "ok" for r in results)
    ours, bare = n / ours_s, n / bare_s
    print(f"latency-bound: {n} requests, collector {ours:.1f} req/s ({ours_s:.1f} s), bare "
          f"AsyncOpenAI loop {bare:.1f} req/s ({bare_s:.1f} s), ideal {ideal:.0f} req/s; "
          f"ok {ok}, server requests {served['requests']}", flush=True)
    return {"requests": n, "throughput_rps": round(ours, 2), "bare_rps": round(bare, 2),
            "ideal_rps": ideal, "throughput_ratio": round(ours / ideal, 4),
            "bare_ratio": round(bare / ideal, 4), "vs_bare_client": round(ours / bare, 4),
            "latency_ok": ok}


def bench_ratelimit(n: int, with_bare: bool = False) -> dict:
    rpm, conc = 3000, 256
    limit_rps = rpm / 60
    spec = {"seed": 1, "latency_ms": 1000, "rate_limit_rpm": rpm, "models": ["sim-o1"]}
    extra: dict = {}
    with start_sim(spec) as base:
        if with_bare:
            bare_s, bare_failed = asyncio.run(_bare(base, requests_for(n, offset=10_000_000),
                                                    conc))
            b = sim_stats(base)
            extra = {"bare_rate_limit_ratio": round(b["served"] / bare_s / limit_rps, 4),
                     "bare_rate_limited_share": round(b["by_status"].get("429", 0)
                                                      / max(1, b["requests"]), 4),
                     "bare_rate_limit_failed": bare_failed}
            print(f"rate-limit-bound, bare loop: {extra}", flush=True)
            sim_reset(base)
            time.sleep(1.0)  # let the server's bucket refill
        secs, results = collect(base, teacher(conc, rpm=rpm), requests_for(n))
        s = sim_stats(base)
    ok = sum(r.status == "ok" for r in results)
    n429 = s["by_status"].get("429", 0)
    rate = n / secs
    print(f"rate-limit-bound: {n} requests in {secs:.1f} s = {rate:.2f} req/s vs limit "
          f"{limit_rps:.0f} req/s; {n429} of {s['requests']} HTTP requests answered 429; "
          f"ok {ok}", flush=True)
    return {"rate_limit_requests": n, "rate_limit_rps": round(rate, 3),
            "rate_limit_ratio": round(rate / limit_rps, 4),
            "rate_limited_share": round(n429 / max(1, s["requests"]), 5),
            "rate_limit_ok": ok, **extra}


def bench_faults(n: int, with_bare: bool = False) -> dict:
    conc, latency, share = 64, 0.5, 0.2
    ideal = conc / latency / (1 / (1 - share))
    spec = {"seed": 1, "latency_ms": latency * 1000, "faults": {"rate_500": share},
            "models": ["sim-o1"]}
    extra: dict = {}
    with start_sim(spec) as base:
        if with_bare:
            bare_s, bare_failed = asyncio.run(_bare(base, requests_for(n, offset=10_000_000),
                                                    conc))
            b = sim_stats(base)
            extra = {"bare_fault_throughput_ratio": round(b["served"] / bare_s / ideal, 4),
                     "bare_fault_failed": bare_failed}
            print(f"faults, bare loop with the SDK's retries: {extra}", flush=True)
            sim_reset(base)
        secs, results = collect(base, teacher(conc), requests_for(n))
        s = sim_stats(base, keys=True)
    ok = sum(r.status == "ok" for r in results)
    served_keys = s["served_keys"]
    lost = n - len(served_keys)
    dups = sum(c - 1 for c in served_keys.values())
    rate = n / secs
    print(f"faults (20% HTTP 500): {n} requests in {secs:.1f} s = {rate:.1f} req/s vs "
          f"fault-adjusted ideal {ideal:.1f}; server: {s['by_status']}; lost {lost}, "
          f"duplicates {dups}, collector ok {ok}", flush=True)
    return {"fault_requests": n, "fault_rps": round(rate, 2),
            "fault_throughput_ratio": round(rate / ideal, 4), "lost": lost,
            "duplicates": dups, "fault_ok": ok, **extra}


def memory_child(n: int) -> None:
    """Runs in a fresh process so its peak RSS is the collector's alone."""
    with start_sim({"seed": 1, "models": ["sim-o1"]}) as base:
        secs, results = collect(base, teacher(64), requests_for(n, max_tokens=8))
        ok = sum(r.status == "ok" for r in results)
        s = sim_stats(base)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"memory_requests": n, "memory_ok": ok, "memory_seconds": round(secs, 1),
                      "memory_rps": round(n / secs, 1), "memory_server_served": s["served"],
                      "peak_rss_mb": round(peak_kb / 1024, 1)}))


def bench_memory(n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(n)],
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"memory: {n} small requests in {res['memory_seconds']} s "
          f"({res['memory_rps']} req/s), ok {res['memory_ok']}, peak RSS "
          f"{res['peak_rss_mb']} MB", flush=True)
    return res


def bench_streamed(seconds: int) -> dict:
    """A reply that takes `seconds` to stream, chunks 3 s apart, 30 s idle timeout."""
    spec = teacher(4)
    spec["limits"] = {**spec["limits"], "timeout_s": seconds * 3, "idle_timeout_s": 30,
                      "max_retries": 0, "stream": True}
    sim = {"seed": 1, "models": ["sim-o1"],
           "faults": {"rate_slow_stream": 1.0, "slow_stream_s": seconds, "slow_stream_gap_s": 3}}
    with start_sim(sim) as base:
        secs, results = collect(base, spec, requests_for(1))
    r = results[0]
    ok = r.status == "ok" and r.finish_reason == "stop" and bool(r.content)
    print(f"streamed: one reply over {seconds} s in chunks 3 s apart, idle timeout 30 s: "
          f"{r.status} after {secs:.1f} s, {r.completion_tokens} tokens, {r.attempts} attempt(s)"
          f"{'' if ok else ' ' + str(r.error)}", flush=True)
    return {"streamed_long_ok": ok, "streamed_long_s": round(secs, 1),
            "streamed_long_attempts": r.attempts}


def bench_tpm(wave_s: int) -> dict:
    """Recovery after a wave of 429s under a client-side tokens-per-minute limit."""
    tpm, before_s, window = 120_000, 5.0, 3.0
    limit_per_s = tpm / 60
    spec = teacher(64)
    spec["limits"] = {**spec["limits"], "tokens_per_minute": tpm, "max_rate_limit_retries": 200}
    sim = {"seed": 1, "latency_ms": 200, "models": ["sim-o1"],
           "faults": {"outage": {"after_s": before_s, "for_s": wave_s, "status": 429},
                      "retry_after_s": 1}}
    n = int((before_s + wave_s + 25) * limit_per_s / 140)  # replies are ~140 tokens
    with start_sim(sim) as base:
        sim_reset(base)
        t0 = time.time()
        secs, results = collect(base, spec, requests_for(n, max_tokens=512))
        url = base.replace("/v1", "/sim/stats?keys=0&events=1")
        with urllib.request.urlopen(url, timeout=60) as resp:
            events = json.loads(resp.read())["events"]
    ok = sum(r.status == "ok" for r in results)
    served = sorted((t - t0, tokens) for t, _, status, tokens in events if status == "200")
    n429 = sum(1 for e in events if e[2] == "429")

    def rate(end: float) -> float:
        return sum(tok for t, tok in served if end - window <= t < end) / window

    wave_end = before_s + wave_s
    before = rate(before_s) / limit_per_s
    recovery = None
    t = wave_end
    while t <= (served[-1][0] if served else 0):
        t += 0.1
        if rate(t) >= 0.9 * limit_per_s:
            recovery = round(t - wave_end, 2)
            break
    print(f"tokens per minute: limit {tpm:,}; before the wave {before:.2f} of it; a {wave_s} s "
          f"wave of 429s ({n429} answered 429); back at 0.9 of the limit "
          f"{recovery if recovery is not None else 'never'} s after it; ok {ok} of {n} in "
          f"{secs:.1f} s", flush=True)
    return {"tpm_requests": n, "tpm_ok": ok, "tpm_before_ratio": round(before, 4),
            "tpm_recovery_s": recovery, "tpm_wave_429": n429}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--only", default="latency,ratelimit,faults,memory,streamed,tpm")
    ap.add_argument("--with-bare", action="store_true",
                    help="also run the bare AsyncOpenAI loop in the rate-limit and fault scenarios")
    ap.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return
    sizes = QUICK if args.quick else FULL
    out: dict = {"size": "quick" if args.quick else "full", "cpus": os.cpu_count(),
                 "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    benches = {"latency": bench_latency, "ratelimit": bench_ratelimit, "faults": bench_faults,
               "memory": bench_memory, "streamed": bench_streamed, "tpm": bench_tpm}
    t0 = time.perf_counter()
    for name in (x.strip() for x in args.only.split(",")):
        if name in ("ratelimit", "faults"):
            out.update(benches[name](sizes[name], with_bare=args.with_bare))
        else:
            out.update(benches[name](sizes[name]))
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
