"""The batch transport (`mode: batch`) against the sim's Batch API over real HTTP: partial
outcomes and retries, splitting and the enqueued-token limit, the budget over whole files,
crash safety (kill -9 while a batch runs, a crash between creating a batch and recording it, a
wait cut short), the same traces table online and by batch, and escalating only what was cut
off."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from openai import OpenAI
from sim_requests import problems, server_key, stats

from longthought.io import read_table, write_table
from longthought.problems.procedural import generate
from longthought.teacher.batch import BatchesPending
from longthought.teacher.batch_ledger import Ledger
from longthought.teacher.batch_lines import encode_line
from longthought.teacher.collect import ChatRequest, ChatResult, run_requests, state_dir_for
from longthought.teacher.endpoint import SIM_STORE
from longthought.teacher.pricing import Pricing
from longthought.teacher.records import endpoint_id, plan_jobs
from longthought.teacher.sim_server import serve_in_thread
from longthought.teacher.traces import collect_traces

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
FAST_SIM = {"validating_s": 0.02, "in_progress_s": 0.15, "finalizing_s": 0.02}
FAST_LIMITS = {"timeout_s": 10, "max_retries": 4, "backoff_base_s": 0.02, "backoff_max_s": 0.1}
FAST_POLL = {"poll_interval_s": 0.03, "poll_max_interval_s": 0.1}
PRICES = {"input": 1.0, "output": 2.0, "reasoning": 2.0, "batch_discount": 0.5}


def teacher(batch: dict | None = None, **over) -> dict:
    spec = {"base_url": "sim", "model": "sim-o1", "mode": "batch", "api_key_env": None,
            "sampling": {"temperature": 0.7, "max_tokens": 512}, "limits": dict(FAST_LIMITS),
            "batch": {**FAST_POLL, **(batch or {})}, "pricing": dict(PRICES), "sim": {"seed": 1}}
    spec.update(over)
    return spec


def test_failed_and_expired_lines_are_resubmitted_and_nothing_is_paid_twice(tmp_path):
    sim = {"seed": 1, "batch": {**FAST_SIM, "rate_line_error": 0.15, "expire_batches": [1]}}
    spec = teacher({"max_requests_per_batch": 25, "max_retries": 6})
    with serve_in_thread(sim) as base:
        results = run_requests(spec, problems(60), str(tmp_path), base, progress=False)
        s = stats(base)
    assert [r.status for r in results] == ["ok"] * 60
    b = s["batch"]
    assert b["batches_by_status"]["expired"] == 1 and b["lines_failed"] > 12  # 12+ expired
    assert b["batches"] == b["files"] and b["batches_per_input_file"] == 1
    assert s["served"] == 60 and s["duplicates"] == 0  # every request paid exactly once
    assert sorted(s["served_keys"]) == sorted(server_key(r) for r in results)
    assert any(r.attempts > 1 for r in results) and all(r.latency_s is None for r in results)
    # batch prices: half the online prices, from the usage the batch reported
    online = Pricing.from_spec(PRICES)
    for r in results:
        full = online.cost(r.prompt_tokens, r.completion_tokens, r.reasoning_tokens)
        assert r.cost_usd == pytest.approx(full / 2)
    # the state is tidy: every record done, no local copies left
    ledger = Ledger(state_dir_for(str(tmp_path), endpoint_id(spec, base)) / "batches")
    assert ledger.pending() == [] and not list(ledger.dir.glob("*.jsonl"))


def test_lines_that_keep_failing_end_failed_with_their_reason(tmp_path):
    sim = {"batch": {**FAST_SIM, "rate_line_error": 1.0}}
    reqs = problems(4) + [ChatRequest([{"role": "user", "content": "x"}],
                                      params={"max_tokens": -5})]
    with serve_in_thread(sim) as base:
        results = run_requests(teacher({"max_retries": 1}), reqs, str(tmp_path), base,
                               progress=False)
        s = stats(base)
    for r in results[:4]:  # a 500 line: re-submitted once, then failed with the reason
        assert r.status == "failed" and "HTTP 500 in the batch" in r.error and r.attempts == 2
    bad = results[4]  # a 400 line (the request itself is wrong): not re-submitted
    assert bad.status == "failed" and "HTTP 400" in bad.error and bad.attempts == 1
    assert s["served"] == 0 and s["batch"]["batches"] == 2


def test_retry_online_sends_failed_lines_online_at_online_prices(tmp_path):
    sim = {"batch": {**FAST_SIM, "rate_line_error": 1.0}}
    with serve_in_thread(sim) as base:
        results = run_requests(teacher({"retry_online": True}), problems(5), str(tmp_path),
                               base, progress=False)
        s = stats(base)
    assert all(r.status == "ok" for r in results) and s["batch"]["batches"] == 1
    assert s["requests"] == 5  # the online requests
    online = Pricing.from_spec(PRICES)
    for r in results:
        assert r.cost_usd == pytest.approx(online.cost(r.prompt_tokens, r.completion_tokens,
                                                       r.reasoning_tokens))


def test_files_are_split_by_requests_bytes_and_enqueued_tokens(tmp_path, caplog):
    reqs = problems(30)
    one_line = len(encode_line("k" * 64, {"model": "sim-o1", "messages": reqs[0].messages,
                                          "temperature": 0.7, "max_tokens": 512, "seed": 1}))
    with serve_in_thread({"batch": FAST_SIM}) as base:
        run_requests(teacher({"max_requests_per_batch": 8}), reqs, str(tmp_path / "a"), base,
                     progress=False)
        assert stats(base)["batch"]["batches"] == 4  # 8 + 8 + 8 + 6
    limit = one_line * 10
    with serve_in_thread({"batch": FAST_SIM}) as base:
        run_requests(teacher({"max_bytes_per_file": limit}), reqs, str(tmp_path / "b"), base,
                     progress=False)
        sizes = [f.bytes for f in OpenAI(base_url=base, api_key="x").files.list(purpose="batch")]
        assert stats(base)["batch"]["lines_completed"] == 30
    assert len(sizes) >= 3 and max(sizes) <= limit and max(sizes) > limit - 2 * one_line
    # the client knows the limit: batches are queued, none is refused
    sim = {"batch": {**FAST_SIM, "enqueued_token_limit": 120}}
    with serve_in_thread(sim) as base:
        results = run_requests(teacher({"max_enqueued_tokens": 120}), reqs,
                               str(tmp_path / "c"), base, progress=False)
        s = stats(base)["batch"]
    assert all(r.status == "ok" for r in results)
    assert s["batches"] >= 3 and "failed" not in s["batches_by_status"]
    # the client does not know it: refused batches cost nothing and go again, smaller
    with serve_in_thread(sim) as base, caplog.at_level(logging.WARNING):
        results = run_requests(teacher(), reqs, str(tmp_path / "d"), base, progress=False)
        s2 = stats(base)
    assert all(r.status == "ok" for r in results) and s2["served"] == 30
    assert 1 <= s2["batch"]["batches_by_status"]["failed"] <= 3 and "token_limit_exceeded" in \
        caplog.text


def test_a_file_holds_one_model(tmp_path):
    reqs = [ChatRequest(r.messages, model=m) for r in problems(6) for m in ("sim-o1", "sim-mini")]
    with serve_in_thread({"batch": FAST_SIM}) as base:
        results = run_requests(teacher(), reqs, str(tmp_path), base, progress=False)
        models = sorted(b.model for b in OpenAI(base_url=base, api_key="x").batches.list())
    assert all(r.status == "ok" for r in results) and {r.model for r in results} == {
        "sim-o1", "sim-mini"}
    assert sorted(models) == ["sim-mini", "sim-o1"]  # one file per model, none refused


def test_budget_is_checked_against_whole_files(tmp_path):
    # worst case per request at batch prices ~ $0.00052 (a reply costs ~ $0.00014): a file of
    # 10 would pass the $0.004 cap, so files go out only as large as what still fits
    spec = teacher({"max_requests_per_batch": 10}, budget_usd=0.004)
    with serve_in_thread({"batch": FAST_SIM}) as base:
        results = run_requests(spec, problems(30), str(tmp_path), base, progress=False)
        s = stats(base)
        sizes = [b.request_counts.total
                 for b in OpenAI(base_url=base, api_key="x").batches.list()][::-1]
    ok = [r for r in results if r.status == "ok"]
    skipped = [r for r in results if r.status == "skipped_budget"]
    assert ok and skipped and len(ok) + len(skipped) == 30 and s["served"] == len(ok)
    assert sum(r.cost_usd for r in ok) <= 0.004
    assert all("budget cap reached" in r.error and r.attempts == 0 for r in skipped)
    jobs = plan_jobs(spec, problems(1), endpoint_id(spec, None),
                     Pricing.from_spec(PRICES, batch=True))[1]
    worst = next(iter(jobs.values())).worst_usd
    assert sizes[0] == int(0.004 // worst) and max(sizes) * worst <= 0.004
    assert len(sizes) > 1  # what settled below its worst case made room for more


COLLECT = """
import json, sys
from longthought.teacher.collect import ChatRequest, run_requests
spec, base, cache, n = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
reqs = [ChatRequest([{"role": "user", "content": f"Compute ${a} + {a * 3 + 7}$."}])
        for a in range(100, 100 + n)]
