"""Tokenize once: a content-addressed, memory-mapped token cache beside each dataset.

`datasets/<name>.parquet` -> `datasets/<name>.tokens/<key>/`, where key = sha256 of (cache
format, the dataset file's sha256, the tokenizer's fingerprint). An entry holds flat int32 token
ids and a uint8 mask of the tokens the model must produce (the assistant turns), per-sample
offsets, prompt lengths and label counts, as raw little-endian arrays described by `meta.json`.
It is written under a temporary name and renamed when complete, so a reader never sees half of
one, and two processes that build it at once both end with the same bytes.

Every rank of a job and every resume after a preemption maps the same files (`np.memmap`): the
page cache holds one copy per node, nothing is re-tokenized, and a resumed job reads only the
small per-sample arrays before its first step. The entry does not depend on `max_length`: stages
cut samples when they read them. A changed dataset or tokenizer is a new key; entries made from
an older version of the same dataset file are removed when a new one is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longthought.io import file_sha256

FORMAT = 1
ARRAYS = {"ids": np.int32, "mask": np.uint8, "offsets": np.int64, "prompt_len": np.int32,
          "n_train": np.int32}
ROWS_PER_BATCH = 1024  # rows rendered, then tokenized in one (parallel) tokenizer call


@dataclass
class TokenArrays:
    """The arrays of one cache entry (memory-mapped when read from disk)."""

    ids: np.ndarray  # int32 [tokens]
    mask: np.ndarray  # uint8 [tokens]: 1 = a token the model must produce
    offsets: np.ndarray  # int64 [rows + 1]
    prompt_len: np.ndarray  # int32 [rows]: tokens before the first assistant token
    n_train: np.ndarray  # int32 [rows]: labelled tokens of the whole (uncut) sample
    source: str = ""
    where: str = ""  # the cache entry's directory, "" when held in memory

    def sample_id(self, row: int) -> str:
        """The dataset's `sample_id` of `row` (read from the table: only for error messages)."""
        import pyarrow.parquet as pq

        return str(pq.read_table(self.source, columns=["sample_id"]).column(0)[row].as_py())


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of everything in the tokenizer that changes the token ids a dataset gets."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:  # a slow tokenizer: its vocabulary stands in for its model
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(str(tokenizer.chat_template).encode())
    digest.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def cache_root(dataset: str | os.PathLike[str]) -> Path:
    """`datasets/<name>.parquet` -> `datasets/<name>.tokens/`."""
    p = Path(dataset)
    return p.with_name(p.name.removesuffix(".parquet") + ".tokens")


