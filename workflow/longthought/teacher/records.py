"""The request and result records every transport shares, and how a request becomes a key.

A `ChatRequest` (messages, sample index, params) becomes a canonical request body and a `Job`
(the body, its cache key, its token and dollar estimates). A transport turns jobs into outcomes;
the core turns outcomes into `ChatResult`s. Keys are the sha256 of (endpoint identity, body,
sample index), so the same request asked online, through a batch or of a local model on a GPU
node is found in the same cache.

Escalation (`escalate_max_tokens`): a reply cut off at its output limit (`finish_reason: length`)
may be asked again at a longer one. The longer request is derived from the original (the same
body with only its limit raised, `with_limit`), so it has a key of its own and the original's
key never changes: raising or adding escalation limits re-asks only the truncated requests,
and every complete reply already paid for stays where it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from longthought.teacher.cache import CacheEntry, canonical_json
from longthought.teacher.pricing import Pricing, max_output_tokens
from longthought.teacher.responses import parse_completion
from longthought.teacher.tokens import count_prompt_tokens

SIM_CONTENT_KEYS = ("seed", "slip_rate", "wrong_rate", "truncate_rate", "style",
                    "reasoning_content")
NO_KEY = "EMPTY"  # what local servers (vLLM, SGLang, the sim) accept when no key is configured
DEFAULT_TPM_OUTPUT = 4096  # token-bucket estimate of a reply when no max_tokens is set
TRANSPORT_KEYS = ("stream", "stream_options")  # how a body travels, never part of its key


@dataclass
class ChatRequest:
    """One chat request. `params=None` uses the teacher's `sampling`; `model=None` its model."""

    messages: list[dict[str, Any]]
    sample_index: int = 0
    params: dict[str, Any] | None = None
    model: str | None = None


@dataclass(slots=True)
class ChatResult:
    """What came back for one request (status ok, failed or skipped_budget) and what it cost."""

    key: str
    request: str  # canonical JSON of the request body (never a key or header)
    status: str
    content: str | None = None
    reasoning_content: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    latency_s: float | None = None
    attempts: int = 0
    cached: bool = False
    error: str | None = None
    cost_usd: float | None = None
    response: str | None = None  # the raw response body as received
    max_tokens: int | None = None  # the output limit the request was sent with (None: none)


@dataclass(slots=True)
class Job:
    """One unique request to send: what a transport works on."""

    key: str
    body: dict[str, Any]
    sample_index: int
    prompt_est: int  # prompt tokens by our tokenizer
    token_est: int  # prompt + the most the reply may use: what a tokens-per-minute limit charges
    worst_usd: float  # the most this request can cost (what the budget reserves)


@dataclass(slots=True)
class Outcome:
    """How a request that did not come back ok ended (ok ones live in the cache)."""

    status: str
    error: str | None
    attempts: int


MODES = ("online", "batch", "local")


def teacher_mode(teacher_spec: dict[str, Any]) -> str:
    """`online` (an OpenAI-compatible endpoint), `batch` (its Batch API) or `local` (a model run
    by a GPU job)."""
    mode = teacher_spec.get("mode", "online") or "online"
    if mode not in MODES:
        raise ValueError(f"teacher {teacher_spec.get('model')!r}: mode must be one of "
                         f"{', '.join(MODES)}, got {mode!r}")
    return mode


def endpoint_id(teacher_spec: dict[str, Any], base_url: str | None) -> str:
    """Which server answers, as part of the cache key. The sim is named by its content settings
    (its port changes every run, its fault settings don't change what it says); a real endpoint
    by its URL; a local teacher by its model (hub id or path) and revision."""
    if teacher_mode(teacher_spec) == "local":
        local = teacher_spec.get("local") or {}
        rev = local.get("revision")
        return f"local:{teacher_spec.get('model')}" + (f"@{rev}" if rev else "")
    if teacher_spec.get("base_url") == "sim":
        sim = teacher_spec.get("sim") or {}
        return "sim:" + canonical_json({k: sim.get(k) for k in SIM_CONTENT_KEYS if k in sim})
    return str(base_url).rstrip("/")


def request_key(endpoint: str, body: dict[str, Any], sample_index: int) -> str:
    """sha256 of the canonical request: endpoint identity, body (model, messages, params),
    and the sample index."""
    material = {"endpoint": endpoint, "body": body, "sample_index": sample_index}
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()


