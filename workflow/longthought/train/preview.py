"""The data preview: what the student will be trained on, read before the first step.

A few samples of every stage rendered through the student's own chat template with the tokens
that carry the loss marked, and the checks behind the failures users of SFT tools report most
(peers.md, "SFT pitfalls"). Each check ends `ok`, `fixed` (the job corrected it and says how),
`warn` or `error` (the run stops before any compute, naming what to set):

- **thinking markers survive templating**: a template that drops or rewrites `<think>` blocks in
  assistant turns (DeepSeek-R1's distill templates keep only the text after `</think>`) would
  teach a model that answers without thinking: error. How many tokens each marker is, is said.
- **the end-of-turn token stops generation**: the token the template closes an assistant turn
  with must be one the model's `generation_config` stops on; where it is not (Qwen2.5 base
  models stop on `<|endoftext|>` while their template ends turns with `<|im_end|>`; the first
  Llama-3 release), the trained model's `generation_config.eos_token_id` gets it (`fixed`). A
  template with no special end-of-turn token at all is an error; so is a loss mask that misses it.
- **the same system prompt in training and evaluation**: the rendered text before the first user
  message (a default system prompt included, e.g. Qwen2.5's) must be the same for the training
  rows and for `evaluation.sampling.system`: error otherwise. A different user prompt (the
  dataset's `format.user` vs `evaluation.prompt`) is a warning.
- **max_length**: how many samples are cut at `max_length` (they lose their end-of-turn token)
  and how many assistant tokens that removes: a warning with the counts, never silent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from longthought.chat import as_id_list, end_of_turn, prompt_prefix, special_ids

PREVIEW_FILE = "data_preview.md"
MARKERS = ("<think>", "</think>", "<|begin_of_thought|>", "<|end_of_thought|>",
           "<|begin_of_solution|>", "<|end_of_solution|>")
SAMPLES = 2  # rendered samples per stage
CHECKED_ROWS = 32  # rows per stage whose markers and end-of-turn token are checked
SHOW_CHARS = 1500  # a rendered sample longer than this shows its head and tail
OPEN, CLOSE = "«", "»"  # around the tokens that carry the loss


@dataclass
class Check:
    name: str
    level: str  # ok | fixed | warn | error
    message: str


@dataclass
class Preview:
    """The preview's text and checks; `eos_token_id` is the generation config's stop list the
    trained model must be saved with (None: keep the base model's)."""

    text: str
    checks: list[Check] = field(default_factory=list)
    eos_token_id: list[int] | None = None

    @property
    def errors(self) -> list[Check]:
        return [c for c in self.checks if c.level == "error"]

    def raise_errors(self) -> None:
        if self.errors:
            raise ValueError("the data preview found problems that would spoil training:\n"
                             + "\n".join(f"  - {c.name}: {c.message}" for c in self.errors))

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text, encoding="utf-8")
        return path


def _rows(path: str, n: int) -> list[dict]:
    """The first `n` rows of a dataset table (sample_id, problem, messages)."""
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read_row_groups([0], columns=["sample_id", "problem", "messages"])
    return table.slice(0, n).to_pylist()


def _shorten(text: str) -> str:
    if len(text) <= SHOW_CHARS:
        return text
    half = SHOW_CHARS // 2
    return f"{text[:half]}\n[... {len(text) - SHOW_CHARS:,} characters ...]\n{text[-half:]}"


def render_marked(tokenizer, ids: np.ndarray, mask: np.ndarray) -> str:
    """The sample's text with every run of loss-carrying tokens between « and »."""
    out, start = [], 0
    for end in range(1, len(ids) + 1):
        if end == len(ids) or mask[end] != mask[start]:
            text = tokenizer.decode([int(t) for t in ids[start:end]], skip_special_tokens=False,
                                    clean_up_tokenization_spaces=False)
            out.append(f"{OPEN}{text}{CLOSE}" if mask[start] else text)
            start = end
    return "".join(out)


def _tokens(tokenizer, ids) -> str:
    return json.dumps(tokenizer.convert_ids_to_tokens([int(t) for t in ids]), ensure_ascii=False)


