"""The sim teacher's Batch API: `/v1/files` and `/v1/batches` as OpenAI serves them.

Files are uploaded (multipart, purpose `batch`), retrieved, listed and downloaded; a batch is
created from an uploaded JSONL file and goes through the real lifecycle: `validating` (the whole
file is checked: JSON lines, unique `custom_id`s, `POST` to the batch's endpoint, one model, at
most `max_requests` lines; a bad file ends `failed` with `errors`, and a file past the model's
enqueued-token limit ends `failed` with `token_limit_exceeded`), `in_progress` (lines are
answered in order, spread over `in_progress_s`), `finalizing`, `completed`. A batch may also
`expire` (past its completion window, or injected half way: the lines answered so far stay in
the output file, the rest go to the error file as `batch_expired`) or be cancelled
(`cancelling` -> `cancelled`, unanswered lines as `batch_cancelled`). Output and error lines
have the real shape: `{"id", "custom_id", "response": {"status_code", "request_id", "body"},
"error"}`. Faults at set rates: a line answered 500 (in the error file), a batch that expires
half done, a download cut off half way.

Everything lives in a store directory (files, batch records, partial outputs) and timing is wall
clock, so a sim restarted on the same store carries on where it was: the collector's re-attach
after a crash can be tested against a sim that was restarted too. One asyncio task advances the
batches in small steps, so the HTTP handlers stay responsive while 50,000 lines are answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from longthought.teacher.sim_config import BatchSim
from longthought.teacher.tokens import count_prompt_tokens

ENDPOINTS = ("/v1/chat/completions",)
WINDOWS = ("24h",)
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("completed", "failed", "expired", "cancelled")
STEP_LINES = 200  # lines answered per step of the advancing task (keeps handlers responsive)
TICK_S = 0.02
EXPIRED = ("batch_expired", "This request could not be executed before the completion window "
           "expired.")
CANCELLED = ("batch_cancelled", "This request was not executed because the batch was "
             "cancelled.")
SECRET_FIELDS = ("_sim",)

Complete = Callable[[dict[str, Any], str], dict[str, Any]]  # (body, body key) -> completion
Check = Callable[[Any], str | None]  # a body's problem, or None
Note = Callable[[str, str, int], None]  # (body key, status, tokens): the server's stats


def _id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _error(status: int, message: str, code: str | None, param: str | None = None,
           etype: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": etype, "param": param,
                                        "code": code}}, status=status)


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def _unit(*parts: object) -> float:
    """A deterministic draw in [0, 1) from the parts (a fault decided per line or batch)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:12], 16) / float(1 << 48)


