"""`students.<name>` (the `--spec` JSON) -> typed, checked training settings.

Config is validated against config/schema.yaml before any job; this is the second line, for the
verb run by hand: every value is checked here, before any data is read or any model loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SCHEDULES = ("cosine", "linear", "constant")
PRECISIONS = {"fp32": "no", "bf16": "bf16"}
ATTENTION = ("auto", "sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3")
LOSSES = ("auto", "chunked", "liger", "full")


@dataclass(frozen=True)
class Stage:
    """One SFT stage: a dataset and its own hyperparameters."""

    dataset: str
    lr: float
    schedule: str = "cosine"
    warmup_ratio: float = 0.0
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs when set
    batch_size: int = 8  # samples per device per micro-step (packed or not)
    grad_accum: int = 1
    max_length: int = 1024  # per-sample token limit
    max_tokens_per_batch: int | None = None  # set: micro-batches by token budget, not batch_size
    packing: bool = True
    weight_decay: float = 0.0
    seed: int = 0
    max_grad_norm: float | None = 1.0  # null: no clipping


@dataclass(frozen=True)
class TrainSpec:
    base_model: str
    stages: list[Stage]
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    attn_implementation: str = "auto"
    cross_entropy: str = "auto"
    checkpoint_every: int = 200
    accelerate_config: str | None = None
    extra: dict = field(default_factory=dict)  # keys read by others (resources, tiny, ...)

    def to_json(self) -> dict:
        return asdict(self)


def _stage(i: int, raw: object, student: str) -> Stage:
    where = f"students.{student}.stages[{i}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping")
    known = set(Stage.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    for key in ("dataset", "lr"):
        if raw.get(key) is None:
            raise ValueError(f"{where}.{key} is required")
    values = {k: v for k, v in raw.items()
              if v is not None or k in ("max_steps", "max_grad_norm", "max_tokens_per_batch")}
    try:
        stage = Stage(**values)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from None
    checks = [
        ("lr", isinstance(stage.lr, int | float) and stage.lr > 0, "a positive number"),
        ("schedule", stage.schedule in SCHEDULES, f"one of {SCHEDULES}"),
        ("warmup_ratio", isinstance(stage.warmup_ratio, int | float)
         and 0 <= stage.warmup_ratio < 1, "in [0, 1)"),
        ("epochs", isinstance(stage.epochs, int | float) and stage.epochs > 0, "positive"),
        ("max_steps", stage.max_steps is None or (isinstance(stage.max_steps, int)
                                                  and stage.max_steps > 0), "a positive integer"),
        ("batch_size", isinstance(stage.batch_size, int) and stage.batch_size > 0,
         "a positive integer"),
        ("grad_accum", isinstance(stage.grad_accum, int) and stage.grad_accum > 0,
         "a positive integer"),
        ("max_length", isinstance(stage.max_length, int) and stage.max_length > 1,
         "an integer > 1"),
        ("max_tokens_per_batch", stage.max_tokens_per_batch is None or (
            isinstance(stage.max_tokens_per_batch, int) and not isinstance(
                stage.max_tokens_per_batch, bool)
            and stage.max_tokens_per_batch >= stage.max_length),
         f"null or an integer >= max_length ({stage.max_length}: a sample is never split)"),
        ("packing", isinstance(stage.packing, bool), "true or false"),
        ("weight_decay", isinstance(stage.weight_decay, int | float)
         and stage.weight_decay >= 0, ">= 0"),
        ("seed", isinstance(stage.seed, int), "an integer"),
        ("max_grad_norm", stage.max_grad_norm is None or stage.max_grad_norm > 0,
         "positive or null"),
    ]
    for key, ok, want in checks:
        if not ok:
            raise ValueError(f"{where}.{key} must be {want}, got {getattr(stage, key)!r}")
    return stage


def parse_spec(student: str, spec: dict) -> TrainSpec:
    """Check `students.<student>` and return it typed; a ValueError names the bad key."""
    where = f"students.{student}"
    stages = spec.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ValueError(f"{where}.stages must be a non-empty list")
    parsed = [_stage(i, s, student) for i, s in enumerate(stages)]
    precision = spec.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ValueError(f"{where}.precision must be one of {sorted(PRECISIONS)}, "
                         f"got {precision!r}")
    attn = spec.get("attn_implementation", "auto")
    if attn not in ATTENTION:
        raise ValueError(f"{where}.attn_implementation must be one of {ATTENTION}, got {attn!r}")
    loss = spec.get("cross_entropy", "auto")
    if loss not in LOSSES:
        raise ValueError(f"{where}.cross_entropy must be one of {LOSSES}, got {loss!r}")
    every = spec.get("checkpoint_every", 200)
    if not isinstance(every, int) or every < 0:
        raise ValueError(f"{where}.checkpoint_every must be an integer >= 0 (0: never), "
                         f"got {every!r}")
    base = spec.get("base_model")
    if not isinstance(base, str) or not base:
        raise ValueError(f"{where}.base_model must be 'tiny', a hub id or a local path")
    named = {"base_model", "stages", "precision", "gradient_checkpointing",
             "attn_implementation", "cross_entropy", "checkpoint_every", "accelerate_config"}
    return TrainSpec(
        base_model=base,
        stages=parsed,
        precision=precision,
        gradient_checkpointing=bool(spec.get("gradient_checkpointing", False)),
        attn_implementation=attn,
        cross_entropy=loss,
        checkpoint_every=every,
        accelerate_config=spec.get("accelerate_config"),
        extra={k: v for k, v in spec.items() if k not in named},
    )
