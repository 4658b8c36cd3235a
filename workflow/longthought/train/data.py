"""Chat rows -> token ids and next-token labels, with the loss on assistant tokens only.

Each turn is rendered with the student's own chat template and tokenized on its own, so the
prompt tokens the model trains on are exactly the tokens it will be given at inference (prompt
rendered with `add_generation_prompt=True`) and the assistant tokens are exactly what it must
produce, end-of-turn token included. Labels are stored already shifted (label[t] is the token at
t+1, or -100), so packed samples never predict across a sample boundary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longthought.io import read_table

IGNORE = -100


@dataclass
class Encoded:
    """One tokenized sample: ids, shifted labels (-100 = no loss), and where it came from."""

    input_ids: np.ndarray  # int64 [n]
    labels: np.ndarray  # int64 [n]; labels[t] = input_ids[t+1] on assistant tokens, else -100
    truncated: bool

    @property
    def n_labels(self) -> int:
        return int((self.labels != IGNORE).sum())


def _render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=generation_prompt)


def encode_chat(tokenizer, messages: list[dict], max_length: int,
                where: str = "sample") -> Encoded:
    """Tokenize a conversation; the loss covers every assistant turn (its text and end token).

    Raises ValueError naming `where` if the template does not render turns as prefixes of each
    other, or if the prompt before the first assistant token does not fit in `max_length`.
    Longer samples are truncated to `max_length` (flagged in `Encoded.truncated`).
    """
    ids: list[int] = []
    train: list[bool] = []  # per token: is it an assistant token the model must predict?
    rendered = ""
    for i, msg in enumerate(messages):
        if msg.get("role") == "assistant":
            head = _render(tokenizer, messages[:i], True) if i else ""
            if not head.startswith(rendered):
                raise ValueError(f"{where}: the chat template does not render turn {i} as a "
                                 "continuation of the previous turns")
            part = tokenizer.encode(head[len(rendered):], add_special_tokens=False)
            ids += part
            train += [False] * len(part)
            rendered = head
        full = _render(tokenizer, messages[: i + 1], False)
        if not full.startswith(rendered):
            raise ValueError(f"{where}: the chat template does not render turn {i} as a "
                             "continuation of the previous turns")
        part = tokenizer.encode(full[len(rendered):], add_special_tokens=False)
        ids += part
        train += [msg.get("role") == "assistant"] * len(part)
        rendered = full
    if not any(train):
        raise ValueError(f"{where}: has no assistant turn to learn from")
    first = train.index(True)
    if first >= max_length:
        raise ValueError(f"{where}: the prompt is {first} tokens, longer than max_length "
                         f"{max_length}; raise the stage's max_length or drop the row")
    truncated = len(ids) > max_length
    ids, train = ids[:max_length], train[:max_length]
    input_ids = np.asarray(ids, dtype=np.int64)
    labels = np.full(len(ids), IGNORE, dtype=np.int64)
    target = np.asarray(train[1:], dtype=bool)
    labels[:-1][target] = input_ids[1:][target]
    return Encoded(input_ids, labels, truncated)


def parse_messages(text: str, where: str) -> list[dict]:
    """The `messages` column: a JSON list of {role, content}; a clear error otherwise."""
    try:
        messages = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where}: column 'messages' is not valid JSON: {exc}") from None
    ok = isinstance(messages, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    )
    if not ok or not messages:
        raise ValueError(f"{where}: column 'messages' must be a non-empty JSON list of "
                         "{role, content} objects")
    return messages


def load_dataset(path: str | Path, tokenizer, max_length: int) -> list[Encoded]:
    """Read a `dataset` table and tokenize every row; every row is checked before any training."""
    df = read_table(path, "dataset")
    if len(df) == 0:
        raise ValueError(f"{path}: dataset has zero rows; nothing to train on")
    out = []
    for row, (sample_id, text) in enumerate(zip(df["sample_id"], df["messages"], strict=True),
                                            start=1):  # as an editor counts
        where = f"{path}: row {row} (sample_id {sample_id!r})"
        out.append(encode_chat(tokenizer, parse_messages(text, where), max_length, where))
    return out