class BatchStore:
    """Files and batches on disk, advanced by `run()`; the handlers are its aiohttp views."""

    def __init__(self, cfg: BatchSim, seed: int, root: str | Path | None, complete: Complete,
                 check: Check, note: Note, body_key: Callable[[dict[str, Any]], str]) -> None:
        self.cfg = cfg
        self.seed = seed
        self._owned = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="lt-simb-"))
        (self.root / "files").mkdir(parents=True, exist_ok=True)
        (self.root / "batches").mkdir(parents=True, exist_ok=True)
        self.complete, self.check, self.note, self.body_key = complete, check, note, body_key
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.downloads = 0
        self.downloads_dropped = 0
        self._load()

    # --- persistence -----------------------------------------------------------------------

    def _load(self) -> None:
        for path in sorted((self.root / "files").glob("*.json")):
            meta = json.loads(path.read_text())
            self.files[meta["id"]] = meta
        for path in sorted((self.root / "batches").glob("*.json")):
            rec = json.loads(path.read_text())
            self.batches[rec["id"]] = rec
            if rec["status"] not in TERMINAL:  # drop what a killed sim wrote past its record
                sim = rec["_sim"]
                for kind in ("out", "err"):
                    part = self._part(rec["id"], kind)
                    if part.exists():
                        with open(part, "r+b") as fh:
                            fh.truncate(sim[f"{kind}_bytes"])

    def _save(self, rec: dict[str, Any]) -> None:
        _write_json(self.root / "batches" / f"{rec['id']}.json", rec)

    def _data(self, file_id: str) -> Path:
        return self.root / "files" / f"{file_id}.data"

    def _part(self, batch_id: str, kind: str) -> Path:
        return self.root / "batches" / f"{batch_id}.{kind}.part"

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- files -----------------------------------------------------------------------------

    def _register(self, file_id: str, filename: str, purpose: str, size: int) -> dict[str, Any]:
        meta = {"id": file_id, "object": "file", "bytes": size, "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed",
                "expires_at": None, "status_details": None}
        self.files[file_id] = meta
        _write_json(self.root / "files" / f"{file_id}.json", meta)
        return meta

    async def upload(self, request: web.Request) -> web.Response:
        """POST /v1/files (multipart: purpose, file), streamed to disk."""
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            return _error(400, "expected a multipart/form-data body with 'file' and 'purpose'",
                          "invalid_request")
        purpose, filename, size, file_id = None, None, 0, _id("file-")
        data = self._data(file_id)
        too_big = False
        async for part in reader:
            if part.name == "purpose":
                purpose = (await part.text()).strip()
            elif part.name == "file":
                filename = part.filename or "upload.jsonl"
                with open(data, "wb") as fh:
                    while chunk := await part.read_chunk(1 << 20):
                        size += len(chunk)
                        if size > self.cfg.max_file_bytes:
                            too_big = True
                            continue  # drain the body, keep nothing
                        fh.write(chunk)
        if too_big:
            data.unlink(missing_ok=True)
            return _error(400, f"File is too large: {size} bytes, the limit is "
                          f"{self.cfg.max_file_bytes} bytes", "file_too_large", "file")
        if filename is None:
            return _error(400, "missing required parameter 'file'", "missing_required_parameter",
                          "file")
        if purpose != "batch":
            data.unlink(missing_ok=True)
            return _error(400, f"'purpose' must be 'batch' here, got {purpose!r}",
                          "invalid_value", "purpose")
        return web.json_response(self._register(file_id, filename, purpose, size))

    def _file_or_404(self, request: web.Request) -> dict[str, Any] | web.Response:
        meta = self.files.get(request.match_info["file_id"])
        if meta is None:
            return _error(404, f"No such File object: {request.match_info['file_id']}",
                          "not_found", "id")
        return meta

    async def file_view(self, request: web.Request) -> web.Response:
        meta = self._file_or_404(request)
        return meta if isinstance(meta, web.Response) else web.json_response(meta)

    async def file_delete(self, request: web.Request) -> web.Response:
        meta = self._file_or_404(request)
        if isinstance(meta, web.Response):
            return meta
        del self.files[meta["id"]]
        (self.root / "files" / f"{meta['id']}.json").unlink(missing_ok=True)
        self._data(meta["id"]).unlink(missing_ok=True)
        return web.json_response({"id": meta["id"], "object": "file", "deleted": True})

    async def file_list(self, request: web.Request) -> web.Response:
        """GET /v1/files (purpose, limit, after, order), newest first by default."""
        q = request.query
        items = [f for f in self.files.values() if not q.get("purpose")
                 or f["purpose"] == q["purpose"]]
        items.sort(key=lambda f: (f["created_at"], f["id"]), reverse=q.get("order") != "asc")
        return _page(items, q)

    async def file_content(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/files/{id}/content: streamed; at `rate_download_drop`, cut off half way."""
        meta = self._file_or_404(request)
        if isinstance(meta, web.Response):
            return meta
        self.downloads += 1
        size = meta["bytes"]
        drop = _unit(self.seed, "drop", meta["id"], self.downloads) < self.cfg.rate_download_drop
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                           "Content-Length": str(size)})
        await resp.prepare(request)
        sent = 0
        with open(self._data(meta["id"]), "rb") as fh:
            while chunk := fh.read(1 << 20):
                if drop and sent + len(chunk) >= size // 2:
                    await resp.write(chunk[: max(0, size // 2 - sent)])
                    self.downloads_dropped += 1
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
                await resp.write(chunk)
                sent += len(chunk)
        await resp.write_eof()
        return resp

    # --- batches ---------------------------------------------------------------------------

    @staticmethod
    def _public(rec: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in rec.items() if k not in SECRET_FIELDS}

    async def create(self, request: web.Request) -> web.Response:
        """POST /v1/batches {input_file_id, endpoint, completion_window, metadata}."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the request body is not valid JSON", "invalid_json")
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object", "invalid_request")
        for key in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(key), str):
                return _error(400, f"missing required parameter '{key}'",
                              "missing_required_parameter", key)
        meta = self.files.get(body["input_file_id"])
        if meta is None:
            return _error(404, f"No such File object: {body['input_file_id']}", "not_found",
                          "input_file_id")
        if meta["purpose"] != "batch":
            return _error(400, f"file {meta['id']} has purpose {meta['purpose']!r}, not "
                          "'batch'", "invalid_value", "input_file_id")
        if body["endpoint"] not in ENDPOINTS:
            return _error(400, f"endpoint must be one of {list(ENDPOINTS)} here, got "
                          f"{body['endpoint']!r}", "invalid_value", "endpoint")
        if body["completion_window"] not in WINDOWS:
            return _error(400, f"completion_window must be '24h', got "
                          f"{body['completion_window']!r}", "invalid_value", "completion_window")
        metadata = body.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16 or any(
                not isinstance(v, str) or len(str(k)) > 64 or len(v) > 512
                for k, v in metadata.items())):
            return _error(400, "metadata: at most 16 string pairs (keys up to 64 characters, "
                          "values up to 512)", "invalid_value", "metadata")
        now = time.time()
        ordinal = len(self.batches) + 1
        batch_id = _id("batch_")
        doom = (ordinal in self.cfg.expire_batches
                or _unit(self.seed, "expire", ordinal) < self.cfg.rate_expire)
        rec: dict[str, Any] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": meta["id"], "completion_window": body["completion_window"],
            "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": int(now), "in_progress_at": None,
            "expires_at": int(now + self.cfg.completion_window_s), "finalizing_at": None,
            "completed_at": None, "failed_at": None, "expired_at": None, "cancelling_at": None,
            "cancelled_at": None, "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata, "model": None, "usage": None,
            "_sim": {"ordinal": ordinal, "doom": doom, "t0": now, "t_step": now, "n": 0,
                     "tokens": 0, "in_offset": 0, "done": 0, "out_bytes": 0, "err_bytes": 0,
                     "usage": [0, 0, 0]},
        }
        self.batches[batch_id] = rec
        self._save(rec)
        return web.json_response(self._public(rec))

    def _batch_or_404(self, request: web.Request) -> dict[str, Any] | web.Response:
        rec = self.batches.get(request.match_info["batch_id"])
        if rec is None:
            return _error(404, f"No batch found with id '{request.match_info['batch_id']}'",
                          "not_found", "batch_id")
        return rec

    async def retrieve(self, request: web.Request) -> web.Response:
        rec = self._batch_or_404(request)
        return rec if isinstance(rec, web.Response) else web.json_response(self._public(rec))

    async def cancel(self, request: web.Request) -> web.Response:
        """POST /v1/batches/{id}/cancel: `cancelling` now, `cancelled` after finalizing_s."""
        rec = self._batch_or_404(request)
        if isinstance(rec, web.Response):
            return rec
        if rec["status"] in TERMINAL or rec["status"] == "cancelling":
            return _error(409, f"Cannot cancel a batch with status {rec['status']!r}",
                          "invalid_state") if rec["status"] in TERMINAL else \
                web.json_response(self._public(rec))
        now = time.time()
        rec["status"], rec["cancelling_at"] = "cancelling", int(now)
        rec["_sim"]["t_step"] = now
        self._save(rec)
        return web.json_response(self._public(rec))

    async def batch_list(self, request: web.Request) -> web.Response:
        """GET /v1/batches (limit, after), newest first."""
        items = sorted(self.batches.values(), key=lambda b: b["_sim"]["ordinal"], reverse=True)
        return _page([self._public(b) for b in items], request.query)

    # --- the lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Advance every unfinished batch, a small step at a time, forever."""
        while True:
            for rec in [b for b in self.batches.values() if b["status"] in ACTIVE]:
                try:
                    await self._step(rec)
                except Exception as exc:  # noqa: BLE001 (the sim must keep serving)
                    print(f"teacher-sim: batch {rec['id']}: {type(exc).__name__}: {exc}",
                          flush=True)
                await asyncio.sleep(0)
            await asyncio.sleep(TICK_S)

    async def _step(self, rec: dict[str, Any]) -> None:
        """One step of a batch's lifecycle; the record is saved when it changed."""
        cfg, sim, now = self.cfg, rec["_sim"], time.time()
        status = rec["status"]
        if status == "validating":
            if now - sim["t0"] < cfg.validating_s:
                return
            await self._validate(rec, now)
        elif status == "in_progress":
            expired = now - sim["t0"] >= cfg.completion_window_s
            due = sim["n"] if cfg.in_progress_s <= 0 else \
                min(sim["n"], int((now - sim["t_step"]) / cfg.in_progress_s * sim["n"]))
            if sim["doom"]:  # injected: expires once half its lines are answered
                due = min(due, sim["n"] // 2)
                expired = expired or sim["done"] >= sim["n"] // 2
            if expired:
                self._close_rest(rec, EXPIRED)
                rec["status"], rec["expired_at"] = "expired", int(now)
                self._publish(rec)
            elif sim["done"] < due:
                self._answer(rec, min(due - sim["done"], STEP_LINES))
            elif sim["done"] >= sim["n"]:
                rec["status"], rec["finalizing_at"], sim["t_step"] = "finalizing", int(now), now
            else:
                return
        elif status == "finalizing":
            if now - sim["t_step"] < cfg.finalizing_s:
                return
            rec["status"], rec["completed_at"] = "completed", int(now)
            self._publish(rec)
        elif status == "cancelling":
            if sim["done"] < sim["n"]:
                self._close_rest(rec, CANCELLED)
            elif now - sim["t_step"] >= cfg.finalizing_s:
                rec["status"], rec["cancelled_at"] = "cancelled", int(now)
                self._publish(rec)
            else:
                return
        self._save(rec)

    async def _validate(self, rec: dict[str, Any], now: float) -> None:
        path = self._data(rec["input_file_id"])
        errors, n, tokens, model = await asyncio.to_thread(
            validate_input, path, rec["endpoint"], self.cfg.max_requests)
        sim = rec["_sim"]
        if not errors and self.cfg.enqueued_token_limit is not None:
            queued = sum(b["_sim"]["tokens"] for b in self.batches.values()
                         if b is not rec and b["model"] == model
                         and b["status"] in ("in_progress", "finalizing"))
            if queued + tokens > self.cfg.enqueued_token_limit:
                errors = [{"code": "token_limit_exceeded", "line": None, "param": None,
                           "message": f"Enqueued token limit reached for {model} in "
                           f"organization org-sim. Limit: {self.cfg.enqueued_token_limit:,} "
                           f"enqueued tokens. Please try submitting the request again once some "
                           f"in_progress batches have been completed."}]
        rec["model"] = model
        if errors:
            rec["status"], rec["failed_at"] = "failed", int(now)
            rec["errors"] = {"object": "list", "data": errors}
            return
        sim["n"], sim["tokens"], sim["t_step"] = n, tokens, now
        rec["status"], rec["in_progress_at"] = "in_progress", int(now)
        rec["request_counts"]["total"] = n

    def _lines(self, rec: dict[str, Any], count: int):
        """The next `count` input lines (parsed), advancing the batch's input offset."""
        sim = rec["_sim"]
        with open(self._data(rec["input_file_id"]), "rb") as fh:
            fh.seek(sim["in_offset"])
            for _ in range(count):
                raw = fh.readline()
                if not raw:
                    return
                sim["in_offset"] += len(raw)
                sim["done"] += 1
                if raw.strip():
                    yield json.loads(raw)

    def _append(self, rec: dict[str, Any], out: list[str], err: list[str]) -> None:
        sim = rec["_sim"]
        for kind, lines in (("out", out), ("err", err)):
            if lines:
                data = "".join(lines).encode()
                with open(self._part(rec["id"], kind), "ab") as fh:
                    fh.write(data)
                sim[f"{kind}_bytes"] += len(data)

    def _answer(self, rec: dict[str, Any], count: int) -> None:
        """Answer the next `count` lines: a completion, a 400 for a bad body, or an injected
        500 (at `rate_line_error`)."""
        sim, counts = rec["_sim"], rec["request_counts"]
        out: list[str] = []
        err: list[str] = []
        for line in self._lines(rec, count):
            body, cid = line["body"], line["custom_id"]
            problem = self.check(body)
            if problem is not None:
                err.append(_line(cid, 400, {"error": {"message": problem, "type":
                                 "invalid_request_error", "param": None, "code": None}}))
                counts["failed"] += 1
                continue
            key = self.body_key(body)
            if _unit(self.seed, "line", rec["id"], sim["done"]) < self.cfg.rate_line_error:
                err.append(_line(cid, 500, {"error": {
                    "message": "The server had an error processing your request (injected).",
                    "type": "server_error", "param": None, "code": None}}))
                counts["failed"] += 1
                self.note(key, "batch_line_error", 0)
                continue
            payload = self.complete(body, key)
            usage = payload["usage"]
            sim["usage"][0] += usage["prompt_tokens"]
            sim["usage"][1] += usage["completion_tokens"]
            sim["usage"][2] += usage["completion_tokens_details"]["reasoning_tokens"]
            out.append(_line(cid, 200, payload))
            counts["completed"] += 1
            self.note(key, "200", usage["total_tokens"])
        self._append(rec, out, err)

    def _close_rest(self, rec: dict[str, Any], why: tuple[str, str]) -> None:
        """Every line not answered yet goes to the error file as expired / cancelled."""
        code, message = why
        while rec["_sim"]["done"] < rec["_sim"]["n"]:
            err = [json.dumps({"id": _id("batch_req_"), "custom_id": line["custom_id"],
                               "response": None, "error": {"code": code, "message": message}})
                   + "\n" for line in self._lines(rec, 5000)]
            rec["request_counts"]["failed"] += len(err)
            self._append(rec, [], err)

    def _publish(self, rec: dict[str, Any]) -> None:
        """A finished batch's output and error files become File objects."""
        sim = rec["_sim"]
        for kind, field, name in (("out", "output_file_id", "output"),
                                  ("err", "error_file_id", "error")):
            part = self._part(rec["id"], kind)
            if sim[f"{kind}_bytes"] > 0 and part.exists():
                file_id = _id("file-")
                os.replace(part, self._data(file_id))
                self._register(file_id, f"batch_{rec['id']}_{name}.jsonl", "batch_output",
                               sim[f"{kind}_bytes"])
                rec[field] = file_id
        p, c, r = sim["usage"]
        rec["usage"] = {"input_tokens": p, "input_tokens_details": {"cached_tokens": 0},
                        "output_tokens": c, "output_tokens_details": {"reasoning_tokens": r},
                        "total_tokens": p + c}

    # --- stats -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Files, batches and lines, from the store (so they survive a sim restart)."""
        by_status = Counter(b["status"] for b in self.batches.values())
        per_file = Counter(b["input_file_id"] for b in self.batches.values())
        lines: Counter[str] = Counter()
        billed = [0, 0, 0]  # prompt, completion (reasoning included), reasoning tokens
        for b in self.batches.values():
            lines["completed"] += b["request_counts"]["completed"]
            lines["failed"] += b["request_counts"]["failed"]
            for i, n in enumerate(b["_sim"]["usage"]):
                billed[i] += n
        return {
            "files": sum(1 for f in self.files.values() if f["purpose"] == "batch"),
            "output_files": sum(1 for f in self.files.values() if f["purpose"] == "batch_output"),
            "batches": len(self.batches), "batches_by_status": dict(by_status),
            "batches_per_input_file": max(per_file.values(), default=0),
            "lines_completed": lines["completed"], "lines_failed": lines["failed"],
            "downloads": self.downloads, "downloads_dropped": self.downloads_dropped,
            # the usage of every line answered (what the provider bills; batches still running
            # included), so a benchmark can check what a collector booked against it
            "billed_usage": {"prompt_tokens": billed[0], "completion_tokens": billed[1],
                             "reasoning_tokens": billed[2]},
        }


def _line(custom_id: str, status: int, body: dict[str, Any]) -> str:
    return json.dumps({"id": _id("batch_req_"), "custom_id": custom_id,
                       "response": {"status_code": status, "request_id": _id("req_"),
                                    "body": body}, "error": None}, ensure_ascii=False) + "\n"


def _page(items: list[dict[str, Any]], query: Any) -> web.Response:
    """A cursor page as the API returns lists: data, first_id, last_id, has_more."""
    try:
        limit = max(1, min(10_000, int(query.get("limit", 20))))
    except ValueError:
        return _error(400, "limit must be an integer", "invalid_value", "limit")
    after = query.get("after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return web.json_response({"object": "list", "data": page,
                              "first_id": page[0]["id"] if page else None,
                              "last_id": page[-1]["id"] if page else None,
                              "has_more": len(items) > limit})


