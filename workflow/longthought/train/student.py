"""The student's starting point: a tiny model built here, a pinned hub snapshot, or a local path.

`init_student` writes `models/<student>@init/`: for `base_model: tiny` a real Qwen2 model and
byte-level BPE tokenizer saved with `save_pretrained`; for anything else only `init.json`, a
pointer (weights are never copied into results/):

- a hub id is pinned: its `revision` (default `main`) is resolved to a commit, and that commit's
  snapshot is downloaded once (`snapshot_download(..., revision=commit)`) into `snapshot_dir`
  (default `.cache/longthought/hub`, a Hugging Face cache layout shared by every student using
  the same base). `init_student` is a local rule, so this runs where the internet is; training
  and generation on compute nodes load the local snapshot, never the hub. The commit is recorded
  in `init.json`, in the trained model's `hparams.json` and in the checkpoint fingerprint.
- a local path is checked (a `config.json` that loads) and pointed at.

Code that loads the initial model calls `resolve_model_path(dir)` and gets a local directory
(or, for pointers written before pinning, the hub id).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import torch

from longthought.io import apply_umask, make_temp_dir, read_tables, write_json

INIT_POINTER = "init.json"
TINY = "tiny"
DEFAULT_SNAPSHOT_DIR = ".cache/longthought/hub"
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# repository files transformers never loads: other frameworks' weights, original checkpoints
SKIP_FILES = ["*.gguf", "*.onnx", "*.msgpack", "*.h5", "*.ot", "*.tflite", "*.pth",
              "original/*", "consolidated*", "onnx/*", "coreml/*"]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
ROLES = ("system", "user", "assistant")


def tiny_corpus(traces_paths: Iterable[str]) -> list[str]:
    """The text the tiny tokenizer learns from: problems, answers and thoughts of the traces."""
    df = read_tables(list(traces_paths), "traces")
    texts: list[str] = []
    for col in ("problem", "content", "reasoning_content"):
        texts += [t for t in df[col].dropna().tolist() if t]
    texts += [f"{role}\n" for role in ROLES] * 100  # chat headers: a token per role name
    return texts


def classify_base_model(base_model: str) -> str:
    """'tiny', 'local' (a path) or 'hub' (a hub id), by what the string can be offline.

    A string is a local path if it exists, starts like a path (`/`, `.`, `~`), has more than one
    `/`, or its first component is an existing directory (e.g. `results/missing`); otherwise a
    `name` or `org/name` string is a hub id. Anything else is an error.
    """
    if base_model == TINY:
        return TINY
    looks_local = (
        Path(base_model).expanduser().exists()
        or base_model.startswith(("/", ".", "~"))
        or base_model.count("/") > 1
        or ("/" in base_model and Path(base_model.split("/", 1)[0]).is_dir())
    )
    if looks_local:
        return "local"
    if HUB_ID.match(base_model):
        return "hub"
    raise ValueError(f"students.*.base_model {base_model!r} is neither 'tiny', a local model "
                     "directory nor a hub id ('name' or 'org/name')")


def check_local_model(path: str | os.PathLike[str], key: str = "base_model") -> Path:
    """A local model directory must exist and hold a loadable config.json: fail clearly if not."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ValueError(f"{key}: model directory {str(path)!r} does not exist")
    if not (p / "config.json").is_file():
        raise ValueError(f"{key}: {str(path)!r} has no config.json, so it is not a "
                         "Hugging Face model directory")
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(p)
    except Exception as exc:  # malformed or unknown architecture: say which file
        raise ValueError(f"{key}: {p / 'config.json'} cannot be loaded: {exc}") from None
    return p.resolve()


def pin_hub_model(repo_id: str, revision: str, snapshot_dir: str | os.PathLike[str],
                  key: str = "base_model") -> tuple[str, str]:
    """(local snapshot directory, commit) of `repo_id` at `revision`, downloaded if missing.

    Online, the revision (branch, tag or commit) is resolved to a commit first and exactly that
    commit is downloaded, without other frameworks' weights (and without `.bin` weights where
    the repository has safetensors). Offline (HF_HUB_OFFLINE=1) the snapshot must already be in
    `snapshot_dir` or in the default Hugging Face cache; its commit comes from the cache's refs.
    """
    from huggingface_hub import HfApi, constants, snapshot_download

    offline = bool(constants.HF_HUB_OFFLINE)
    target = revision
    ignore = list(SKIP_FILES)
    if not offline:
        try:
            info = HfApi().model_info(repo_id, revision=revision)
        except Exception as exc:  # not found, gated, no network: say which model and why
            raise ValueError(f"{key}: cannot resolve hub model {repo_id!r} at revision "
                             f"{revision!r}: {type(exc).__name__}: {exc}") from None
        target = info.sha
        if any(s.rfilename.endswith(".safetensors") for s in info.siblings or []):
            ignore += ["*.bin", "*.pt"]
    places = [snapshot_dir] + ([None] if offline else [])  # None: the default HF cache
    errors = []
    for place in places:
        try:
            path = snapshot_download(repo_id, revision=target, cache_dir=place,
                                     ignore_patterns=ignore, local_files_only=offline)
            break
        except Exception as exc:
            errors.append(f"{place or 'the default Hugging Face cache'}: {exc}")
    else:
        how = ("HF_HUB_OFFLINE is set, so it can only come from a cache; run init-student "
               "where the hub is reachable, or give a local path" if offline else "download failed")
        raise ValueError(f"{key}: hub model {repo_id!r} at revision {revision!r} is not "
                         f"available ({how}): " + " | ".join(errors))
    commit = Path(path).name
    if not COMMIT.match(commit):
        raise ValueError(f"{key}: {repo_id!r}: the snapshot {path} is not named by a commit")
    check_local_model(path, key)
    return str(path), commit


