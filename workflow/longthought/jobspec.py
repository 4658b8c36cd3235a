"""What of a rule's config slice is content, and the small file that carries the slice to the job.

Snakemake re-runs a job when its `params` change. So a rule's params carry only the *content* of
its config slice: what can change the job's output (a teacher's model, sampling and prompt; a
curation filter; a learning rate). The *operational* settings (rate limits, budgets, prices,
timeouts, retries, the API key's variable name, worker counts, batch sizes that do not change
results, checkpoint intervals, resources) change how a job runs, not what it writes; they still
reach the job, in the job file, but changing them re-runs nothing.

The job file is the whole slice (content and operation) as JSON, written once per distinct slice
under `results/jobs/<rule>/` and named by its hash, so a dry run with another config never
rewrites the file of a job that is about to run. The verb reads it through `--spec <file>`, which
keeps the printed shell command short (`make demo` used to print 8,500-character lines).

Light on purpose: the Snakefile imports this module while it builds the DAG.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

# A teacher's (or judge's, or API model's) settings that change how requests are sent, never
# what comes back: the request cache keys ignore them too. (`batch`: how a mode: batch teacher
# uses the Batch API; `mode` online vs batch is the same endpoint and the same keys, so a teacher
# reduced to its content says neither, while mode: local, another endpoint, stays.)
TEACHER_OPERATIONAL = ("limits", "pricing", "budget_usd", "api_key_env", "resources", "batch")
SAME_ENDPOINT_MODES = ("online", "batch")
# A mode: local teacher's settings that change how its GPU job runs, not what it answers (each
# request samples with its own seed; the cache keys ignore them too).
LOCAL_OPERATIONAL = ("batch_size", "chunk_size", "gpu_memory_utilization", "refill")
# The sim server's settings that change what it answers; everything else in `sim:` (latency,
# server-side rate limits, injected faults) is operational. The request cache keys the sim by
# these same keys (teacher.records.SIM_CONTENT_KEYS; a test keeps the two lists equal).
SIM_CONTENT_KEYS = ("seed", "slip_rate", "wrong_rate", "truncate_rate", "style",
                    "reasoning_content")

# Per kind of job, the key paths (dotted; "*" matches every key of a mapping) that are
# operational. A "teacher:" path names a teacher block, reduced by `teacher_content`.
OPERATIONAL: dict[str, tuple[str, ...]] = {
    # `description` documents why a set is used (the TTI self-score reads it from the config)
    "problems": ("description",),
    "benchmark": ("description",),
    # `round` asks for another pass over the missing rows of a partial collection (its own
    # param); `allow_partial` decides whether the job passes a partial table downstream
    "traces": ("teacher:teacher", "task.allow_partial", "round"),
    "curate": (),
    # where a pinned hub snapshot is downloaded (the commit, not the place, decides the weights)
    "init_student": ("snapshot_dir",),
    # `evaluation`: how the evaluation prompts the student (the data preview's check only)
    "train": ("resources", "checkpoint_every", "snapshot_dir", "evaluation"),
    # batch_size, refill: each sample has its own seed and random numbers, so how samples are
    # batched does not change results (tests/test_workflow.py proves it on the verb);
    # checker.workers: processes
    "generate": ("batch_size", "refill", "checker.workers", "teacher:model.teacher"),
    # the job spec of `generalize` maps each set to its spec ("*": every set)
    "generalize": ("*.batch_size", "*.refill", "teacher:*.model.teacher"),
    # judging a model's generalization answers (a local rule): the judge is an endpoint
    "judge": ("*.checker.workers", "teacher:*.judge"),
    # the report's input file lists: Snakemake's input trigger already covers them
    "report": ("inputs", "tasks.*.allow_partial"),
    "tti_self": (),
    # the run's record: every key (run_config re-runs on any change, and nothing reads it)
    "run_config": (),
    # the whole resolved config as a job reads it (the TTI self-score): its operational keys
    "config": ("cache_dir", "seed", "testing", "teacher:teachers.*", "tasks.*.allow_partial",
               "students.*.resources",
               "students.*.checkpoint_every", "students.*.snapshot_dir", "evaluation.batch_size",
               "evaluation.refill", "evaluation.checker.workers", "evaluation.resources",
               "generalization.batch_size", "generalization.refill"),
}


def teacher_content(teacher: dict[str, Any] | None) -> dict[str, Any] | None:
    """A teacher block without its operational settings (limits, pricing, budget, key name,
    resources, online vs Batch API, the sim's latency/faults/batch timing, a local teacher's
    batch sizes): what decides the answers."""
    if not isinstance(teacher, dict):
        return teacher
    out = {k: v for k, v in teacher.items() if k not in TEACHER_OPERATIONAL}
    if out.get("mode") in SAME_ENDPOINT_MODES:
        del out["mode"]
    if isinstance(out.get("sim"), dict):
        out["sim"] = {k: v for k, v in out["sim"].items() if k in SIM_CONTENT_KEYS}
    if isinstance(out.get("local"), dict):
        out["local"] = {k: v for k, v in out["local"].items() if k not in LOCAL_OPERATIONAL}
    return out


def _drop(node: Any, keys: list[str], teacher: bool) -> None:
    """Remove the key path `keys` from `node` in place ("*" = every key; missing keys are fine);
    with `teacher`, reduce the block found there to its content instead."""
    if not isinstance(node, dict) or not keys:
        return
    head, rest = keys[0], keys[1:]
    for key in (list(node) if head == "*" else [head]):
        if key not in node:
            continue
        if rest:
            _drop(node[key], rest, teacher)
        elif teacher:
            node[key] = teacher_content(node[key])
        else:
            del node[key]


def content(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` without the operational keys of its kind: what the rule's params compare."""
    if kind not in OPERATIONAL:
        raise KeyError(f"unknown job kind {kind!r}; known: {sorted(OPERATIONAL)}")
    out = copy.deepcopy(spec)
    for path in OPERATIONAL[kind]:
        _drop(out, path.removeprefix("teacher:").split("."), path.startswith("teacher:"))
    return out


def canonical_json(obj: Any) -> str:
    """Stable JSON (sorted keys, no spaces): equal slices give equal strings across runs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_job_file(root: str | os.PathLike[str], rule: str, name: str, spec: Any) -> str:
    """Write `spec` to `<root>/<rule>/<name>.<hash>.json` unless it exists; return the path.

    Named by the hash of its text, so every distinct slice has its own file: a concurrent dry run
    with another config writes a different file instead of changing this job's. The write is
    atomic and honours the umask (colleagues on a shared filesystem can read it).
    """
    text = json.dumps(spec, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = Path(root) / rule / f"{name}.{digest}.json"
    if path.is_file():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return str(path)


def read_spec(text: str) -> Any:
    """A `--spec` value: a JSON file's path (what rules pass), or JSON text (handy by hand).

    Raises ValueError naming the file (or the text) and what is wrong.
    """
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--spec is not valid JSON: {exc}") from None
    path = Path(text)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"--spec {text}: no such file (give a JSON file or JSON text)") from None
    except OSError as exc:
        raise ValueError(f"--spec {text}: cannot be read: {exc}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{text}: not valid JSON (line {exc.lineno}, column {exc.colno}): "
                         f"{exc.msg}") from None