def validate_input(path: Path, endpoint: str, max_requests: int
                   ) -> tuple[list[dict[str, Any]], int, int, str | None]:
    """Check a batch input file as the API does: (errors, lines, prompt tokens, model)."""
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    n = tokens = 0
    model: str | None = None

    def bad(line: int, code: str, message: str, param: str | None = None) -> None:
        if len(errors) < 10:
            errors.append({"code": code, "line": line, "param": param, "message": message})

    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            n += 1
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                bad(i, "invalid_json_line", "This line is not parseable as valid JSON.")
                continue
            if not isinstance(obj, dict):
                bad(i, "invalid_json_line", "This line is not a JSON object.")
                continue
            cid = obj.get("custom_id")
            if not isinstance(cid, str) or not cid:
                bad(i, "missing_required_parameter", "Missing 'custom_id'.", "custom_id")
            elif cid in seen:
                bad(i, "duplicate_custom_id", f"The custom_id '{cid}' is used more than once; "
                    "each request in a batch needs a unique custom_id.", "custom_id")
            else:
                seen.add(cid)
            if obj.get("method") != "POST":
                bad(i, "invalid_method", "Only the POST method is supported.", "method")
            if obj.get("url") != endpoint:
                bad(i, "mismatched_endpoint", f"The url {obj.get('url')!r} does not match the "
                    f"batch's endpoint {endpoint!r}.", "url")
            body = obj.get("body")
            if not isinstance(body, dict):
                bad(i, "missing_required_parameter", "Missing 'body'.", "body")
                continue
            if model is None:
                model = body.get("model")
            elif body.get("model") != model:
                bad(i, "mismatched_model", f"The model {body.get('model')!r} differs from the "
                    f"file's first model {model!r}; a batch file holds one model.", "body.model")
            msgs = body.get("messages")
            if isinstance(msgs, list):
                tokens += count_prompt_tokens([m for m in msgs if isinstance(m, dict)])
    if n == 0:
        bad(0, "empty_file", "The input file has no requests.")
    if n > max_requests:
        errors.insert(0, {"code": "too_many_requests", "line": None, "param": None,
                          "message": f"The input file has {n} requests; a batch holds at most "
                          f"{max_requests}."})
    return errors, n, tokens, model


def add_routes(app: web.Application, store: BatchStore) -> None:
    """The Batch API's routes, and the task that advances the batches while the app runs."""
    r = app.router
    r.add_post("/v1/files", store.upload)
    r.add_get("/v1/files", store.file_list)
    r.add_get("/v1/files/{file_id}", store.file_view)
    r.add_delete("/v1/files/{file_id}", store.file_delete)
    r.add_get("/v1/files/{file_id}/content", store.file_content)
    r.add_post("/v1/batches", store.create)
    r.add_get("/v1/batches", store.batch_list)
    r.add_get("/v1/batches/{batch_id}", store.retrieve)
    r.add_post("/v1/batches/{batch_id}/cancel", store.cancel)

    async def advance(app: web.Application):
        task = asyncio.create_task(store.run())
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        store.close()

    app.cleanup_ctx.append(advance)
