"""Generation with `transformers`: continuously batched, KV-cached, on CPU or GPU.

The decode loop is written out here rather than delegated to `model.generate` so that four
things are exact: per-sample seeded sampling (see `sampling`), budget forcing inside the same
batched loop (forced tokens are fed one per step, so the prompt is never re-encoded), per-sample
token and thinking counts, and a batch that stays full:

- **Refill** (continuous batching): a finished sample leaves the batch (its KV-cache row is
  dropped) and, once `batch_size / 8` slots are free, waiting prompts are prefilled and their
  cache rows joined to the running batch (left-padded to a common width; leading columns that
  no row uses any more are trimmed). A batch no longer runs for its longest sample with fewer
  and fewer live rows. It is on by default on a GPU, where a decode step costs the read of the
  weights whatever the number of rows, so halving the steps (benchmarks/bench_longctx.py) halves
  the time. On the CPU a step's cost grows with its rows: with the demo-sized model refill cut
  the steps 1.7x (64 prompts) and 2.4x (256) but the time only 1.09-1.27x and 1.36-1.38x, so
  there fixed batches (finished rows still leave) stay the default (`evaluation.refill`).
- **An in-place KV cache** (`kvcache.GrowingCache`): a step writes its column into a buffer with
  spare room instead of copying every layer's cache, as `DynamicCache` does.
- **Ragged decode attention** (`ragged`, for sdpa): with refill a young row is padded to the
  oldest row's width; a decode step attends each run of rows of similar age over its own
  trailing columns instead (0.57-0.60 of the padded columns in the benchmark, same logits).
- **Per-row random state on demand**: each sample draws its uniforms 64 at a time from its own
  generator (the same numbers as drawing them all up front), never a full-length tensor.
- **Budgets share their prefix** (`generate_budgets`): with common random numbers, a sample
  capped at B thinking tokens is the uncapped sample up to B, then the forced suffix; so the
  largest-cap run is decoded once and every smaller budget only prefills that prefix + suffix
  and decodes its `answer_tokens`. Samples whose thought ended within B are the same sample.

Reproducibility: a sample's random numbers depend only on its seed, not on batching, on refill,
or on which other prompts run, and the same settings give the same tokens on the same machine.
Across batch layouts the logits agree only to rounding: attention kernels sum over the padded
cache width in blocks, so a row's padding (which depends on its neighbours) can move a logit in
its last bits, and a token flips where its uniform falls within that distance of a boundary. On
one CPU thread this is rare (the tests' batched and sequential runs are bit-identical; in
`benchmarks/bench_longctx.py --parts gen`: 0 of 64 and 0 of 256 samples differ between refill
and fixed batches; a run before ragged attention flipped 2 of 256); on a GPU in bf16, where
kernels also choose their reduction order by batch shape, it is more frequent. Outputs are
reproducible for the same batch size, refill setting and prompts, not bit-for-bit across them.
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
from longthought.evaluate.kvcache import GrowingCache
from longthought.evaluate.outputs import Output
from longthought.evaluate.ragged import RAGGED, min_saved_per_call, plan_chunks
from longthought.evaluate.sampling import UniformStream, choose_tokens, sample_seed

_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
           "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
REFILL_FRACTION = 8  # refill once batch_size / 8 slots are free (each refill is one prefill)


@dataclass
class _Row:
    """One sample being generated: its prompt, its random numbers and its state."""

    key: tuple[int, int]  # (prompt index, sample index)
    prompt_ids: list[int]
    u: UniformStream
    budget: int | None
    gen: list[int] = field(default_factory=list)  # tokens so far (prefilled ones included)
    queue: deque = field(default_factory=deque)  # forced tokens still to feed
    thinking: int | None = None
    in_thought: bool = True
    limit: int = 0
    forced: bool = False
    finish: str | None = None
    latency: float | None = None
    t0: float = 0.0


@dataclass
class _Batch:
    """The running batch: rows, their KV cache, attention mask, next positions, last logits."""

    rows: list[_Row]
    cache: object
    mask: torch.Tensor
    next_pos: torch.Tensor
    logits: torch.Tensor  # [rows, vocab]: the logits the next token is chosen from


def _left_pad(x: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - x.shape[dim]
    if missing <= 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x.new_zeros(shape), x], dim=dim)


FLASH_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


def generation_attention(requested: str, device: torch.device, path: str) -> str:
    """The attention kernel to load the model with: a flash-attention choice where its package
    or a GPU is missing falls back to sdpa, saying so (the same outputs, another kernel)."""
    import importlib.util

    package = FLASH_PACKAGES.get(requested)
    if package and (device.type != "cuda" or importlib.util.find_spec(package) is None):
        why = "no GPU" if device.type != "cuda" else f"the {package} package is not installed"
        print(f"[generate] {path}: attn_implementation {requested} is not available ({why}); "
              "using sdpa", flush=True)
        return "sdpa"
    return requested


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
            kwargs["attn_implementation"] = generation_attention(attn_implementation,
                                                                 self.device, path)
        self.model = AutoModelForCausalLM.from_pretrained(path, **kwargs).to(self.device).eval()
        forward = inspect.signature(self.model.forward).parameters
        self.ragged = self._use_ragged_attention(forward.values())
        self._kv_bytes = self._kv_bytes_per_column()
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"model {path}: its tokenizer has no chat template; evaluation "
                             f"formats prompts with the model's own chat template")
        self.eos_ids = self._eos_ids()
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)
        self._may_end: dict[str, list[bool]] = {}
        # only the last position's logits are needed (saves a [batch, prompt, vocab] tensor)
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in forward else {}
        self.stats = {"prefills": 0, "decode_steps": 0, "row_steps": 0, "ragged_steps": 0,
                      "padded_columns": 0, "attended_columns": 0}

    def _use_ragged_attention(self, forward_params) -> bool:
        """sdpa decode steps attend each run of rows over its own columns (`evaluate/ragged`),
        where the model runs sdpa through transformers' attention interface and passes extra
        keyword arguments down to it; any other model keeps its attention as loaded."""
        if (getattr(self.model.config, "_attn_implementation", None) != "sdpa"
                or not any(p.kind is p.VAR_KEYWORD for p in forward_params)):
            return False
        try:
            self.model.set_attn_implementation(RAGGED)
        except (ValueError, ImportError):  # a model class without the attention interface
            return False
        # some classes only warn and stay on sdpa: then nothing would be narrowed
        return getattr(self.model.config, "_attn_implementation", None) == RAGGED

    def _kv_bytes_per_column(self) -> int:
        """Bytes of keys and values one row and column of one layer's cache holds: what an
        sdpa call that skips that column saves reading (ragged attention's break-even)."""
        config = self.model.config
        config = config.get_text_config() if hasattr(config, "get_text_config") else config
        heads = getattr(config, "num_attention_heads", 1) or 1
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return 2 * kv_heads * head_dim * self.model.dtype.itemsize

    def _eos_ids(self) -> set[int]:
        """Tokenizer eos + generation_config eos + the chat template's end-of-turn token: a
        model whose config does not stop on the token its template closes a turn with (Qwen2.5
        base models, the first Llama-3 release) would otherwise run to max_new_tokens."""
        from longthought.chat import end_of_turn, stop_ids

        ids = set(stop_ids(self.tokenizer, self.model.generation_config))
        eot = end_of_turn(self.tokenizer)
        if eot is not None and eot[0] not in ids:
            print(f"[generate] {self.path}: its generation_config does not stop on the chat "
                  f"template's end-of-turn token {eot[1]!r} (id {eot[0]}); stopping on it too",
                  flush=True)
            ids.add(eot[0])
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

    def _rows(self, prompts: list[list[dict]], n: int, seed: int, budget: int | None,
              max_new: int) -> list[_Row]:
        rows = []
        for i, messages in enumerate(prompts):
            prompt_ids = self.encode_prompt(messages)
            for j in range(n):
                rows.append(_Row((i, j), prompt_ids, UniformStream(sample_seed(seed, messages, j)),
                                 budget, limit=max_new))
        return rows

    def generate(self, prompts: list[list[dict]], sampling: dict, n: int,
                 budget: int | None = None, forcing: BudgetForcing | None = None,
                 batch_size: int = 16, refill: bool | None = None) -> list[list[Output]]:
        """n samples per prompt; outputs do not depend on batch_size or refill (see `sampling`).

        `refill`: None = on a GPU only (see the module docstring); False runs fixed batches.
        """
        forcing = forcing or BudgetForcing()
        max_new = int(sampling["max_new_tokens"])
        rows = self._rows(prompts, n, int(sampling.get("seed", 0)), budget, max_new)
        self._decode_rows(rows, sampling, forcing, self._cap(budget, max_new), batch_size,
                          refill)
        return self._collect(rows, prompts, n, forcing)

    def generate_budgets(self, prompts: list[list[dict]], sampling: dict, n: int,
                         budgets: list[int | None], forcing: BudgetForcing | None = None,
                         batch_size: int = 16, refill: bool | None = None
                         ) -> dict[int | None, tuple[list[list[Output]], float]]:
        """{budget: (n samples per prompt, seconds)} for every budget (None = uncapped).

        The largest cap is decoded in full; each smaller budget continues from its prefix (see
        the module docstring). Each result equals `generate(..., budget=b)` token for token.
        """
        forcing = forcing or BudgetForcing()
        max_new = int(sampling["max_new_tokens"])
        suffix_ids = self._encode_plain(forcing.suffix)
        seed = int(sampling.get("seed", 0))
        order = sorted(set(budgets), key=lambda b: float("inf") if b is None else b,
                       reverse=True)
        results: dict[int | None, tuple[list[list[Output]], float]] = {}
        t0 = time.perf_counter()
        ref_budget = order[0]
        ref = self._rows(prompts, n, seed, ref_budget, max_new)
        self._decode_rows(ref, sampling, forcing, self._cap(ref_budget, max_new), batch_size,
                          refill)
        results[ref_budget] = (self._collect(ref, prompts, n, forcing), time.perf_counter() - t0)
        ref_cap = self._cap(ref_budget, max_new)
        for budget in order[1:]:
            t0 = time.perf_counter()
            cap = self._cap(budget, max_new)
            rows = [self._from_reference(r, budget, cap, ref_cap, suffix_ids, forcing)
                    for r in ref]
            todo = [r for r in rows if r.finish is None]
            self._decode_rows(todo, sampling, forcing, cap, batch_size, refill)
            results[budget] = (self._collect(rows, prompts, n, forcing),
                               time.perf_counter() - t0)
        return results

    @staticmethod
    def _cap(budget: int | None, max_new: int) -> int:
        return max_new if budget is None else min(budget, max_new)

    def _from_reference(self, ref: _Row, budget: int | None, cap: int, ref_cap: int,
                        suffix_ids: list[int], forcing: BudgetForcing) -> _Row:
        """The row of a capped run (cap <= ref_cap), from the reference run's row.

        Identical when the reference closed its thought or ended within `cap` tokens (nothing
        differs before the cap); otherwise its first `cap` tokens + the forced suffix, to be
        continued for `answer_tokens` (the same uniforms, from the same positions).
        """
        closed = ref.thinking is not None and not ref.forced  # the model ended its thought
        same = ((closed and ref.thinking <= cap) or (ref.forced and cap == ref_cap)
                or (not ref.forced and ref.finish == "stop" and len(ref.gen) <= cap))
        row = _Row(ref.key, ref.prompt_ids, UniformStream(ref.u.seed), budget)
        if same:
            row.gen, row.thinking, row.in_thought = list(ref.gen), ref.thinking, ref.in_thought
            row.limit, row.forced, row.finish = ref.limit, ref.forced, ref.finish
            row.latency = ref.latency
            return row
        row.gen = ref.gen[:cap] + suffix_ids
        row.thinking, row.in_thought, row.forced = cap, False, True
        row.limit = cap + len(suffix_ids) + forcing.answer_tokens
        return row

    def _collect(self, rows: list[_Row], prompts: list, n: int,
                 forcing: BudgetForcing) -> list[list[Output]]:
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
                      finish_reason=row.finish, latency_s=row.latency,
                      token_ids=tuple(row.gen))

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

    def _prefill(self, rows: list[_Row]) -> _Batch:
        """Encode the rows' prompts (plus any tokens they already hold) into a fresh batch."""
        seqs = [r.prompt_ids + r.gen for r in rows]
        width = max(len(q) for q in seqs)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, q in enumerate(seqs):
            ids[b, width - len(q):] = torch.tensor(q)
            mask[b, width - len(q):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = GrowingCache()
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         past_key_values=cache, use_cache=True, **self._last_only)
        now = time.perf_counter()
        for r in rows:
            r.t0 = now
        self.stats["prefills"] += 1
        return _Batch(list(rows), cache, mask, positions[:, -1] + 1, out.logits[:, -1, :])

    @staticmethod
    def _join(a: _Batch, b: _Batch) -> _Batch:
        """One batch of a's rows then b's: cache rows left-padded to a common width."""
        used = a.mask.any(dim=0)
        lead = int(used.to(torch.int8).argmax()) if bool(used.any()) else a.mask.shape[1]
        if lead:  # columns no remaining row attends to any more (their rows have left)
            a.mask = a.mask[:, lead:]
        width = max(a.mask.shape[1], b.mask.shape[1])
        for la, lb in zip(a.cache.layers, b.cache.layers, strict=True):
            ka, va = la.keys[:, :, lead:], la.values[:, :, lead:]
            la.replace(torch.cat([_left_pad(ka, width, 2), _left_pad(lb.keys, width, 2)]),
                       torch.cat([_left_pad(va, width, 2), _left_pad(lb.values, width, 2)]))
        return _Batch(a.rows + b.rows, a.cache,
                      torch.cat([_left_pad(a.mask, width, 1), _left_pad(b.mask, width, 1)]),
                      torch.cat([a.next_pos, b.next_pos]), torch.cat([a.logits, b.logits]))

    @torch.inference_mode()
    def _decode_rows(self, rows: list[_Row], sampling: dict, forcing: BudgetForcing, cap: int,
                     batch_size: int, refill: bool) -> None:
        """Run `rows` to completion, at most `batch_size` at a time (see the module docstring)."""
        temperature = float(sampling.get("temperature", 0.0))
        top_p = float(sampling.get("top_p", 1.0))
        suffix_ids = self._encode_plain(forcing.suffix)
        may_end = self._may_end_table(forcing.marker[-1])
        batch_size = max(1, batch_size)
        refill = self.device.type == "cuda" if refill is None else refill
        threshold = max(1, batch_size // REFILL_FRACTION)
        # similar prompt lengths together: less padding; results do not depend on the order
        waiting = deque(sorted(rows, key=lambda r: len(r.prompt_ids) + len(r.gen)))
        batch: _Batch | None = None
        while waiting or batch is not None:
            free = batch_size - (len(batch.rows) if batch else 0)
            if waiting and (batch is None or (refill and free >= threshold)):
                new = self._prefill([waiting.popleft() for _ in range(min(free, len(waiting)))])
                batch = new if batch is None else self._join(batch, new)
            u = torch.tensor([r.u.at(len(r.gen)) for r in batch.rows], dtype=torch.float64)
            sampled = choose_tokens(batch.logits.float(), u, temperature, top_p).tolist()
            keep: list[int] = []
            for b, row in enumerate(batch.rows):
                from_queue = bool(row.queue)
                token = row.queue.popleft() if from_queue else sampled[b]
                row.gen.append(token)
                self._advance(row, token, from_queue, forcing, suffix_ids, cap, may_end)
                if row.finish is None:
                    keep.append(b)
                else:
                    row.latency = time.perf_counter() - row.t0
            self.stats["row_steps"] += len(batch.rows)
            if not keep:
                batch = None
                continue
            if len(keep) < len(batch.rows):
                index = torch.tensor(keep, device=self.device)
                batch.cache.batch_select_indices(index)
                batch.mask, batch.next_pos = batch.mask[index], batch.next_pos[index]
                batch.rows = [batch.rows[b] for b in keep]
            tokens = torch.tensor([[row.gen[-1]] for row in batch.rows], device=self.device)
            batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.rows), 1))], -1)
            out = self.model(input_ids=tokens, attention_mask=batch.mask,
                             position_ids=batch.next_pos.unsqueeze(-1),
                             past_key_values=batch.cache, use_cache=True, **self._last_only,
                             **self._row_chunks(batch))
            batch.logits = out.logits[:, -1, :]
            batch.next_pos = batch.next_pos + 1
            self.stats["decode_steps"] += 1

    def _row_chunks(self, batch: _Batch) -> dict:
        """The ragged-attention plan for this decode step ({} when sdpa over the full width is
        as good). A row's cache is right-aligned and holds its prompt and every token so far."""
        width = batch.mask.shape[1]
        self.stats["padded_columns"] += len(batch.rows) * width
        chunks = None
        if self.ragged:
            per_call = min_saved_per_call(self._kv_bytes, self.device.type,
                                          torch.get_num_threads())
            chunks = plan_chunks([len(r.prompt_ids) + len(r.gen) for r in batch.rows], width,
                                 per_call)
        if chunks is None:
            self.stats["attended_columns"] += len(batch.rows) * width
            return {}
        self.stats["ragged_steps"] += 1
        self.stats["attended_columns"] += sum((end - first) * cols for first, end, cols in chunks)
        return {"row_chunks": chunks}

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
