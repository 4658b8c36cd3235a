"""Score this pipeline's own run on the TTI from what the run recorded.

Each rubric item has a check that looks for the file proving it (the config, a funnel, the traces,
`hparams.json`, the generations, exported artifacts, the code) and answers yes with that file's
path as evidence, or no with the reason (a file not written yet, a setting not recorded). Which
files to expect comes from the config, so the card follows the config: a run without students has
no weights to release, and says so. Items the pipeline answers by statement (no search, no RL) are
yes only while the config enables nothing that would contradict the statement.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors
import pyarrow.parquet as pq
import yaml
from pandera.pandas import DataFrameSchema

from longthought import replicates
from longthought.hardware import hardware_summary
from longthought.io import TableError
from longthought.schemas import ALL
from longthought.transparency.cards import SELF_SOURCE, Answer, Card, write_card
from longthought.transparency.rubric import DEFAULT_RUBRIC, Rubric, load_rubric

SPEC_KEYS = {"project", "url", "rubric", "repo_root", "cards", "releases"}
# tti.releases: where this run's outputs are published -> the rubric items each one answers
RELEASE_KEYS = {"sft_data": "post_training_data", "long_thought_data": "long_thought_data",
                "weights": "model_weights", "code": "training_code, evaluation_code, usage_guide",
                "paper": "technical_paper"}
NAMED_RELEASES = {"sft_data": "datasets", "long_thought_data": "tasks", "weights": "students"}
URL = re.compile(r"^https?://[^\s/?#]+\.[^\s/?#]+(/\S*)?$")
CODE_PATHS = ("workflow", "rules", "Snakefile")  # what must be committed for the code to count
WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")
HARDWARE_KEYS = {"device", "devices", "device_type", "accelerator", "hardware", "gpu", "gpus",
                 "gpu_model", "num_gpus", "num_processes", "world_size", "distributed_type"}
LR_KEYS = {"lr", "learning_rate"}
# config/hparams keys that would mean a search or RL technique is in use
SEARCH_KEYS = {"num_beams", "beam_width", "beam_size", "best_of", "mcts", "tree_search", "search"}
RL_KEYS = {"rl", "rlhf", "ppo", "dpo", "grpo", "reward_model", "reward"}


@dataclass
class Finding:
    """One item's answer: yes with the files that prove it, or no with the reason."""

    yes: bool
    evidence: list[str] = field(default_factory=list)
    note: str = ""


def check_releases(raw: Any, config: dict) -> dict[str, Any]:
    """`tti.releases`, checked: every value a URL (or, for named outputs, name -> URL)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"tti.releases: must be a mapping of {sorted(RELEASE_KEYS)} -> URL")
    unknown = sorted(set(raw) - set(RELEASE_KEYS))
    if unknown:
        raise ValueError(f"tti.releases: unknown key(s) {unknown} (known: "
                         + ", ".join(f"{k} ({v})" for k, v in RELEASE_KEYS.items()) + ")")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"tti.releases.{key}"
        if value is None:
            continue
        if isinstance(value, dict) and key in NAMED_RELEASES:
            section = NAMED_RELEASES[key]
            names = set(config.get(section) or {})
            for name, url in value.items():
                if name not in names:
                    raise ValueError(f"{where}.{name}: no such entry under {section}: "
                                     f"(known: {sorted(names)})")
                if url is not None and not (isinstance(url, str) and URL.match(url)):
                    raise ValueError(f"{where}.{name}: must be an http(s) URL, got {url!r}")
            out[key] = {n: u for n, u in value.items() if u}
        elif isinstance(value, str) and URL.match(value):
            out[key] = value
        else:
            per = f", or a mapping of {NAMED_RELEASES[key]} names to URLs" \
                if key in NAMED_RELEASES else ""
            raise ValueError(f"{where}: must be an http(s) URL{per}, got {value!r}")
    return out


def _no(reason: str, looked_at: Iterable[str | Path]) -> Finding:
    """A no, with what the check looked at as its evidence (files, config keys, URLs)."""
    looked = [p.as_posix() if isinstance(p, Path) else str(p) for p in looked_at]
    if not looked:
        raise AssertionError(f"a check answered no without saying what it looked at: {reason}")
    return Finding(False, looked, reason)


def _find_keys(obj: Any, names: set[str], prefix: str = "") -> list[tuple[str, Any]]:
    """Every (dotted key path, value) in a nested JSON-like object whose key is in `names`."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if str(k).lower() in names:
                found.append((path, v))
            found.extend(_find_keys(v, names, path))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found.extend(_find_keys(v, names, f"{prefix}[{i}]"))
    return found


def _enabled(value: Any) -> bool:
    """A config value that switches something on (not null/false/0/empty/1 beam)."""
    if value is None or value is False or value in ({}, [], ""):
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value > 1 if value else False
    return True


def _read_columns(path: Path, schema_name: str, columns: list[str]) -> pd.DataFrame:
    """Read only `columns` of a table and validate them against the schema's column rules."""
    base = ALL[schema_name]
    try:
        df = pd.read_parquet(path, columns=columns)
    except FileNotFoundError:
        raise
    except Exception as exc:  # missing column or a corrupt file: say which
        raise TableError(f"{path}: cannot read columns {columns} as '{schema_name}': "
                         f"{exc}") from None
    schema = DataFrameSchema({c: base.columns[c] for c in columns}, name=schema_name, coerce=True)
    try:
        return schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        case = exc.failure_cases.iloc[0]
        raise TableError(f"{path}: does not match the '{schema_name}' schema: column "
                         f"{case.get('column')!r}: {case.get('check')} "
                         f"(got {case.get('failure_case')!r})") from None


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _fmt(values: Iterable[Any]) -> str:
    vals = sorted({v for v in values if v is not None and not pd.isna(v)}, key=str)
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals) or "n/a"


