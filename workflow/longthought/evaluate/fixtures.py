"""A random tiny chat model built locally, for tests and benchmarks of the evaluation backends.

Not a student: the real tiny student comes from `longthought.train`. This one exists so that the
backends can be exercised offline with real `from_pretrained` loading: a Qwen2-architecture
model with random weights and a byte-level BPE tokenizer with a ChatML chat template and
`<think>`/`</think>` tokens, saved with `save_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK = ["<think>", "</think>"]

_CORPUS = [
    "What is 123 + 456? Let me add the units, then the tens, then the hundreds.",
    "Solve 3x + 5 = 20. Subtract 5 from both sides, then divide by 3: x = 5.",
    "The final answer is \\boxed{579}. Check: 579 - 456 = 123, correct.",
    "Compute \\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}. Wait, let me verify the sum.",
    "Multiply 47 by 8: 7 times 8 is 56, write 6 carry 5; 4 times 8 is 32, plus 5 is 37.",
]


def build_tiny_chat_model(path: str | Path, *, hidden_size: int = 64, num_layers: int = 2,
                          num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 128,
                          vocab_size: int = 384, seed: int = 0,
                          tie_embeddings: bool = True, mean_length: int | None = None) -> Path:
    """Write a random Qwen2 chat model + tokenizer to `path`; returns the path.

    `mean_length`: rig the end-of-sequence logit so that sampled outputs (temperature 1) end
    after about that many tokens on average (geometric lengths), for tests and benchmarks of
    batches whose samples finish at different times. Unrigged, a random model almost never
    ends.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_CORPUS * 20, trainer=trainer)
    bpe.add_tokens(THINK)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", bos_token=None,
                                        unk_token=None)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden_size,
                         num_hidden_layers=num_layers, num_attention_heads=num_heads,
                         num_key_value_heads=num_kv_heads, intermediate_size=intermediate_size,
                         max_position_embeddings=4096, tie_word_embeddings=tie_embeddings,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None)
    model = Qwen2ForCausalLM(config)
    if mean_length:
        _rig_length(model, tokenizer.eos_token_id, mean_length)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    return path


def _rig_length(model, eos_id: int, mean_length: int) -> None:
    """A constant feature in every embedding (dimension 0) that only the EOS row of the head
    reads: after the final norm it dominates that dimension, so EOS gets an almost constant
    logit c with exp(c) / (exp(c) + vocab - 1) = 1 / mean_length, whatever the context."""
    import math

    import torch

    if model.config.tie_word_embeddings:
        raise ValueError("mean_length needs tie_embeddings=False")
    vocab, hidden = model.lm_head.weight.shape
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 1.0
        h0 = math.sqrt(hidden)  # dimension 0 after RMSNorm when it dominates the vector
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[eos_id, 0] = math.log((vocab - 1) / max(1, mean_length - 1)) / h0
