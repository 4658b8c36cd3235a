"""The SFT loss without the full logits: cross-entropy over the assistant tokens, in chunks.

Materialising the logits costs tokens x vocabulary x 4 bytes before its gradient (16k tokens x a
152k Qwen2.5 vocabulary: ~10 GB, twice over in the backward). Here the model runs its decoder,
only the hidden states of tokens that carry a label (the assistant turn) are kept, and the
language-model head + cross-entropy run over them a chunk of tokens at a time:

- `chunked` (any device): `ChunkedLinearCrossEntropy`, an autograd function that computes each
  chunk's logits, its loss and at once its gradients (softmax - one-hot, as Liger does), so no
  chunk's logits outlive the chunk; peak memory is one chunk, whatever the number of tokens;
- `liger` (GPU, optional extra `longthought[liger]`): Liger Kernel's fused linear cross-entropy
  (Triton), the same computation fused;
- `full`: the head over every position and `F.cross_entropy` on fp32 logits (what transformers
  does), for architectures whose logits are not a plain linear map of the hidden states.

Every implementation returns the *sum* over labelled tokens; the caller divides by the step's
assistant-token count, so the normalisation does not depend on which one ran.
"""

from __future__ import annotations

import importlib.util
import types

import torch
import torch.nn.functional as F

from longthought.train.data import IGNORE

LOSSES = ("auto", "chunked", "liger", "full")
# logits of one chunk, in bytes: bounds the loss's working memory (fp32 logits + their gradient)
CHUNK_BYTES = 256 * 2**20
# architectures whose logits are exactly lm_head(last hidden state): no softcapping, scaling or
# router losses in the head, so the head can be applied by the loss instead of the model
PLAIN_HEAD = ("qwen2", "qwen3", "llama", "mistral", "olmo", "olmo2", "phi3", "smollm3",
              "starcoder2", "gemma")