class RunRecord:
    """What one run wrote: the files the config says to expect, found or not, read lazily."""

    def __init__(self, config: dict, config_paths: list[str], results_dir: str,
                 repo_root: str = ".", releases: dict | None = None,
                 config_shown: list[str] | None = None):
        self.cfg = config
        # evidence names the config as the reader finds it (the workflow passes the run's record
        # results/config.yaml, not its content-hashed job file: that name changes with any
        # operational setting, so a cluster run and a local run would cite different files)
        self.config_files = [Path(p).as_posix() for p in (config_shown or config_paths)]
        self.config_path = " + ".join(self.config_files)  # for messages
        self.results = Path(results_dir)
        self.repo = Path(repo_root)
        if releases is None:
            releases = (config.get("tti") or {}).get("releases")
        self.releases = check_releases(releases, config)

    @cached_property
    def git(self) -> dict[str, object]:
        """The checkout's commit, whether its code paths have uncommitted changes, its remote."""
        from longthought.evaluate.provenance import git_remote, git_state

        return {**git_state(self.repo, CODE_PATHS), "remote": git_remote(self.repo)}

    # --- names from config ------------------------------------------------------------------
    def names(self, section: str) -> list[str]:
        return list(self.cfg.get(section) or {})

    def keys(self, names: str) -> list[str]:
        """Evidence for an answer read from config: the config file(s) and the key(s) read."""
        return [f"{self.config_path}: {names}"]

    @property
    def evaluation(self) -> dict:
        return self.cfg.get("evaluation") or {}

    def eval_models(self) -> list[str]:
        """The evaluated models: a student's name stands for its replicates (`tiny~s0`, ...)."""
        return replicates.expand(self.cfg, self.evaluation.get("models") or [])

    def eval_pairs(self) -> list[tuple[str, str]]:
        """(model, benchmark) of every generation."""
        benches = self.evaluation.get("benchmarks") or []
        return [(m, b) for m in self.eval_models() for b in benches]

    # --- paths ------------------------------------------------------------------------------
    def path(self, *parts: str) -> Path:
        return self.results.joinpath(*parts)

    def code(self, *parts: str) -> Path:
        return self.repo.joinpath(*parts)

    @staticmethod
    def show(path: Path) -> str:
        return path.as_posix()

    def trace_path(self, task: str) -> Path:
        return self.path("traces", f"{task}.parquet")

    def dataset_path(self, ds: str, suffix: str = "") -> Path:
        return self.path("datasets", f"{ds}{suffix}")

    def hparams_path(self, student: str) -> Path:
        """A student's training record: its first replicate's when it has several (replicates
        differ in the seed only)."""
        if student in self.names("students"):
            student = replicates.replicates(self.cfg, student)[0][0]
        return self.path("models", student, "hparams.json")

    def generation_path(self, model: str, bench: str) -> Path:
        return self.path("generations", model, f"{bench}.parquet")

    # --- lazily read records ----------------------------------------------------------------
    @cached_property
    def hparams(self) -> dict[str, dict]:
        out = {}
        for s in self.names("students"):
            p = self.hparams_path(s)
            if p.is_file():
                try:
                    data = json.loads(p.read_text(encoding="utf-8"))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{p}: not valid JSON: {exc}") from None
                if not isinstance(data, dict):
                    raise ValueError(f"{p}: must be a JSON object")
                out[s] = data
        return out

    @cached_property
    def funnels(self) -> dict[str, pd.DataFrame]:
        out = {}
        for ds in self.names("datasets"):
            p = self.dataset_path(ds, ".funnel.parquet")
            if p.is_file():
                out[ds] = _read_columns(p, "funnel", list(ALL["funnel"].columns))
        return out

    @cached_property
    def traces(self) -> dict[str, pd.DataFrame]:
        out = {}
        for t in self.names("tasks"):
            p = self.trace_path(t)
            if p.is_file():
                out[t] = _read_columns(p, "traces", ["task", "prompt", "request", "model",
                                                     "status"])
        return out

    @cached_property
    def datasets(self) -> dict[str, pd.DataFrame]:
        out = {}
        for ds in self.names("datasets"):
            p = self.dataset_path(ds, ".parquet")
            if p.is_file():
                out[ds] = _read_columns(p, "dataset", ["sample_id", "task", "completion_tokens"])
        return out

    @cached_property
    def generations(self) -> dict[tuple[str, str], pd.DataFrame]:
        cols = ["model", "problem_id", "sample_index", "budget", "output_tokens", "backend",
                "temperature", "top_p", "max_new_tokens", "seed"]
        out = {}
        for m, b in self.eval_pairs():
            p = self.generation_path(m, b)
            if p.is_file():
                out[(m, b)] = _read_columns(p, "generations", cols)
        return out

    def first_messages(self, ds: str) -> list[dict]:
        """The first row's chat messages of a dataset (read without loading the whole column)."""
        p = self.dataset_path(ds, ".parquet")
        for batch in pq.ParquetFile(p).iter_batches(batch_size=1, columns=["messages"]):
            if batch.num_rows:
                try:
                    msgs = json.loads(batch.column(0)[0].as_py())
                except (TypeError, json.JSONDecodeError) as exc:
                    raise ValueError(f"{p}: row 0, column 'messages': not JSON: {exc}") from None
                return msgs if isinstance(msgs, list) else []
        return []


def _missing(paths: Iterable[Path], run: RunRecord, what: str) -> Finding | None:
    """A no naming the files not written yet, or None when all exist."""
    paths = list(paths)
    gone = [run.show(p) for p in paths if not p.exists()]
    if not gone:
        return None
    looked = [f"{run.show(p)} ({'found' if p.exists() else 'not found'})" for p in paths]
    return _no(f"{what} not written by this run: {', '.join(gone)}.", looked)


# --- data ---------------------------------------------------------------------------------------

def _source_detail(spec: dict) -> str:
    src = spec.get("source", "?")
    if src == "procedural":
        fams = ", ".join(spec.get("families") or {}) or "no families"
        return (f"procedural {spec.get('split', '')} ({fams}; n={spec.get('n')}, "
                f"seed={spec.get('seed')})")
    for key in ("id", "path", "dataset", "name", "repo", "url"):
        if spec.get(key):
            return f"{src} {spec[key]}" + (f" split {spec['split']}" if spec.get("split") else "")
    return str(src)


