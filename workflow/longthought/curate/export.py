"""Writing the curated dataset: formatted in the workers, assembled from Arrow shards.

The heavy part of writing (turning each trace into chat messages, encoding them as JSON,
validating the rows) happens in the analysis workers, in parallel, while they read the traces:
every row that passes the early filters is formatted once and written to an Arrow shard
(`write_shard`). Which of them are kept is known only after the global filters (dedup,
decontamination), so the parent then assembles the three outputs from the shards with Arrow
operations, no per-row Python except the jsonl lines (`assemble`): the dataset parquet, the
Hugging Face export's `data.jsonl`, and its `save_to_disk` copy (written from the same Arrow
rows, messages as a list of {role, content}; the JSON is never parsed again). Before, the parent
re-read every trace file, formatted and validated row by row, and the export parsed the jsonl
back: 33 of 80 s of a 100k-trace run, serial.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from longthought import io
from longthought.curate.formatting import build_messages, messages_json
from longthought.schemas import ALL

DATASET_COLUMNS = list(ALL["dataset"].columns)
_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
SHARD_SCHEMA = pa.schema([
    ("row", pa.int64()), ("sample_id", pa.string()), ("dataset", pa.string()),
    ("task", pa.string()), ("problem_id", pa.string()), ("problem", pa.string()),
    ("answer", pa.string()), ("messages", pa.string()), ("completion_tokens", pa.int64()),
    ("messages_list", pa.list_(_MESSAGE)),
])
HF_COLUMNS = ["messages", "sample_id", "problem_id", "task", "dataset", "answer"]


def shard_path(shard_dir: str, file_index: int, offset: int) -> Path:
    return Path(shard_dir) / f"{file_index:05d}-{offset:012d}.arrow"


def write_shard(path: Path, dataset: str, rows: list[tuple[int, object, dict]],
                fmt: dict) -> None:
    """Format `rows` ((row number, RowResult, trace record)) and write them as one shard."""
    cols: dict[str, list] = {c: [] for c in ("row", *DATASET_COLUMNS)}
    offsets, roles, contents = [0], [], []
    for row, res, rec in rows:
        messages = build_messages(res.problem, rec, fmt)
        for key, value in (("row", row), ("sample_id", res.sample_id), ("dataset", dataset),
                           ("task", res.task), ("problem_id", res.problem_id),
                           ("problem", res.problem), ("answer", res.answer),
                           ("messages", messages_json(messages)),
                           ("completion_tokens", res.tokens)):
            cols[key].append(value)
        roles += [m["role"] for m in messages]
        contents += [m["content"] for m in messages]
        offsets.append(len(roles))
    df = pd.DataFrame({c: cols[c] for c in DATASET_COLUMNS})
    df["completion_tokens"] = df["completion_tokens"].astype("Int64")
    # validated as the dataset's rows; a duplicate trace_id is legal here (the parent rejects
    # all but its first occurrence, which is what keeps sample_id unique in the dataset)
    df["sample_id"] = [f"{s}#{r}" for s, r in zip(cols["sample_id"], cols["row"], strict=True)]
    df = io.validate(df, "dataset", f"formatting rows for {path.name}")
    table = pa.Table.from_pandas(df, preserve_index=False).cast(_dataset_schema())
    table = table.set_column(DATASET_COLUMNS.index("sample_id"), "sample_id",
                             pa.array(cols["sample_id"], pa.string()))
    messages_list = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.StructArray.from_arrays([pa.array(roles, pa.string()), pa.array(contents, pa.string())],
                                   fields=list(_MESSAGE)))
    table = table.append_column("row", pa.array(cols["row"], pa.int64()))
    table = table.append_column("messages_list", messages_list).select(SHARD_SCHEMA.names)
    tmp = path.with_suffix(".tmp")
    options = ipc.IpcWriteOptions(compression="lz4")  # 3-4x smaller on disk, cheap to decode
    with pa.OSFile(str(tmp), "wb") as sink, \
            ipc.new_file(sink, SHARD_SCHEMA, options=options) as writer:
        writer.write_table(table.cast(SHARD_SCHEMA))
    tmp.rename(path)


def _kept_rows(shard: Path, kept_rows: set[int]) -> pa.Table | None:
    if not kept_rows:
        return None
    with pa.memory_map(str(shard)) as source:
        table = ipc.open_file(source).read_all()
    mask = pc.is_in(table["row"], value_set=pa.array(sorted(kept_rows), pa.int64()))
    table = table.filter(mask)
    return table if table.num_rows else None


def _kept_tables(shards: list[Path], kept: dict[int, set[int]]):
    for shard in shards:
        table = _kept_rows(shard, kept.get(int(shard.name.split("-")[0]), set()))
        if table is not None:
            yield table


def assemble(shard_dir: str, kept: dict[int, set[int]], out: str,
             export_dir: str | None) -> int:
    """Write `out` (the dataset parquet) and `export_dir` (data.jsonl + hf/) from the shards,
    keeping only the rows in `kept` (file index -> row numbers). The parquet and the export are
    written by two threads at once (Arrow releases the GIL while it compresses and writes).
    Atomic: on failure nothing half-written is left at `out` or `export_dir`. Returns the
    number of rows written."""
    shards = sorted(Path(shard_dir).glob("*.arrow"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        exported = pool.submit(_export, shards, kept, export_dir) if export_dir else None
        n = 0
        try:
            with io.atomic_path(out) as tmp:
                writer = pq.ParquetWriter(tmp, _dataset_schema())
                try:
                    for table in _kept_tables(shards, kept):
                        writer.write_table(table.select(DATASET_COLUMNS)
                                           .cast(_dataset_schema()))
                        n += table.num_rows
                finally:
                    writer.close()
        finally:
            n_export = exported.result() if exported is not None else n
    assert n_export == n, f"{n} rows in the dataset but {n_export} in the export"
    return n


def _export(shards: list[Path], kept: dict[int, set[int]], export_dir: str) -> int:
    """export_dir/data.jsonl and export_dir/hf (save_to_disk), built in a temporary directory
    and renamed into place."""
    export_tmp = io.make_temp_dir(Path(export_dir).resolve().parent,
                                  f".{Path(export_dir).name}.")
    n = 0
    try:
        with open(export_tmp / "data.jsonl", "wb") as jsonl, \
                pa.OSFile(str(export_tmp / "rows.arrow"), "wb") as sink, \
                ipc.new_stream(sink, _hf_schema()) as hf_writer:
            for table in _kept_tables(shards, kept):
                _write_jsonl(jsonl, table)
                hf = table.select(["messages_list", *HF_COLUMNS[1:]])
                hf_writer.write_table(hf.rename_columns(HF_COLUMNS).cast(_hf_schema()))
                n += table.num_rows
        _save_hf(export_tmp)
        target = Path(export_dir)
        if target.exists():
            shutil.rmtree(target)
        export_tmp.rename(target)
    finally:
        if export_tmp.exists():
            shutil.rmtree(export_tmp, ignore_errors=True)
    return n


def _dataset_schema() -> pa.Schema:
    return pa.schema([(c, pa.int64() if c == "completion_tokens" else pa.string())
                      for c in DATASET_COLUMNS])


def _hf_schema() -> pa.Schema:
    return pa.schema([("messages", pa.list_(_MESSAGE))]
                     + [(c, pa.string()) for c in HF_COLUMNS[1:]])


def _write_jsonl(fh, table: pa.Table) -> None:
    """One line per row. The messages' JSON (encoded once, in the worker) is spliced in by
    Arrow; only the small fields are encoded here."""
    small = {c: table[c].to_pylist() for c in HF_COLUMNS[1:]}
    fields = [json.dumps({c: small[c][i] for c in HF_COLUMNS[1:]}, ensure_ascii=False)[1:]
              for i in range(table.num_rows)]
    lines = pc.binary_join_element_wise('{"messages": ', table["messages"], ", ",
                                        pa.array(fields, pa.string()), "\n", "")
    for chunk in (lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]):
        if len(chunk) == 0:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], np.int32)  # the lines lie back to back
        start, end = int(offsets[chunk.offset]), int(offsets[chunk.offset + len(chunk)])
        fh.write(memoryview(chunk.buffers()[2])[start:end])


def _save_hf(export: Path) -> None:
    """rows.arrow -> `datasets.Dataset.save_to_disk(export/hf)` (memory-mapped, no re-parsing)."""
    import datasets

    datasets.disable_progress_bars()
    features = datasets.Features({
        "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
        **{c: datasets.Value("string") for c in HF_COLUMNS[1:]},
    })
    rows = export / "rows.arrow"
    try:
        ds = datasets.Dataset.from_file(str(rows), info=datasets.DatasetInfo(features=features))
        # one explicit (possibly empty) shard at least: zero shards do not load
        ds.save_to_disk(str(export / "hf"), num_shards=1 if len(ds) == 0 else None)
        del ds
    finally:
        rows.unlink(missing_ok=True)