def entry_key(dataset_sha256: str, tokenizer_hash: str) -> str:
    text = json.dumps({"format": FORMAT, "dataset": dataset_sha256, "tokenizer": tokenizer_hash},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _tokenize_rows(path: str | os.PathLike[str], tokenizer, sink) -> int:
    """Render + tokenize every row of the table at `path`, handing each batch's arrays to
    `sink(ids, mask, lengths, prompt_len, n_train)`; returns the row count.

    Raises ValueError naming the file, row and sample id of the first bad row.
    """
    from longthought.io import read_table
    from longthought.train.data import join_parts, parse_messages, render_parts

    df = read_table(path, "dataset")
    if len(df) == 0:
        raise ValueError(f"{path}: dataset has zero rows; nothing to train on")
    rows = list(zip(df["sample_id"], df["messages"], strict=True))
    for first in range(0, len(rows), ROWS_PER_BATCH):
        texts: list[str] = []
        flags: list[list[bool]] = []
        for row in range(first, min(first + ROWS_PER_BATCH, len(rows))):
            sample_id, text = rows[row]
            where = f"{path}: row {row + 1} (sample_id {sample_id!r})"  # as an editor counts
            parts = render_parts(tokenizer, parse_messages(text, where), where)
            texts += [t for t, _ in parts]
            flags.append([f for _, f in parts])
        pieces = tokenizer(texts, add_special_tokens=False)["input_ids"]
        ids, mask, lengths, prompt_len, n_train = [], [], [], [], []
        at = 0
        for f in flags:
            i, m = join_parts(pieces[at:at + len(f)], f)
            at += len(f)
            ids.append(i)
            mask.append(m)
            lengths.append(len(i))
            prompt_len.append(int(np.argmax(m)))
            n_train.append(int(m[1:].sum()))
        sink(np.concatenate(ids), np.concatenate(mask).astype(np.uint8), lengths, prompt_len,
             n_train)
    return len(rows)


def build(path: str | os.PathLike[str], tokenizer, out: Path | None,
          meta: dict | None = None) -> TokenArrays:
    """Tokenize the table at `path`; written to the directory `out` (with `meta` in its
    meta.json) if given, else held in memory."""
    files = {name: open(out / f"{name}.bin", "wb") for name in ARRAYS} if out else None
    held: dict[str, list] = {name: [] for name in ARRAYS}
    lengths: list[int] = []

    def sink(ids, mask, lens, prompt_len, n_train) -> None:
        lengths.extend(lens)
        for name, arr in (("ids", ids), ("mask", mask), ("prompt_len", prompt_len),
                          ("n_train", n_train)):
            arr = np.asarray(arr, dtype=ARRAYS[name])
            if files:
                files[name].write(arr.tobytes())
            else:
                held[name].append(arr)

    try:
        rows = _tokenize_rows(path, tokenizer, sink)
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
        if files:
            files["offsets"].write(offsets.tobytes())
    finally:
        for fh in (files or {}).values():
            fh.close()
    if out is None:
        cat = {k: np.concatenate(v) if v else np.zeros(0, ARRAYS[k]) for k, v in held.items()
               if k != "offsets"}
        return TokenArrays(offsets=offsets, source=str(path), **cat)
    write_meta(out, {**(meta or {}), "rows": rows, "tokens": int(offsets[-1])})
    return open_entry(out, str(path))


def write_meta(out: Path, extra: dict) -> None:
    meta = {"format": FORMAT, "arrays": {k: np.dtype(v).str for k, v in ARRAYS.items()}, **extra}
    (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def open_entry(entry: Path, source: str) -> TokenArrays:
    """Memory-map a complete cache entry."""
    meta = json.loads((entry / "meta.json").read_text())
    arrays = {}
    for name, dtype in ARRAYS.items():
        f = entry / f"{name}.bin"
        arrays[name] = (np.memmap(f, dtype=np.dtype(meta["arrays"][name]), mode="r")
                        if f.stat().st_size else np.zeros(0, dtype))
    if len(arrays["offsets"]) != meta["rows"] + 1 or arrays["offsets"][-1] != meta["tokens"]:
        raise ValueError(f"{entry}: token cache entry is inconsistent; delete it to rebuild")
    return TokenArrays(source=source, where=str(entry), **arrays)


def tokenize_dataset(path: str | os.PathLike[str], tokenizer, cache: bool = True,
                     dataset_sha256: str | None = None) -> TokenArrays:
    """The token arrays of the dataset at `path`: from its cache, or tokenized and cached now.

    `dataset_sha256` saves re-hashing the file when the caller already has its hash. Where the
    cache cannot be written (a read-only directory), the dataset is tokenized in memory.
    """
    if not cache:
        return build(path, tokenizer, None)
    sha = dataset_sha256 or file_sha256(path)
    root = cache_root(path)
    entry = root / entry_key(sha, tokenizer_fingerprint(tokenizer))
    if (entry / "meta.json").is_file():
        return open_entry(entry, str(path))
    t0 = time.perf_counter()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{entry.name}.{os.getpid()}.tmp"
        tmp.mkdir(exist_ok=True)
    except OSError as exc:
        print(f"[train] {path}: cannot write a token cache beside it ({exc}); tokenizing in "
              "memory", flush=True)
        return build(path, tokenizer, None)
    try:
        build(path, tokenizer, tmp, {"dataset_sha256": sha, "source": str(path)})
        try:
            os.rename(tmp, entry)
        except OSError:  # another process finished the same entry first: same content
            if not (entry / "meta.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    prune(root, keep=entry.name, dataset_sha256=sha)
    arrays = open_entry(entry, str(path))
    print(f"[train] {path}: tokenized {len(arrays.offsets) - 1} rows, {len(arrays.ids):,} tokens "
          f"in {time.perf_counter() - t0:.1f}s -> {entry}", flush=True)
    return arrays


def prune(root: Path, keep: str, dataset_sha256: str) -> None:
    """Remove entries made from another version of this dataset file (they cannot be hit again
    unless the file goes back to that content); entries for other tokenizers stay."""
    for other in root.iterdir():
        if other.name == keep or other.name.startswith(".") or not other.is_dir():
            continue
        try:
            sha = json.loads((other / "meta.json").read_text()).get("dataset_sha256")
        except (OSError, ValueError):
            continue
        if sha != dataset_sha256:
            shutil.rmtree(other, ignore_errors=True)
