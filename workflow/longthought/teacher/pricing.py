"""What a request costs: per-trace cost from usage, and the worst case the budget cap reserves.

Prices are USD per 1M tokens for input, output and reasoning tokens. Following the OpenAI usage
convention, `completion_tokens` includes `reasoning_tokens`; reasoning tokens are billed at the
reasoning price and the rest of the completion at the output price.

A Batch API teacher (`mode: batch`) pays batch prices: `pricing.batch` names them explicitly, or
`pricing.batch_discount` takes a share off the online prices (OpenAI's batch price is half: 0.5).
With neither, batch requests are priced online, which overstates their cost: the budget cap is
never looser than the bill.
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
    def from_spec(cls, spec: dict[str, Any] | None, where: str = "pricing",
                  batch: bool = False) -> Pricing | None:
        """The prices of a `pricing:` block; `batch`: the Batch API's prices instead."""
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise ValueError(f"{where} must be a mapping of USD per 1M tokens, got {spec!r}")
        unknown = set(spec) - {"input", "output", "reasoning", "batch", "batch_discount"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; "
                             "known: input, output, reasoning, batch, batch_discount")
        online = cls._prices({k: v for k, v in spec.items() if k not in
                              ("batch", "batch_discount")}, where)
        discount = spec.get("batch_discount")
        if discount is not None and (isinstance(discount, bool) or not isinstance(
                discount, int | float) or not 0 <= discount < 1):
            raise ValueError(f"{where}.batch_discount must be a share in [0, 1) taken off the "
                             f"online prices (0.5 = half price), got {discount!r}")
        explicit = spec.get("batch")
        if explicit is not None and not isinstance(explicit, dict):
            raise ValueError(f"{where}.batch must be a mapping of USD per 1M tokens, got "
                             f"{explicit!r}")
        if explicit is not None and discount is not None:
            raise ValueError(f"{where}: give batch prices either explicitly (batch) or as a "
                             "batch_discount, not both")
        if explicit is not None:
            unknown = set(explicit) - {"input", "output", "reasoning"}
            if unknown:
                raise ValueError(f"{where}.batch: unknown key(s) {sorted(unknown)}; "
                                 "known: input, output, reasoning")
            batch_prices = cls._prices(explicit, f"{where}.batch")
        else:
            keep = 1.0 - float(discount or 0.0)
            batch_prices = cls(online.input * keep, online.output * keep,
                               online.reasoning * keep)
        return batch_prices if batch else online

    @classmethod
    def _prices(cls, spec: dict[str, Any], where: str) -> Pricing:
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