def check_data_sources(run: RunRecord) -> Finding:
    pools, benches = run.cfg.get("pools") or {}, run.cfg.get("benchmarks") or {}
    if not pools:
        return _no(f"{run.config_path} names no problem pools ('pools:' is empty), so the "
                   "training data has no stated source.", run.keys("pools"))
    unnamed = [f"{sec}.{n}" for sec, d in (("pools", pools), ("benchmarks", benches))
               for n, s in d.items() if not isinstance(s, dict) or not s.get("source")]
    if unnamed:
        return _no(f"{run.config_path}: no 'source' for {', '.join(unnamed)}.",
                   run.keys("pools, benchmarks"))
    parts = [f"pool {n}: {_source_detail(s)}" for n, s in pools.items()]
    parts += [f"benchmark {n}: {_source_detail(s)}" for n, s in benches.items()]
    for t, spec in (run.cfg.get("tasks") or {}).items():
        if isinstance(spec, dict) and spec.get("import"):
            parts.append(f"task {t}: traces imported from {spec['import']}")
        elif isinstance(spec, dict):
            parts.append(f"task {t}: teacher {spec.get('teacher')} with prompt "
                         f"{spec.get('prompt')} on pool {spec.get('pool')}")
    tables = [run.path("problems", f"{p}.parquet") for p in pools]
    evidence = [*run.config_files] + [run.show(t) for t in tables if t.is_file()]
    return Finding(True, evidence,
                   "Every data source is named in the config: " + "; ".join(parts) + ".")


def check_data_characteristics(run: RunRecord) -> Finding:
    names = run.names("datasets")
    if not names:
        return _no(f"{run.config_path} defines no curated datasets ('datasets:' is empty).",
                   run.keys("datasets"))
    miss = _missing([run.dataset_path(d, ".parquet") for d in names], run, "Curated datasets")
    if miss:
        return miss
    parts = []
    for ds in names:
        df = run.datasets[ds]
        toks = [int(t) for t in df["completion_tokens"].dropna()]
        roles = "/".join(m.get("role", "?") for m in run.first_messages(ds) if isinstance(m, dict))
        size = (f"completion tokens median {statistics.median(toks):g} "
                f"(min {min(toks)}, max {max(toks)})" if toks else "no token counts")
        parts.append(f"{ds}: {_rows(len(df))} from tasks {_fmt(df['task'])}, chat messages "
                     f"({roles or 'empty'}), {size}")
    return Finding(True, [run.show(run.dataset_path(d, ".parquet")) for d in names],
                   "Each curated dataset is a 'dataset'-schema table: " + "; ".join(parts) + ".")


def _funnel_text(ds: str, f: pd.DataFrame) -> str:
    f = f.sort_values("step")
    steps = ", ".join(f"{r.filter} -{int(r.removed)}" for r in f.itertuples())
    return f"{ds}: {int(f['rows_in'].iloc[0])} in -> {steps} -> {int(f['rows_out'].iloc[-1])} kept"


def check_data_selection(run: RunRecord) -> Finding:
    names = run.names("datasets")
    if not names:
        return _no(f"{run.config_path} defines no curated datasets, so no selection is recorded.",
                   run.keys("datasets"))
    miss = _missing([run.dataset_path(d, ".funnel.parquet") for d in names], run,
                    "Curation funnels")
    if miss:
        return miss
    empty = [d for d in names if run.funnels[d].empty]
    if empty:
        return _no(f"Curation funnels with no rows: {', '.join(empty)}.",
                   [run.dataset_path(d, ".funnel.parquet") for d in empty])
    evidence = [run.show(run.dataset_path(d, ".funnel.parquet")) for d in names]
    evidence += [run.show(run.dataset_path(d, ".rejected.parquet")) for d in names
                 if run.dataset_path(d, ".rejected.parquet").is_file()]
    pool_filters = [f"{p}: {', '.join(k for k, v in (s.get('filters') or {}).items() if v)}"
                    for p, s in (run.cfg.get("pools") or {}).items()
                    if isinstance(s, dict) and any((s.get("filters") or {}).values())]
    rejected = [run.path("problems", f"{p}.rejected.parquet") for p in run.names("pools")]
    evidence += [run.show(p) for p in rejected if p.is_file()]
    note = ("Every filter, in order, with the rows it removed (the funnel; each removed row keeps "
            "its reason in the rejected table): "
            + "; ".join(_funnel_text(d, run.funnels[d]) for d in names) + "."
            + (f" Pool filters: {'; '.join(pool_filters)}." if pool_filters else ""))
    return Finding(True, evidence, note)


def _prompts(df: pd.DataFrame) -> int:
    """How many traces recorded a request with at least one non-empty message."""
    n = 0
    for text in df["request"]:
        try:
            req = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            continue
        msgs = req.get("messages") if isinstance(req, dict) else None
        if isinstance(msgs, list) and any(isinstance(m, dict) and m.get("content") for m in msgs):
            n += 1
    return n


def check_synthetic_data_process(run: RunRecord) -> Finding:
    tasks = run.names("tasks")
    if not tasks:
        return _no(f"{run.config_path} defines no teacher tasks, so no synthetic data is made.",
                   run.keys("tasks"))
    miss = _missing([run.trace_path(t) for t in tasks], run, "Teacher traces")
    if miss:
        return miss
    counts = {t: _prompts(run.traces[t]) for t in tasks}
    silent = [t for t, n in counts.items() if n == 0]
    if silent:
        return _no(f"No prompt is recorded in the 'request' column of: "
                   f"{', '.join(run.show(run.trace_path(t)) for t in silent)}.",
                   [run.trace_path(t) for t in silent])
    names = run.names("datasets")
    miss = _missing([run.dataset_path(d, ".funnel.parquet") for d in names], run,
                    "Quality-control funnels")
    if miss:
        return miss
    if not names:
        return _no("The prompts are recorded, but no curated dataset (quality control) is defined.",
                   run.keys("datasets"))
    prompts = "; ".join(f"{t}: prompt {_fmt(run.traces[t]['prompt'])}, {counts[t]} of "
                        f"{len(run.traces[t])} requests recorded" for t in tasks)
    qc = ", ".join(sorted({str(f) for d in names for f in run.funnels[d]["filter"]}))
    return Finding(
        True,
        [run.show(run.trace_path(t)) for t in tasks]
        + [run.show(run.dataset_path(d, ".funnel.parquet")) for d in names],
        f"The exact request (messages and sampling) of every teacher call is kept in the traces' "
        f"'request' column ({prompts}); quality control is the curation funnel ({qc}).",
    )


