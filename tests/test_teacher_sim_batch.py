"""The sim teacher's Batch API, driven with the `openai` client over real HTTP: the files API,
the batch lifecycle (validating -> in_progress -> finalizing -> completed; failed on a bad file;
expired half done; cancelled), the output and error line shapes, the faults (failing lines, a
dropped download, the enqueued-token limit), /sim/stats, and a restart on the same store."""

from __future__ import annotations

import json
import time
import urllib.request

import httpx2
import openai
import pytest
from openai import OpenAI

from longthought.teacher.sim_config import parse_sim_config
from longthought.teacher.sim_server import serve_in_thread

FAST = {"validating_s": 0.1, "in_progress_s": 0.4, "finalizing_s": 0.1}


def lines(n: int, start: int = 0, model: str = "sim-o1", **params) -> bytes:
    out = []
    for i in range(start, start + n):
        body = {"model": model, "messages": [{"role": "user", "content": f"Compute ${i} + 7$."}],
                "max_tokens": 256, **params}
        out.append(json.dumps({"custom_id": f"req-{i}", "method": "POST",
                               "url": "/v1/chat/completions", "body": body}))
    return ("\n".join(out) + "\n").encode()


def client(base: str) -> OpenAI:
    return OpenAI(base_url=base, api_key="sk-test", max_retries=0)


def submit(c: OpenAI, data: bytes, name: str = "in.jsonl"):
    f = c.files.create(file=(name, data, "application/jsonl"), purpose="batch")
    return f, c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                               completion_window="24h", metadata={"run": "test"})


