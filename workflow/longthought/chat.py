"""What a model's chat template does, found by rendering it: shared by training and generation.

A student is trained and evaluated through its own chat template, and two of the most reported
SFT failures come from what a template does without saying so: the token that closes an
assistant turn (`<|im_end|>`, `<|eot_id|>`) is not one the model's `generation_config` stops on,
so the student never stops; and a default system prompt is injected when none is given (Qwen2.5),
so training and evaluation may see different prompts. These helpers find both by rendering
probe conversations, never by matching a model's name.
"""

from __future__ import annotations

from collections.abc import Iterable

PROBE_USER = "longthought-probe-question"
PROBE_ANSWER = "longthought-probe-answer"


def render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    """The chat template's text for `messages` (no tokenization)."""
    return tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=generation_prompt)


def special_ids(tokenizer) -> set[int]:
    """Ids of the special and added tokens (`<|im_end|>`, `<|eot_id|>`, `<think>` where added)."""
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    return ids | {int(i) for i in decoder}


def end_of_turn(tokenizer) -> tuple[int, str] | None:
    """(id, text) of the token the template closes an assistant turn with, or None when the
    turn ends without a special token (the model could not learn where its answer stops)."""
    user = [{"role": "user", "content": PROBE_USER}]
    head = render(tokenizer, user, True)
    full = render(tokenizer, [*user, {"role": "assistant", "content": PROBE_ANSWER}], False)
    at = full.find(PROBE_ANSWER, len(head) if full.startswith(head) else 0)
    if at < 0:
        return None
    tail = full[at + len(PROBE_ANSWER):]
    specials = special_ids(tokenizer)
    for token in tokenizer.encode(tail, add_special_tokens=False):
        if token in specials:
            return int(token), tokenizer.convert_ids_to_tokens(int(token))
    return None


def as_id_list(value) -> list[int]:
    """A `generation_config.eos_token_id` (an int, a list or None) as a list."""
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def stop_ids(tokenizer, generation_config, extra: Iterable[int] = ()) -> list[int]:
    """Every token generation should stop on: the tokenizer's eos, the generation config's
    eos list, and `extra` (e.g. the template's end-of-turn token)."""
    ids = as_id_list(getattr(generation_config, "eos_token_id", None))
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    return sorted(set(ids) | {int(i) for i in extra})


def prompt_prefix(tokenizer, system: str | None) -> str:
    """What the template puts before the first user message's text when the conversation's
    system prompt is `system` (None: none given, so a default prompt may be injected)."""
    messages = [{"role": "system", "content": system}] if system else []
    text = render(tokenizer, [*messages, {"role": "user", "content": PROBE_USER}], True)
    return text[:text.find(PROBE_USER)]