# --- methodology --------------------------------------------------------------------------------

def _base_of(run: RunRecord, student: str) -> tuple[str, list[str]] | None:
    """(description, evidence paths) of a student's base model, from hparams or else config."""
    spec = (run.cfg.get("students") or {}).get(student) or {}
    base, where = spec.get("base_model"), run.config_files
    found = _find_keys(run.hparams.get(student) or {},
                       {"base_model", "base_model_name_or_path", "model_name_or_path"})
    if found and found[0][1]:
        base, where = found[0][1], [run.show(run.hparams_path(student))]
    if not base:
        return None
    if base == "tiny":
        t = spec.get("tiny") or {}
        arch = ", ".join(f"{k} {t[k]}" for k in ("hidden_size", "num_layers", "num_heads",
                                                   "vocab_size") if k in t)
        base = f"tiny Qwen2-architecture model built locally ({arch or 'default size'})"
    return str(base), where


def check_base_model(run: RunRecord) -> Finding:
    students = run.names("students")
    if not students:
        return _no(f"This run trains no student ({run.config_path} 'students:' is empty).",
                   run.keys("students"))
    found = {s: _base_of(run, s) for s in students}
    unnamed = [s for s, v in found.items() if v is None]
    if unnamed:
        return _no(f"No base model recorded for student(s) {', '.join(unnamed)}.",
                   run.keys(", ".join(f"students.{s}.base_model" for s in unnamed))
                   + [run.hparams_path(s) for s in unnamed])
    return Finding(True, [p for v in found.values() if v for p in v[1]],
                   "; ".join(f"{s}: {v[0]}" for s, v in found.items() if v) + ".")


def check_search_algorithm(run: RunRecord) -> Finding:
    hits = [(f"config {k}", v) for k, v in _find_keys(run.cfg, SEARCH_KEYS) if _enabled(v)]
    if hits:
        return _no("The config enables " + ", ".join(f"{k}={v!r}" for k, v in hits)
                   + ", so 'no search' does not hold, and no search algorithm is described.",
                   run.keys(", ".join(k.removeprefix("config ") for k, _ in hits)))
    gens = [run.show(run.generation_path(m, b)) for (m, b) in run.generations]
    return Finding(
        True,
        [*run.config_files, *gens],
        "Stated not used (the rubric credits an open statement): teacher traces are independent "
        "chat-completion samples; curation keeps verified samples (rejection sampling against the "
        "gold answer, reported under data_selection); evaluation decodes by plain sampling "
        "(temperature/top_p recorded per row) and aggregates by majority vote without a reward "
        "model. No beam search, MCTS or tree search is used anywhere; the config has no such "
        "setting.",
    )


def check_rl_algorithm(run: RunRecord) -> Finding:
    hits = [(f"config {k}", v) for k, v in _find_keys(run.cfg.get("students") or {}, RL_KEYS)
            if _enabled(v)]
    for s, hp in run.hparams.items():
        hits += [(f"{s} hparams {k}", v) for k, v in _find_keys(hp, RL_KEYS) if _enabled(v)]
    if hits:
        return _no("RL settings are present (" + ", ".join(f"{k}={v!r}" for k, v in hits)
                   + "), so 'no RL' does not hold, and no RL procedure is described.",
                   run.keys("students") + [run.hparams_path(s) for s in run.hparams])
    evidence = [run.show(run.hparams_path(s)) for s in run.hparams] or run.config_files
    trained = ", ".join(run.names("students")) or "none"
    return Finding(True, evidence,
                   "Stated not used (the rubric credits an open statement): students are trained "
                   f"by supervised fine-tuning only (students: {trained}); no reward model, no "
                   "policy optimisation, no preference tuning.")


def check_long_thought_workflow(run: RunRecord) -> Finding:
    names = run.names("datasets")
    if not names:
        return _no(f"{run.config_path} defines no curated datasets: no long-thought workflow ran.",
                   run.keys("datasets"))
    tasks_cfg = run.cfg.get("tasks") or {}
    needed: list[Path] = []
    for d in names:
        for t in (run.cfg["datasets"][d] or {}).get("tasks") or []:
            needed.append(run.trace_path(t))
        needed += [run.dataset_path(d, ".funnel.parquet"), run.dataset_path(d, ".parquet")]
    miss = _missing(dict.fromkeys(needed), run, "Workflow outputs")
    if miss:
        return miss
    parts = []
    for d in names:
        srcs = []
        for t in run.cfg["datasets"][d].get("tasks") or []:
            spec, tr = tasks_cfg.get(t) or {}, run.traces[t]
            ok = int((tr["status"] == "ok").sum())
            srcs.append(f"{t} (teacher {spec.get('teacher', 'import')} answered by "
                        f"{_fmt(tr['model'])}, prompt {spec.get('prompt', 'import')}, pool "
                        f"{spec.get('pool', '-')}: {ok}/{len(tr)} ok)")
        parts.append(f"{' + '.join(srcs)} -> funnel -> {d} ({_rows(len(run.datasets[d]))})")
    evidence = [run.show(p) for p in dict.fromkeys(needed)]
    return Finding(True, evidence, "Problems -> teacher traces -> verified, filtered, "
                   "decontaminated -> chat-format SFT rows: " + "; ".join(parts) + ".")


