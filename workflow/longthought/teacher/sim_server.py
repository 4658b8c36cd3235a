"""`longthought teacher-sim`: an OpenAI-compatible chat server on loopback that thinks out loud.

Real HTTP (aiohttp.web), the same wire format as OpenAI / DeepSeek / vLLM, so the collector, the
API evaluation backend and the judges are exercised exactly as against a paid endpoint. It solves
the procedural problems (`sim_persona`), reports real `usage` counts (`tokens`), and injects the
faults a real API shows at configured rates (`sim_config`): 429 with Retry-After, 500/503, hangs,
dropped connections, malformed JSON, empty replies, truncation; plus a latency distribution and a
server-side requests-per-minute limit. It also speaks the Batch API (`/v1/files`,
`/v1/batches`: `sim_batch`), answering batch lines with the same completions. `GET /sim/stats`
counts what it served, per status, and which request bodies were answered successfully (online
or in a batch), plus the files, batches and lines of the Batch API, so tests and benchmarks can
prove that nothing was lost or paid twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import math
import os
import queue
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from longthought.teacher.sim_batch import BatchStore, add_routes
from longthought.teacher.sim_config import SimConfig, parse_sim_config
from longthought.teacher.sim_persona import compose
from longthought.teacher.tokens import (
    TOKEN_RE,
    count_prompt_tokens,
    count_tokens,
    message_text,
    truncate_tokens,
)

JUDGE_MODULE = "longthought.teacher.sim_judge"
SIM_KEY: web.AppKey[SimServer] = web.AppKey("sim")
MAX_EVENTS = 20000
STREAM_KEYS = ("stream", "stream_options")


def body_key(body: dict[str, Any]) -> str:
    """sha256 of a request body's canonical JSON, without how it travels (`stream`,
    `stream_options`): the server's name for a request, streamed or not."""
    content = {k: v for k, v in body.items() if k not in STREAM_KEYS}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None,
           etype: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": etype, "code": code,
                                        "param": None}}, status=status, headers=headers)


class ServerBucket:
    """The server's rate limit: a token bucket holding one second's worth of requests, refilled
    at rpm/60 per second, like the per-second quantisation real APIs apply to minute limits."""

    def __init__(self, rpm: float) -> None:
        self.rate = rpm / 60.0
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.t = time.monotonic()

    def take(self) -> float:
        """Take one token; 0.0 if granted, else the seconds until one will be available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class SimStats:
    """What the server saw: requests, outcomes per status, successfully served request keys."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.time()
        self.requests = 0
        self.by_status: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.events: deque[tuple[float, str, str, int]] = deque(maxlen=MAX_EVENTS)

    def note(self, key: str, status: str, tokens: int = 0) -> None:
        """One answered request; `tokens`: prompt + completion tokens of a 200."""
        self.by_status[status] += 1
        self.events.append((time.time(), key, status, tokens))
        if status == "200":
            self.served[key] += 1

    def as_json(self, keys: bool, events: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "served": sum(self.served.values()),
            "served_unique": len(self.served),
            "duplicates": sum(c - 1 for c in self.served.values()),
        }
        if keys:
            out["served_keys"] = dict(self.served)
        if events:
            out["events"] = [list(e) for e in self.events]
        return out


