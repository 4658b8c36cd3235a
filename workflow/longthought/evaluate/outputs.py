"""What every generation backend returns for one sample."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Output:
    """One generated sample.

    `output_tokens` counts every generated token (the end-of-sequence token and, under budget
    forcing, the appended forcing tokens included): the inference cost. `thinking_tokens` counts
    the tokens up to and including the end-of-thinking marker (at most the budget when forced),
    or is None when the output does not separate its thinking. `finish_reason` is "stop" (end of
    sequence), "length" (max_new_tokens reached) or "forced" (thinking hit the budget and the
    answer was forced). `latency_s` is the wall time until this sample was finished.
    `token_ids` are the generated token ids (forced ones included) where the backend has them
    (the transformers backend), else None.
    """

    text: str
    output_tokens: int
    thinking_tokens: int | None
    finish_reason: str | None
    latency_s: float | None
    token_ids: tuple[int, ...] | None = None

    def to_dict(self) -> dict:
        return asdict(self)