def _stage_order(run: RunRecord, student: str) -> tuple[str, str] | None:
    hp = run.hparams.get(student) or {}
    stages = hp.get("stages")
    if isinstance(stages, list) and stages:
        names = [str(s.get("dataset", f"stage {i}")) if isinstance(s, dict) else str(s)
                 for i, s in enumerate(stages)]
        return " -> ".join(names), run.show(run.hparams_path(student))
    log = run.path("models", student, "train_log.parquet")
    if log.is_file():
        df = _read_columns(log, "train_log", ["stage", "dataset"]).drop_duplicates()
        if not df.empty:
            return (" -> ".join(f"{r.dataset}" for r in df.sort_values("stage").itertuples()),
                    run.show(log))
    return None


def check_training_pipeline(run: RunRecord) -> Finding:
    students = run.names("students")
    if not students:
        return _no("This run trains no student, so there is no training pipeline to state.",
                   run.keys("students"))
    found = {s: _stage_order(run, s) for s in students}
    gone = [s for s, v in found.items() if v is None]
    if gone:
        return _no("No stage order recorded (hparams.json 'stages' or train_log.parquet) for: "
                   + ", ".join(run.show(run.path("models", s)) for s in gone) + ".",
                   [p for s in gone for p in (run.hparams_path(s),
                                              run.path("models", s, "train_log.parquet"))])
    return Finding(True, [v[1] for v in found.values() if v],
                   "SFT stages in order: " + "; ".join(f"{s}: {v[0]}" for s, v in found.items()
                                                      if v) + ".")


def check_compute(run: RunRecord) -> Finding:
    students = run.names("students")
    if not students:
        return _no("This run trains no student, so no training compute is recorded.",
                   run.keys("students"))
    miss = _missing([run.hparams_path(s) for s in students], run, "Training records")
    if miss:
        return miss
    parts, evidence, gone = [], [], []
    for s in students:
        hw = _find_keys(run.hparams[s], HARDWARE_KEYS)
        if not hw:
            gone.append(s)
            continue
        evidence.append(run.show(run.hparams_path(s)))
        shown = [(k, v) for k, v in hw if not k.startswith("hardware")][:5]
        text = ", ".join(f"{k}={v}" for k, v in shown)
        machine = run.hparams[s].get("hardware")
        if isinstance(machine, dict):  # what `longthought train` records: the float path
            text += f"; {hardware_summary(machine)}"
        log = run.path("models", s, "train_log.parquet")
        if log.is_file():
            tl = _read_columns(log, "train_log", ["tokens", "tokens_per_s", "mem_mb"])
            evidence.append(run.show(log))
            mem = tl["mem_mb"].dropna()
            text += (f"; {int(tl['tokens'].sum())} tokens at "
                     f"{tl['tokens_per_s'].mean():.0f} tokens/s mean"
                     + (f", peak {mem.max():.0f} MB" if len(mem) else ""))
        parts.append(f"{s}: {text}")
    if gone:
        return _no("No hardware (device type/count) recorded in hparams.json for: "
                   + ", ".join(run.show(run.hparams_path(s)) for s in gone)
                   + " (train_log.parquet alone gives throughput, not the hardware).",
                   [run.hparams_path(s) for s in gone])
    return Finding(True, evidence, "; ".join(parts) + ".")


def check_hyperparameters(run: RunRecord) -> Finding:
    students = run.names("students")
    if not students:
        return _no("This run trains no student, so there are no training hyperparameters.",
                   run.keys("students"))
    miss = _missing([run.hparams_path(s) for s in students], run, "Hyperparameter records")
    if miss:
        return miss
    no_lr = [s for s in students if not _find_keys(run.hparams[s], LR_KEYS)]
    if no_lr:
        return _no("hparams.json records no learning rate for: "
                   + ", ".join(run.show(run.hparams_path(s)) for s in no_lr) + ".",
                   [run.hparams_path(s) for s in no_lr])
    parts = []
    for s in students:
        hp = run.hparams[s]
        stages = [st for st in hp.get("stages") or [] if isinstance(st, dict)]
        keys = sorted({k for st in stages for k in st}) or sorted(hp)
        where = f"{len(stages)} stage(s) with" if stages else "top-level"
        parts.append(f"{s}: {where} {', '.join(keys[:14])}" + (", ..." if len(keys) > 14 else ""))
    return Finding(True, [run.show(run.hparams_path(s)) for s in students],
                   "Training settings recorded as run (learning rate included): "
                   + "; ".join(parts) + ".")


def check_ablations(run: RunRecord) -> Finding:
    models = ", ".join(run.evaluation.get("models") or []) or "none"
    return _no("One run evaluates one recipe (models: " + models + "); comparing a trained "
               "student with its untrained init is a baseline, not a per-component ablation. "
               "Ablations need runs that each remove one component (SFT stage 1, a curation "
               "filter, decontamination) — config variants this run does not define.",
               run.keys("evaluation.models, students"))


# --- evaluation ---------------------------------------------------------------------------------

def _evaluated(run: RunRecord) -> Finding | None:
    pairs = run.eval_pairs()
    if not pairs:
        return _no(f"{run.config_path} evaluates nothing ('evaluation.models' or "
                   "'evaluation.benchmarks' is empty).",
                   run.keys("evaluation.models, evaluation.benchmarks"))
    return _missing([run.generation_path(m, b) for m, b in pairs], run, "Generations")


# Public benchmarks the field recognises (matched on names and ids, letters and digits only).
RECOGNISED = ("aime", "math500", "amc", "gpqa", "olympiadbench", "minervamath", "omnimath",
              "gsm8k", "livecodebench", "mmlu", "cnmo", "hmmt")


def _why_benchmark(name: str, spec: dict) -> str | None:
    """The recorded reason a benchmark was chosen, or None when none is recorded."""
    reason = spec.get("description")
    if isinstance(reason, str) and reason.strip():
        return reason.strip()
    src = spec.get("source")
    where = spec.get("id") if src == "hf" else spec.get("path") if src == "file" else None
    key = re.sub(r"[^a-z0-9]", "", f"{name} {where or ''}".lower())
    if where and any(r in key for r in RECOGNISED):
        return f"a recognised public benchmark ({src} {where})"
    return None


