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
  stream_chunk_tokens      tokens per server-sent event when a request asks to stream (16)
  faults: {rate_429, rate_500, rate_503, rate_hang, rate_drop, rate_malformed, rate_empty,
           rate_slow_stream, rate_stall, retry_after_s, hang_s, slow_stream_s,
           slow_stream_gap_s, outage}   per-request fault probabilities and their parameters:
           slow_stream spreads a reply over slow_stream_s in chunks slow_stream_gap_s apart
           (streamed; a non-streamed reply just comes after slow_stream_s); stall streams half a
           reply, then goes silent for hang_s; outage {after_s, for_s, status} answers every
           request in that window (seconds after start or /sim/reset) with status (429: with
           Retry-After retry_after_s)
  batch: {validating_s, in_progress_s, finalizing_s, completion_window_s, max_requests,
          max_file_bytes, enqueued_token_limit, rate_line_error, rate_expire, expire_batches,
          rate_download_drop}   the Batch API (`sim_batch`): how long each lifecycle step takes
           (seconds, so tests run in seconds, not hours), the real API's limits, and its faults:
           a line answered with a 500 in the error file, a batch that expires half done (at a
           rate, or the batches numbered in expire_batches, 1 = the first created), a download
           that drops half way
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "500", "503", "hang", "drop", "malformed", "empty", "slow_stream",
               "stall")


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
    slow_stream_s: float = 90.0
    slow_stream_gap_s: float = 3.0
    stream_chunk_tokens: int = 16
    outage: Outage | None = None
    batch: BatchSim = field(default_factory=lambda: BatchSim())


@dataclass
class BatchSim:
    """The sim's Batch API: lifecycle timing, the real API's limits, and its faults."""

    validating_s: float = 0.5
    in_progress_s: float = 2.0  # from in_progress to the last line done
    finalizing_s: float = 0.5
    completion_window_s: float = 86400.0  # the real API's 24 h: a batch not done by then expires
    max_requests: int = 50_000  # per batch (the real API's limit)
    max_file_bytes: int = 200_000_000  # per uploaded file (the real API's 200 MB)
    enqueued_token_limit: int | None = None  # per model: prompt tokens of unfinished batches
    rate_line_error: float = 0.0  # share of lines answered 500 in the error file
    rate_expire: float = 0.0  # share of batches that expire half done
    expire_batches: list[int] = field(default_factory=list)  # these (1 = first created) too
    rate_download_drop: float = 0.0  # share of file downloads cut off half way


@dataclass
class Outage:
    after_s: float
    for_s: float
    status: int = 429

    def active(self, elapsed_s: float) -> bool:
        return self.after_s <= elapsed_s < self.after_s + self.for_s


_TOP = {"seed", "slip_rate", "wrong_rate", "truncate_rate", "style", "reasoning_content",
        "latency_ms", "rate_limit_rpm", "models", "faults", "stream_chunk_tokens", "batch"}
_BATCH_KEYS = set(BatchSim.__dataclass_fields__)
_FAULT_KEYS = {f"rate_{k}" for k in FAULT_KINDS} | {"retry_after_s", "hang_s", "slow_stream_s",
                                                   "slow_stream_gap_s", "outage"}


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
    cfg.slow_stream_s = _nonneg("faults.slow_stream_s", faults.get("slow_stream_s", 90.0))
    cfg.slow_stream_gap_s = _nonneg("faults.slow_stream_gap_s",
                                    faults.get("slow_stream_gap_s", 3.0)) or 3.0
    chunk = spec.get("stream_chunk_tokens", 16)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"sim spec: stream_chunk_tokens must be an integer >= 1, got {chunk!r}")
    cfg.stream_chunk_tokens = chunk
    cfg.outage = _outage(faults.get("outage"))
    cfg.batch = _batch(spec.get("batch"))
    return cfg


def _batch(value: Any) -> BatchSim:
    if value is None:
        return BatchSim()
    if not isinstance(value, dict):
        raise ValueError(f"sim spec: batch must be a mapping, got {value!r}")
    unknown = set(value) - _BATCH_KEYS
    if unknown:
        raise ValueError(f"sim spec: unknown key(s) {sorted(unknown)} in batch; "
                         f"known: {sorted(_BATCH_KEYS)}")
    out = BatchSim()
    for key in ("validating_s", "in_progress_s", "finalizing_s", "completion_window_s"):
        if key in value:
            setattr(out, key, _nonneg(f"batch.{key}", value[key]))
    for key in ("max_requests", "max_file_bytes", "enqueued_token_limit"):
        v = value.get(key, getattr(out, key))
        if v is None and key == "enqueued_token_limit":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"sim spec: batch.{key} must be an integer >= 1, got {v!r}")
        setattr(out, key, v)
    for key in ("rate_line_error", "rate_expire", "rate_download_drop"):
        setattr(out, key, _rate(f"batch.{key}", value.get(key) or 0))
    expire = value.get("expire_batches") or []
    if not isinstance(expire, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in expire):
        raise ValueError(f"sim spec: batch.expire_batches must be a list of batch numbers >= 1 "
                         f"(1 = the first batch created), got {expire!r}")
    out.expire_batches = list(expire)
    return out


def _outage(value: Any) -> Outage | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"after_s", "for_s", "status"}:
        raise ValueError(f"sim spec: faults.outage must be {{after_s, for_s, status}}, "
                         f"got {value!r}")
    status = value.get("status", 429)
    if status not in (429, 500, 503):
        raise ValueError(f"sim spec: faults.outage.status must be 429, 500 or 503, got {status!r}")
    return Outage(_nonneg("faults.outage.after_s", value.get("after_s", 0)),
                  _nonneg("faults.outage.for_s", value.get("for_s", 0)), status)
