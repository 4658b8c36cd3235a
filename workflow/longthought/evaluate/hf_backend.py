"""Generation with `transformers`: batched, left-padded, KV-cached, on CPU or GPU.

The decode loop is written out here rather than delegated to `model.generate` so that three
things are exact: per-sample seeded sampling (see `sampling`), budget forcing inside the same
batched loop (forced tokens are fed one per step, so the batch stays in lockstep and the prompt
is never re-encoded), and per-sample token and thinking counts. Finished samples leave the batch
(their KV-cache rows are dropped), so one long sample does not make the others pay for it.
"""

from __future__ import annotations

import inspect
import time
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from longthought.evaluate.forcing import BudgetForcing
from longthought.evaluate.outputs import Output
from longthought.evaluate.sampling import choose_tokens, sample_seed, uniforms

_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
           "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


@dataclass
class _Row:
    """One sample being generated: its prompt, its random numbers and its state."""

    key: tuple[int, int]  # (prompt index, sample index)
    prompt_ids: list[int]
    u: torch.Tensor
    budget: int | None
    gen: list[int] = field(default_factory=list)
    queue: deque = field(default_factory=deque)  # forced tokens still to feed
    thinking: int | None = None
    in_thought: bool = True
    limit: int = 0
    forced: bool = False
    finish: str | None = None
    latency: float | None = None