class SimServer:
    """The request handlers and the state they share (config, fault RNG, stats, rate limit)."""

    def __init__(self, cfg: SimConfig, store: str | Path | None = None) -> None:
        self.cfg = cfg
        self.fault_rng = random.Random(f"faults:{cfg.seed}")
        self.stats = SimStats()
        self.bucket = ServerBucket(cfg.rate_limit_rpm) if cfg.rate_limit_rpm else None
        self.t0 = time.monotonic()  # the outage window counts from here (or /sim/reset)
        self.batches = BatchStore(cfg.batch, cfg.seed, store, self._completion, self._bad_body,
                                  self.stats.note, body_key)

    # --- helpers ---------------------------------------------------------------------------

    def _latency_s(self) -> float:
        lat = self.cfg.latency
        if lat.dist == "lognormal" and lat.ms > 0:
            return lat.ms * math.exp(self.fault_rng.gauss(0.0, lat.sigma)) / 1000.0
        return lat.ms / 1000.0

    def _draw_fault(self) -> str | None:
        r = self.fault_rng.random()
        for kind, rate in self.cfg.fault_rates.items():
            if r < rate:
                return kind
            r -= rate
        return None

    def _content_rng(self, body: dict[str, Any], index: int) -> random.Random:
        """Replies depend only on the sim seed and what the request says, never on timing."""
        material = {k: body.get(k) for k in ("model", "messages", "seed", "user", "metadata")}
        digest = hashlib.sha256(
            f"{self.cfg.seed}:{index}:{json.dumps(material, sort_keys=True)}".encode()
        ).hexdigest()
        return random.Random(int(digest[:16], 16))

    @staticmethod
    async def _hang(request: web.Request, seconds: float) -> None:
        """Sleep `seconds`, returning early once the client has gone away."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # --- completions -----------------------------------------------------------------------

    def _choice(self, body: dict[str, Any], index: int, limit: int | None) -> tuple[dict, int, int]:
        """One choice: (choice JSON, completion tokens, reasoning tokens)."""
        cfg = self.cfg
        rng = self._content_rng(body, index)
        model = str(body.get("model", ""))
        users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        text = message_text(users[-1].get("content")) if users else ""
        if model.startswith("judge"):
            judge = importlib.import_module(JUDGE_MODULE)
            thought, answer = None, judge.respond(body["messages"], rng)
        else:
            reply = compose(text, model, style=cfg.style, slip_rate=cfg.slip_rate,
                            wrong_rate=cfg.wrong_rate, rng=rng)
            thought, answer = reply.thought, reply.answer
        finish = "stop"
        if thought is not None and not cfg.reasoning_content:
            answer = f"<think>\n{thought}\n</think>\n\n{answer}"
            thought = None
        total = count_tokens(thought) + count_tokens(answer)
        cut = limit
        if cfg.truncate_rate and rng.random() < cfg.truncate_rate:
            frac = int(total * rng.uniform(0.3, 0.8))
            cut = frac if cut is None else min(cut, frac)
        if cut is not None and cut < total:
            finish = "length"
            t_tokens = count_tokens(thought)
            if thought is not None and cut <= t_tokens:
                thought, answer = truncate_tokens(thought, cut), ""
            else:
                answer = truncate_tokens(answer, cut - t_tokens)
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        if cfg.reasoning_content:
            message["reasoning_content"] = thought
            reasoning = count_tokens(thought)
        else:
            head, sep, _ = answer.partition("</think>")
            reasoning = count_tokens(head + sep) if answer.startswith("<think>") else 0
        completion = count_tokens(answer) + count_tokens(thought)
        choice = {"index": index, "message": message, "finish_reason": finish, "logprobs": None}
        return choice, completion, reasoning

    def _completion(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        n = int(body.get("n") or 1)
        choices, completion, reasoning = [], 0, 0
        for i in range(n):
            choice, c, r = self._choice(body, i, limit)
            choices.append(choice)
            completion += c
            reasoning += r
        prompt = count_prompt_tokens(body["messages"])
        return {
            "id": f"chatcmpl-sim{key[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": "longthought-sim",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            },
        }

    @staticmethod
    def _bad_body(body: Any) -> str | None:
        if not isinstance(body, dict):
            return "the request body must be a JSON object"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "'model' is required and must be a string"
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
            return "'messages' must be a non-empty list of message objects"
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            return "'max_tokens' must be a positive integer"
        n = body.get("n")
        if n is not None and (not isinstance(n, int) or not 1 <= n <= 128):
            return "'n' must be an integer in [1, 128]"
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests += 1
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.stats.note("-", "400")
            return _error(400, "the request body is not valid JSON", "invalid_json")
        problem = self._bad_body(body)
        if problem:
            self.stats.note("-", "400")
            return _error(400, problem, "invalid_request")
        key = body_key(body)
        if self.bucket is not None:
            wait = self.bucket.take()
            if wait > 0:
                self.stats.note(key, "429")
                return _rate_limited(wait, "rate limit reached for requests per minute")
        outage = self.cfg.outage
        if outage is not None and outage.active(time.monotonic() - self.t0):
            self.stats.note(key, str(outage.status))
            if outage.status == 429:
                return _rate_limited(self.cfg.retry_after_s, "rate limit reached (outage)")
            return _error(outage.status, f"the server had an error (outage {outage.status})",
                          "server_error", etype="server_error")
        fault = self._draw_fault()
        if fault == "429":
            self.stats.note(key, "429")
            return _rate_limited(self.cfg.retry_after_s, "rate limit reached (injected)")
        delay = self._latency_s()
        if delay > 0:
            await asyncio.sleep(delay)
        if fault in ("500", "503"):
            self.stats.note(key, fault)
            return _error(int(fault), f"the server had an error (injected {fault})",
                          "server_error", etype="server_error")
        if fault == "hang":
            self.stats.note(key, "hang")
            await self._hang(request, self.cfg.hang_s)
            return _error(504, "gateway timeout (injected hang)", "timeout", etype="server_error")
        if fault == "drop":
            self.stats.note(key, "drop")
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if fault == "malformed":
            self.stats.note(key, "malformed")
            broken = '{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess'
            if body.get("stream"):
                return web.Response(status=200, content_type="text/event-stream",
                                    text=f"data: {broken}\n\n")
            return web.Response(status=200, content_type="application/json", text=broken)
        if fault == "empty":
            self.stats.note(key, "empty")
            empty = {"id": "chatcmpl-empty", "object": "chat.completion", "model": body["model"],
                     "choices": [], "usage": None}
            if body.get("stream"):
                chunk = json.dumps({**empty, "object": "chat.completion.chunk"})
                return web.Response(status=200, content_type="text/event-stream",
                                    text=f"data: {chunk}\n\ndata: [DONE]\n\n")
            return web.json_response(empty)
        if str(body["model"]).startswith("judge"):
            try:
                importlib.import_module(JUDGE_MODULE)
            except ModuleNotFoundError:
                self.stats.note(key, "404")
                return _error(404, f"the model {body['model']!r} does not exist (no sim judge "
                              "persona is installed)", "model_not_found")
        payload = self._completion(body, key)
        usage = payload["usage"]
        if body.get("stream"):
            return await self._stream(request, body, key, payload, fault)
        if fault == "slow_stream":  # not streamed: the whole reply comes after the slow time
            await self._hang(request, self.cfg.slow_stream_s)
        self.stats.note(key, "200", usage["total_tokens"])
        return web.json_response(payload)

    # --- streaming -------------------------------------------------------------------------

    def _pieces(self, text: str | None) -> list[str]:
        """`text` cut into pieces of `stream_chunk_tokens` tokens (whitespace kept)."""
        if not text:
            return []
        n = self.cfg.stream_chunk_tokens
        ends = [m.end() for i, m in enumerate(TOKEN_RE.finditer(text), 1) if i % n == 0]
        cuts = [0, *[e for e in ends if e < len(text)], len(text)]
        return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]

    async def _stream(self, request: web.Request, body: dict[str, Any], key: str,
                      payload: dict[str, Any], fault: str | None) -> web.StreamResponse:
        """Send `payload` as server-sent events (`chat.completion.chunk`s), OpenAI style."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        head = {"id": payload["id"], "object": "chat.completion.chunk",
                "created": payload["created"], "model": payload["model"],
                "system_fingerprint": payload["system_fingerprint"]}
        choice = payload["choices"][0]
        msg = choice["message"]
        deltas = [{"role": "assistant", "content": ""}]
        deltas += [{"reasoning_content": p} for p in self._pieces(msg.get("reasoning_content"))]
        deltas += [{"content": p} for p in self._pieces(msg.get("content"))]
        gap = 0.0
        if fault == "slow_stream":  # exactly n chunks, gap apart: slow_stream_s in all
            gap = self.cfg.slow_stream_gap_s
            n = max(2, round(self.cfg.slow_stream_s / gap) + 1)
            deltas = _regroup(deltas, n)
            deltas[1:1] = [{"content": ""}] * (n - len(deltas))  # keep-alive deltas if short
        stall_at = len(deltas) // 2 if fault == "stall" else None

        async def send(obj: dict[str, Any]) -> None:
            await resp.write(b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n")

        try:
            for i, delta in enumerate(deltas):
                if i == stall_at:
                    self.stats.note(key, "stall")
                    await self._hang(request, self.cfg.hang_s)
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
                if gap and i:
                    await asyncio.sleep(gap)
                await send({**head, "choices": [{"index": 0, "delta": delta,
                                                 "finish_reason": None, "logprobs": None}]})
            await send({**head, "choices": [{"index": 0, "delta": {},
                                             "finish_reason": choice["finish_reason"],
                                             "logprobs": None}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                await send({**head, "choices": [], "usage": payload["usage"]})
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except (ConnectionResetError, RuntimeError):  # the client went away mid-stream
            self.stats.note(key, "client_gone")
            return resp
        self.stats.note(key, "200", payload["usage"]["total_tokens"])
        return resp

    async def models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "longthought-sim"}
                for m in self.cfg.models]
        return web.json_response({"object": "list", "data": data})

    async def stats_view(self, request: web.Request) -> web.Response:
        keys = request.query.get("keys", "1") != "0"
        events = request.query.get("events", "0") == "1"
        return web.json_response({**self.stats.as_json(keys, events),
                                  "batch": self.batches.stats()})

    async def reset(self, request: web.Request) -> web.Response:
        self.stats.reset()
        self.t0 = time.monotonic()
        self.fault_rng = random.Random(f"faults:{self.cfg.seed}")
        return web.json_response({"ok": True})


def _regroup(deltas: list[dict[str, str]], n: int) -> list[dict[str, str]]:
    """The same deltas merged into about `n` (a slow stream sends few, far apart)."""
    if len(deltas) <= n:
        return deltas
    size = -(-len(deltas) // n)
    out = []
    for i in range(0, len(deltas), size):
        merged: dict[str, str] = {}
        for d in deltas[i:i + size]:
            for k, v in d.items():
                merged[k] = merged.get(k, "") + v if k != "role" else v
        out.append(merged)
    return out


def _rate_limited(seconds: float, message: str) -> web.Response:
    headers = {"retry-after": str(max(1, math.ceil(seconds))),
               "retry-after-ms": str(max(1, math.ceil(seconds * 1000)))}
    return _error(429, message, "rate_limit_exceeded", headers, etype="requests")


def build_app(spec: dict[str, Any] | None, store: str | Path | None = None) -> web.Application:
    """The aiohttp application for a sim spec (validated; ValueError names a bad key). `store`:
    where the Batch API keeps its files and batches (a temporary directory when None)."""
    cfg = parse_sim_config(spec)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    sim = SimServer(cfg, store)
    app[SIM_KEY] = sim
    app.router.add_post("/v1/chat/completions", sim.chat)
    app.router.add_get("/v1/models", sim.models)
    app.router.add_get("/sim/stats", sim.stats_view)
    app.router.add_post("/sim/reset", sim.reset)
    add_routes(app, sim.batches)
    return app


async def _exit_with(parent_pid: int) -> None:
    """Stop when the process that started us is gone (killed with -9, say), so a sim child
    never outlives its collector."""
    while True:
        await asyncio.sleep(1.0)
        if os.getppid() != parent_pid:
            print("teacher-sim: the process that started it is gone; stopping", flush=True)
            return


async def _serve(app: web.Application, host: str, port: int, port_file: str | None,
                 parent_pid: int | None = None) -> None:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1]
    if port_file:
        tmp = Path(f"{port_file}.tmp{os.getpid()}")
        tmp.write_text(f"{bound}\n")
        os.replace(tmp, port_file)  # appears whole: readers never see a partial number
    print(f"teacher-sim listening on http://{host}:{bound}/v1", flush=True)
    try:
        if parent_pid is not None:
            await _exit_with(parent_pid)
        else:
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def serve(host: str, port: int, port_file: str | None, spec: dict[str, Any] | None,
          store: str | None = None, parent_pid: int | None = None) -> None:
    """Run the sim server until SIGTERM/SIGINT (or until `parent_pid` is gone); writes the bound
    port to `port_file` when ready. `store`: the Batch API's directory (kept across restarts)."""
    import signal

    app = build_app(spec, store)  # validate before binding, so a bad spec never looks ready
    loop = asyncio.new_event_loop()
    task = loop.create_task(_serve(app, host, port, port_file, parent_pid))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()


@contextmanager
def serve_in_thread(spec: dict[str, Any] | None, host: str = "127.0.0.1",
                    store: str | Path | None = None) -> Iterator[str]:
    """Run the sim server on a background thread's event loop (tests, benchmarks); yields the
    base URL (`http://host:port/v1`). Real HTTP on loopback, just without a child process."""
    app = build_app(spec, store)
    ready: queue.Queue[Any] = queue.Queue()
    loop = asyncio.new_event_loop()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, host, 0, backlog=1024).start()
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(start())
        except Exception as exc:  # report, don't hang the caller
            ready.put(exc)
            return
        ready.put(runner)
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="teacher-sim", daemon=True)
    thread.start()
    runner = ready.get(timeout=30)
    if isinstance(runner, Exception):
        raise runner
    try:
        yield f"http://{host}:{runner.addresses[0][1]}/v1"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
