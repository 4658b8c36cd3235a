"""Generation through an OpenAI-compatible API: the same client, limits and cache as traces.

Every sample is one `ChatRequest` (sample index = sample number, so the request key and the
per-sample seed differ per sample and reproduce), sent by `longthought.teacher.collect.
run_requests` inside `longthought.teacher.endpoint.open_endpoint` (which starts the sim teacher
when `base_url: sim`). A re-run reads every answer from the request cache and pays nothing.

Sampling: the teacher's own `sampling` block is the base (so endpoint-specific keys such as
`reasoning_effort` stay); the evaluation's temperature, top_p, seed and token cap override it.
The cap is sent as `max_completion_tokens` when the teacher's block uses that key (OpenAI
reasoning models), else as `max_tokens`.
"""

from __future__ import annotations

from longthought.evaluate.forcing import BudgetForcing
from longthought.evaluate.outputs import Output


def request_params(teacher: dict, sampling: dict) -> dict:
    """The request's sampling params: the teacher's block overridden by the evaluation's."""
    params = dict(teacher.get("sampling") or {})
    cap_key = "max_completion_tokens" if "max_completion_tokens" in params else "max_tokens"
    params.update({"temperature": float(sampling["temperature"]),
                   "top_p": float(sampling["top_p"]),
                   cap_key: int(sampling["max_new_tokens"]),
                   "seed": int(sampling["seed"])})
    return params


def generate_api(model_spec: dict, prompts: list[list[dict]], sampling: dict, n: int,
                 cache_dir: str | None, forcing: BudgetForcing) -> list[list[Output]]:
    """n samples per prompt from the API model; raises if any request failed (re-run retries)."""
    from longthought.teacher.collect import ChatRequest, run_requests
    from longthought.teacher.endpoint import open_endpoint
    from longthought.teacher.tokens import count_tokens

    name = model_spec.get("name", "?")
    if not cache_dir:
        raise ValueError(f"model {name}: API evaluation needs a request cache (--cache-dir)")
    teacher = model_spec["teacher"]
    if teacher.get("mode") == "local":
        raise ValueError(f"model {name}: its teacher is a mode: local model, not an endpoint; "
                         "evaluate it as a models: entry (kind: hf, path: the model)")
    params = request_params(teacher, sampling)
    requests = [ChatRequest(messages=m, sample_index=j, params=params)
                for m in prompts for j in range(n)]
    with open_endpoint(teacher, str(cache_dir)) as base_url:
        results = run_requests(teacher, requests, str(cache_dir), base_url, progress=False,
                               tag=f"eval:{name}")
    bad = [r for r in results if r.status != "ok"]
    if bad:
        reasons = sorted({f"{r.status}: {(r.error or '')[:120]}" for r in bad})[:3]
        raise ValueError(f"model {name}: {len(bad)} of {len(results)} API requests did not "
                         f"succeed ({'; '.join(reasons)}); answers received are cached, so a "
                         f"re-run asks only for the missing ones")
    out: list[list[Output]] = []
    it = iter(results)
    for _ in prompts:
        row = []
        for _ in range(n):
            r = next(it)
            content = r.content or ""
            text = (f"{forcing.open_marker}\n{r.reasoning_content}\n{forcing.marker}\n\n{content}"
                    if r.reasoning_content else content)
            tokens = r.completion_tokens if r.completion_tokens is not None else count_tokens(text)
            thinking = r.reasoning_tokens if r.reasoning_tokens is not None else \
                forcing.thinking_from_text(text, tokens, count_tokens)
            row.append(Output(text=text, output_tokens=int(tokens), thinking_tokens=thinking,
                              finish_reason=r.finish_reason, latency_s=r.latency_s))
        out.append(row)
    return out