def check_benchmark_choice(run: RunRecord) -> Finding:
    benches = run.evaluation.get("benchmarks") or []
    if not benches:
        return _no(f"{run.config_path} evaluates on no benchmark.",
                   run.keys("evaluation.benchmarks"))
    specs = run.cfg.get("benchmarks") or {}
    why = {b: _why_benchmark(b, specs.get(b) or {}) for b in benches}
    unjustified = [b for b, w in why.items() if w is None]
    if unjustified:
        return _no("The run records which benchmarks it used (" + ", ".join(benches) + ") but "
                   "not why for " + ", ".join(unjustified) + ": neither a recognised public "
                   "benchmark (Hugging Face id or local copy of AIME, MATH500, GPQA, ...) nor a "
                   f"'description' in {run.config_path}.",
                   run.keys(", ".join(f"benchmarks.{b}" for b in unjustified)))
    files = [run.path("benchmarks", f"{b}.parquet") for b in benches]
    return Finding(True, run.config_files + [run.show(p) for p in files if p.is_file()],
                   "; ".join(f"{b}: {w}" for b, w in why.items()) + ".")


def check_evaluation_level(run: RunRecord) -> Finding:
    bad = _evaluated(run)
    if bad:
        return bad
    return Finding(True, [run.show(run.generation_path(m, b)) for m, b in run.eval_pairs()],
                   "Answer-level: each sample's final answer is extracted and checked against "
                   "the gold answer (columns extracted_answer, correct, verdict); reasoning steps "
                   "are not scored.")


def check_metric_definitions(run: RunRecord) -> Finding:
    bad = _evaluated(run)
    if bad:
        return bad
    code = run.code("workflow", "longthought", "evaluate", "metrics.py")
    if not code.is_file():
        return _no(f"The metric definitions ({run.show(code)}) are not in this checkout.",
                   [f"{run.show(code)} (not found)"])
    ks = [int(k) for k in run.evaluation.get("k") or [1]]
    short = []
    for (m, b), g in run.generations.items():
        n = g.assign(_b=g["budget"].fillna(-1)).groupby(["problem_id", "_b"]).size().min()
        if n < max(ks):
            short.append(f"{m}/{b} has {n} samples per problem")
    if short:
        return _no(f"k up to {max(ks)} is configured but " + "; ".join(short) + ".",
                   run.keys("evaluation.k")
                   + [run.generation_path(m, b) for m, b in run.generations])
    return Finding(True, [run.show(code), *run.config_files]
                   + [run.show(run.generation_path(m, b)) for m, b in run.eval_pairs()],
                   f"pass@k and maj@k for k in {ks}, computed by {run.show(code)} from "
                   f"n={run.evaluation.get('sampling', {}).get('n', '?')} samples per problem.")


def check_custom_metrics(run: RunRecord) -> Finding:
    bad = _evaluated(run)
    if bad:
        return bad
    budgets = run.evaluation.get("budgets") or []
    extra = (f" Budget forcing caps thinking tokens at {budgets} to trace accuracy against cost."
             if budgets else "")
    return Finding(True, [run.show(run.generation_path(m, b)) for m, b in run.eval_pairs()],
                   "The pipeline's own metric is inference cost: mean output tokens per problem "
                   "(output_tokens per sample), the paper's cost measure: accuracies are "
                   "compared at a stated cost, and a higher target cost is reached with maj@k "
                   "(majority vote, no reward model)." + extra)


def _conditions(g: pd.DataFrame) -> dict[str, str]:
    per = g.groupby("problem_id").size()
    return {"problems": str(len(per)), "samples per problem": _fmt(per.unique().tolist()),
            "temperature": _fmt(g["temperature"]), "top_p": _fmt(g["top_p"]),
            "max_new_tokens": _fmt(g["max_new_tokens"])}


def check_consistent_evaluation(run: RunRecord) -> Finding:
    bad = _evaluated(run)
    if bad:
        return bad
    models = run.eval_models()
    if len(models) < 2:
        return _no(f"Only one model is evaluated ({', '.join(models)}): no baseline to compare.",
                   run.keys("evaluation.models"))
    diffs = []
    for b in run.evaluation.get("benchmarks") or []:
        conds = {m: _conditions(run.generations[(m, b)][run.generations[(m, b)]["budget"].isna()])
                 for m in models}
        sets = {m: frozenset(run.generations[(m, b)]["problem_id"]) for m in models}
        if len(set(sets.values())) > 1:
            diffs.append(f"{b}: models answered different problem sets")
        for key in next(iter(conds.values())):
            vals = {m: c[key] for m, c in conds.items()}
            if len(set(vals.values())) > 1:
                diffs.append(f"{b}: {key} differs (" + ", ".join(f"{m} {v}" for m, v in
                                                                 vals.items()) + ")")
    if diffs:
        return _no("Models are not evaluated under the same conditions: " + "; ".join(diffs) + ".",
                   [run.generation_path(m, b) for m, b in run.eval_pairs()])
    g0 = next(iter(run.generations.values()))
    first = _conditions(g0[g0["budget"].isna()])
    return Finding(True, [run.show(run.generation_path(m, b)) for m, b in run.eval_pairs()],
                   f"All {len(models)} models ({', '.join(models)}) on the same problems with the "
                   "same decoding: " + ", ".join(f"{k} {v}" for k, v in first.items()) + ".")


def check_decoding_params(run: RunRecord) -> Finding:
    bad = _evaluated(run)
    if bad:
        return bad
    parts = []
    for (m, b), g in run.generations.items():
        parts.append(f"{m} on {b}: backend {_fmt(g['backend'])}, temperature "
                     f"{_fmt(g['temperature'])}, top_p {_fmt(g['top_p'])}, max_new_tokens "
                     f"{_fmt(g['max_new_tokens'])}, seeds {_fmt(g['seed'])}")
    return Finding(True, [run.show(run.generation_path(m, b)) for m, b in run.eval_pairs()],
                   "Recorded per sample: " + "; ".join(parts) + ".")