def _sample_arrays(data, row: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and mask of `row` as the stage trains on it (cut at max_length)."""
    start = int(data.tokens.offsets[row])
    end = start + int(data.lengths[row])
    return np.asarray(data.tokens.ids[start:end]), np.asarray(data.tokens.mask[start:end], bool)


def check_markers(tokenizer, data, rows: list[dict], where: str) -> list[Check]:
    """Thinking markers in an assistant turn must reach the tokens the model is trained on."""
    checks, lost, seen = [], [], {}
    for r, row in enumerate(rows):
        content = "".join(m["content"] for m in json.loads(row["messages"])
                          if m.get("role") == "assistant")
        used = [m for m in MARKERS if m in content]
        if not used or data.truncated[r]:
            continue
        ids, mask = _sample_arrays(data, r)
        trained = tokenizer.decode([int(t) for t in ids[mask]], skip_special_tokens=False,
                                   clean_up_tokenization_spaces=False)
        for marker in used:
            seen[marker] = seen.get(marker, 0) + 1
            if trained.count(marker) < content.count(marker):
                lost.append(f"row {r + 1} (sample_id {row['sample_id']!r}): {marker!r}")
    if lost:
        checks.append(Check("thinking markers", "error", (
            f"{where}: the chat template drops thinking markers from the assistant turn "
            f"({'; '.join(lost[:3])}); the student would learn to answer without thinking. "
            "Give the student a template that keeps the assistant's text as it is")))
    elif seen:
        sizes = ", ".join(f"{m!r} is {len(tokenizer.encode(m, add_special_tokens=False))} "
                          "token(s)" for m in seen)
        checks.append(Check("thinking markers", "ok",
                            f"{where}: markers kept in {max(seen.values())} checked rows; {sizes}"))
    return checks


def check_end_of_turn(tokenizer, eos_ids: list[int], stages: list, rows: list[list[dict]],
                      datasets: list[str]) -> tuple[list[Check], list[int] | None]:
    """The template's end-of-turn token: trained on, and a token generation stops on."""
    eot = end_of_turn(tokenizer)
    if eot is None:
        return [Check("end of turn", "error",
                      "the chat template closes an assistant turn with no special token, so the "
                      "student cannot learn where to stop; use a template whose turns end with "
                      "a special token (e.g. <|im_end|>, <|eot_id|>)")], None
    token, text = eot
    checks: list[Check] = []
    for data, stage_rows, path in zip(stages, rows, datasets, strict=True):
        for r, row in enumerate(stage_rows):
            if data.truncated[r]:
                continue
            ids, mask = _sample_arrays(data, r)
            if not (mask & (ids == token)).any():
                checks.append(Check("end of turn", "error", (
                    f"{path}: row {r + 1} (sample_id {row['sample_id']!r}): the loss mask does "
                    f"not cover the end-of-turn token {text!r}; the student would not learn to "
                    "stop")))
                break
    # only the generation_config decides: it is what model.generate, vLLM and TGI stop on; the
    # tokenizer's eos is not read by them when the config names its own
    stops = sorted(set(eos_ids))
    if token in stops:
        checks.append(Check("end of turn", "ok", f"the template ends turns with {text!r} "
                            f"(id {token}); generation stops on {stops}"))
        return checks, None
    fixed = fixed_stops(tokenizer, eos_ids, token)
    checks.append(Check("end of turn", "fixed", (
        f"the template ends turns with {text!r} (id {token}), but the model's generation_config "
        f"stops only on {stops or 'nothing'} (tokenizer eos {tokenizer.eos_token!r}): a student "
        f"trained on it would never stop. The trained model is saved with "
        f"generation_config.eos_token_id = {fixed}")))
    return checks, fixed


def fixed_stops(tokenizer, eos_ids: list[int], token: int) -> list[int]:
    """The config's stop tokens plus the end-of-turn token; a config with none also gets the
    tokenizer's eos, which it would otherwise lose once the list is set."""
    extra = {tokenizer.eos_token_id} - {None} if not eos_ids else set()
    return sorted(set(eos_ids) | {token} | extra)


def check_prompts(tokenizer, rows: list[list[dict]], datasets: list[str],
                  evaluation: dict) -> list[Check]:
    """Training rows and evaluation prompts: the same system prompt (as rendered), and the
    same user prompt around the problem."""
    checks: list[Check] = []
    eval_system = evaluation.get("system")
    eval_prefix = prompt_prefix(tokenizer, eval_system)
    template = evaluation.get("prompt") or "{problem}"
    for stage_rows, path in zip(rows, datasets, strict=True):
        if not stage_rows:
            continue
        row = stage_rows[0]
        messages = json.loads(row["messages"])
        system = next((m["content"] for m in messages[:1] if m["role"] == "system"), None)
        prefix = prompt_prefix(tokenizer, system)
        if prefix != eval_prefix:
            checks.append(Check("system prompt", "error", (
                f"{path}: training renders the prompt as {prefix!r} before the user's text, "
                f"evaluation (evaluation.sampling.system = {eval_system!r}) as {eval_prefix!r}; "
                "the student would be evaluated under a prompt it was not trained on. Set "
                f"evaluation.sampling.system to {system!r} (or the dataset's format.system to "
                f"{eval_system!r})")))
            continue
        checks.append(Check("system prompt", "ok", f"{path}: training and evaluation render "
                            f"the same system prompt ({prefix!r})"))
        user = next((m["content"] for m in messages if m["role"] == "user"), None)
        asked = template.replace("{problem}", row["problem"])
        if user is not None and user != asked:
            checks.append(Check("user prompt", "warn", (
                f"{path}: row 1 asks {_shorten(user)!r}, evaluation would ask {_shorten(asked)!r} "
                "(evaluation.prompt vs the dataset's format.user)")))
    return checks


def check_lengths(stages: list, datasets: list[str], spec) -> list[Check]:
    """Samples cut at max_length, counted per stage (they lose their end-of-turn token)."""
    checks = []
    for s, (data, path, stage) in enumerate(zip(stages, datasets, spec.stages, strict=True)):
        full = np.diff(data.tokens.offsets)
        cut = int(data.truncated.sum())
        if not cut:
            checks.append(Check("max_length", "ok", f"stage {s} ({path}): all {len(data)} "
                                f"samples fit in max_length {stage.max_length} (longest "
                                f"{int(full.max()) if len(full) else 0} tokens)"))
            continue
        lost = int(data.tokens.n_train[data.truncated].sum() - data.n_labels[data.truncated].sum())
        checks.append(Check("max_length", "warn", (
            f"stage {s} ({path}): {cut} of {len(data)} samples are longer than max_length "
            f"{stage.max_length} (longest {int(full.max())} tokens) and are truncated: they lose "
            f"{lost:,} assistant tokens and their end-of-turn token; raise "
            f"students.<student>.stages[{s}].max_length or filter long traces in curation "
            "(datasets.<d>.filters.max_tokens)")))
    return checks


def build_preview(student: str, spec, tokenizer, eos_ids: list[int], stages: list,
                  datasets: list[str], evaluation: dict | None = None) -> Preview:
    """The preview of `stages` (one TokenizedDataset per stage) and every check's result."""
    rows = [_rows(path, min(len(data), CHECKED_ROWS)) for data, path in zip(stages, datasets,
                                                                          strict=True)]
    checks: list[Check] = []
    for data, stage_rows, path in zip(stages, rows, datasets, strict=True):
        checks += check_markers(tokenizer, data, stage_rows, path)
    eot_checks, eos_fix = check_end_of_turn(tokenizer, eos_ids, stages, rows, datasets)
    checks += eot_checks
    if evaluation is not None:
        checks += check_prompts(tokenizer, rows, datasets, evaluation)
    checks += check_lengths(stages, datasets, spec)

    lines = [f"# Data preview: student `{student}`", "",
             f"Rendered with the student's own chat template; the tokens that carry the loss are "
             f"between {OPEN} and {CLOSE}. Special and added tokens: "
             f"{len(special_ids(tokenizer))}; pad: "
             f"{tokenizer.pad_token!r} (packed rows need none; unpadded batches pad with the "
             "end-of-sequence token, which carries no loss).", "", "## Checks", ""]
    lines += [f"- **{c.level}** {c.name}: {c.message}" for c in checks]
    for s, (data, stage_rows, path) in enumerate(zip(stages, rows, datasets, strict=True)):
        lines += ["", f"## Stage {s}: {path}", ""]
        for r in range(min(SAMPLES, len(stage_rows))):
            ids, mask = _sample_arrays(data, r)
            trained = np.flatnonzero(mask)
            lines += [f"### row {r + 1} (sample_id {stage_rows[r]['sample_id']!r}): {len(ids)} "
                      f"tokens, {len(trained)} trained"
                      f"{', truncated' if data.truncated[r] else ''}", "",
                      "```", _shorten(render_marked(tokenizer, ids, mask)), "```", ""]
            if len(trained):
                lines += [f"first trained tokens: {_tokens(tokenizer, ids[trained[:8]])}  ",
                          f"last trained tokens: {_tokens(tokenizer, ids[trained[-4:]])}", ""]
    return Preview("\n".join(lines) + "\n", checks, eos_fix)


def generation_eos(base_path: str) -> list[int]:
    """The stop tokens of the model's generation_config.json (or config.json if it has none)."""
    from transformers import AutoConfig, GenerationConfig

    try:
        return as_id_list(GenerationConfig.from_pretrained(base_path).eos_token_id)
    except OSError:
        return as_id_list(getattr(AutoConfig.from_pretrained(base_path), "eos_token_id", None))
