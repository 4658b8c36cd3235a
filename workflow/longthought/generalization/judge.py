"""Ask an LLM judge about each response, through the one API client, and read its verdicts.

The judge is any OpenAI-compatible endpoint named under `teachers:` (the offline default is the
sim server's judge persona). Requests go through `teacher.collect.run_requests`, so judging has the
same concurrency and rate limits, retries, budget and persistent request cache as trace
collection: a re-run re-judges nothing. A request that fails after its retries, or is skipped by
the budget, is a `judge_error`; what the judge says is read by `verdicts.parse_verdict`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from longthought.generalization.prompts import default_prompt
from longthought.generalization.verdicts import DEFAULT_LETTERS, Judgement, parse_verdict

log = logging.getLogger("longthought.generalization.judge")

FIELDS = ("question", "response", "gold", "premise", "reference")
MISSING = "(not given)"
DEFAULT_MAX_RESPONSE_CHARS = 12000
_THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class JudgeCall:
    """The judge's raw reply to one request and how it was read."""

    judgement: Judgement
    request_key: str | None
    output: str | None


def prompt_config(category: str, prompt: dict | None) -> dict:
    """The judge prompt for `category`: config's `judge_prompts.<category>` or the default."""
    cfg = dict(default_prompt(category) if not prompt else prompt)
    user = cfg.get("user")
    if not isinstance(user, str) or "{response}" not in user:
        raise ValueError(f"generalization.judge_prompts.{category}.user must be a string "
                         "containing {response}")
    if category == "factuality" and "{gold}" not in user:
        raise ValueError("generalization.judge_prompts.factuality.user must contain {gold}: "
                         "factuality is graded against the gold answer")
    letters = cfg.get("letters")
    if letters is not None and not isinstance(letters, dict):
        raise ValueError(f"generalization.judge_prompts.{category}.letters must map letters "
                         "to labels")
    return cfg


def _fill(template: str, values: dict[str, str | None]) -> str:
    # plain replacement: templates may hold literal braces (JSON examples) that format() breaks
    for key in FIELDS:
        value = values.get(key)
        template = template.replace("{" + key + "}", MISSING if value in (None, "") else value)
    return template


def judge_text(response: str, cfg: dict) -> str:
    """What the judge sees of a response: optionally only the part after the thinking, capped."""
    text = response
    if cfg.get("strip_thinking") and _THINK_CLOSE in text:
        text = text.rsplit(_THINK_CLOSE, 1)[1].strip()
    cap = int(cfg.get("max_response_chars") or DEFAULT_MAX_RESPONSE_CHARS)
    if len(text) > cap:
        text = text[:cap] + "\n[... response truncated for judging ...]"
    return text


def judge_messages(cfg: dict, values: dict[str, str | None]) -> list[dict]:
    """The chat sent to the judge for one response."""
    msgs = []
    if cfg.get("system"):
        msgs.append({"role": "system", "content": _fill(cfg["system"], values)})
    msgs.append({"role": "user", "content": _fill(cfg["user"], values)})
    return msgs


def run_judge(
    judge_spec: dict, category: str, prompt: dict | None, rows: list[dict], cache_dir: str,
    tag: str | None = None,
) -> list[JudgeCall]:
    """Judge each row ({question, response, gold, premise, reference}); one JudgeCall per row.

    `judge_spec` is the judge's teacher config plus `name`. Never raises for what the judge
    answers: failures and odd answers become judge_error / refused / unparseable judgements.
    """
    from longthought.teacher.collect import ChatRequest, run_requests
    from longthought.teacher.endpoint import open_endpoint

    cfg = prompt_config(category, prompt)
    letters = cfg.get("letters") or DEFAULT_LETTERS.get(category)
    requests = []
    for row in rows:
        values = {k: row.get(k) for k in FIELDS}
        values["response"] = judge_text(row.get("response") or "", cfg)
        requests.append(ChatRequest(messages=judge_messages(cfg, values)))
    if not requests:
        return []
    teacher = {k: v for k, v in judge_spec.items() if k != "name"}
    with open_endpoint(teacher, cache_dir) as base_url:
        results = run_requests(teacher, requests, cache_dir, base_url, progress=False,
                               tag=tag or f"judge {judge_spec.get('name', '?')}")
    calls = []
    for res in results:
        if res.status != "ok":
            reason = res.error or res.status
            calls.append(JudgeCall(Judgement("judge_error", detail=f"{res.status}: {reason}"),
                                   res.key, res.content))
            continue
        text = res.content
        if res.finish_reason == "length" and not (text or "").strip():
            calls.append(JudgeCall(Judgement("judge_error", detail="judge output truncated"),
                                   res.key, text))
            continue
        calls.append(JudgeCall(parse_verdict(text, category, letters), res.key, text))
    counts: dict[str, int] = {}
    for c in calls:
        counts[c.judgement.status] = counts.get(c.judgement.status, 0) + 1
    log.info("judge %s on %d %s responses: %s", judge_spec.get("name", "?"), len(calls), category,
             json.dumps(counts, sort_keys=True))
    return calls
