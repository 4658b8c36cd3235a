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
