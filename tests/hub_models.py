"""Hub-shaped students, offline: model directories laid out exactly as the Hugging Face hub ships
Qwen2.5-Instruct, Qwen2.5-Math (the base model the paper fine-tunes) and Meta-Llama-3-Instruct,
at toy size.

Each directory holds what the hub repository holds for transformers: `config.json`,
`model.safetensors` (random init, 2 layers, hidden 64), `generation_config.json` with the
family's stop tokens, `tokenizer.json` (a byte-level BPE trained here with the `tokenizers`
library, the family's pre-tokenizer regex and its special tokens), `tokenizer_config.json` with
the family's REAL chat template text and special-token settings, `special_tokens_map.json`, and
for Qwen `vocab.json` + `merges.txt`. The chat templates below are the `chat_template` strings of
the published `tokenizer_config.json` files, kept as the JSON text found there (decoded with
`json.loads`), so they are byte for byte what a user downloads:

- Qwen/Qwen2.5-*-Instruct: injects "You are Qwen, created by Alibaba Cloud. You are a helpful
  assistant." as the system turn when the conversation has none; turns end with `<|im_end|>`.
- Qwen/Qwen2.5-Math-*: the same template with "Please reason step by step, and put your final
  answer within \\boxed{}." as its default system prompt. The base model's `eos_token` and
  `generation_config` stop on `<|endoftext|>` only, not on the template's `<|im_end|>`: the
  classic student that never stops.
- meta-llama/Meta-Llama-3-8B-Instruct: `<|begin_of_text|>` + header tokens, content `| trim`-ed,
  turns end with `<|eot_id|>`; no pad token. `original_release=True` gives the files as first
  published (eos `<|end_of_text|>`, generation_config stopping on 128001 only), later fixed on
  the hub by adding 128009 (`<|eot_id|>`).

Token ids are the families' layout at a small scale (specials after the regular vocabulary), not
their real ids; `<think>` is several tokens unless `think_token=True` adds it (as QwQ/Qwen3 do).
"""

from __future__ import annotations

import json
from pathlib import Path

QWEN25_INSTRUCT_TEMPLATE = json.loads(r'''"{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"''')  # noqa: E501

QWEN25_MATH_TEMPLATE = json.loads(r'''"{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'Please reason step by step, and put your final answer within \\\\boxed{}.' }}\n    {%- endif %}\n    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nPlease reason step by step, and put your final answer within \\\\boxed{}.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"''')  # noqa: E501

LLAMA3_INSTRUCT_TEMPLATE = json.loads(r'''"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"''')  # noqa: E501

QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
QWEN_MATH_DEFAULT_SYSTEM = ("Please reason step by step, and put your final answer within "
                            "\\boxed{}.")

# Qwen2's pre-tokenizer split (single digits); Llama-3's (digits in groups of up to 3)
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
               r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}"
                r"\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
                "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
                "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                "<|image_pad|>", "<|video_pad|>"]
QWEN_ADDED = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
              "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]  # added, not special
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                  "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
                  "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                  "<|reserved_special_token_4|>", "<|eot_id|>"]

TINY_SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 128}


def corpus() -> list[str]:
    """Text the toy BPE learns from: the synthetic long thoughts and their problems."""
    from longthought.train.synthetic import synthetic_dataset

    rows = synthetic_dataset(200, seed=11)
    texts = rows["problem"].tolist()
    texts += [json.loads(m)[-1]["content"] for m in rows["messages"]]
    texts += [QWEN_DEFAULT_SYSTEM, QWEN_MATH_DEFAULT_SYSTEM, "system\n", "user\n",
              "assistant\n"] * 20
    return texts


