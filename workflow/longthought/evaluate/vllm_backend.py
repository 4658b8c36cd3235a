"""Generation with vLLM (optional extra `longthought[vllm]`, GPU): tensor parallel, fast sampling.

Each sample is its own request with its own seed (the same per-sample seed as the transformers
backend, `sampling.sample_seed`), so results do not depend on how vLLM schedules the batch; they
are not token-identical to the transformers backend (different kernels and samplers). Budget
forcing runs in two passes: the thought is generated with `max_tokens=B` and a stop at the
end-of-thinking marker; samples that reached B unclosed continue from their own tokens plus the
forcing suffix for `answer_tokens`, samples that closed the thought continue to their answer.
`latency_s` is the wall time of the whole call (vLLM schedules all samples together).
"""

from __future__ import annotations

import time
from functools import lru_cache

from longthought.evaluate.forcing import BudgetForcing
from longthought.evaluate.outputs import Output
from longthought.evaluate.sampling import sample_seed


def _import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise ValueError(
            "backend 'vllm' needs the vllm package and a GPU: pip install 'longthought[vllm]' "
            f"(import failed: {exc}); or set the model's backend to 'transformers'"
        ) from None
    return vllm


@lru_cache(maxsize=1)
def _engine(path: str, tensor_parallel_size: int, dtype: str, max_model_len: int | None,
            gpu_memory_utilization: float):
    """One engine per process and model (every request carries its own seed)."""
    vllm = _import_vllm()
    kwargs = {"model": path, "tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
              "seed": 0, "gpu_memory_utilization": gpu_memory_utilization}
    if max_model_len:
        kwargs["max_model_len"] = max_model_len
    return vllm.LLM(**kwargs)


def generate_vllm(path: str, spec: dict, prompts: list[list[dict]], sampling: dict, n: int,
                  budget: int | None, forcing: BudgetForcing) -> list[list[Output]]:
    """n samples per prompt with vLLM; see the module docstring for seeding and forcing."""
    vllm = _import_vllm()
    llm = _engine(path, int(spec.get("tensor_parallel_size", 1)), str(spec.get("dtype", "auto")),
                  spec.get("max_model_len"), float(spec.get("gpu_memory_utilization", 0.9)))
    tok = llm.get_tokenizer()
    temperature = float(sampling.get("temperature", 0.0))
    top_p = float(sampling.get("top_p", 1.0))
    max_new = int(sampling["max_new_tokens"])
    seed = int(sampling.get("seed", 0))

    from longthought.chat import end_of_turn

    eot = end_of_turn(tok)  # stop where the template ends a turn, whatever generation_config says
    stop_ids = [eot[0]] if eot else None

    def params(max_tokens: int, seed_: int, stop: list[str] | None = None):
        return vllm.SamplingParams(n=1, temperature=temperature, top_p=top_p,
                                   max_tokens=max_tokens, seed=seed_, stop=stop,
                                   stop_token_ids=stop_ids,
                                   include_stop_str_in_output=True, skip_special_tokens=False)

    def run(token_prompts: list[list[int]], plist: list) -> list:
        reqs = [{"prompt_token_ids": ids} for ids in token_prompts]
        return llm.generate(reqs, plist, use_tqdm=False)

    keys = [(i, j) for i in range(len(prompts)) for j in range(n)]
    prompt_ids = [tok(tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False),
                      add_special_tokens=False)["input_ids"] for m in prompts]
    seeds = [sample_seed(seed, prompts[i], j) % (2**31) for i, j in keys]
    t0 = time.perf_counter()
    cap = max_new if budget is None else min(budget, max_new)
    first = run([prompt_ids[i] for i, _ in keys],
                [params(cap, s, [forcing.marker] if budget is not None else None)
                 for s in seeds])
    gen = [list(o.outputs[0].token_ids) for o in first]
    texts = [o.outputs[0].text for o in first]
    finish = [o.outputs[0].finish_reason for o in first]
    thinking: list[int | None] = [None] * len(keys)
    forced = [False] * len(keys)
    if budget is not None:
        suffix_ids = tok(forcing.suffix, add_special_tokens=False)["input_ids"]
        todo, plist = [], []
        for r in range(len(keys)):
            closed = forcing.marker in texts[r]
            if closed or finish[r] == "length":
                thinking[r] = len(gen[r])
            if closed and len(gen[r]) >= max_new:
                finish[r] = "length"
            elif closed:
                todo.append(r)
                plist.append(params(max_new - len(gen[r]), seeds[r] ^ 1))
            elif not closed and finish[r] == "length":
                forced[r] = True
                gen[r] = gen[r] + suffix_ids
                texts[r] = texts[r] + forcing.suffix
                todo.append(r)
                plist.append(params(forcing.answer_tokens, seeds[r] ^ 1))
        if todo:
            second = run([prompt_ids[keys[r][0]] + gen[r] for r in todo], plist)
            for r, o in zip(todo, second, strict=True):
                gen[r] += list(o.outputs[0].token_ids)
                texts[r] += o.outputs[0].text
                finish[r] = o.outputs[0].finish_reason
    latency = time.perf_counter() - t0

    def count(prefix: str) -> int:
        return len(tok(prefix, add_special_tokens=False)["input_ids"])

    out: list[list[Output]] = [[None] * n for _ in prompts]  # type: ignore[list-item]
    for r, (i, j) in enumerate(keys):
        text = texts[r]
        for end in {tok.eos_token, eot[1] if eot else None} - {None, ""}:
            text = text[: -len(end)] if text.endswith(end) else text
        think = thinking[r] if thinking[r] is not None else forcing.thinking_from_text(
            text, len(gen[r]), count)
        reason = "forced" if forced[r] else ("length" if finish[r] == "length" else "stop")
        out[i][j] = Output(text=text, output_tokens=len(gen[r]), thinking_tokens=think,
                           finish_reason=reason, latency_s=latency)
    return out
