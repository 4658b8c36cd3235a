"""The Batch API's line formats: a request line in, an output or error line back.

In: `{"custom_id": <cache key>, "method": "POST", "url": "/v1/chat/completions", "body": ...}`;
the custom_id is the request's cache key, so every line that comes back is matched to its
request (lines come back in any order) and stored under the same key an online reply would be.

Back (output and error files alike): `{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error"}`. A 200 carries a chat-completion body; another status carries
`{"error": {...}}` in its body; a line the batch never ran (expired, cancelled) has `response:
null` and `error: {code, message}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from longthought.teacher.transport import ERROR_CHARS

ENDPOINT = "/v1/chat/completions"
RETRYABLE_STATUS = (408, 409, 429)  # and every 5xx
RETRYABLE_CODES = ("batch_expired", "batch_cancelled", "server_error", "rate_limit_exceeded",
                   "timeout")


def encode_line(key: str, body: dict[str, Any]) -> bytes:
    """One request line (the body as the collector would send it online)."""
    return (json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body},
                       ensure_ascii=False, separators=(",", ":")) + "\n").encode()


@dataclass
class LineOutcome:
    """One output or error line, read without trusting it."""

    custom_id: str | None
    body: str | None  # a 200's chat-completion body, as JSON text
    reason: str | None  # why it is not usable
    retryable: bool


def read_line(raw: bytes | str) -> LineOutcome:
    """What one line of an output or error file says."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return LineOutcome(None, None, "a line of the batch's file is not JSON", True)
    if not isinstance(obj, dict):
        return LineOutcome(None, None, "a line of the batch's file is not a JSON object", True)
    cid = obj.get("custom_id") if isinstance(obj.get("custom_id"), str) else None
    resp, err = obj.get("response"), obj.get("error")
    if isinstance(resp, dict):
        status = resp.get("status_code")
        body = resp.get("body")
        if status == 200 and isinstance(body, dict):
            return LineOutcome(cid, json.dumps(body, ensure_ascii=False,
                                               separators=(",", ":")), None, True)
        message = _message(body)
        retryable = isinstance(status, int) and (status >= 500 or status in RETRYABLE_STATUS)
        return LineOutcome(cid, None, f"HTTP {status} in the batch: {message}", retryable)
    if isinstance(err, dict):
        code = str(err.get("code") or "error")
        return LineOutcome(cid, None, f"{code}: {err.get('message') or ''}".strip()[:ERROR_CHARS],
                           code in RETRYABLE_CODES)
    return LineOutcome(cid, None, "a line with neither a response nor an error", True)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:ERROR_CHARS]
    return json.dumps(body, ensure_ascii=False)[:ERROR_CHARS]