# --- open source --------------------------------------------------------------------------------
# An item that asks for something *published* counts only with the URL of the release, stated
# under `tti.releases` in config: files on this machine are ready to publish, not published.

def _urls(run: RunRecord, key: str, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """({name: URL} for each of `names` that has a release URL, [names without one]).

    `tti.releases.<key>` is one URL for all of them, or a mapping name -> URL.
    """
    value = run.releases.get(key)
    if isinstance(value, str):
        return dict.fromkeys(names, value), []
    value = value or {}
    return ({n: value[n] for n in names if value.get(n)}, [n for n in names if not value.get(n)])


def _release_key(run: RunRecord, key: str) -> list[str]:
    return run.keys(f"tti.releases.{key}")


def _published(run: RunRecord, key: str, names: list[str], kind: str,
               local: dict[str, tuple[Path, list[Path]]], ready: str) -> Finding:
    """Yes when every one of `names` has a release URL. `local` maps each name to (where the
    run writes it, the files found there): they are named either way, found or not."""
    looked = []
    for where, found in local.values():
        looked += [run.show(p) for p in found] or [f"{run.show(where)} (not found)"]
    missing = [n for n, (_, found) in local.items() if not found]
    urls, without = _urls(run, key, names)
    if without:
        state = (f"{ready} ({', '.join(looked)})" if not missing else
                 f"{kind} {', '.join(missing)} not written by this run either")
        return _no(f"No release URL for {kind} {', '.join(without)} (tti.releases.{key} in "
                   f"config); {state}. A file on this machine is ready to publish, not "
                   "published: set the URL once it is.",
                   _release_key(run, key) + looked)
    shown = dict.fromkeys(urls.values())
    return Finding(True, [*shown, *looked],
                   f"Published at {', '.join(shown)} (as stated in config tti.releases.{key}; "
                   f"not fetched: the run is offline); this run's {kind}: {', '.join(names)}.")


def check_post_training_data(run: RunRecord) -> Finding:
    names = run.names("datasets")
    if not names:
        return _no("This run curates no SFT dataset, so there is none to release.",
                   run.keys("datasets"))
    local = {}
    for d in names:
        local[d] = (run.dataset_path(d, ".hf"),
                    [p for p in (run.dataset_path(d, ".hf"), run.dataset_path(d, ".parquet"))
                     if p.exists()][:1])
    return _published(run, "sft_data", names, "SFT dataset(s)", local,
                      "the curated datasets are exported")


def check_long_thought_data(run: RunRecord) -> Finding:
    tasks = run.names("tasks")
    if not tasks:
        return _no("This run asks no teacher, so it has no synthetic long-thought data.",
                   run.keys("tasks"))
    local = {t: (run.trace_path(t), [run.trace_path(t)] if run.trace_path(t).is_file() else [])
             for t in tasks}
    found = _published(run, "long_thought_data", tasks, "teacher traces of task(s)", local,
                       "the teacher outputs (request, response, tokens, cost) are kept")
    if found.yes:
        found.note += (" Check the teacher's terms of use before publishing (API providers may "
                       "restrict publishing their outputs).")
    return found


def check_model_weights(run: RunRecord) -> Finding:
    students = run.names("students")
    if not students:
        return _no("This run trains no student, so it has no weights to release.",
                   run.keys("students"))
    local = {}
    for s in students:
        d = run.path("models", s)
        local[s] = (d, sorted({p for g in WEIGHT_GLOBS for p in d.glob(g)}) if d.is_dir() else [])
    return _published(run, "weights", students, "trained student(s)", local,
                      "the weights are saved with save_pretrained")


def _code_finding(run: RunRecord, package: str, rule: str, what: str) -> Finding:
    """The code counts as released when config names its public repository and the code that
    ran is committed there: the package subpackage and its rule, at the checkout's commit."""
    pkg = run.code("workflow", "longthought", package)
    parts = [pkg, run.code("rules", rule), run.code("Snakefile")]
    found = [run.show(p) for p in parts if p.exists()]
    modules = [p.name for p in sorted(pkg.glob("*.py")) if p.name not in ("__init__.py",
                                                                         "commands.py")] \
        if pkg.is_dir() else []
    if not modules:
        return _no(f"No {what} code in this checkout ({run.show(pkg)} has no modules).",
                   [f"{run.show(pkg)} (no modules)"])
    url = run.releases.get("code")
    git = run.git
    at = f" at commit {git['commit'][:12]}" if git.get("commit") else ""
    if not url:
        remote = f" (its git remote is {git['remote']})" if git.get("remote") else ""
        return _no(f"The {what} code ({', '.join(modules)}) is in this checkout{at}, but a "
                   "checkout is not a release: set tti.releases.code to the URL of the public "
                   f"repository{remote} to claim it.",
                   _release_key(run, "code") + found)
    if git.get("dirty"):
        return _no(f"The {what} code has uncommitted changes (git status of "
                   f"{', '.join(CODE_PATHS)}), so the code that ran is not the code at {url}.",
                   [url, *found])
    return Finding(True, [url + at, *found],
                   f"The {what} code ({', '.join(modules)} and rules/{rule}) is published in "
                   f"{url} (tti.releases.code){at or ' (commit unknown: not a git checkout)'}; "
                   "that the commit is pushed there is not checked (the run is offline).")


def check_training_code(run: RunRecord) -> Finding:
    return _code_finding(run, "train", "train.smk", "training")


def check_evaluation_code(run: RunRecord) -> Finding:
    return _code_finding(run, "evaluate", "evaluate.smk", "evaluation")


def check_usage_guide(run: RunRecord) -> Finding:
    readme = run.code("README.md")
    if not readme.is_file():
        return _no(f"No {run.show(readme)} in this checkout.", [f"{run.show(readme)} (not found)"])
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not re.search(r"snakemake|longthought ", text, re.IGNORECASE):
        return _no(f"{run.show(readme)} does not say how to run the pipeline.",
                   [run.show(readme)])
    keys = run.code("config", "README.md")
    evidence = [run.show(readme)] + ([run.show(keys)] if keys.is_file() else [])
    url = run.releases.get("code")
    if not url:
        return _no(f"{run.show(readme)} walks through installing and running the workflow, but "
                   "a guide to resources that are not released guides no one: it counts with "
                   "the public repository's URL (tti.releases.code).",
                   _release_key(run, "code") + evidence)
    return Finding(True, [url, *evidence], f"Published with the code at {url}: the README says "
                   "how to install and run the workflow"
                   + ("; config/README.md explains the config keys." if keys.is_file() else "."))


def check_technical_paper(run: RunRecord) -> Finding:
    url = run.releases.get("paper")
    if not url:
        return _no("A run writes a generated report (results/report/summary.md), not a technical "
                   "paper; set tti.releases.paper to the paper's URL if one describes this work.",
                   _release_key(run, "paper"))
    return Finding(True, [url], f"The paper describing this work: {url} (tti.releases.paper).")


CHECKS: dict[str, Callable[[RunRecord], Finding]] = {
    "data_sources": check_data_sources,
    "data_characteristics": check_data_characteristics,
    "data_selection": check_data_selection,
    "synthetic_data_process": check_synthetic_data_process,
    "base_model": check_base_model,
    "search_algorithm": check_search_algorithm,
    "rl_algorithm": check_rl_algorithm,
    "long_thought_workflow": check_long_thought_workflow,
    "training_pipeline": check_training_pipeline,
    "compute": check_compute,
    "hyperparameters": check_hyperparameters,
    "ablations": check_ablations,
    "benchmark_choice": check_benchmark_choice,
    "evaluation_level": check_evaluation_level,
    "metric_definitions": check_metric_definitions,
    "custom_metrics": check_custom_metrics,
    "consistent_evaluation": check_consistent_evaluation,
    "decoding_params": check_decoding_params,
    "post_training_data": check_post_training_data,
    "long_thought_data": check_long_thought_data,
    "model_weights": check_model_weights,
    "training_code": check_training_code,
    "evaluation_code": check_evaluation_code,
    "usage_guide": check_usage_guide,
    "technical_paper": check_technical_paper,
}


def require_checks(rubric: Rubric) -> None:
    """Every rubric item needs a check here, and every check a rubric item: an item without one
    would silently score no, and a check without an item would score nothing."""
    unchecked = [i for i in rubric.item_ids if i not in CHECKS]
    stale = sorted(set(CHECKS) - set(rubric.item_ids))
    if unchecked or stale:
        raise ValueError(
            f"{rubric.path or 'rubric'}: the self-assessment (longthought.transparency."
            "self_assess.CHECKS) does not match the rubric:"
            + (f" item(s) {unchecked} have no check" if unchecked else "")
            + (";" if unchecked and stale else "")
            + (f" check(s) {stale} answer no rubric item" if stale else "")
            + ". Add a check for each new item (or remove the item).")


def load_self_rubric(path: str | os.PathLike[str] = DEFAULT_RUBRIC) -> Rubric:
    """Load a rubric to score this pipeline with: valid, and a check for every item."""
    rubric = load_rubric(path)
    require_checks(rubric)
    return rubric


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge `over` into `base` (mappings merge, anything else replaces), as Snakemake does
    with several --configfile overlays."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(paths: str | os.PathLike[str] | list[str]) -> dict:
    """Read one config file, or several merged in order (the default config, then overlays)."""
    merged: dict = {}
    for path in [Path(p) for p in (paths if isinstance(paths, list) else [paths])]:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: config not found") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: config must be a mapping")
        merged = _merge(merged, data)
    return merged


