"""What a request costs: per-trace cost from usage, and the worst case the budget cap reserves.

Prices are USD per 1M tokens for input, output and reasoning tokens. Following the OpenAI usage
convention, `completion_tokens` includes `reasoning_tokens`; reasoning tokens are billed at the
reasoning price and the rest of the completion at the output price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# When a request sets no max_tokens / max_completion_tokens the worst case cannot be read off the
# request; the budget cap then assumes this many output tokens.
DEFAULT_WORST_OUTPUT_TOKENS = 32768
# Our prompt-token estimate comes from a simple tokenizer; a real BPE may count more.
PROMPT_SAFETY = 2.0


@dataclass(frozen=True)
class Pricing:
    input: float
    output: float
    reasoning: float

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None, where: str = "pricing") -> Pricing | None:
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise ValueError(f"{where} must be a mapping of USD per 1M tokens, got {spec!r}")
        unknown = set(spec) - {"input", "output", "reasoning"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; "
                             "known: input, output, reasoning")
        vals = {}
        for k in ("input", "output", "reasoning"):
            v = spec.get(k, spec.get("output") if k == "reasoning" else 0.0)
            if v is None:
                v = 0.0
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"{where}.{k} must be a number >= 0, got {v!r}")
            vals[k] = float(v)
        return cls(**vals)

    def cost(self, prompt: int | None, completion: int | None, reasoning: int | None) -> float:
        p, c, r = prompt or 0, completion or 0, reasoning or 0
        r = min(r, c)
        return (p * self.input + (c - r) * self.output + r * self.reasoning) / 1e6

    def worst_case(self, prompt_estimate: int, max_output: int | None) -> float:
        out = max_output or DEFAULT_WORST_OUTPUT_TOKENS
        return (prompt_estimate * PROMPT_SAFETY * self.input
                + out * max(self.output, self.reasoning)) / 1e6


def max_output_tokens(body: dict[str, Any]) -> int | None:
    """The output cap a request body sets, if any."""
    for k in ("max_completion_tokens", "max_tokens"):
        v = body.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None
