"""Chat rows -> token ids and next-token labels, with the loss on assistant tokens only.

Each turn is rendered with the student's own chat template and tokenized on its own, so the
prompt tokens the model trains on are exactly the tokens it will be given at inference (prompt
rendered with `add_generation_prompt=True`) and the assistant tokens are exactly what it must
produce, end-of-turn token included. Labels are stored already shifted (label[t] is the token at
t+1, or -100), so packed samples never predict across a sample boundary.

A dataset is tokenized once (`tokencache`: int32 ids and an assistant mask, memory-mapped, shared
by every rank and every resume); `TokenizedDataset` serves its samples cut to a stage's
`max_length`, labels made on the fly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IGNORE = -100


@dataclass
class Encoded:
    """One tokenized sample: ids, shifted labels (-100 = no loss), and where it came from."""

    input_ids: np.ndarray  # int32 or int64 [n]
    labels: np.ndarray  # int64 [n]; labels[t] = input_ids[t+1] on assistant tokens, else -100
    truncated: bool

    @property
    def n_labels(self) -> int:
        return int((self.labels != IGNORE).sum())


def _render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=generation_prompt)


def render_parts(tokenizer, messages: list[dict], where: str = "sample") -> list[tuple[str, bool]]:
    """The conversation as consecutive text pieces, each flagged: must the model produce it?

    Raises ValueError naming `where` if the template does not render turns as prefixes of each
    other, or if there is no assistant turn.
    """
    parts: list[tuple[str, bool]] = []
    rendered = ""
    for i, msg in enumerate(messages):
        if msg.get("role") == "assistant":
            head = _render(tokenizer, messages[:i], True) if i else ""
            if not head.startswith(rendered):
                raise ValueError(f"{where}: the chat template does not render turn {i} as a "
                                 "continuation of the previous turns")
            parts.append((head[len(rendered):], False))
            rendered = head
        full = _render(tokenizer, messages[: i + 1], False)
        if not full.startswith(rendered):
            raise ValueError(f"{where}: the chat template does not render turn {i} as a "
                             "continuation of the previous turns")
        parts.append((full[len(rendered):], msg.get("role") == "assistant"))
        rendered = full
    if not any(flag and text for text, flag in parts):
        raise ValueError(f"{where}: has no assistant turn to learn from")
    return parts


def join_parts(pieces: list[list[int]], flags: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Token pieces -> (int32 ids, bool mask of the tokens the model must produce)."""
    ids = np.fromiter((t for p in pieces for t in p), dtype=np.int32,
                      count=sum(len(p) for p in pieces))
    mask = np.repeat(np.asarray(flags, dtype=bool), [len(p) for p in pieces])
    return ids, mask


def labels_for(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shifted labels: label[t] = ids[t+1] where token t+1 is the model's to produce."""
    labels = np.full(len(ids), IGNORE, dtype=np.int64)
    target = mask[1:].astype(bool)
    labels[:-1][target] = ids[1:][target]
    return labels


def check_prompt(mask: np.ndarray, max_length: int, where: str) -> None:
    first = int(np.argmax(mask)) if mask.any() else len(mask)
    if first >= max_length:
        raise ValueError(f"{where}: the prompt is {first} tokens, longer than max_length "
                         f"{max_length}; raise the stage's max_length or drop the row")


def encode_chat(tokenizer, messages: list[dict], max_length: int,
                where: str = "sample") -> Encoded:
    """Tokenize a conversation; the loss covers every assistant turn (its text and end token).

    Raises ValueError naming `where` if the template does not render turns as prefixes of each
    other, or if the prompt before the first assistant token does not fit in `max_length`.
    Longer samples are truncated to `max_length` (flagged in `Encoded.truncated`).
    """
    parts = render_parts(tokenizer, messages, where)
    pieces = [tokenizer.encode(text, add_special_tokens=False) for text, _ in parts]
    ids, mask = join_parts(pieces, [flag for _, flag in parts])
    if not mask.any():
        raise ValueError(f"{where}: has no assistant turn to learn from")
    check_prompt(mask, max_length, where)
    truncated = len(ids) > max_length
    ids, mask = ids[:max_length].astype(np.int64), mask[:max_length]
    return Encoded(ids, labels_for(ids, mask), truncated)


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


class TokenizedDataset:
    """A tokenized dataset seen through one stage's `max_length`: a sequence of `Encoded`.

    `lengths`, `n_labels` and `truncated` are per-sample arrays (what batching and the loss
    normalisation need), computed without touching the token arrays except for cut samples.
    """

    def __init__(self, tokens, max_length: int, source: str = "dataset"):
        from longthought.train.tokencache import TokenArrays

        self.tokens: TokenArrays = tokens
        self.max_length = max_length
        self.source = source
        full = np.diff(tokens.offsets)
        too_long = np.flatnonzero(tokens.prompt_len >= max_length)
        if len(too_long):
            row = int(too_long[0])
            raise ValueError(f"{source}: row {row + 1} (sample_id {tokens.sample_id(row)!r}): the "
                             f"prompt is {int(tokens.prompt_len[row])} tokens, longer than "
                             f"max_length {max_length}; raise the stage's max_length or drop "
                             "the row")
        self.truncated = full > max_length
        self.lengths = np.minimum(full, max_length).astype(np.int64)
        self.n_labels = tokens.n_train.astype(np.int64)
        for i in np.flatnonzero(self.truncated):  # labels on tokens 1..max_length-1 only
            start = int(tokens.offsets[i])
            self.n_labels[i] = int(tokens.mask[start + 1:start + max_length].sum())

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> Encoded:
        start = int(self.tokens.offsets[i])
        end = start + int(self.lengths[i])
        ids = np.asarray(self.tokens.ids[start:end])
        return Encoded(ids, labels_for(ids, np.asarray(self.tokens.mask[start:end])),
                       bool(self.truncated[i]))

    def __iter__(self) -> Iterator[Encoded]:
        return (self[i] for i in range(len(self)))


def load_dataset(path: str | Path, tokenizer, max_length: int, cache: bool = True,
                 dataset_sha256: str | None = None) -> TokenizedDataset:
    """A `dataset` table, tokenized once (cached beside it) and checked for `max_length`.

    Every row is checked when the table is first tokenized; a bad row fails naming the file,
    row and sample id, before any training.
    """
    from longthought.train.tokencache import tokenize_dataset

    tokens = tokenize_dataset(path, tokenizer, cache=cache, dataset_sha256=dataset_sha256)
    return TokenizedDataset(tokens, max_length, str(path))