def build_tiny(tiny: dict, texts: list[str], out: Path) -> None:
    """Train the tokenizer on `texts`, build a randomly initialised Qwen2, save both to `out`."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from longthought.train.tokenizer import ENDOFTEXT, IM_END, train_tiny_tokenizer

    if not texts:
        raise ValueError("tiny tokenizer: the given traces hold no text to learn from")
    tokenizer = train_tiny_tokenizer(texts, int(tiny.get("vocab_size", 512)))
    im_end, eot = tokenizer.convert_tokens_to_ids([IM_END, ENDOFTEXT])
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=int(tiny["hidden_size"]),
        num_hidden_layers=int(tiny["num_layers"]),
        num_attention_heads=int(tiny["num_heads"]),
        num_key_value_heads=int(tiny.get("num_kv_heads", tiny["num_heads"])),
        intermediate_size=int(tiny["intermediate_size"]),
        max_position_embeddings=int(tiny.get("max_position_embeddings", 4096)),
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=eot,
        eos_token_id=im_end,
        pad_token_id=eot,
    )
    torch.manual_seed(int(tiny.get("seed", 0)))
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = [im_end, eot]
    model.generation_config.pad_token_id = eot
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def check_reload(out: Path) -> None:
    """The saved tiny student must load back through the Auto classes, as every consumer will."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    if model.config.vocab_size != len(tok) or tok.chat_template is None:
        raise RuntimeError(f"{out}: tokenizer and model do not match after reload")


def init_student(student: str, spec: dict, traces: list[str], out: str | os.PathLike[str]) -> Path:
    """Write `out` (the untrained student) from `students.<student>` = `spec`; returns `out`."""
    base = spec.get("base_model")
    if not isinstance(base, str) or not base:
        raise ValueError(f"students.{student}.base_model must be 'tiny', a hub id or a path")
    kind = classify_base_model(base)
    out = Path(out)
    tmp = make_temp_dir(out.parent, f".{out.name}.")  # the umask's mode, not mkdtemp's 0700
    try:
        if kind == TINY:
            tiny = spec.get("tiny") or {}
            missing = [k for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size")
                       if k not in tiny]
            if missing:
                raise ValueError(f"students.{student}.tiny is missing {missing}")
            if not traces:
                raise ValueError(f"students.{student}: a tiny student needs --traces to train "
                                 "its tokenizer on (tiny.tokenizer_tasks)")
            build_tiny(tiny, tiny_corpus(traces), tmp)
            check_reload(tmp)
        else:
            key = f"students.{student}.base_model"
            pointer = {"student": student, "base_model": base, "kind": kind}
            if kind == "local":
                pointer["path"] = str(check_local_model(base, key))
            else:
                revision = spec.get("revision") or "main"
                snapshots = spec.get("snapshot_dir") or DEFAULT_SNAPSHOT_DIR
                path, commit = pin_hub_model(base, revision, snapshots, key)
                pointer.update(path=path, revision=revision, commit=commit,
                               snapshot_dir=str(snapshots))
                print(f"[init-student] {base}@{revision} pinned to commit {commit}: {path}",
                      flush=True)
            write_json(tmp / INIT_POINTER, pointer)
        apply_umask(tmp)  # safetensors writes the weights as 0600
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def init_info(model_dir: str | os.PathLike[str]) -> dict:
    """The init pointer of a student's init dir (kind, base model, revision, commit, path), or
    {} for a model directory (the tiny student)."""
    pointer = Path(model_dir) / INIT_POINTER
    if not pointer.is_file():
        return {}
    return json.loads(pointer.read_text(encoding="utf-8"))


def resolve_model_path(model_dir: str | os.PathLike[str]) -> str:
    """What `from_pretrained` needs for an init dir: the dir itself, or the local snapshot or
    path it points to (the hub id only for pointers written before pinning)."""
    d = Path(model_dir)
    if (d / "config.json").is_file():
        return str(d)
    pointer = d / INIT_POINTER
    if pointer.is_file():
        info = init_info(d)
        if info.get("kind") == "local" or info.get("commit"):
            where = (f"{pointer}: path" if info.get("kind") == "local" else
                     f"{pointer}: the pinned snapshot of {info.get('base_model')} at commit "
                     f"{info.get('commit')} (init-student downloads it; a compute node must "
                     "share that directory)")
            return str(check_local_model(info["path"], where))
        return str(info["path"])
    raise ValueError(f"{d}: neither a model directory (config.json) nor a student init dir "
                     f"({INIT_POINTER}); run `longthought init-student` first")
