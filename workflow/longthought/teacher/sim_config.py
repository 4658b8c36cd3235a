"""The sim teacher's settings: the teacher's `sim:` config block plus fault injection.

Parsed strictly, so a misspelt key fails with its name instead of silently doing nothing.

Keys (all optional):
  seed (int)               content seed; replies are a function of (seed, request content)
  slip_rate (0..1)         share of replies where one step is done wrong, then noticed and fixed
  wrong_rate (0..1)        share of replies whose final answer is wrong
  truncate_rate (0..1)     share of replies cut short with finish_reason "length"
  style                    auto | reasoning | chat (auto: reasoning when the model name has
                           o1/o3/o4/r1/reason/think in it)
  reasoning_content (bool) DeepSeek style: the thought in `reasoning_content`, not in <think>
  latency_ms               a number (fixed), or {dist: fixed, ms} or {dist: lognormal, median_ms,
                           sigma}
  rate_limit_rpm           server-side limit like a real API: 429 + Retry-After beyond it
  models                   model ids listed by GET /v1/models (any id is answered)
  faults: {rate_429, rate_500, rate_503, rate_hang, rate_drop, rate_malformed, rate_empty,
           retry_after_s, hang_s}   per-request fault probabilities and their parameters
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "500", "503", "hang", "drop", "malformed", "empty")


@dataclass
class Latency:
    dist: str = "fixed"  # fixed | lognormal
    ms: float = 0.0  # fixed: the latency; lognormal: the median
    sigma: float = 0.0

    def describe(self) -> str:
        return f"{self.ms:g} ms" if self.dist == "fixed" else \
            f"lognormal(median {self.ms:g} ms, sigma {self.sigma:g})"


@dataclass
class SimConfig:
    seed: int = 0
    slip_rate: float = 0.0
    wrong_rate: float = 0.0
    truncate_rate: float = 0.0
    style: str = "auto"
    reasoning_content: bool = False
    latency: Latency = field(default_factory=Latency)
    rate_limit_rpm: float | None = None
    models: list[str] = field(default_factory=lambda: ["sim"])
    fault_rates: dict[str, float] = field(default_factory=dict)
    retry_after_s: float = 1.0
    hang_s: float = 600.0


_TOP = {"seed", "slip_rate", "wrong_rate", "truncate_rate", "style", "reasoning_content",
        "latency_ms", "rate_limit_rpm", "models", "faults"}
_FAULT_KEYS = {f"rate_{k}" for k in FAULT_KINDS} | {"retry_after_s", "hang_s"}


def _rate(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"sim spec: {where} must be a number in [0, 1], got {value!r}")
    return float(value)


def _nonneg(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"sim spec: {where} must be a number >= 0, got {value!r}")
    return float(value)


def _latency(value: Any) -> Latency:
    if value is None:
        return Latency()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Latency("fixed", _nonneg("latency_ms", value))
    if not isinstance(value, dict):
        raise ValueError(f"sim spec: latency_ms must be a number or a mapping, got {value!r}")
    dist = value.get("dist", "fixed")
    unknown = set(value) - {"dist", "ms", "median_ms", "sigma"}
    if unknown:
        raise ValueError(f"sim spec: unknown key(s) {sorted(unknown)} in latency_ms")
    if dist == "fixed":
        return Latency("fixed", _nonneg("latency_ms.ms", value.get("ms", 0)))
    if dist == "lognormal":
        return Latency("lognormal", _nonneg("latency_ms.median_ms", value.get("median_ms", 0)),
                       _nonneg("latency_ms.sigma", value.get("sigma", 0.5)))
    raise ValueError(f"sim spec: latency_ms.dist must be fixed or lognormal, got {dist!r}")


def parse_sim_config(spec: dict[str, Any] | None) -> SimConfig:
    """Validate a sim spec; a bad key or value raises ValueError naming it."""
    spec = dict(spec or {})
    unknown = set(spec) - _TOP
    if unknown:
        raise ValueError(f"sim spec: unknown key(s) {sorted(unknown)}; known: {sorted(_TOP)}")
    cfg = SimConfig()
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"sim spec: seed must be an integer, got {seed!r}")
    cfg.seed = seed
    for key in ("slip_rate", "wrong_rate", "truncate_rate"):
        setattr(cfg, key, _rate(key, spec.get(key) or 0))
    cfg.style = spec.get("style") or "auto"
    if cfg.style not in ("auto", "reasoning", "chat"):
        raise ValueError(f"sim spec: style must be auto, reasoning or chat, got {cfg.style!r}")
    cfg.reasoning_content = bool(spec.get("reasoning_content", False))
    cfg.latency = _latency(spec.get("latency_ms"))
    rpm = spec.get("rate_limit_rpm")
    cfg.rate_limit_rpm = None if rpm is None else _nonneg("rate_limit_rpm", rpm) or None
    models = spec.get("models") or ["sim"]
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ValueError(f"sim spec: models must be a list of strings, got {models!r}")
    cfg.models = models
    faults = spec.get("faults") or {}
    if not isinstance(faults, dict):
        raise ValueError(f"sim spec: faults must be a mapping, got {faults!r}")
    unknown = set(faults) - _FAULT_KEYS
    if unknown:
        raise ValueError(f"sim spec: unknown key(s) {sorted(unknown)} in faults; "
                         f"known: {sorted(_FAULT_KEYS)}")
    cfg.fault_rates = {k: _rate(f"faults.rate_{k}", faults.get(f"rate_{k}") or 0)
                       for k in FAULT_KINDS}
    if sum(cfg.fault_rates.values()) > 1:
        raise ValueError("sim spec: the fault rates add up to more than 1")
    cfg.retry_after_s = _nonneg("faults.retry_after_s", faults.get("retry_after_s", 1.0))
    cfg.hang_s = _nonneg("faults.hang_s", faults.get("hang_s", 600.0))
    return cfg
