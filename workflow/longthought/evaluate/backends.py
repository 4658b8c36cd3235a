"""`generate_texts`: n sampled outputs per chat prompt, from whichever backend serves the model.

Model specs (docs/architecture.md):

- `{"kind": "local", "path": DIR_OR_HUB_ID, "backend": "transformers"}`: CPU or GPU, batched,
  seeded per sample so the same config and seed give identical outputs regardless of batching
  (see `sampling`). Optional keys: `device`, `dtype` (fp32/bf16/fp16), `attn_implementation`.
  `refill` (an argument, not a spec key: how the batch runs, not what it answers): finished
  samples make room for waiting prompts (continuous batching); `None` = on a GPU only.
- `{"kind": "local", ..., "backend": "vllm"}`: GPU; optional `tensor_parallel_size`, `dtype`,
  `max_model_len`, `gpu_memory_utilization`. vLLM is imported only when used.
- `{"kind": "api", "teacher": {...}}`: an OpenAI-compatible endpoint through the same client,
  limits and request cache as trace collection (`longthought.teacher.collect`).

Budget forcing (`budget`, see `forcing`) is available on the local backends only: an API cannot be
stopped mid-thought and made to answer. `generate_budget_texts` runs several budgets at once; on
the transformers backend they share their decoded prefix (see `hf_backend`).

This is the public entry for any caller that needs a local or API model's outputs (evaluation,
generalization, a local teacher): prompts + sampling in, `Output`s (text, token counts, and on
the transformers backend the token ids) out.
"""

from __future__ import annotations

import time

from longthought.evaluate.forcing import BudgetForcing, validate_budget
from longthought.evaluate.outputs import Output

__all__ = ["Output", "generate_budget_texts", "generate_texts", "validate_refill",
           "validate_sampling"]

LOCAL_KINDS = ("local", "hf")


def validate_refill(value, where: str = "refill") -> bool | None:
    """`auto` (or absent) -> None (refill on a GPU only), true/false -> that; else an error
    naming `where`. Refill changes how a batch runs, never a sample's random numbers."""
    if value is None or value == "auto":
        return None
    if isinstance(value, bool):
        return value
    raise ValueError(f"{where} must be auto, true or false (got {value!r})")


def validate_sampling(sampling: dict) -> dict:
    """Check the sampling block; returns it with defaults filled in. Errors name the key."""
    if not isinstance(sampling, dict):
        raise ValueError("sampling must be an object")
    s = {"temperature": 0.0, "top_p": 1.0, "seed": 0, **sampling}
    if "max_new_tokens" not in s:
        raise ValueError("sampling.max_new_tokens is required")

    def number(key: str, lo: float, hi: float, lo_open: bool = False) -> None:
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or v < lo or v > hi or (
                lo_open and v == lo):
            raise ValueError(f"sampling.{key} must be a number in {'(' if lo_open else '['}"
                             f"{lo}, {hi}] (got {v!r})")

    number("temperature", 0.0, 100.0)
    number("top_p", 0.0, 1.0, lo_open=True)
    for key in ("max_new_tokens", "seed"):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, int) or (key == "max_new_tokens" and v < 1):
            raise ValueError(f"sampling.{key} must be an integer"
                             f"{' >= 1' if key == 'max_new_tokens' else ''} (got {v!r})")
    return s


def generate_texts(model_spec: dict, prompts: list[list[dict]], sampling: dict, n: int,
                   budget: int | None = None, *, batch_size: int = 16,
                   cache_dir: str | None = None,
                   forcing: BudgetForcing | dict | None = None,
                   refill: bool | None = None) -> list[list[Output]]:
    """`n` outputs for each chat prompt (a list of {"role", "content"} messages).

    Returns one list of n `Output`s per prompt, in prompt order. `budget` caps thinking tokens
    (local backends). `cache_dir` is the API request cache. `forcing` configures the
    end-of-thinking marker and the forced-answer suffix. `refill`: continuous batching on the
    transformers backend (None: on a GPU only; vLLM always batches continuously).
    """
    return generate_budget_texts(model_spec, prompts, sampling, n, [budget],
                                 batch_size=batch_size, cache_dir=cache_dir,
                                 forcing=forcing, refill=refill)[budget][0]


def generate_budget_texts(model_spec: dict, prompts: list[list[dict]], sampling: dict, n: int,
                          budgets: list[int | None], *, batch_size: int = 16,
                          cache_dir: str | None = None,
                          forcing: BudgetForcing | dict | None = None,
                          refill: bool | None = None
                          ) -> dict[int | None, tuple[list[list[Output]], float]]:
    """{budget: (outputs as `generate_texts` gives them, seconds spent)} for each budget
    (None = uncapped). On the transformers backend the budgets share the decoded prefix, and
    the seconds of the shared part go to the largest budget."""
    sampling = validate_sampling(sampling)
    budgets = [validate_budget(b) for b in budgets]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (samples per prompt) must be an integer >= 1 (got {n!r})")
    forcing = forcing if isinstance(forcing, BudgetForcing) else BudgetForcing.from_spec(forcing)
    for i, messages in enumerate(prompts):
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role")
                for m in messages):
            raise ValueError(f"prompt {i}: expected a list of {{'role', 'content'}} messages")
    if not prompts:
        return {b: ([], 0.0) for b in budgets}
    name = model_spec.get("name", "?")
    kind = model_spec.get("kind")

    def each(run) -> dict[int | None, tuple[list[list[Output]], float]]:
        out = {}
        for b in dict.fromkeys(budgets):
            t0 = time.perf_counter()
            out[b] = (run(b), time.perf_counter() - t0)
        return out

    if kind in LOCAL_KINDS:
        from longthought.evaluate.hf_backend import model_path

        path = model_path(model_spec)
        backend = model_spec.get("backend", "transformers")
        if backend == "transformers":
            from longthought.evaluate.hf_backend import load_generator

            gen = load_generator(path, model_spec.get("device"), model_spec.get("dtype"),
                                 model_spec.get("attn_implementation"))
            return gen.generate_budgets(prompts, sampling, n, budgets, forcing, batch_size,
                                        refill)
        if backend == "vllm":
            from longthought.evaluate.vllm_backend import generate_vllm

            return each(lambda b: generate_vllm(path, model_spec, prompts, sampling, n, b,
                                                forcing))
        raise ValueError(f"model {name}: unknown backend {backend!r}; use transformers or vllm")
    if kind == "api":
        if any(b is not None for b in budgets):
            raise ValueError(f"model {name}: budget forcing needs a local backend "
                             f"(transformers or vllm), not an API model")
        if "teacher" not in model_spec:
            raise ValueError(f"model {name}: an api model spec needs 'teacher'")
        from longthought.evaluate.api_backend import generate_api

        return each(lambda b: generate_api(model_spec, prompts, sampling, n, cache_dir, forcing))
    raise ValueError(f"model {name}: unknown kind {kind!r}; use 'local' or 'api'")
