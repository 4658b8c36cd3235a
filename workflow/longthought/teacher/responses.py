"""Reading a chat-completion response body without trusting it.

The collector keeps the raw body exactly as received and parses it here itself (not through the
SDK's models), so non-standard fields such as DeepSeek's `reasoning_content` are kept and a
malformed or empty body becomes a clear reason instead of an exception deep in a library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class MalformedResponse(ValueError):
    """A 200 response that is not a usable chat completion; the message says why."""


@dataclass
class Parsed:
    content: str | None
    reasoning_content: str | None
    finish_reason: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    has_usage: bool


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    return None


def _usage(obj: dict[str, Any]) -> tuple[int | None, int | None, int | None, bool]:
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return None, None, None, False
    details = usage.get("completion_tokens_details")
    reasoning = _int(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    if reasoning is None:
        reasoning = _int(usage.get("reasoning_tokens"))
    return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), reasoning, True


def usage_of(text: str) -> tuple[int | None, int | None, int | None] | None:
    """Usage of a body that may be otherwise unusable (a billed empty reply), or None."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(obj, dict):
        return None
    p, c, r, has = _usage(obj)
    return (p, c, r) if has else None


def parse_completion(text: str) -> Parsed:
    """Parse a chat-completion body; raise MalformedResponse naming what is wrong."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise MalformedResponse(f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedResponse("response body is not a JSON object")
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse("empty response: no choices")
    choice = choices[0]
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        raise MalformedResponse("choices[0] has no message object")
    msg = choice["message"]
    content = msg.get("content")
    reasoning = msg.get("reasoning_content", msg.get("reasoning"))
    if content is not None and not isinstance(content, str):
        raise MalformedResponse("message.content is not a string")
    if reasoning is not None and not isinstance(reasoning, str):
        reasoning = json.dumps(reasoning, ensure_ascii=False)
    finish = choice.get("finish_reason")
    finish = finish if isinstance(finish, str) else None
    if not content and not reasoning and finish != "length":
        # an empty "length" reply is real (the whole budget went to hidden reasoning): keep it
        raise MalformedResponse(f"empty response: no content (finish_reason={finish})")
    model = obj.get("model") if isinstance(obj.get("model"), str) else None
    p, c, r, has = _usage(obj)
    return Parsed(content, reasoning, finish, model, p, c, r, has)


class StreamAssembler:
    """Builds the chat-completion body a streamed reply adds up to, chunk by chunk.

    The collector keeps one body shape in the cache whether a reply was streamed (server-sent
    events, `chat.completion.chunk` objects) or not, so every reader parses one format. The
    first choice's content and reasoning pieces are joined; `usage` comes from the last chunk
    that carries it (`stream_options.include_usage`)."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.reasoning_key = "reasoning_content"
        self.role = "assistant"
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.chunks = 0

    def add(self, chunk: Any) -> None:
        """Fold in one decoded SSE data object; anything that is not a chunk is malformed."""
        if not isinstance(chunk, dict):
            raise MalformedResponse("a streamed chunk is not a JSON object")
        self.chunks += 1
        for k in ("id", "created", "model", "system_fingerprint"):
            if k in chunk and k not in self.head:
                self.head[k] = chunk[k]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta, dict):
                if isinstance(delta.get("role"), str):
                    self.role = delta["role"]
                if isinstance(delta.get("content"), str):
                    self.content.append(delta["content"])
                for key in ("reasoning_content", "reasoning"):
                    if isinstance(delta.get(key), str):
                        self.reasoning_key = key
                        self.reasoning.append(delta[key])
            if isinstance(choice.get("finish_reason"), str):
                self.finish = choice["finish_reason"]

    def text_so_far(self) -> str:
        return "".join(self.reasoning) + "".join(self.content)

    def body(self) -> dict[str, Any]:
        """The assembled `chat.completion` body."""
        message: dict[str, Any] = {"role": self.role,
                                   "content": "".join(self.content) if self.content else None}
        if self.reasoning:
            message[self.reasoning_key] = "".join(self.reasoning)
        out: dict[str, Any] = {**self.head, "object": "chat.completion", "choices": [
            {"index": 0, "message": message, "finish_reason": self.finish}]}
        if self.usage is not None:
            out["usage"] = self.usage
        return out

    def text(self) -> str:
        return json.dumps(self.body(), ensure_ascii=False, separators=(",", ":"))
