"""Kept traces as chat messages, and their export to the Hugging Face messages format.

The user turn is the problem text (never the teacher prompt, which may carry a reference
solution); the assistant turn is the thought wrapped in the chosen thinking format, then the final
part. A trace whose thought arrived separately (DeepSeek-style `reasoning_content`) uses that as
the thought; a trace with no thought at all keeps its content as it is (nothing is invented).
"""

from __future__ import annotations

import json
import math
from typing import Any

from longthought.answers.thinking import extract_thinking

FORMATS = ("think", "sky", "plain")


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else ""


def split_trace(rec: dict) -> tuple[str | None, str]:
    """(thinking, final part) of a trace row; thinking is None when the trace has none."""
    content, reasoning = _text(rec.get("content")), _text(rec.get("reasoning_content"))
    thinking, final = extract_thinking(content, "auto")
    if reasoning.strip():
        return reasoning.strip(), final.strip()
    return thinking, final.strip()


def assistant_text(thinking: str | None, final: str, fmt: str) -> str:
    """The assistant turn: `thinking` wrapped per `fmt` (think | sky | plain), then `final`."""
    if fmt not in FORMATS:
        raise ValueError(f"format.thinking must be one of {FORMATS}, got {fmt!r}")
    if not thinking:
        return final
    if fmt == "think":
        return f"<think>\n{thinking}\n</think>\n\n{final}"
    if fmt == "sky":
        return (f"<|begin_of_thought|>\n\n{thinking}\n\n<|end_of_thought|>\n\n"
                f"<|begin_of_solution|>\n\n{final}\n\n<|end_of_solution|>")
    return f"{thinking}\n\n{final}"


def build_messages(problem: str, rec: dict, fmt: dict) -> list[dict[str, str]]:
    """system? + user (the problem, through `format.user` if set) + assistant."""
    messages = []
    if fmt.get("system"):
        messages.append({"role": "system", "content": str(fmt["system"])})
    template = fmt.get("user")
    user = template.replace("{problem}", problem) if template else problem
    messages.append({"role": "user", "content": user})
    thinking, final = split_trace(rec)
    messages.append({"role": "assistant", "content": assistant_text(thinking, final,
                                                                    fmt["thinking"])})
    return messages


def messages_json(messages: list[dict[str, str]]) -> str:
    return json.dumps(messages, ensure_ascii=False)
