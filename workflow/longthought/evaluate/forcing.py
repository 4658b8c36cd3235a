"""Budget forcing (s1, Muennighoff et al. 2025): cap the thinking at B tokens, then force an answer.

A sample thinks until the end-of-thinking marker (`</think>`). If the marker has not appeared
after B generated tokens, generation of the thought stops there, `suffix` (by default
"\\n</think>\\n\\nThe final answer is \\\\boxed{") is appended, and the model continues for at
most `answer_tokens` more tokens, so that it commits to an answer within a known cost. If the
marker appears within B tokens the sample simply continues to its answer (up to max_new_tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

DEFAULT_SUFFIX = "\n</think>\n\nThe final answer is \\boxed{"


@dataclass(frozen=True)
class BudgetForcing:
    """How thinking is recognised and how an answer is forced (config key `budget_forcing`)."""

    marker: str = "</think>"  # end of thinking
    open_marker: str = "<think>"  # start of thinking (opened, never closed: all thought)
    suffix: str = DEFAULT_SUFFIX  # appended when the budget runs out
    answer_tokens: int = 32  # tokens allowed after the suffix

    @classmethod
    def from_spec(cls, spec: dict | None) -> BudgetForcing:
        spec = dict(spec or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"budget_forcing: unknown key(s) {unknown}; known: {sorted(known)}")
        forcing = cls(**spec)
        if not forcing.marker:
            raise ValueError("budget_forcing.marker must be a non-empty string")
        if not isinstance(forcing.answer_tokens, int) or forcing.answer_tokens < 1:
            raise ValueError(f"budget_forcing.answer_tokens must be an integer >= 1 "
                             f"(got {forcing.answer_tokens!r})")
        return forcing

    def thinking_from_text(self, text: str, output_tokens: int,
                           count_tokens) -> int | None:
        """Thinking tokens of a finished, unforced output from its text.

        `count_tokens(prefix)` tokenizes a prefix of the text; used by backends that only see
        text (vLLM without a cap, the API).
        """
        end = text.find(self.marker)
        if end >= 0:
            return min(output_tokens, count_tokens(text[: end + len(self.marker)]))
        if self.open_marker and self.open_marker in text:
            return output_tokens  # thought never closed: all of it was thinking
        return None


def validate_budget(budget: int | None) -> int | None:
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive integer number of thinking tokens "
                         f"(got {budget!r})")
    return budget