def _bpe(split: str, vocab_size: int, added: list[str], special: list[str],
         think_token: bool):
    """A byte-level BPE with the family's split regex; specials and added tokens after the
    learned vocabulary (the hub's layout), `<think>`/`</think>` added if `think_token`."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    extra = added + (["<think>", "</think>"] if think_token else [])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in extra])
    return tok


def _added_decoder(tok, special: list[str]) -> dict[str, dict]:
    out = {}
    for t, i in sorted(tok.get_added_tokens_decoder().items()):
        out[str(t)] = {"content": i.content, "lstrip": False, "normalized": False,
                       "rstrip": False, "single_word": False, "special": i.content in special}
    return out


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _save_model(path: Path, config, seed: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path)


def qwen25(path: str | Path, *, math: bool = False, think_token: bool = False,
           vocab_size: int = 600, seed: int = 0) -> Path:
    """A Qwen2.5-Instruct (or, `math`, Qwen2.5-Math base) directory as the hub ships it."""
    from transformers import Qwen2Config

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = _bpe(QWEN2_SPLIT, vocab_size, QWEN_ADDED, QWEN_SPECIAL, think_token)
    tok.save(str(path / "tokenizer.json"))
    tok.model.save(str(path))  # vocab.json + merges.txt, as the hub repository has them
    ids = {t: tok.token_to_id(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")}
    eos = "<|endoftext|>" if math else "<|im_end|>"
    _write_json(path / "tokenizer_config.json", {
        "add_bos_token": False, "add_prefix_space": False,
        "added_tokens_decoder": _added_decoder(tok, QWEN_SPECIAL),
        "additional_special_tokens": QWEN_SPECIAL[1:],
        "bos_token": None,
        "chat_template": QWEN25_MATH_TEMPLATE if math else QWEN25_INSTRUCT_TEMPLATE,
        "clean_up_tokenization_spaces": False, "eos_token": eos, "errors": "replace",
        "model_max_length": 131072, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    })
    _write_json(path / "special_tokens_map.json", {
        "additional_special_tokens": QWEN_SPECIAL[1:],
        "eos_token": {"content": eos, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False},
        "pad_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False},
    })
    config = Qwen2Config(
        vocab_size=tok.get_vocab_size(), **TINY_SHAPE, max_position_embeddings=4096,
        rope_theta=10000.0 if math else 1000000.0, rms_norm_eps=1e-6,
        tie_word_embeddings=not math, bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"] if math else ids["<|im_end|>"],
        sliding_window=4096 if math else 32768, use_sliding_window=False, max_window_layers=2)
    _save_model(path, config, seed)
    if math:  # Qwen2.5-Math-7B/72B (base): greedy, stops on <|endoftext|> only
        gen = {"bos_token_id": ids["<|endoftext|>"], "do_sample": False,
               "eos_token_id": ids["<|endoftext|>"], "max_new_tokens": 2048}
    else:  # Qwen2.5-*-Instruct
        gen = {"bos_token_id": ids["<|endoftext|>"], "pad_token_id": ids["<|endoftext|>"],
               "do_sample": True, "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
               "repetition_penalty": 1.05, "temperature": 0.7, "top_p": 0.8, "top_k": 20}
    _write_json(path / "generation_config.json", {**gen, "transformers_version": "4.43.1"})
    return path


def llama3(path: str | Path, *, original_release: bool = False, think_token: bool = False,
           vocab_size: int = 600, seed: int = 0) -> Path:
    """A Meta-Llama-3-8B-Instruct directory as the hub ships it (no pad token)."""
    from tokenizers import processors
    from transformers import LlamaConfig

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = _bpe(LLAMA3_SPLIT, vocab_size, [], LLAMA3_SPECIAL, think_token)
    bos_id = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
            special_tokens=[("<|begin_of_text|>", bos_id)]),
    ])
    tok.save(str(path / "tokenizer.json"))
    ids = {t: tok.token_to_id(t) for t in LLAMA3_SPECIAL}
    eos = "<|end_of_text|>" if original_release else "<|eot_id|>"
    _write_json(path / "tokenizer_config.json", {
        "added_tokens_decoder": _added_decoder(tok, LLAMA3_SPECIAL),
        "bos_token": "<|begin_of_text|>", "chat_template": LLAMA3_INSTRUCT_TEMPLATE,
        "clean_up_tokenization_spaces": True, "eos_token": eos,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    _write_json(path / "special_tokens_map.json", {"bos_token": "<|begin_of_text|>",
                                                   "eos_token": eos})
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), **TINY_SHAPE, max_position_embeddings=8192,
        rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        bos_token_id=bos_id, eos_token_id=ids[eos], attention_bias=False, mlp_bias=False)
    _save_model(path, config, seed)
    stops = ids["<|end_of_text|>"] if original_release else [ids["<|end_of_text|>"],
                                                             ids["<|eot_id|>"]]
    _write_json(path / "generation_config.json", {
        "bos_token_id": bos_id, "eos_token_id": stops, "do_sample": True, "temperature": 0.6,
        "top_p": 0.9, "max_length": 4096, "transformers_version": "4.40.0.dev0"})
    return path


FAMILIES = {"qwen2.5-instruct": lambda p, **kw: qwen25(p, **kw),
            "qwen2.5-math": lambda p, **kw: qwen25(p, math=True, **kw),
            "llama-3-instruct": lambda p, **kw: llama3(p, **kw)}


def build(family: str, path: str | Path, **kw) -> Path:
    """Write the hub-shaped directory of `family` (a key of FAMILIES) to `path`."""
    return FAMILIES[family](path, **kw)


if __name__ == "__main__":  # python tests/hub_models.py <family> <dir>
    import sys

    print(build(sys.argv[1], sys.argv[2]))
