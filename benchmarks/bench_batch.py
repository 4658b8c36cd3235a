"""Benchmark the batch transport (`mode: batch`) against the sim's Batch API (issue 17).

50,000 requests go through the sim's Batch API (a `longthought teacher-sim` child process on
loopback) in files of 10,000, with 5% of lines failing (answered 500 in the error file) and the
second batch expiring half done. The collector runs as a child process and is killed with
SIGKILL while its batches are in progress; a second collector process then re-attaches and
finishes. Figures, from the server's own counts and the collector's results:

  requests                the unique requests asked for
  batches                 batches the server created
  lost                    requests without an ok result at the end
  duplicates              requests the server answered more than once (paid twice)
  resubmitted_after_kill  lines put in a batch again although they had not failed: batch lines
                          submitted in all - requests - lines that failed (must be 0)
  cost_ratio_vs_online    what the collector booked (the cost of every ok result) / what the
                          server billed (the usage of every line it answered, from /sim/stats)
                          at online prices: 0.5 at the sim's half batch price; a collector that
                          booked the wrong price, or missed or double-booked a billed line,
                          shows here (and a line the server billed twice makes it < 0.5)
  peak_rss_mb             the largest peak RSS of the two collector processes
  seconds                 wall time of both collector runs together

Usage:
  .venv/bin/python benchmarks/bench_batch.py              # full size (50,000 requests)
  .venv/bin/python benchmarks/bench_batch.py --n 5000     # reduced size (a smoke run)
The last line printed is a JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from longthought.teacher.endpoint import start_sim
from longthought.teacher.pricing import Pricing

PRICING = {"input": 3.0, "output": 12.0, "reasoning": 12.0, "batch_discount": 0.5}
SIM = {"seed": 3, "batch": {"validating_s": 0.5, "in_progress_s": 4.0, "finalizing_s": 0.5,
                            "rate_line_error": 0.05, "expire_batches": [2]}}

COLLECT = r"""
import json, resource, sys
from longthought.teacher.collect import ChatRequest, acollect
import asyncio

spec, base, cache, n, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), \
    sys.argv[5]
reqs = [ChatRequest([{"role": "user", "content": f"Compute ${10000 + i} + {i % 997}$."}])
        for i in range(n)]
col = asyncio.run(acollect(spec, reqs, cache, base, progress=False, tag="bench"))
status, cost = {}, 0.0
for r in col.iter_results():
    status[r.status] = status.get(r.status, 0) + 1
    if r.status == "ok":
        cost += r.cost_usd or 0.0
json.dump({"status": status, "cost": cost,
           "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, open(out, "w"))
"""


def sim_stats(base: str) -> dict:
    with urllib.request.urlopen(base.replace("/v1", "/sim/stats?keys=0"), timeout=60) as resp:
        return json.loads(resp.read())


def batch_totals(base: str) -> list[int]:
    """request_counts.total of every batch the server created (all pages)."""
    totals, after = [], None
    while True:
        url = base + "/batches?limit=100" + (f"&after={after}" if after else "")
        with urllib.request.urlopen(url, timeout=60) as resp:
            page = json.loads(resp.read())
        totals += [b["request_counts"]["total"] for b in page["data"]]
        if not page["has_more"]:
            return totals
        after = page["last_id"]


def billed_online_usd(stats: dict) -> float:
    """What the server billed (every line it answered), priced at the online rates."""
    u = stats["batch"]["billed_usage"]
    return Pricing.from_spec(PRICING).cost(u["prompt_tokens"], u["completion_tokens"],
                                           u["reasoning_tokens"])


def collector(spec: dict, base: str, cache: str, n: int, out: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", COLLECT, json.dumps(spec), base, cache,
                             str(n), out])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000, help="requests (default 50,000)")
    ap.add_argument("--per-batch", type=int, default=10_000, help="requests per batch file")
    args = ap.parse_args()
    spec = {"base_url": "sim", "model": "sim-o1", "mode": "batch", "api_key_env": None,
            "sampling": {"temperature": 0.7, "max_tokens": 256},
            "limits": {"timeout_s": 120, "max_retries": 6},
            "batch": {"max_requests_per_batch": args.per_batch, "poll_interval_s": 0.5,
                      "poll_max_interval_s": 2.0, "max_retries": 4},
            "pricing": PRICING, "sim": {"seed": 3}}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp, start_sim(SIM) as base:
        cache, out = os.path.join(tmp, "cache"), os.path.join(tmp, "result.json")
        t0 = time.monotonic()
        first = collector(spec, base, cache, args.n, out)
        while first.poll() is None:  # kill it once batches run and lines are being answered
            s = sim_stats(base)["batch"]
            if s["batches_by_status"].get("in_progress", 0) >= 1 and s["lines_completed"] > 0:
                break
            time.sleep(0.1)
        killed = first.poll() is None
        if killed:
            os.kill(first.pid, signal.SIGKILL)
        first.wait()
        at_kill = sim_stats(base)["batch"]
        print(f"collector killed with SIGKILL: {at_kill['batches']} batch(es) created, "
              f"{at_kill['lines_completed']} lines answered so far", flush=True)
        second = collector(spec, base, cache, args.n, out)
        rc = second.wait()
        seconds = time.monotonic() - t0
        if rc != 0:
            raise SystemExit(f"the re-run collector exited with {rc}")
        res = json.load(open(out))
        stats = sim_stats(base)
        totals = batch_totals(base)
        peak_kb = max(res["rss_kb"], resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    b = stats["batch"]
    ok = res["status"].get("ok", 0)
    billed = billed_online_usd(stats)
    figures = {
        "requests": args.n,
        "batches": b["batches"],
        "batches_by_status": b["batches_by_status"],
        "lines_failed_by_server": b["lines_failed"],
        "lost": args.n - ok,
        "duplicates": stats["duplicates"],
        "served_unique": stats["served_unique"],
        "resubmitted_after_kill": sum(totals) - args.n - b["lines_failed"],
        "killed_mid_run": killed,
        "cost_usd": round(res["cost"], 4),
        "billed_at_online_usd": round(billed, 4),
        "cost_ratio_vs_online": round(res["cost"] / billed, 4) if billed else None,
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "seconds": round(seconds, 1),
        "loadavg_start": round(load0, 2), "loadavg_end": round(os.getloadavg()[0], 2),
    }
    print(f"{args.n} requests, {b['batches']} batches ({b['batches_by_status']}), "
          f"{b['lines_failed']} lines failed on the server; lost {figures['lost']}, duplicates "
          f"{figures['duplicates']}, re-submitted after the kill "
          f"{figures['resubmitted_after_kill']}; cost ratio {figures['cost_ratio_vs_online']}; "
          f"peak RSS {figures['peak_rss_mb']} MB; {figures['seconds']} s", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