def sample_seed(base: Any, sample_index: int) -> int:
    """A per-sample `seed` so that samples of one prompt differ yet reproduce."""
    digest = hashlib.sha256(f"{base}:{sample_index}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def build_body(teacher_spec: dict[str, Any], req: ChatRequest) -> dict[str, Any]:
    """The request body: model, messages, the sampling params (None dropped), per-sample seed."""
    params = dict(teacher_spec.get("sampling") or {}) if req.params is None else dict(req.params)
    if params.get("stream"):
        raise ValueError("sampling: stream is chosen by the collector (limits.stream), not sent "
                         "as a sampling parameter (stream: true)")
    for k in TRANSPORT_KEYS:
        params.pop(k, None)
    model = req.model or teacher_spec.get("model")
    if not model:
        raise ValueError("teacher spec has no 'model'")
    if not isinstance(req.messages, list) or not req.messages:
        raise ValueError("a request needs a non-empty list of messages")
    base_seed = params.pop("seed", None)
    body: dict[str, Any] = {"model": model, "messages": req.messages}
    body.update({k: v for k, v in params.items() if v is not None})
    if teacher_spec.get("send_seed", True):
        body["seed"] = sample_seed(0 if base_seed is None else base_seed, req.sample_index)
    elif base_seed is not None:
        body["seed"] = base_seed
    return body


def plan_jobs(teacher_spec: dict[str, Any], requests: list[ChatRequest], endpoint: str,
              pricing: Pricing | None) -> tuple[list[str], dict[str, Job]]:
    """(one key per request, in order; the unique jobs by key). A bad request names its index."""
    keys: list[str] = []
    jobs: dict[str, Job] = {}
    for i, req in enumerate(requests):
        try:
            body = build_body(teacher_spec, req)
        except ValueError as exc:
            raise ValueError(f"request {i}: {exc}") from None
        key = request_key(endpoint, body, req.sample_index)
        keys.append(key)
        if key in jobs:
            continue
        prompt_est = count_prompt_tokens(body["messages"])
        max_out = max_output_tokens(body)
        worst = pricing.worst_case(prompt_est, max_out) if pricing else 0.0
        jobs[key] = Job(key, body, req.sample_index, prompt_est,
                        prompt_est + (max_out or DEFAULT_TPM_OUTPUT), worst)
    return keys, jobs


def limit_key(body: dict[str, Any]) -> str | None:
    """Which output-limit key a body uses (`max_completion_tokens` for o1-style models)."""
    for k in ("max_completion_tokens", "max_tokens"):
        if body.get(k) is not None:
            return k
    return None


def with_limit(body: dict[str, Any], limit: int) -> dict[str, Any]:
    """The same request with its output limit raised to `limit` (an escalation)."""
    key = limit_key(body)
    if key is None:
        raise ValueError("a request without max_tokens cannot be escalated")
    return {**body, key: limit}


def escalation_levels(teacher_spec: dict[str, Any]) -> list[int]:
    """The teacher's `escalate_max_tokens` (an int or a rising list), checked."""
    value = teacher_spec.get("escalate_max_tokens")
    if value is None:
        return []
    levels = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(levels, list) or not levels
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in levels)
            or any(b <= a for a, b in zip(levels, levels[1:], strict=False))):
        raise ValueError(f"teacher {teacher_spec.get('model')!r}: escalate_max_tokens must be a "
                         f"positive integer or a rising list of them, got {value!r}")
    sampling = teacher_spec.get("sampling") or {}
    base = sampling.get("max_completion_tokens") or sampling.get("max_tokens")
    if base is None:
        raise ValueError(f"teacher {teacher_spec.get('model')!r}: escalate_max_tokens needs "
                         "sampling.max_tokens (or max_completion_tokens): the limit it raises")
    if levels[0] <= base:
        raise ValueError(f"teacher {teacher_spec.get('model')!r}: escalate_max_tokens "
                         f"{levels[0]} is not above sampling's limit {base}")
    return list(levels)


def request_limit(request_json: str) -> int | None:
    """The output limit of a stored request body (None when it sets none)."""
    try:
        body = json.loads(request_json)
    except (json.JSONDecodeError, TypeError):
        return None
    return max_output_tokens(body) if isinstance(body, dict) else None


def api_key_for(teacher_spec: dict[str, Any]) -> str:
    """The API key, only ever from the environment variable the spec names."""
    env = teacher_spec.get("api_key_env")
    key = os.environ.get(env) if env else None
    if key:
        return key
    if teacher_spec.get("base_url") == "sim" or not env:
        return NO_KEY
    raise ValueError(f"teacher {teacher_spec.get('model')!r}: the environment variable {env!r} "
                     "(api_key_env) is not set; export the API key there")


def result_from_entry(e: CacheEntry, cached: bool) -> ChatResult:
    """The result record of a cached response (raises MalformedResponse for a damaged one)."""
    parsed = parse_completion(e.response)
    return ChatResult(
        key=e.key, request=e.request, status="ok", content=parsed.content,
        reasoning_content=parsed.reasoning_content, finish_reason=parsed.finish_reason,
        model=parsed.model, prompt_tokens=e.prompt_tokens, completion_tokens=e.completion_tokens,
        reasoning_tokens=e.reasoning_tokens, latency_s=e.latency_s, attempts=e.attempts or 0,
        cached=cached, error=None, cost_usd=e.cost_usd, response=e.response,
        max_tokens=request_limit(e.request))


def result_json(result: ChatResult) -> str:
    """A ChatResult as JSON (for logs and debugging)."""
    return json.dumps({f: getattr(result, f) for f in ChatResult.__slots__}, ensure_ascii=False)