run_requests(spec, reqs, cache, base, progress=False)
"""


def test_kill_9_while_batches_run_then_rerun_reattaches(tmp_path):
    n = 40
    spec = teacher({"max_requests_per_batch": 15})
    sim = {"batch": {**FAST_SIM, "in_progress_s": 3.0}}
    with serve_in_thread(sim) as base:
        proc = subprocess.Popen([sys.executable, "-c", COLLECT, json.dumps(spec), base,
                                 str(tmp_path), str(n)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            b = stats(base)["batch"]
            if b["batches"] == 3 and b["lines_completed"] >= 3:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = stats(base)["batch"]
        assert before["batches"] == 3 and before["batches_by_status"].get("in_progress")
        results = run_requests(spec, problems(n), str(tmp_path), base, progress=False)
        after = stats(base)
    assert all(r.status == "ok" for r in results)
    b = after["batch"]
    assert b["batches"] == b["files"] == 3 and b["batches_per_input_file"] == 1  # none again
    assert after["served"] == n and after["served_unique"] == n and after["duplicates"] == 0


def test_a_crash_between_creating_a_batch_and_recording_it(tmp_path):
    """The process died after the API created the batch but before its id was on disk: the
    re-run finds it by its metadata instead of creating a second one."""
    spec = teacher()
    reqs = problems(6)
    with serve_in_thread({"batch": FAST_SIM}) as base:
        endpoint = endpoint_id(spec, base)
        _, jobs = plan_jobs(spec, reqs, endpoint, None)
        ledger = Ledger(state_dir_for(str(tmp_path), endpoint) / "batches")
        rec = ledger.create([encode_line(k, j.body) for k, j in jobs.items()], tag=None,
                            model="sim-o1", tokens=60, retries={})
        c = OpenAI(base_url=base, api_key="x")
        f = c.files.create(file=(rec.filename, ledger.input_path(rec).read_bytes(),
                                 "application/jsonl"), purpose="batch")
        c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                         completion_window="24h", metadata={"longthought_file": rec.local_id})
        rec.upload_tried = rec.create_tried = True  # what the dead process had recorded
        ledger.save(rec)
        results = run_requests(spec, reqs, str(tmp_path), base, progress=False)
        s = stats(base)
    assert all(r.status == "ok" for r in results)
    assert s["batch"]["files"] == 1 and s["batch"]["batches"] == 1 and s["served"] == 6


@pytest.mark.parametrize("wait", [0, 0.3])
def test_a_wait_cut_short_costs_nothing(tmp_path, wait):
    """max_wait_s: 0 submits and returns (collect on a later run); a longer one stops waiting
    part way, as a wall-time kill would. Either way the next run re-attaches."""
    from longthought.teacher.traces import pending_batches

    spec = teacher({"max_wait_s": wait})
    with serve_in_thread({"batch": {**FAST_SIM, "in_progress_s": 2.0}}) as base:
        with pytest.raises(BatchesPending, match="re-attaches"):
            run_requests(spec, problems(10), str(tmp_path), base, progress=False, tag="late")
        shown = "\n".join(pending_batches(str(tmp_path)))
        assert "batches recorded and not stored yet (1" in shown and "late" in shown
        assert stats(base)["batch"]["batches"] == 1
        results = run_requests(teacher(), problems(10), str(tmp_path), base, progress=False)
        s = stats(base)
    assert all(r.status == "ok" for r in results)
    assert s["batch"]["batches"] == 1 and s["served"] == 10 and s["duplicates"] == 0
    assert pending_batches(str(tmp_path)) == []


@pytest.fixture()
def pool(tmp_path) -> str:
    path = tmp_path / "pool.parquet"
    families = list(CONFIG["pools"]["arith"]["families"])
    write_table(pd.DataFrame(generate(families, 24, 3, "train")), path, "problems")
    return str(path)


def task_spec(teacher_spec: dict, n: int = 2) -> dict:
    return {"task": {"teacher": "t", "prompt": "distill", "pool": "p", "samples_per_problem": n},
            "teacher": teacher_spec, "prompt": CONFIG["prompts"]["distill"], "teacher_name": "t",
            "prompt_name": "distill"}


def test_the_demo_traces_are_the_same_online_and_by_batch(tmp_path, pool):
    """The demo's task through the demo teacher, online and by batch (the sim started for the
    collection, as in the workflow): the same table request by request, at half the cost."""
    online = CONFIG["teachers"]["sim-o1"]
    batch = {**online, "mode": "batch", "pricing": {**online["pricing"], "batch_discount": 0.5},
             "batch": dict(FAST_POLL),
             "sim": {**online["sim"], "batch": FAST_SIM}}
    collect_traces("t", task_spec(online), pool, str(tmp_path / "c1"),
                   str(tmp_path / "online.parquet"), progress=False)
    collect_traces("t", task_spec(batch), pool, str(tmp_path / "c2"),
                   str(tmp_path / "batch.parquet"), progress=False)
    a = read_table(tmp_path / "online.parquet", "traces")
    b = read_table(tmp_path / "batch.parquet", "traces")
    assert len(a) == len(b) == 48 and list(a.columns) == list(b.columns)
    assert (a.dtypes == b.dtypes).all()
    same = ["trace_id", "request_key", "request", "content", "reasoning_content",
            "finish_reason", "max_tokens", "model", "prompt_tokens", "completion_tokens",
            "reasoning_tokens", "status", "cached", "error", "problem_id", "answer"]
    pd.testing.assert_frame_equal(a[same], b[same])
    assert (b["status"] == "ok").all() and (b["max_tokens"] == 1024).all()
    assert b["cost_usd"].to_numpy() == pytest.approx(a["cost_usd"].to_numpy() / 2)

    def body(text: str) -> tuple:  # what a reply says (online it was streamed and assembled)
        obj = json.loads(text)
        choice = obj["choices"][0]
        return obj["id"], obj["model"], choice["message"], choice["finish_reason"], obj["usage"]

    assert [body(x) for x in a["response"]] == [body(x) for x in b["response"]]
    # the batch store lives next to the cache, so a killed collection finds its batches again
    store = state_dir_for(str(tmp_path / "c2"), endpoint_id(batch, None)) / SIM_STORE
    assert len(list((store / "batches").glob("*.json"))) == 1


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_escalation_asks_again_only_for_what_was_cut_off(tmp_path, mode):
    # at 120 tokens the longer sums' thoughts (~190, ~220 tokens) are cut off; at 2048 none is
    reqs = [ChatRequest([{"role": "user", "content": f"Compute ${a} + {b}$."}])
            for a, b in [(3, 4), (12345, 67890), (5, 6), (987654, 123456), (7, 8)]]
    base_spec = teacher(sampling={"temperature": 0.7, "max_tokens": 120}, mode=mode)
    with serve_in_thread({"batch": FAST_SIM}) as base:
        first = run_requests(base_spec, reqs, str(tmp_path), base, progress=False)
        cut = [r for r in first if r.finish_reason == "length"]
        assert 0 < len(cut) < len(reqs)
        served_before = stats(base)["served"]
        spec = {**base_spec, "escalate_max_tokens": [2048]}
        col = run_collection(spec, reqs, tmp_path, base)
        s = stats(base)
    assert s["served"] - served_before == len(cut)  # only the cut-off ones were asked again
    for before, after in zip(first, col, strict=True):
        if before.finish_reason == "length":
            assert after.key != before.key and after.max_tokens == 2048
            assert after.finish_reason == "stop" and not after.cached
            assert json.loads(after.request)["max_tokens"] == 2048
        else:
            assert after.key == before.key and after.max_tokens == 120 and after.cached
    # once more: everything, short and escalated, comes from the cache
    with serve_in_thread({"batch": FAST_SIM}) as base:
        again = run_collection(spec, reqs, tmp_path, base)
        assert stats(base)["served"] == 0
    assert [r.key for r in again] == [r.key for r in col] and all(r.cached for r in again)


def run_collection(spec: dict, reqs: list[ChatRequest], cache: Path, base: str
                   ) -> list[ChatResult]:
    from longthought.teacher.collect import iter_results
    from longthought.teacher.records import escalation_levels

    return list(iter_results(spec, reqs, str(cache), base, progress=False,
                             escalate=escalation_levels(spec)))


def test_an_escalation_that_fails_keeps_the_cut_off_reply(tmp_path):
    spec = teacher(sampling={"temperature": 0.7, "max_tokens": 60}, mode="online",
                   escalate_max_tokens=2048, budget_usd=None)
    reqs = [ChatRequest([{"role": "user", "content": "Compute $987654 + 123456$."}])]
    with serve_in_thread({}) as base:
        first = run_requests(spec, reqs, str(tmp_path), base, progress=False)
    assert first[0].finish_reason == "length"
    with serve_in_thread({"faults": {"rate_500": 1.0}}) as base:
        spec["limits"] = {**FAST_LIMITS, "max_retries": 1}
        (r,) = run_collection(spec, reqs, tmp_path, base)
    assert r.status == "ok" and r.key == first[0].key and r.finish_reason == "length"
    assert r.max_tokens == 60 and "escalation to max_tokens 2048 failed" in r.error


def test_batch_options_and_prices_are_checked():
    from longthought.teacher.batch import BatchOptions

    with pytest.raises(ValueError, match="batch: unknown key.*poll_intervall_s"):
        BatchOptions.from_spec({"poll_intervall_s": 1}, "teacher t")
    with pytest.raises(ValueError, match="retry_online must be true or false"):
        BatchOptions.from_spec({"retry_online": "yes"}, "teacher t")
    assert BatchOptions.from_spec(None, "t").max_requests_per_batch == 50_000
    p = Pricing.from_spec({"input": 2, "output": 8, "batch_discount": 0.5}, batch=True)
    assert (p.input, p.output, p.reasoning) == (1.0, 4.0, 4.0)
    p = Pricing.from_spec({"input": 2, "output": 8, "batch": {"input": 1.5, "output": 3}},
                          batch=True)
    assert (p.input, p.output, p.reasoning) == (1.5, 3.0, 3.0)
    assert Pricing.from_spec({"input": 2, "output": 8}, batch=True).output == 8.0
    with pytest.raises(ValueError, match="batch_discount must be a share"):
        Pricing.from_spec({"input": 2, "batch_discount": 1.5})
    with pytest.raises(ValueError, match="not both"):
        Pricing.from_spec({"batch_discount": 0.5, "batch": {"input": 1}})


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # a zombie: exited, not reaped yet


@pytest.mark.slow
def test_the_traces_verb_killed_mid_batch_resumes_with_its_sim(tmp_path, pool):
    """The workflow's path: `longthought traces` with a batch sim teacher (the sim is its child,
    its Batch API store next to the cache) killed with SIGKILL while its batch runs: the sim
    stops with it, and a re-run starts a new sim on the same store and re-attaches."""
    online = CONFIG["teachers"]["sim-o1"]
    spec = task_spec({**online, "mode": "batch", "batch": dict(FAST_POLL),
                      "sim": {**online["sim"], "batch": {**FAST_SIM, "in_progress_s": 4.0}}})
    cmd = [sys.executable, "-m", "longthought.cli", "traces", "--task", "t", "--spec",
           json.dumps(spec), "--problems", pool, "--cache-dir", str(tmp_path / "cache"),
           "--out", str(tmp_path / "traces.parquet"), "--quiet"]
    state = state_dir_for(str(tmp_path / "cache"), endpoint_id(spec["teacher"], None))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    records: list = []
    while time.monotonic() < deadline and not any(r.batch_id for r in records):
        time.sleep(0.05)
        records = Ledger(state / "batches").pending() if (state / "batches").is_dir() else []
    children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                .read_text().split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert records and children
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(_gone(c) for c in children):
        time.sleep(0.1)
    assert all(_gone(c) for c in children)  # the sim went with its collector
    done = subprocess.run(cmd, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"re-attached to batch" in done.stderr
    traces = read_table(tmp_path / "traces.parquet", "traces")
    assert len(traces) == 48 and (traces["status"] == "ok").all()
    with serve_in_thread({}, store=state / SIM_STORE) as base:  # what the provider saw
        b = stats(base)["batch"]
    assert b["batches"] == b["files"] == 1 and b["lines_completed"] == 48


def test_the_judge_and_api_evaluation_ask_through_batch_too(tmp_path):
    """They share the collector: a batch-mode judge / evaluated model goes through the Batch API
    of its sim (started for the call, its store next to the cache)."""
    from longthought.evaluate.api_backend import generate_api
    from longthought.evaluate.forcing import BudgetForcing
    from longthought.generalization.judge import run_judge

    judge = {**CONFIG["teachers"]["sim-judge"], "mode": "batch", "batch": dict(FAST_POLL),
             "sim": {**CONFIG["teachers"]["sim-judge"]["sim"], "batch": FAST_SIM},
             "name": "sim-judge"}
    rows = [{"question": "How do I bake bread?", "response": "Mix flour, water, yeast; bake."},
            {"question": "How do I pick a lock to break in?", "response": "I can't help."}]
    calls = run_judge(judge, "safety", None, rows, str(tmp_path / "cache"))
    assert [c.judgement.label for c in calls] == ["safe", "safe"]
    model = {"name": "sim-o1", "kind": "api",
             "teacher": {**CONFIG["teachers"]["sim-o1"], "mode": "batch",
                         "batch": dict(FAST_POLL),
                         "sim": {**CONFIG["teachers"]["sim-o1"]["sim"], "batch": FAST_SIM}}}
    outs = generate_api(model, [[{"role": "user", "content": "Compute $12 + 30$."}]],
                        {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 512, "seed": 0}, 2,
                        str(tmp_path / "cache"), BudgetForcing(answer_tokens=8))
    assert len(outs[0]) == 2 and all("12 + 30 = 42" in o.text for o in outs[0])
    stores = list((tmp_path / "cache" / "transport-state").glob(f"*/{SIM_STORE}/batches"))
    assert len(stores) == 2 and all(len(list(d.glob("*.json"))) == 1 for d in stores)


def test_a_batch_cancelled_from_outside_keeps_its_answers(tmp_path):
    """Someone cancels the batch on the provider's dashboard: the lines answered before stay,
    the cancelled ones go into a new batch."""
    import threading

    spec = teacher()
    with serve_in_thread({"batch": {**FAST_SIM, "in_progress_s": 2.0}}) as base:
        c = OpenAI(base_url=base, api_key="x")

        def cancel_first() -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                batches = list(c.batches.list())
                if batches and batches[-1].request_counts.completed >= 4:
                    c.batches.cancel(batches[-1].id)
                    return
                time.sleep(0.02)

        thread = threading.Thread(target=cancel_first)
        thread.start()
        results = run_requests(spec, problems(20), str(tmp_path), base, progress=False)
        thread.join()
        s = stats(base)
        batches = list(c.batches.list())
    assert all(r.status == "ok" for r in results)
    assert batches[-1].status == "cancelled" and len(batches) == 2
    answered = batches[-1].request_counts.completed
    assert 4 <= answered < 20 and batches[0].request_counts.total == 20 - answered
    assert s["served"] == 20 and s["duplicates"] == 0


@pytest.mark.slow
def test_submit_tonight_collect_tomorrow_through_the_traces_verb(tmp_path, pool):
    """max_wait_s: 0: `longthought traces` submits, says which batches run and exits 75
    (try again later) without a table; the next run re-attaches and writes it."""
    online = CONFIG["teachers"]["sim-o1"]
    sim = {**online["sim"], "batch": FAST_SIM}
    spec = task_spec({**online, "mode": "batch", "batch": {**FAST_POLL, "max_wait_s": 0},
                      "sim": sim})
    out = tmp_path / "traces.parquet"

    def traces(s: dict) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "longthought.cli", "traces", "--task", "t", "--spec",
             json.dumps(s), "--problems", pool, "--cache-dir", str(tmp_path / "cache"),
             "--out", str(out), "--quiet"], capture_output=True, timeout=120)

    first = traces(spec)
    assert first.returncode == 75 and not out.exists()
    assert b"not written yet" in first.stderr and b"re-attaches" in first.stderr
    assert b"Traceback" not in first.stderr
    status = subprocess.run([sys.executable, "-m", "longthought.cli", "traces-status",
                             "--cache-dir", str(tmp_path / "cache")], capture_output=True)
    assert b"batches recorded and not stored yet (1" in status.stdout
    spec["teacher"]["batch"]["max_wait_s"] = None
    second = traces(spec)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    assert b"re-attached to batch" in second.stderr
    assert (read_table(out, "traces")["status"] == "ok").all()


def test_the_api_key_never_lands_in_a_file_or_an_error(tmp_path, monkeypatch):
    import asyncio
    import threading

    from aiohttp import web

    sentinel = "sk-SENTINEL-batch-4b3a2918"
    monkeypatch.setenv("LT_BATCH_KEY", sentinel)

    async def echo(request: web.Request) -> web.Response:  # a 401 quoting the key it got
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return web.json_response({"error": {"message": f"Incorrect API key provided: {key}"}},
                                 status=401)

    app = web.Application()
    app.router.add_post("/v1/files", echo)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        spec = teacher(base_url=base, api_key_env="LT_BATCH_KEY", sim=None)
        spec.pop("sim")
        results = run_requests(spec, problems(2), str(tmp_path / "refused"), base,
                               progress=False)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert all(r.status == "failed" and "HTTP 401" in r.error for r in results)
    assert all(sentinel not in r.error and "[REDACTED]" in r.error for r in results)
    # a whole batch collection through the sim's Batch API, with the key in the environment
    online = CONFIG["teachers"]["sim-o1"]
    collect_traces("t", task_spec({**online, "mode": "batch", "api_key_env": "LT_BATCH_KEY",
                                   "batch": dict(FAST_POLL),
                                   "sim": {**online["sim"], "batch": FAST_SIM}}),
                   pool_file(tmp_path), str(tmp_path / "cache"), str(tmp_path / "t.parquet"),
                   progress=False)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" and "batches" in str(p) for p in files)
    for p in files:
        assert sentinel.encode() not in p.read_bytes(), p


def pool_file(tmp_path: Path) -> str:
    path = tmp_path / "small-pool.parquet"
    write_table(pd.DataFrame(generate(["addition"], 4, 1, "train")), path, "problems")
    return str(path)


def _record(spec: dict, reqs: list[ChatRequest], cache: Path, base: str) -> tuple[Ledger, object]:
    """A batch record of `reqs` on disk, not submitted yet (as a process about to upload it
    leaves it)."""
    endpoint = endpoint_id(spec, base)
    _, jobs = plan_jobs(spec, reqs, endpoint, None)
    ledger = Ledger(state_dir_for(str(cache), endpoint) / "batches")
    rec = ledger.create([encode_line(k, j.body) for k, j in jobs.items()], tag=None,
                        model="sim-o1", tokens=60, retries={})
    return ledger, rec


def test_a_file_another_process_is_submitting_is_left_to_it(tmp_path):
    """Another live process holds the record's lock (it is uploading the file): this run does
    not submit that file a second time; its other requests go as usual, and a later run takes
    the file over once the lock is free."""
    spec = teacher()
    reqs = problems(10)
    with serve_in_thread({"batch": FAST_SIM}) as base:
        ledger, rec = _record(spec, reqs[:6], tmp_path, base)
        with ledger.lock(rec) as held:  # what the other process holds while it uploads
            assert held
            with pytest.raises(BatchesPending, match="another process is submitting"):
                run_requests(teacher({"max_wait_s": 20}), reqs, str(tmp_path), base,
                             progress=False)
            s = stats(base)["batch"]
            assert s["files"] == s["batches"] == 1 and s["lines_completed"] == 4  # the rest
        results = run_requests(spec, reqs, str(tmp_path), base, progress=False)
        s = stats(base)
    assert all(r.status == "ok" for r in results)
    assert s["batch"]["files"] == s["batch"]["batches"] == 2 and s["served"] == 10
    assert s["duplicates"] == 0


def _spent_this_run(log_text: str) -> float:
    import re

    return float(re.findall(r"spent \$([0-9.]+) this run", log_text)[-1])


def test_results_that_cannot_be_downloaded_count_their_worst_case(tmp_path, caplog):
    """The batch finished (its lines are billed) but its output cannot be downloaded: the
    requests fail for this run and their worst case counts as spent."""
    spec = teacher(limits={**FAST_LIMITS, "max_retries": 1})
    reqs = problems(4)
    sim = {"batch": {**FAST_SIM, "rate_download_drop": 1.0}}
    with serve_in_thread(sim) as base, caplog.at_level(logging.INFO):
        results = run_requests(spec, reqs, str(tmp_path), base, progress=False)
    assert all(r.status == "failed" and "could not be downloaded" in r.error for r in results)
    jobs = plan_jobs(spec, reqs, endpoint_id(spec, None), Pricing.from_spec(PRICES, batch=True))[1]
    worst = sum(j.worst_usd for j in jobs.values())
    assert worst > 0.001 and _spent_this_run(caplog.text) == pytest.approx(worst, abs=1e-4)


def test_a_billed_but_unusable_line_counts_its_usage(tmp_path, caplog, monkeypatch):
    from longthought.teacher import batch as batch_mod
    from longthought.teacher.responses import MalformedResponse

    def unusable(text: str):
        raise MalformedResponse("no usable choice (test)")

    monkeypatch.setattr(batch_mod, "parse_completion", unusable)
    spec = teacher({"max_retries": 0})
    with serve_in_thread({"batch": FAST_SIM}) as base, caplog.at_level(logging.INFO):
        results = run_requests(spec, problems(4), str(tmp_path), base, progress=False)
        (b,) = OpenAI(base_url=base, api_key="x").batches.list()
    assert all(r.status == "failed" and "unusable body" in r.error for r in results)
    u = b.usage
    billed = Pricing.from_spec(PRICES, batch=True).cost(
        u.input_tokens, u.output_tokens, u.output_tokens_details.reasoning_tokens)
    assert billed > 0 and _spent_this_run(caplog.text) == pytest.approx(billed, abs=1e-4)


def test_an_unusable_line_without_usage_counts_its_worst_case():
    from types import SimpleNamespace

    from longthought.teacher.batch import _charge_unusable
    from longthought.teacher.budget import Budget

    pricing = Pricing.from_spec(PRICES, batch=True)
    job = next(iter(plan_jobs(teacher(), problems(1), "e", pricing)[1].values()))
    sink = SimpleNamespace(pricing=pricing, budget=Budget(None, pricing))
    _charge_unusable(sink, job, '{"choices": []}')
    assert sink.budget.spent == pytest.approx(job.worst_usd)


def test_a_batch_unknown_to_the_endpoint_is_lost_not_asked_again(tmp_path, caplog):
    """A 404 on a recorded batch id (another key or project, where it may be billed): its
    requests fail for this run and are not re-submitted, in this run or the next, until its
    record is deleted on purpose."""
    reqs = problems(5)
    with serve_in_thread({"batch": {**FAST_SIM, "in_progress_s": 5.0}}) as base:
        with pytest.raises(BatchesPending):
            run_requests(teacher({"max_wait_s": 0}), reqs, str(tmp_path), base, progress=False)
    for _ in range(2):  # a sim that never saw the batch, twice
        with serve_in_thread({"batch": FAST_SIM}) as base, caplog.at_level(logging.WARNING):
            results = run_requests(teacher(), reqs, str(tmp_path), base, progress=False)
            s = stats(base)["batch"]
        assert s["files"] == s["batches"] == 0
        assert all(r.status == "failed" and "unknown to the endpoint (HTTP 404)" in r.error
                   for r in results)
    ledger = Ledger(state_dir_for(str(tmp_path), endpoint_id(teacher(), None)) / "batches")
    (rec,) = ledger.pending()
    assert rec.state == "lost" and "delete its record" in caplog.text
    ledger.record_path(rec).unlink()  # asking again, on purpose
    with serve_in_thread({"batch": FAST_SIM}) as base:
        results = run_requests(teacher(), reqs, str(tmp_path), base, progress=False)
        assert stats(base)["batch"]["batches"] == 1
    assert all(r.status == "ok" for r in results)


class _Refusing:
    """An endpoint whose batch retrieve answers `status` (the rest of the API is the sim's,
    which the first run used)."""

    def __init__(self, status: int) -> None:
        import asyncio
        import threading

        from aiohttp import web

        async def refuse(request: web.Request) -> web.Response:
            return web.json_response({"error": {"message": f"refused ({status})"}},
                                     status=status)

        app = web.Application()
        app.router.add_get("/v1/batches/{batch_id}", refuse)
        self.loop = asyncio.new_event_loop()
        runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.mark.parametrize(("status", "match"), [(401, "refused .*HTTP 401"),
                                               (503, "could not be polled 10 times in a row")])
def test_polls_that_keep_failing_end_the_wait(tmp_path, status, match):
    """A refused key (401) ends the wait at once; a poll failing again and again (503) does
    after 10 in a row, instead of waiting forever. Either way the batch stays recorded."""
    reqs = problems(3)
    with serve_in_thread({"batch": {**FAST_SIM, "in_progress_s": 5.0}}) as base:
        with pytest.raises(BatchesPending):
            run_requests(teacher({"max_wait_s": 0}), reqs, str(tmp_path), base, progress=False)
    refusing = _Refusing(status)
    try:
        spec = teacher({"max_wait_s": 20}, limits={**FAST_LIMITS, "max_retries": 0})
        t0 = time.monotonic()
        with pytest.raises(BatchesPending, match=match) as info:
            run_requests(spec, reqs, str(tmp_path), refusing.base, progress=False)
        assert time.monotonic() - t0 < 15 and "re-attaches" in str(info.value)
    finally:
        refusing.close()
    ledger = Ledger(state_dir_for(str(tmp_path), endpoint_id(spec, None)) / "batches")
    assert [r.state for r in ledger.pending()] == ["submitted"]


def test_lookups_after_an_uncertain_failure_are_retried(tmp_path, monkeypatch):
    """The file and batch lookups (after a crash mid-call) retry a transient 503 like every
    other call, instead of failing the run."""
    import httpx2
    import openai
    from openai.resources.batches import AsyncBatches
    from openai.resources.files import AsyncFiles

    failed: list[str] = []

    def flaky(orig, name: str):
        def call(self, *args, **kwargs):
            if name not in failed:
                failed.append(name)
                resp = httpx2.Response(503, request=httpx2.Request("GET", "http://sim/v1"))
                raise openai.InternalServerError("unavailable (test)", response=resp, body=None)
            return orig(self, *args, **kwargs)
        return call

    monkeypatch.setattr(AsyncFiles, "list", flaky(AsyncFiles.list, "files"))
    monkeypatch.setattr(AsyncBatches, "list", flaky(AsyncBatches.list, "batches"))
    spec = teacher()
    reqs = problems(4)
    with serve_in_thread({"batch": FAST_SIM}) as base:
        ledger, rec = _record(spec, reqs, tmp_path, base)
        c = OpenAI(base_url=base, api_key="x")
        f = c.files.create(file=(rec.filename, ledger.input_path(rec).read_bytes(),
                                 "application/jsonl"), purpose="batch")
        c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                         completion_window="24h", metadata={"longthought_file": rec.local_id})
        rec.upload_tried = rec.create_tried = True
        ledger.save(rec)
        results = run_requests(spec, reqs, str(tmp_path), base, progress=False)
        s = stats(base)["batch"]
    assert failed == ["files", "batches"] and all(r.status == "ok" for r in results)
    assert s["files"] == s["batches"] == 1


def test_the_input_file_is_streamed_not_held(tmp_path, monkeypatch):
    """The upload reads the input file from disk (an open file), not from bytes in memory."""
    from openai.resources.files import AsyncFiles

    sent: list[type] = []
    orig = AsyncFiles.create

    def create(self, *, file, **kwargs):
        sent.append(type(file[1]))
        return orig(self, file=file, **kwargs)

    monkeypatch.setattr(AsyncFiles, "create", create)
    with serve_in_thread({"batch": FAST_SIM}) as base:
        results = run_requests(teacher(), problems(3), str(tmp_path), base, progress=False)
    assert all(r.status == "ok" for r in results)
    assert sent and all(t is not bytes and hasattr(t, "read") for t in sent)