def wait(c: OpenAI, batch_id: str, timeout: float = 30.0) -> tuple[object, list[str]]:
    """Poll until the batch is finished; returns it and every status seen in order."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        b = c.batches.retrieve(batch_id)
        if not seen or seen[-1] != b.status:
            seen.append(b.status)
        if b.status in ("completed", "failed", "expired", "cancelled"):
            return b, seen
        time.sleep(0.02)
    raise AssertionError(f"batch {batch_id} did not finish: {seen}")


def jsonl(c: OpenAI, file_id: str | None) -> list[dict]:
    return [json.loads(x) for x in c.files.content(file_id).text.splitlines()] if file_id else []


def stats(base: str) -> dict:
    with urllib.request.urlopen(base.replace("/v1", "/sim/stats?keys=0")) as resp:
        return json.loads(resp.read())


def test_lifecycle_files_and_line_shapes():
    with serve_in_thread({"seed": 1, "batch": {**FAST, "rate_line_error": 0.25}}) as base:
        c = client(base)
        f, b = submit(c, lines(24))
        assert (f.object, f.purpose, f.filename, f.bytes) == ("file", "batch", "in.jsonl",
                                                              len(lines(24)))
        assert b.status == "validating" and b.completion_window == "24h"
        assert b.metadata == {"run": "test"} and b.expires_at - b.created_at == 86400
        done, seen = wait(c, b.id)
        assert seen == ["validating", "in_progress", "finalizing", "completed"]
        rc = done.request_counts
        assert rc.total == 24 and rc.completed + rc.failed == 24 and 0 < rc.failed < 24
        assert done.in_progress_at and done.finalizing_at and done.completed_at
        assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0
        out, err = jsonl(c, done.output_file_id), jsonl(c, done.error_file_id)
        assert len(out) == rc.completed and len(err) == rc.failed
        ok = out[0]
        assert set(ok) == {"id", "custom_id", "response", "error"} and ok["error"] is None
        assert ok["id"].startswith("batch_req_") and ok["response"]["status_code"] == 200
        body = ok["response"]["body"]
        assert body["object"] == "chat.completion" and "\\boxed" in \
            body["choices"][0]["message"]["content"] and body["usage"]["completion_tokens"] > 0
        assert err[0]["response"]["status_code"] == 500 and err[0]["error"] is None
        assert err[0]["response"]["body"]["error"]["type"] == "server_error"
        assert sorted(x["custom_id"] for x in out + err) == sorted(f"req-{i}" for i in range(24))
        assert c.files.retrieve(done.output_file_id).purpose == "batch_output"
        # lists, as the API pages them
        assert [x.id for x in c.batches.list()] == [b.id]
        assert [x.id for x in c.files.list(purpose="batch")] == [f.id]
        s = stats(base)
        assert s["served"] == rc.completed and s["duplicates"] == 0
        assert s["batch"]["batches"] == 1 and s["batch"]["files"] == 1
        assert s["batch"]["lines_completed"] == rc.completed
        assert s["batch"]["batches_per_input_file"] == 1
        u = done.usage  # what the batch billed, counted by the sim's stats too
        assert s["batch"]["billed_usage"] == {
            "prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
            "reasoning_tokens": u.output_tokens_details.reasoning_tokens}


def test_a_malformed_file_fails_validation_with_line_numbers():
    bad = lines(2) + b"{not json\n" + lines(1, start=0) + \
        json.dumps({"custom_id": "x", "method": "GET", "url": "/v1/embeddings",
                    "body": {"model": "other"}}).encode() + b"\n"
    with serve_in_thread({"batch": FAST}) as base:
        c = client(base)
        _, b = submit(c, bad)
        done, seen = wait(c, b.id)
    assert seen == ["validating", "failed"] and done.failed_at
    assert done.output_file_id is None and done.error_file_id is None
    errors = {(e.line, e.code) for e in done.errors.data}
    assert {(3, "invalid_json_line"), (4, "duplicate_custom_id"), (5, "invalid_method"),
            (5, "mismatched_endpoint"), (5, "mismatched_model")} <= errors


def test_expired_half_done_and_cancelled_keep_what_was_answered():
    with serve_in_thread({"batch": {**FAST, "expire_batches": [1]}}) as base:
        c = client(base)
        _, b = submit(c, lines(20))
        done, seen = wait(c, b.id)
        assert seen[-1] == "expired" and done.expired_at
        out, err = jsonl(c, done.output_file_id), jsonl(c, done.error_file_id)
        assert len(out) == 10 and len(err) == 10
        assert all(x["response"] is None and x["error"]["code"] == "batch_expired" for x in err)
        # cancelled: the lines answered before stay, the rest are batch_cancelled
        _, b2 = submit(c, lines(20, start=100), "two.jsonl")
        while c.batches.retrieve(b2.id).request_counts.completed < 3:
            time.sleep(0.01)
        assert c.batches.cancel(b2.id).status == "cancelling"
        done2, seen2 = wait(c, b2.id)
        assert seen2[-2:] == ["cancelling", "cancelled"] and done2.cancelled_at
        out2, err2 = jsonl(c, done2.output_file_id), jsonl(c, done2.error_file_id)
        assert len(out2) >= 3 and len(out2) + len(err2) == 20
        assert {x["error"]["code"] for x in err2} == {"batch_cancelled"}
        with pytest.raises(openai.ConflictError):
            c.batches.cancel(b2.id)


def test_dropped_download_and_the_enqueued_token_limit():
    spec = {"batch": {**FAST, "in_progress_s": 1.0, "rate_download_drop": 1.0,
                      "enqueued_token_limit": 200}}
    with serve_in_thread(spec) as base:
        c = client(base)
        _, first = submit(c, lines(12))  # ~11 prompt tokens a line: 132 enqueued
        while c.batches.retrieve(first.id).status == "validating":
            time.sleep(0.01)
        _, second = submit(c, lines(12, start=50), "two.jsonl")  # 264 > 200: refused
        refused, _ = wait(c, second.id)
        assert refused.status == "failed"
        assert refused.errors.data[0].code == "token_limit_exceeded"
        assert "Enqueued token limit reached" in refused.errors.data[0].message
        done, _ = wait(c, first.id)
        with pytest.raises((httpx2.HTTPError, openai.APIConnectionError)):
            c.files.content(done.output_file_id).read()
        s = stats(base)["batch"]
    assert s["downloads"] == 1 and s["downloads_dropped"] == 1


def test_a_restarted_sim_carries_on_from_its_store(tmp_path):
    spec = {"batch": {**FAST, "in_progress_s": 1.5}}
    with serve_in_thread(spec, store=tmp_path) as base:
        c = client(base)
        _, b = submit(c, lines(30))
        while c.batches.retrieve(b.id).request_counts.completed < 5:
            time.sleep(0.01)
    with serve_in_thread(spec, store=tmp_path) as base:  # a new process on the same store
        c = client(base)
        done, _ = wait(c, b.id)
        out = jsonl(c, done.output_file_id)
        s = stats(base)["batch"]
    assert done.status == "completed" and len(out) == 30
    assert sorted(x["custom_id"] for x in out) == sorted(f"req-{i}" for i in range(30))
    assert s["batches"] == 1 and s["lines_completed"] == 30


def test_bad_requests_and_bad_specs():
    with serve_in_thread({"batch": {**FAST, "max_file_bytes": 1000}}) as base:
        c = client(base)
        with pytest.raises(openai.BadRequestError, match="too large"):
            c.files.create(file=("big.jsonl", lines(20), "application/jsonl"), purpose="batch")
        f = c.files.create(file=("in.jsonl", lines(2), "application/jsonl"), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="completion_window"):
            c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                             completion_window="1h")  # type: ignore[arg-type]
        with pytest.raises(openai.NotFoundError):
            c.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions",
                             completion_window="24h")
        with pytest.raises(openai.NotFoundError):
            c.batches.retrieve("batch_nope")
    with pytest.raises(ValueError, match="unknown key.*in batch"):
        parse_sim_config({"batch": {"rate_expires": 0.1}})
    with pytest.raises(ValueError, match="expire_batches"):
        parse_sim_config({"batch": {"expire_batches": [0]}})