class TransformersGenerator:
    """A loaded model + tokenizer that turns chat prompts into sampled outputs."""

    def __init__(self, path: str, device: str | None = None, dtype: str | None = None,
                 attn_implementation: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = path
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is not None and dtype not in _DTYPES:
            raise ValueError(f"model {path}: unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}")
        torch_dtype = _DTYPES[dtype] if dtype else (
            torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        kwargs = {"dtype": torch_dtype}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        self.model = AutoModelForCausalLM.from_pretrained(path, **kwargs).to(self.device).eval()
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"model {path}: its tokenizer has no chat template; evaluation "
                             f"formats prompts with the model's own chat template")
        self.eos_ids = self._eos_ids()
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)
        self._may_end: dict[str, list[bool]] = {}
        # only the last position's logits are needed (saves a [batch, prompt, vocab] tensor)
        self._last_only = ({"logits_to_keep": 1} if "logits_to_keep" in
                           inspect.signature(self.model.forward).parameters else {})

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.tokenizer.eos_token_id,
                       getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(int(i) for i in source)
        if not ids:
            raise ValueError(f"model {self.path}: neither tokenizer nor generation config names "
                             f"an end-of-sequence token")
        return ids

    def encode_prompt(self, messages: list[dict]) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _encode_plain(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)

    def generate(self, prompts: list[list[dict]], sampling: dict, n: int,
                 budget: int | None = None, forcing: BudgetForcing | None = None,
                 batch_size: int = 16) -> list[list[Output]]:
        """n samples per prompt; outputs do not depend on batch_size (see `sampling`)."""
        forcing = forcing or BudgetForcing()
        temperature = float(sampling.get("temperature", 0.0))
        top_p = float(sampling.get("top_p", 1.0))
        max_new = int(sampling["max_new_tokens"])
        seed = int(sampling.get("seed", 0))
        suffix_ids = self._encode_plain(forcing.suffix)
        cap = max_new if budget is None else min(budget, max_new)
        length = max(max_new, cap + len(suffix_ids) + forcing.answer_tokens)
        rows: list[_Row] = []
        for i, messages in enumerate(prompts):
            prompt_ids = self.encode_prompt(messages)
            for j in range(n):
                rows.append(_Row((i, j), prompt_ids, uniforms(sample_seed(seed, messages, j),
                                                              length), budget, limit=max_new))
        # similar prompt lengths together: less padding; results do not depend on the order
        order = sorted(range(len(rows)), key=lambda r: (len(rows[r].prompt_ids), r))
        for start in range(0, len(order), max(1, batch_size)):
            batch = [rows[r] for r in order[start:start + batch_size]]
            self._run_batch(batch, temperature, top_p, forcing, suffix_ids, cap)
        out: list[list[Output]] = [[None] * n for _ in prompts]  # type: ignore[list-item]
        for row in rows:
            out[row.key[0]][row.key[1]] = self._output(row, forcing)
        return out

    def _output(self, row: _Row, forcing: BudgetForcing) -> Output:
        # the end-of-sequence token is counted (it was generated) but is not part of the text
        ids = row.gen[:-1] if row.gen and row.gen[-1] in self.eos_ids else row.gen
        text = self._decode(ids)
        thinking = row.thinking
        if thinking is None and forcing.open_marker and forcing.open_marker in text:
            thinking = len(row.gen)  # thought opened and never closed: all of it was thinking
        return Output(text=text, output_tokens=len(row.gen), thinking_tokens=thinking,
                      finish_reason=row.finish, latency_s=row.latency)

    def _marker_done(self, row: _Row, forcing: BudgetForcing, may_end: list[bool]) -> bool:
        """Whether the newest token completed the end-of-thinking marker."""
        token = row.gen[-1]
        if token >= len(may_end) or not may_end[token]:
            return False
        window = row.gen[-(len(forcing.marker) + 1):]
        return forcing.marker in self._decode(window)

    def _may_end_table(self, last_char: str) -> list[bool]:
        """For each token id: can it be the last token of the marker (contains its last char)?"""
        if last_char in self._may_end:
            return self._may_end[last_char]
        pieces = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))],
                                             skip_special_tokens=False,
                                             clean_up_tokenization_spaces=False)
        table = [last_char in piece for piece in pieces]
        self._may_end[last_char] = table
        return table

    @torch.inference_mode()
    def _run_batch(self, batch: list[_Row], temperature: float, top_p: float,
                   forcing: BudgetForcing, suffix_ids: list[int], cap: int) -> None:
        t0 = time.perf_counter()
        may_end = self._may_end_table(forcing.marker[-1])
        width = max(len(r.prompt_ids) for r in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, row in enumerate(batch):
            ids[b, width - len(row.prompt_ids):] = torch.tensor(row.prompt_ids)
            mask[b, width - len(row.prompt_ids):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        from transformers import DynamicCache

        cache = DynamicCache()
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         past_key_values=cache, use_cache=True, **self._last_only)
        next_pos = positions[:, -1] + 1
        active = list(batch)
        rand = torch.stack([row.u for row in batch])  # [rows, positions]
        rand_rows = torch.arange(len(batch))
        step = 0
        while active:
            logits = out.logits[:, -1, :].float()
            u = rand[rand_rows, step]
            sampled = choose_tokens(logits, u, temperature, top_p).tolist()
            keep: list[int] = []
            for b, row in enumerate(active):
                from_queue = bool(row.queue)
                token = row.queue.popleft() if from_queue else sampled[b]
                row.gen.append(token)
                self._advance(row, token, from_queue, forcing, suffix_ids, cap, may_end)
                if row.finish is None:
                    keep.append(b)
                else:
                    row.latency = time.perf_counter() - t0
            step += 1
            if not keep:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, next_pos = mask[index], next_pos[index]
                active = [active[b] for b in keep]
                rand_rows = rand_rows[torch.tensor(keep)]
            tokens = torch.tensor([[row.gen[-1]] for row in active], device=self.device)
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=-1)
            out = self.model(input_ids=tokens, attention_mask=mask,
                             position_ids=next_pos.unsqueeze(-1), past_key_values=cache,
                             use_cache=True, **self._last_only)
            next_pos = next_pos + 1

    def _advance(self, row: _Row, token: int, from_queue: bool, forcing: BudgetForcing,
                 suffix_ids: list[int], cap: int, may_end: list[bool]) -> None:
        """Update one sample's state after it emitted `token` (sampled, or forced if from_queue)."""
        if not from_queue and token in self.eos_ids:
            row.finish = "forced" if row.forced else "stop"
            return
        if row.in_thought:
            if self._marker_done(row, forcing, may_end):
                row.in_thought = False
                row.thinking = len(row.gen)
            elif row.budget is not None and len(row.gen) >= cap:
                # thinking reached the budget without closing: force the answer
                row.in_thought = False
                row.thinking = len(row.gen)
                row.forced = True
                row.queue.extend(suffix_ids)
                row.limit = len(row.gen) + len(suffix_ids) + forcing.answer_tokens
        if len(row.gen) >= row.limit:
            row.finish = "forced" if row.forced else "length"


def model_path(spec: dict) -> str:
    """The directory or hub id to load for a local model spec (follows `@init` pointers)."""
    path = spec.get("path")
    if not path:
        raise ValueError(f"model {spec.get('name', '?')}: a local model spec needs 'path'")
    local = Path(path)
    if local.is_dir() and not (local / "config.json").is_file():
        # a student's @init dir may hold only init.json, a pointer to a hub id or local path
        from longthought.train.student import resolve_model_path

        return resolve_model_path(local)
    return str(path)


@lru_cache(maxsize=2)
def load_generator(path: str, device: str | None = None, dtype: str | None = None,
                   attn_implementation: str | None = None) -> TransformersGenerator:
    """A cached generator, so several budgets in one run load the model once."""
    return TransformersGenerator(path, device=device, dtype=dtype,
                                 attn_implementation=attn_implementation)