def chunk_tokens(vocab_size: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Tokens per chunk so that one chunk's fp32 logits take about `chunk_bytes`."""
    return max(1, chunk_bytes // (4 * vocab_size))


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """sum_t CE(hidden[t] @ weight.T, target[t]), with the gradients computed chunk by chunk.

    `hidden` [n, h] holds only labelled positions and `target` [n] their labels (no IGNORE).
    The forward pass already computes d loss / d hidden and d loss / d weight, so it keeps them
    (n x h and vocab x h, the sizes of the inputs) instead of any logits; the backward scales them.
    Logits are computed in the autocast dtype when autocast is on (as the model's head would be),
    softmax and the loss in fp32.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                chunk: int) -> torch.Tensor:
        device = hidden.device.type
        dtype = (torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device)
                 else hidden.dtype)
        acc = torch.promote_types(dtype, torch.float32)  # softmax and sums: fp32 at least
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        with torch.autocast(device, enabled=False):
            w = weight.to(dtype)
            grad_h = torch.empty_like(hidden) if need_h else None
            grad_w = torch.zeros(weight.shape, dtype=acc, device=weight.device) \
                if need_w else None
            total = torch.zeros((), dtype=acc, device=hidden.device)
            for start in range(0, hidden.shape[0], chunk):
                h = hidden[start:start + chunk].to(dtype)
                t = target[start:start + chunk]
                logits = (h @ w.T).to(acc)  # [c, vocab]: the only vocabulary-sized tensor
                lse = torch.logsumexp(logits, dim=-1)
                total += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
                if need_h or need_w:
                    grad = logits.sub_(lse[:, None]).exp_()  # softmax, in place
                    grad[torch.arange(len(t), device=t.device), t] -= 1.0
                    grad = grad.to(dtype)
                    if need_h:
                        grad_h[start:start + chunk] = (grad @ w).to(hidden.dtype)
                    if need_w:
                        grad_w += (grad.T @ h).to(acc)
                del logits
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        dh = None if grad_h is None else grad_h * grad_out.to(grad_h.dtype)
        dw = None if grad_w is None else (grad_w * grad_out).to(ctx.weight_dtype)
        return dh, dw, None, None


def liger_available(device: torch.device) -> bool:
    """Liger's kernels are Triton: a CUDA device and the package are both needed."""
    return device.type == "cuda" and importlib.util.find_spec("liger_kernel") is not None


def choose_loss(requested: str, model_type: str, device: torch.device,
                partitioned_head: bool = False) -> tuple[str, str]:
    """(implementation, why) for the `cross_entropy` setting on this model and device.

    `partitioned_head`: DeepSpeed ZeRO-3 gathers a weight only inside its own module's forward,
    so the head's weight cannot be read by the loss; the model's own head runs then.
    """
    plain = model_type in PLAIN_HEAD
    if requested == "full":
        return "full", "requested"
    if not plain or partitioned_head:
        why = ("DeepSpeed ZeRO-3 partitions the head's weight outside its own forward"
               if plain else
               f"model type {model_type!r} is not known to compute its logits as a plain "
               "linear head, so the head stays in the model")
        if requested != "auto":
            raise ValueError(f"cross_entropy: {requested!r} is not available: {why}; "
                             "use 'auto' or 'full'")
        return "full", why
    if requested == "liger":
        if not liger_available(device):
            raise ValueError("cross_entropy: 'liger' needs the liger-kernel package "
                             "(pip install 'longthought[liger]') and a CUDA device")
        return "liger", "requested"
    if requested == "auto" and liger_available(device):
        return "liger", "liger-kernel is installed and the device is a GPU"
    if requested == "auto":
        return "chunked", ("liger-kernel needs a GPU" if device.type != "cuda"
                           else "liger-kernel is not installed")
    return "chunked", "requested"


def linear_cross_entropy_sum(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                             impl: str = "chunked", chunk_bytes: int = CHUNK_BYTES
                             ) -> torch.Tensor:
    """Sum of the cross-entropy of `hidden @ weight.T` against `labels` (IGNORE = no loss).

    `hidden` [..., h] and `labels` [...] are already aligned (labels are shifted in the data).
    """
    flat = labels.reshape(-1)
    keep = (flat != IGNORE).nonzero().squeeze(1)
    h = hidden.reshape(-1, hidden.shape[-1]).index_select(0, keep)
    target = flat.index_select(0, keep)
    if impl == "liger":
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        out = LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE, reduction="sum")(
            weight, h, target)
        return out[0] if isinstance(out, tuple) else out
    return ChunkedLinearCrossEntropy.apply(h, weight, target,
                                           chunk_tokens(weight.shape[0], chunk_bytes))


def full_cross_entropy_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The logits-materialising loss: fp32 cross-entropy over every position, summed."""
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE,
                           reduction="sum")


def _forward_with_loss(self, input_ids=None, labels=None, **kwargs):
    """A causal LM's forward that returns the summed loss and no logits (bound per instance)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    decoder = getattr(self, self.base_model_prefix)
    hidden = decoder(input_ids=input_ids, **kwargs).last_hidden_state
    head = self.get_output_embeddings()
    if is_sharded(head.weight):
        return CausalLMOutputWithPast(loss=head_cross_entropy_sum(head, hidden, labels))
    loss = linear_cross_entropy_sum(hidden, head.weight, labels, self._longthought_loss)
    return CausalLMOutputWithPast(loss=loss)


_warned_sharded = False


def is_sharded(weight: torch.Tensor) -> bool:
    """Whether the head's weight is still a shard (an FSDP2 DTensor) when the loss reads it.

    FSDP2 (accelerate >= 1.15 puts the final norm and the head in one unit, gathered when the
    norm runs and kept through the forward) hands the loss the full weight; a wrapping that
    gathers the head only inside its own forward would not, and reading a shard would be wrong.
    """
    from torch.distributed.tensor import DTensor

    global _warned_sharded
    sharded = isinstance(weight, DTensor)
    if sharded and not _warned_sharded:
        _warned_sharded = True
        print("[train] cross-entropy: the head's weight is sharded outside its own forward; the "
              "head runs as a module on the labelled positions (their logits are materialised)",
              flush=True)
    return sharded


def head_cross_entropy_sum(head: torch.nn.Module, hidden: torch.Tensor,
                           labels: torch.Tensor) -> torch.Tensor:
    """The fallback: the head module (its own forward gathers its weight) on the labelled
    positions only, then fp32 cross-entropy, summed."""
    flat = labels.reshape(-1)
    keep = (flat != IGNORE).nonzero().squeeze(1)
    h = hidden.reshape(-1, hidden.shape[-1]).index_select(0, keep)
    return F.cross_entropy(head(h).float(), flat.index_select(0, keep), reduction="sum")


def attach_loss(model: torch.nn.Module, impl: str) -> None:
    """Make `model(**inputs, labels=labels).loss` the summed loss, computed the `impl` way.

    The loss is computed inside the model's forward, so DDP/FSDP see one forward (FSDP has the
    head's weight gathered there). For `full` the model's own forward is kept and the loss is
    computed from its logits (see `step_loss`).
    """
    model._longthought_loss = impl
    if impl != "full":
        head = model.get_output_embeddings()
        if not isinstance(head, torch.nn.Linear) or head.bias is not None:
            raise ValueError(f"cross_entropy {impl!r}: the model's output head is not a "
                             "bias-free linear layer; use cross_entropy: full")
        model.forward = types.MethodType(_forward_with_loss, model)


def step_loss(model, inputs: dict, labels: torch.Tensor) -> torch.Tensor:
    """The summed assistant-token loss of one micro-batch, whichever implementation is attached."""
    impl = getattr(model, "_longthought_loss", None)
    if impl is None:  # wrapped by DDP/FSDP/DeepSpeed: the attribute is on the inner module
        inner = model
        while impl is None and hasattr(inner, "module"):
            inner = inner.module
            impl = getattr(inner, "_longthought_loss", None)
    if impl == "full" or impl is None:
        return full_cross_entropy_sum(model(**inputs).logits, labels)
    return model(**inputs, labels=labels).loss
