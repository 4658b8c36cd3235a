"""The sim teacher over real HTTP: personas, usage counts, determinism, every injected fault,
the server-side rate limit, the CLI and `open_endpoint`'s lifecycle."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from longthought.problems.procedural import solve
from longthought.teacher import sim_server
from longthought.teacher.endpoint import open_endpoint
from longthought.teacher.sim_config import parse_sim_config
from longthought.teacher.sim_persona import compose, wrong_answer
from longthought.teacher.sim_server import serve_in_thread
from longthought.teacher.tokens import count_prompt_tokens, count_tokens, truncate_tokens

ADD = "Solve the following math problem. Put the final answer in \\boxed{}.\n\nCompute $478 + 356$."
FRAC = "Compute $\\frac{1}{6} + \\frac{3}{4}$. Give the answer as a reduced fraction."


def post(base: str, body: dict, timeout: float = 10) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def chat(base: str, text: str, model: str = "sim-o1", **params) -> dict:
    status, _, raw = post(base, {"model": model, "messages": [{"role": "user", "content": text}],
                                 **params})
    assert status == 200, raw
    return json.loads(raw)


def stats(base: str) -> dict:
    with urllib.request.urlopen(base.replace("/v1", "/sim/stats?events=1")) as resp:
        return json.loads(resp.read())


def boxed(text: str) -> str | None:
    m = re.search(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}", text)
    return m.group(1) if m else None


def test_tokenizer_is_deterministic_and_truncates_on_token_boundaries():
    text = "Compute $12345 + 6$. So x = 3/4!"
    assert count_tokens(text) == len(["Compute", "$", "123", "45", "+", "6", "$", ".", "So",
                                      "x", "=", "3", "/", "4", "!"])
    assert count_tokens(truncate_tokens(text, 5)) == 5
    assert truncate_tokens(text, 100) == text
    assert count_prompt_tokens([{"role": "user", "content": "a b"}]) == 2 + 4


def test_solver_thinks_checks_and_boxes_the_right_answer():
    with serve_in_thread({"seed": 3, "models": ["sim-o1"]}) as base:
        out = chat(base, ADD)
        msg = out["choices"][0]["message"]["content"]
        assert msg.startswith("<think>\n") and "</think>" in msg
        thought, answer = msg.split("</think>")
        assert "Check:" in thought
        assert boxed(answer) == "834" and "\\boxed" not in thought
        usage = out["usage"]
        assert usage["completion_tokens"] == count_tokens(msg)
        assert usage["prompt_tokens"] == count_prompt_tokens([{"role": "user", "content": ADD}])
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert 0 < usage["completion_tokens_details"]["reasoning_tokens"] < usage[
            "completion_tokens"]
        assert out["choices"][0]["finish_reason"] == "stop" and out["model"] == "sim-o1"
        # deterministic given the request; a different seed gives a different sample
        same = chat(base, ADD)
        assert same["choices"] == out["choices"]
        texts = {chat(base, ADD, seed=s)["choices"][0]["message"]["content"] for s in range(8)}
        assert len(texts) > 1
        models = json.loads(urllib.request.urlopen(f"{base}/models").read())
        assert [m["id"] for m in models["data"]] == ["sim-o1"]


def test_slips_are_noticed_and_corrected():
    rng = random.Random(0)
    reply = compose(ADD, "sim-o1", slip_rate=1.0, rng=rng)
    assert "Wait" in reply.thought and "recompute" in reply.thought
    assert boxed(reply.answer) == "834"


def test_wrong_rate_and_truncation_and_max_tokens():
    with serve_in_thread({"wrong_rate": 1.0}) as base:
        out = chat(base, FRAC)
        got = boxed(out["choices"][0]["message"]["content"])
        assert got is not None and got != solve(FRAC).answer
    with serve_in_thread({"truncate_rate": 1.0}) as base:
        out = chat(base, ADD)
        assert out["choices"][0]["finish_reason"] == "length"
        assert boxed(out["choices"][0]["message"]["content"]) is None
    with serve_in_thread({}) as base:
        out = chat(base, ADD, max_tokens=25)
        assert out["choices"][0]["finish_reason"] == "length"
        assert out["usage"]["completion_tokens"] == 25
        out = chat(base, ADD, max_completion_tokens=10_000)
        assert out["choices"][0]["finish_reason"] == "stop"
    assert wrong_answer("12", random.Random(1)) != "12"


def test_rewriter_reasoning_content_chat_style_and_unknown_problems():
    rewrite = ("Rewrite the reference solution below step by step.\n\nProblem: Compute $478 + "
               "356$.\n\nReference solution: So 478 + 356 = 834. The answer is $834$.")
    with serve_in_thread({"reasoning_content": True}) as base:
        out = chat(base, rewrite, model="sim-4o-mini")
        text = out["choices"][0]["message"]["content"]
        assert "Step 1:" in text and boxed(text) == "834" and "<think>" not in text
        assert count_tokens(text) > count_tokens("So 478 + 356 = 834. The answer is $834$.") * 3
        out = chat(base, ADD, model="deepseek-r1-sim")
        msg = out["choices"][0]["message"]
        assert "<think>" not in msg["content"] and boxed(msg["content"]) == "834"
        assert "Check:" in msg["reasoning_content"]
        assert out["usage"]["completion_tokens_details"]["reasoning_tokens"] == count_tokens(
            msg["reasoning_content"])
        out = chat(base, ADD, model="gpt-sim")  # chat style: worked answer, no thought
        assert out["choices"][0]["message"].get("reasoning_content") is None
        assert boxed(out["choices"][0]["message"]["content"]) == "834"
        out = chat(base, "What is the capital of France?")
        text = out["choices"][0]["message"]["content"]
        assert "sorry" in text.lower() and boxed(text) is None


def test_judge_persona_hook(monkeypatch):
    with serve_in_thread({}) as base:
        status, _, raw = post(base, {"model": "judge-sim", "messages": [
            {"role": "user", "content": "<question>hi</question><response>hello</response>"}]})
        assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"]
        monkeypatch.setattr(sim_server, "JUDGE_MODULE", "longthought.teacher.no_such_judge")
        status, _, raw = post(base, {"model": "judge-sim", "messages": [
            {"role": "user", "content": "hi"}]})
        assert status == 404 and json.loads(raw)["error"]["code"] == "model_not_found"


def test_every_fault_kind_on_the_wire():
    msg = {"model": "sim-o1", "messages": [{"role": "user", "content": ADD}]}
    for kind, check in [
        ("429", lambda s, h, b: s == 429 and h["retry-after"] == "1"
         and h["retry-after-ms"] == "250"),
        ("500", lambda s, h, b: s == 500 and json.loads(b)["error"]["type"] == "server_error"),
        ("503", lambda s, h, b: s == 503),
        ("malformed", lambda s, h, b: s == 200 and not _is_json(b)),
        ("empty", lambda s, h, b: s == 200 and json.loads(b)["choices"] == []),
    ]:
        spec = {"faults": {f"rate_{kind}": 1.0, "retry_after_s": 0.25}}
        with serve_in_thread(spec) as base:
            status, headers, body = post(base, msg)
            headers = {k.lower(): v for k, v in headers.items()}
            assert check(status, headers, body), (kind, status, body[:200])
            assert stats(base)["by_status"] == {kind: 1} and stats(base)["served"] == 0
    with serve_in_thread({"faults": {"rate_drop": 1.0}}) as base:
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            post(base, msg)
    with serve_in_thread({"faults": {"rate_hang": 1.0, "hang_s": 30}}) as base:
        t0 = time.monotonic()
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            post(base, msg, timeout=0.3)
        assert time.monotonic() - t0 < 5


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def test_server_rate_limit_answers_429_with_retry_after():
    msg = {"model": "sim-o1", "messages": [{"role": "user", "content": ADD}]}
    with serve_in_thread({"rate_limit_rpm": 60}) as base:  # one request per second
        assert post(base, msg)[0] == 200
        status, headers, _ = post(base, msg)
        headers = {k.lower(): v for k, v in headers.items()}
        assert status == 429 and 0 < int(headers["retry-after-ms"]) <= 1000
        s = stats(base)
        assert s["requests"] == 2 and s["by_status"] == {"200": 1, "429": 1}


def test_latency_distribution_and_bad_specs():
    cfg = parse_sim_config({"latency_ms": {"dist": "lognormal", "median_ms": 100, "sigma": 0.5}})
    srv = sim_server.SimServer(cfg)
    draws = sorted(srv._latency_s() for _ in range(400))
    assert 0.07 < draws[200] < 0.14 and draws[0] != draws[-1]
    with serve_in_thread({"latency_ms": 150}) as base:
        t0 = time.monotonic()
        chat(base, ADD)
        assert time.monotonic() - t0 >= 0.15
    for bad, word in [({"slip_rat": 0.1}, "slip_rat"), ({"wrong_rate": 2}, "wrong_rate"),
                      ({"faults": {"rate_404": 0.1}}, "rate_404"),
                      ({"latency_ms": {"dist": "pareto"}}, "dist")]:
        with pytest.raises(ValueError, match=word):
            parse_sim_config(bad)


def test_cli_port_file_and_open_endpoint_lifecycle(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, "-m", "longthought.cli", "teacher-sim", "--port",
                             "0", "--port-file", str(port_file), "--spec", '{"seed": 1}'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        port = int(port_file.read_text())
        assert boxed(chat(f"http://127.0.0.1:{port}/v1", ADD)["choices"][0]["message"][
            "content"]) == "834"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    bad = subprocess.run([sys.executable, "-m", "longthought.cli", "teacher-sim", "--spec",
                          '{"nope": 1}'], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "nope" in bad.stderr

    teacher = {"base_url": "sim", "model": "sim-o1", "sim": {"seed": 2}}
    with open_endpoint(teacher) as url:
        assert boxed(chat(url, ADD)["choices"][0]["message"]["content"]) == "834"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/models", timeout=2)  # stopped with the block
    with pytest.raises(RuntimeError, match="boom"):
        with open_endpoint(teacher) as url2:
            raise RuntimeError("boom")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url2}/models", timeout=2)  # stopped on error too
    with open_endpoint({"base_url": "https://api.example.com/v1", "model": "m"}) as url3:
        assert url3 == "https://api.example.com/v1"
    with pytest.raises(ValueError, match="bogus"):
        with open_endpoint({"base_url": "sim", "model": "m", "sim": {"bogus": 1}}):
            pass