def assess_run(spec: dict, results_dir: str, config_path: str | list[str],
               rubric: Rubric | None = None, repo_root: str | None = None,
               config_shown: list[str] | None = None) -> Card:
    """Score the run recorded under `results_dir` on the TTI.

    `config_path` is the config file, or the list of files the run merged (default config first,
    overlays after), as Snakemake merges several --configfile arguments. `config_shown`: how
    evidence names the config (default: `config_path`).
    """
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ValueError(f"--spec: unknown key(s) {unknown} (allowed: {sorted(SPEC_KEYS)})")
    rubric = rubric or load_self_rubric(spec.get("rubric") or DEFAULT_RUBRIC)
    require_checks(rubric)
    paths = [str(p) for p in (config_path if isinstance(config_path, list) else [config_path])]
    if not paths:
        raise ValueError("--config: at least one config file is needed")
    run = RunRecord(load_config(paths), paths, results_dir,
                    repo_root or spec.get("repo_root") or ".", spec.get("releases"),
                    config_shown)
    answers = {}
    for item in rubric.items:
        f = CHECKS[item.id](run)
        answers[item.id] = Answer(item.id, f.yes, tuple(dict.fromkeys(f.evidence)), f.note, False)
    return Card(
        project=str(spec.get("project") or "longthought"),
        rubric=rubric,
        answers=answers,
        url=str(spec.get("url") or ""),
        description=(f"This pipeline's own run, scored by `longthought tti self` from what it "
                     f"recorded under {run.show(run.results)}/ with {run.config_path}."),
        source=SELF_SOURCE,
    )


def assess_and_write(spec: dict, results_dir: str, config_path: str | list[str], out: str,
                     rubric_path: str | None = None, repo_root: str | None = None,
                     config_shown: list[str] | None = None) -> Card:
    """`longthought tti self`: assess the run and write its scorecard YAML to `out`."""
    rubric = load_self_rubric(rubric_path or spec.get("rubric") or DEFAULT_RUBRIC)
    card = assess_run(spec, results_dir, config_path, rubric, repo_root, config_shown)
    write_card(card, out, header=(
        "TTI self-assessment of this run, written by `longthought tti self`; every yes cites the\n"
        "file that proves it, every no says why. Regenerated on each run; do not edit."))
    return card
