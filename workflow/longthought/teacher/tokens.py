"""A simple deterministic tokenizer for the sim server's `usage` and the collector's estimates.

The sim teacher must report real, reproducible token counts without shipping a BPE vocabulary, so a
token here is one regex piece: a run of letters, a run of up to three digits (long numbers split
the way BPE tokenizers usually split them), or any single other non-space character (punctuation,
LaTeX backslash, brace). Whitespace is not a token. The counts are within a small factor of a real
BPE tokenizer's on English and math text, which is all rate limits and cost estimates need.
"""

from __future__ import annotations

import re

TOKEN_RE = re.compile(r"[^\W\d_]+|\d{1,3}|[^\w\s]|_")

# per-message overhead in prompt token counts (role markers, separators), as chat APIs add
MESSAGE_OVERHEAD = 4


def count_tokens(text: str | None) -> int:
    """Number of tokens in `text` (0 for None or empty)."""
    if not text:
        return 0
    return sum(1 for _ in TOKEN_RE.finditer(text))


def truncate_tokens(text: str, n: int) -> str:
    """The prefix of `text` that holds its first `n` tokens (ends right after the n-th token)."""
    if n <= 0:
        return ""
    for i, m in enumerate(TOKEN_RE.finditer(text), 1):
        if i == n:
            return text[: m.end()]
    return text


def message_text(content: object) -> str:
    """Text of a chat message's `content`: a string, or the text parts of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


def count_prompt_tokens(messages: list[dict]) -> int:
    """Prompt tokens of a chat request: each message's text plus a fixed per-message overhead."""
    return sum(count_tokens(message_text(m.get("content"))) + MESSAGE_OVERHEAD for m in messages)
