"""Every config mistake stops before the first job, with the key's full path and what is wrong.

Two layers, both run by the Snakefile on the merged config before any rule is planned:

1. `schema_errors`: config/schema.yaml, where every object is closed, so an unknown key at any
   depth is an error; the closest known key is suggested ("did you mean 'num_layers'?").
2. `semantic_errors`: what a schema cannot see: names that point at nothing, pass@k beyond the
   samples drawn, keys the chosen source or backend ignores, files that do not exist, a stage that
   trains on the evaluation benchmark, and every other case a job would otherwise fail on after
   minutes or hours (on a cluster: after the queue wait). Each check is one small function in
   `SEMANTIC_CHECKS`; they run only on a config that passed the schema, so they may trust its
   shape.

`check_config` prints the messages and exits with status 1: Snakemake shows an exception raised in
a Snakefile with a traceback tail, a `SystemExit` it passes through as it is.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from longthought import replicates

Errors = list[str]

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"
HEADER = "config error(s), nothing was run:"


# --- paths and suggestions ------------------------------------------------------------------------


def key_path(parts: Iterable[Any]) -> str:
    """`students.tiny.stages[0].lr` from ("students", "tiny", "stages", 0, "lr")."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known word, or ''."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- 1. the schema --------------------------------------------------------------------------------


def load_schema(path: str | os.PathLike[str] = SCHEMA) -> dict:
    """The schema as a dict (a fresh copy: callers may not share one)."""
    return copy.deepcopy(_load_schema(str(path)))


@functools.lru_cache(maxsize=4)
def _load_schema(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _resolve(schema: dict, root: dict) -> dict:
    """Follow a local `$ref` (`#/$defs/...`)."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def known_keys(schema: dict, root: dict) -> list[str]:
    """Keys an object schema declares: its `properties`, those of its `$ref` and `allOf` parts."""
    keys: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        keys += [k for k, v in (node.get("properties") or {}).items()
                 if not (isinstance(v, dict) and "not" in v)]  # refused keys are not known
        if "$ref" in node:
            stack.append(_resolve(node, root))
        stack += node.get("allOf") or []
    return sorted(set(keys))


def _branch_note(err: jsonschema.ValidationError, root: dict) -> str:
    """' (why)': the `description` of the if/then/else branch an error came from, if any."""
    node: Any = root
    note = ""
    for part in err.schema_path:
        while isinstance(node, dict) and part not in node and "$ref" in node:
            node = _resolve(node, root)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return ""
        if part in ("then", "else"):
            note = node.get("description", "") if isinstance(node, dict) else ""
    return f" ({note})" if note else ""


def _format(err: jsonschema.ValidationError, root: dict) -> list[str]:
    """One line per problem in `err`, each starting with the key's full path."""
    path = list(err.absolute_path)
    where = key_path(path)
    kind = err.validator
    if kind in ("additionalProperties", "unevaluatedProperties"):
        known = known_keys(err.schema, root)
        patterns = list(err.schema.get("patternProperties") or {})
        extra = [k for k in err.instance if k not in known
                 and not any(re.search(p, str(k)) for p in patterns)]
        return [f"{key_path([*path, k])}: unknown key{did_you_mean(k, known)}; known keys here: "
                f"{', '.join(known) or 'none'}" for k in extra]
    if kind == "required":
        missing = re.match(r"'(.*)' is a required property", err.message)
        name = missing.group(1) if missing else err.message
        return [f"{key_path([*path, name])}: missing{_branch_note(err, root) or ' (required)'}"]
    if kind == "enum":
        allowed = ", ".join(repr(v) for v in err.validator_value)
        hint = did_you_mean(err.instance, [v for v in err.validator_value if isinstance(v, str)])
        return [f"{where}: {err.instance!r} is not one of {allowed}{hint}{_branch_note(err, root)}"]
    if kind == "const":
        return [f"{where}: must be {err.validator_value!r}, got {err.instance!r}"
                f"{_branch_note(err, root)}"]
    if kind in ("anyOf", "oneOf"):
        # a branch whose type the value has, but which failed inside it: report that failure
        inside = [e for e in err.context or [] if e.validator != "type"]
        if inside:
            return _format(jsonschema.exceptions.best_match(inside), root)
        what = err.schema.get("description", "")
        return [f"{where}: {err.instance!r} is not valid here" + (f": {what}" if what else "")]
    if kind == "not":  # a key declared only to be refused, with the reason as its description
        return [f"{where}: not allowed here: {err.schema.get('description', '')}".rstrip(": ")]
    if kind == "uniqueItems":
        seen, twice = [], []
        for item in err.instance:
            (twice if item in seen and item not in twice else seen).append(item)
        return [f"{where}: {', '.join(repr(t) for t in twice)} listed more than once"]
    if "propertyNames" in err.schema_path:
        return [f"{key_path([*path, err.instance])}: not a valid name: a name is the name on "
                "disk (letters, digits, '_', '.', '-'; starting with a letter or digit)"]
    if kind == "pattern":
        what = err.schema.get("description", f"the pattern {err.validator_value}")
        return [f"{where}: {err.instance!r} is not valid here: {what}"]
    return [f"{where}: {err.message}"]


def schema_errors(config: dict, schema: dict) -> Errors:
    """Every schema violation in `config` as 'key.path: what is wrong' lines (empty if valid)."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    lines: Errors = []
    for err in errors:
        for line in _format(err, schema):
            if line not in lines:
                lines.append(line)
    return lines


# --- 2. what the schema cannot see ----------------------------------------------------------------


def _names(config: dict, section: str) -> list[str]:
    return list(config.get(section) or {})


def model_kind(config: dict, name: str) -> str | None:
    """'student', 'init', 'teacher' (API), 'model' (entry of models:) or None if unknown. A
    student's name is a 'student' (and `<student>@init` an 'init') also where it stands for
    several replicates; a replicate's own name (`tiny~s2`) is one (longthought.replicates)."""
    ref = replicates.resolve(config, name)
    if ref is not None:
        return ref.kind
    if name.removesuffix(replicates.INIT) in _names(config, "students"):
        return "init" if name.endswith(replicates.INIT) else "student"
    return None


def is_api_model(config: dict, name: str) -> bool:
    kind = model_kind(config, name)
    return kind == "teacher" or (kind == "model" and config["models"][name]["kind"] == "api")


def check_refs(config: dict) -> Errors:
    """Names in config that point at nothing (the messages the rules' checks always gave)."""
    errors: Errors = []

    def need(key: str, name: Any, section: str) -> None:
        if name not in (config.get(section) or {}):
            errors.append(f"{key}: {name!r} is not defined under '{section}:' "
                          f"(known: {', '.join(_names(config, section)) or 'none'})")

    for task, spec in (config.get("tasks") or {}).items():
        if "import" in spec:
            continue
        need(f"tasks.{task}.teacher", spec["teacher"], "teachers")
        need(f"tasks.{task}.prompt", spec["prompt"], "prompts")
        need(f"tasks.{task}.pool", spec["pool"], "pools")
    for ds, spec in (config.get("datasets") or {}).items():
        for i, task in enumerate(spec["tasks"]):
            need(f"datasets.{ds}.tasks[{i}]", task, "tasks")
        benches = (spec.get("decontaminate") or {}).get("benchmarks", "all")
        if isinstance(benches, list):
            for i, b in enumerate(benches):
                need(f"datasets.{ds}.decontaminate.benchmarks[{i}]", b, "benchmarks")
    for st, spec in (config.get("students") or {}).items():
        for i, stage in enumerate(spec["stages"]):
            need(f"students.{st}.stages[{i}].dataset", stage["dataset"], "datasets")
        for i, task in enumerate((spec.get("tiny") or {}).get("tokenizer_tasks", [])):
            need(f"students.{st}.tiny.tokenizer_tasks[{i}]", task, "tasks")
    for name, spec in (config.get("models") or {}).items():
        if spec["kind"] == "api":
            need(f"models.{name}.teacher", spec["teacher"], "teachers")
    ev = config.get("evaluation") or {}
    for i, b in enumerate(ev.get("benchmarks", [])):
        need(f"evaluation.benchmarks[{i}]", b, "benchmarks")
    evaluated = set(replicates.expand(config, ev.get("models", [])))
    for i, m in enumerate(ev.get("budget_models") or []):
        if not set(replicates.expand(config, [m])) <= evaluated:
            errors.append(f"evaluation.budget_models[{i}]: {m!r} is not one of evaluation.models")
    for i, m in enumerate(ev.get("models", [])):
        if model_kind(config, m) is None:
            errors.append(f"evaluation.models[{i}]: {m!r} is neither a student, '<student>@init', "
                          "a replicate of a student ('<student>~s<seed>' for one of its seeds), "
                          "a teacher nor an entry of 'models:'")
    gen = config.get("generalization") or {}
    for i, m in enumerate(gen.get("models", [])):
        if model_kind(config, m) is None:
            errors.append(f"generalization.models[{i}]: {m!r} is not a known model")
    judged = [s for s, spec in (gen.get("sets") or {}).items() if spec["source"] != "procedural"]
    if judged and gen.get("judge") is None:
        errors.append(f"generalization.judge: missing; the sets {judged} are graded by an LLM "
                      "judge (a name under 'teachers:'); only the procedural probe needs none")
    elif gen.get("judge") is not None:
        need("generalization.judge", gen["judge"], "teachers")
    return errors


def check_unique_names(config: dict) -> Errors:
    """Students, teachers and models: share one namespace (results/generations/<model>)."""
    errors: Errors = []
    owners: dict[str, str] = {}
    for section in ("students", "teachers", "models"):
        for name in _names(config, section):
            if name in owners:
                what = ("names used both for a student and another model"
                        if owners[name] == "students" else "a model name used twice")
                errors.append(f"{section}.{name}: {what}: {[name]} (also {owners[name]}.{name}; "
                              "students, teachers and models: share the model names)")
            else:
                owners[name] = section
    return errors


def check_samples(config: dict) -> Errors:
    """pass@k/maj@k need k samples; a budget at or above max_new_tokens never binds."""
    ev = config["evaluation"]
    errors: Errors = []
    n = ev["sampling"].get("n", 1)
    for i, k in enumerate(ev.get("k") or []):
        if k > n:
            errors.append(f"evaluation.k[{i}]: {k} is larger than evaluation.sampling.n ({n}): "
                          f"pass@{k} and maj@{k} need at least {k} samples per problem")
    budgets = ev.get("budgets") or []
    cap = ev["sampling"]["max_new_tokens"]
    for i, b in enumerate(budgets):
        if b >= cap:
            errors.append(f"evaluation.budgets[{i}]: {b} is not below "
                          f"evaluation.sampling.max_new_tokens ({cap}), so the cap never binds")
    if budgets and ev["models"] and all(is_api_model(config, m) for m in ev["models"]
                                        if model_kind(config, m)):
        errors.append(f"evaluation.budgets: budget forcing needs a local model, but every model "
                      f"in evaluation.models is an API model ({', '.join(ev['models'])})")
    return errors


def check_generalization(config: dict) -> Errors:
    """The report's before/after table needs exactly two models, and sets need models to run."""
    gen = config.get("generalization") or {}
    models, sets = gen.get("models") or [], gen.get("sets") or {}
    if models and len(models) != 2:
        return [f"generalization.models: the before/after pair needs exactly two models "
                f"[baseline, tuned], got {len(models)}: {models}"]
    if sets and not models:
        return [f"generalization.sets: {len(sets)} set(s) but generalization.models is empty, so "
                "no model would run them; give [baseline, tuned]"]
    return []


def check_token_bounds(config: dict) -> Errors:
    """min_tokens <= max_tokens; a vLLM context longer than the generation it must hold."""
    errors: Errors = []
    for ds, spec in (config.get("datasets") or {}).items():
        f = spec.get("filters") or {}
        lo, hi = f.get("min_tokens"), f.get("max_tokens")
        if lo is not None and hi is not None and lo > hi:
            errors.append(f"datasets.{ds}.filters.min_tokens: {lo} is above max_tokens ({hi}): "
                          "every trace would be removed")
    ev = config["evaluation"]
    gens = {"evaluation.sampling": (ev["sampling"], ev["models"])}
    gen = config.get("generalization") or {}
    if gen.get("sampling"):
        gens["generalization.sampling"] = (gen["sampling"], gen.get("models") or [])
    contexts = {f"models.{name}": ([name], spec.get("max_model_len"))
                for name, spec in (config.get("models") or {}).items()}
    for name, spec in (config.get("students") or {}).items():
        ctx = (spec.get("generation") or {}).get("max_model_len")
        contexts[f"students.{name}.generation"] = ([name, f"{name}@init"], ctx)
    for where, (names, ctx) in contexts.items():
        if ctx is None:
            continue
        for key, (sampling, users) in gens.items():
            if set(names) & set(users) and sampling["max_new_tokens"] >= ctx:
                errors.append(f"{where}.max_model_len: {ctx} leaves no room for a prompt "
                              f"with {key}.max_new_tokens {sampling['max_new_tokens']}")
    return errors


# keys that only one source (or kind, or backend) reads: elsewhere they would be silently ignored
_PROBLEM_KEYS = {
    "procedural": {"n", "families"},
    "file": {"path"},
    "hf": {"id", "config", "revision"},
    ("file", "hf"): {"columns", "answer_type", "limit", "name", "meta", "allow_missing_answer",
                     "multiple_choice"},
    ("procedural", "hf"): {"split"},
}
_SET_KEYS = {
    "procedural": {"families", "probe"},
    "file": {"path"},
    "hf": {"id", "config"},
    ("file", "hf"): {"columns", "prompt"},
    ("procedural", "hf"): {"split"},
}
_MODEL_KEYS = {
    "hf": {"path", "backend", "device", "dtype", "attn_implementation", "tensor_parallel_size",
           "max_model_len", "gpu_memory_utilization"},
    "api": {"teacher"},
}
_BACKEND_KEYS = {
    "transformers": {"device", "attn_implementation"},
    "vllm": {"tensor_parallel_size", "max_model_len", "gpu_memory_utilization"},
}
_PROBE_KEYS = {"single_turn": {"control", "assertions"}, "multi_turn": {"pushback"}}
_DTYPES = {"transformers": {"fp32", "float32", "bf16", "bfloat16", "fp16", "float16"},
           "vllm": {"auto", "float32", "bfloat16", "float16"}}


def _unused(where: str, spec: dict, value: str, table: dict, what: str) -> Errors:
    """Keys of `spec` that `table` reserves for other values of `what` than `value`."""
    errors = []
    for owners, keys in table.items():
        owners = (owners,) if isinstance(owners, str) else owners
        if value in owners:
            continue
        for key in sorted(keys & set(spec)):
            users = " or ".join(repr(o) for o in owners)
            errors.append(f"{where}.{key}: not used with {what} {value!r} (only with {what} "
                          f"{users}); remove it")
    return errors


def check_unused_keys(config: dict) -> Errors:
    """A key the chosen source, kind, backend or style never reads is a mistake, not a no-op."""
    errors: Errors = []
    for section in ("pools", "benchmarks"):
        for name, spec in (config.get(section) or {}).items():
            errors += _unused(f"{section}.{name}", spec, spec["source"], _PROBLEM_KEYS, "source")
    gen = config.get("generalization") or {}
    for name, spec in (gen.get("sets") or {}).items():
        where = f"generalization.sets.{name}"
        errors += _unused(where, spec, spec["source"], _SET_KEYS, "source")
        probe = spec.get("probe") or {}
        errors += _unused(f"{where}.probe", probe, probe.get("style", "single_turn"), _PROBE_KEYS,
                          "style")
    for name, spec in (config.get("models") or {}).items():
        errors += _unused(f"models.{name}", spec, spec["kind"], _MODEL_KEYS, "kind")
        if spec["kind"] == "hf":
            backend = spec.get("backend", "transformers")
            errors += _unused(f"models.{name}", spec, backend, _BACKEND_KEYS, "backend")
            if "dtype" in spec and spec["dtype"] not in _DTYPES[backend]:
                errors.append(f"models.{name}.dtype: {spec['dtype']!r} is not a dtype of backend "
                              f"{backend!r} (use one of {', '.join(sorted(_DTYPES[backend]))})")
    for name, spec in (config.get("tasks") or {}).items():
        if "import" in spec:
            for key in ("teacher", "prompt", "pool", "samples_per_problem"):
                if key in spec:
                    errors.append(f"tasks.{name}.{key}: not used by a task with an import: block "
                                  "(it reads published traces instead of asking a teacher)")
    for name, spec in (config.get("teachers") or {}).items():
        if "sim" in spec and spec.get("base_url") != "sim":
            errors.append(f"teachers.{name}.sim: only used with base_url 'sim' (the local sim "
                          f"server), not {spec.get('base_url')!r}; remove it")
    for name, spec in (config.get("students") or {}).items():
        backend = spec.get("backend", "transformers")
        errors += _unused(f"students.{name}.generation", spec.get("generation") or {}, backend,
                          _BACKEND_KEYS, "backend")
        if "tiny" in spec and spec["base_model"] != "tiny":
            errors.append(f"students.{name}.tiny: only used with base_model 'tiny', not "
                          f"{spec['base_model']!r}; remove it")
        hub = spec["base_model"] != "tiny" and not _looks_local(spec["base_model"])
        for key in ("revision", "snapshot_dir"):
            if key in spec and not hub:
                errors.append(f"students.{name}.{key}: only used with a hub id as base_model "
                              f"(it pins and downloads one), not {spec['base_model']!r}; "
                              "remove it")
        for i, stage in enumerate(spec.get("stages") or []):
            budget, longest = stage.get("max_tokens_per_batch"), stage.get("max_length", 1024)
            if budget is not None and budget < longest:
                errors.append(f"students.{name}.stages[{i}].max_tokens_per_batch: {budget} is "
                              f"less than max_length ({longest}); a sample is never split "
                              "across micro-batches, so the budget must hold the longest one")
    return errors


def check_teachers(config: dict) -> Errors:
    """A spending cap needs prices; the sim's fault rates are shares of one request stream."""
    errors: Errors = []
    for name, spec in (config.get("teachers") or {}).items():
        if spec.get("budget_usd") is not None and not spec.get("pricing"):
            errors.append(f"teachers.{name}.budget_usd: set, but teachers.{name}.pricing is not; "
                          "the cap needs prices (USD per 1M input/output/reasoning tokens)")
        faults = (spec.get("sim") or {}).get("faults") or {}
        total = sum(v for k, v in faults.items() if k.startswith("rate_"))
        if total > 1:
            errors.append(f"teachers.{name}.sim.faults: the fault rates add up to {total:g}, "
                          "more than 1")
        if spec.get("mode") != "local":
            errors += [f"teachers.{name}.{key}: only used with mode: local (a GPU job runs the "
                       "model); this teacher is asked over its base_url"
                       for key in ("local", "resources") if key in spec]
        errors += _batch_and_escalation(name, spec)
    return errors + _local_teachers_asked_online(config)


def _batch_and_escalation(name: str, spec: dict) -> Errors:
    """`batch:` and batch prices need mode batch; escalation needs a limit to raise."""
    errors: Errors = []
    batch = spec.get("mode") == "batch"
    if "batch" in spec and not batch:
        errors.append(f"teachers.{name}.batch: only used with mode: batch (the Batch API); "
                      f"this teacher is mode {spec.get('mode', 'online')}")
    pricing = spec.get("pricing") or {}
    if "batch" in pricing and "batch_discount" in pricing:
        errors.append(f"teachers.{name}.pricing: give batch prices either explicitly (batch) or "
                      "as a batch_discount, not both")
    levels = spec.get("escalate_max_tokens")
    if levels is None:
        return errors
    where = f"teachers.{name}.escalate_max_tokens"
    if spec.get("mode") == "local":
        errors.append(f"{where}: not supported with mode: local (its GPU job generates a planned "
                      "request list); raise sampling.max_tokens instead")
        return errors
    levels = [levels] if isinstance(levels, int) else list(levels)
    if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
        errors.append(f"{where}: {levels} must rise (each limit longer than the one before)")
    sampling = spec.get("sampling") or {}
    base = sampling.get("max_completion_tokens") or sampling.get("max_tokens")
    if base is None:
        errors.append(f"{where}: needs teachers.{name}.sampling.max_tokens (or "
                      "max_completion_tokens), the limit it raises")
    elif levels and levels[0] <= base:
        errors.append(f"{where}: {levels[0]} is not above sampling's limit {base}")
    return errors


def _is_local_teacher(config: dict, name: Any) -> bool:
    return ((config.get("teachers") or {}).get(name) or {}).get("mode") == "local"


def _local_teachers_asked_online(config: dict) -> Errors:
    """A mode: local teacher only answers a task's request list (a GPU job); nothing may ask it
    as an endpoint: evaluation through its API, an API model, or the judge (a local rule)."""
    errors: Errors = []
    for i, m in enumerate((config.get("evaluation") or {}).get("models", [])):
        if _is_local_teacher(config, m):
            errors.append(f"evaluation.models[{i}]: {m!r} is a mode: local teacher; evaluate it "
                          "as a 'models:' entry (kind: hf, path: its model)")
    gen = config.get("generalization") or {}
    for i, m in enumerate(gen.get("models", [])):
        if _is_local_teacher(config, m):
            errors.append(f"generalization.models[{i}]: {m!r} is a mode: local teacher; name a "
                          "'models:' entry (kind: hf, path: its model) instead")
    if _is_local_teacher(config, gen.get("judge")):
        errors.append("generalization.judge: a mode: local teacher cannot judge (judging is a "
                      "local rule that asks an endpoint); serve the model (vllm serve) and name "
                      "that endpoint")
    for name, spec in (config.get("models") or {}).items():
        if spec.get("kind") == "api" and _is_local_teacher(config, spec.get("teacher")):
            errors.append(f"models.{name}.teacher: {spec['teacher']!r} is a mode: local teacher, "
                          "not an API")
    return errors


def check_tiny(config: dict) -> Errors:
    """Shapes a Qwen2 cannot be built with (it fails in init_student, or later in attention)."""
    errors: Errors = []
    for name, spec in (config.get("students") or {}).items():
        tiny = spec.get("tiny")
        if not tiny:
            continue
        where = f"students.{name}.tiny"
        hidden, heads = tiny["hidden_size"], tiny["num_heads"]
        kv = tiny.get("num_kv_heads", heads)
        if hidden % heads:
            errors.append(f"{where}.hidden_size: {hidden} is not a multiple of num_heads "
                          f"({heads})")
        elif (hidden // heads) % 2:
            errors.append(f"{where}.hidden_size: {hidden} / num_heads {heads} gives an odd head "
                          f"size ({hidden // heads}); rotary embeddings need an even one")
        if heads % kv:
            errors.append(f"{where}.num_kv_heads: {kv} does not divide num_heads ({heads})")
    return errors


def _template(where: str, text: str | None, *fields: str) -> Errors:
    if text is None:
        return []
    missing = [f"{{{f}}}" for f in fields if f"{{{f}}}" not in text]
    return [f"{where}: has no {' or '.join(missing)}, so every request would be the same"
            ] if missing else []


def check_templates(config: dict) -> Errors:
    """Templates must carry the placeholder that makes each request differ."""
    errors: Errors = []
    for name, spec in (config.get("prompts") or {}).items():
        text = (spec.get("system") or "") + spec["user"]
        errors += _template(f"prompts.{name}.user", text, "problem")
    errors += _template("evaluation.prompt", config["evaluation"].get("prompt"), "problem")
    for ds, spec in (config.get("datasets") or {}).items():
        errors += _template(f"datasets.{ds}.format.user", (spec.get("format") or {}).get("user"),
                            "problem")
    gen = config.get("generalization") or {}
    for name, spec in (gen.get("sets") or {}).items():
        where = f"generalization.sets.{name}"
        errors += _template(f"{where}.prompt", spec.get("prompt"), "question")
        probe = spec.get("probe") or {}
        errors += _template(f"{where}.probe.instruction", probe.get("instruction"), "problem")
        for key in ("assertions", "pushback"):
            for i, text in enumerate(probe.get(key) or []):
                errors += _template(f"{where}.probe.{key}[{i}]", text, "wrong")
    for category, spec in (gen.get("judge_prompts") or {}).items():
        where = f"generalization.judge_prompts.{category}.user"
        errors += _template(where, spec["user"], "response")
        if category == "factuality":
            errors += [e.replace("so every request would be the same",
                                 "but factuality is graded against the gold answer")
                       for e in _template(where, spec["user"], "gold")]
    return errors


def _looks_local(name: str) -> bool:
    """The rule `longthought.train.student.classify_base_model` uses: a path, not a hub id."""
    return (Path(name).expanduser().exists() or name.startswith(("/", ".", "~"))
            or name.count("/") > 1 or ("/" in name and Path(name.split("/", 1)[0]).is_dir()))


def _model_ref(where: str, name: str, files: tuple[str, ...] = ("config.json",),
               cache_dirs: tuple[str | None, ...] = (None,),
               revision: str | None = None) -> Errors:
    """A local model path must exist; offline, a hub id must already be in a local cache
    (`cache_dirs`; None is the default Hugging Face cache)."""
    if _looks_local(name):
        p = Path(name).expanduser()
        if not any((p / f).is_file() for f in files):
            state = "does not exist" if not p.exists() else f"holds no {' or '.join(files)}"
            return [f"{where}: {name!r} looks like a local path, but it {state}"]
        return []
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        if not any(isinstance(try_to_load_from_cache(name, files[0], cache_dir=d,
                                                     revision=revision), str)
                   for d in cache_dirs):
            return [f"{where}: hub model {name!r} is not in the local Hugging Face cache and "
                    "HF_HUB_OFFLINE is set; download it first or give a local path"]
    return []


def _file(where: str, path: str, what: str = "file") -> Errors:
    return [] if Path(path).expanduser().exists() else [f"{where}: {what} {path!r} does not exist "
                                                        f"(relative to {os.getcwd()})"]


def _made_here(config: dict, path: str) -> bool:
    """A task's traces table: the workflow writes it before the pool that reads it (a rewrite of
    another teacher's traces, as Sky-T1's), so it need not exist at planning time."""
    tasks = config.get("tasks") or {}
    return Path(path).as_posix() in {f"results/traces/{t}.parquet" for t in tasks}


def check_files(config: dict) -> Errors:
    """Files and local models the config names exist now, not only when their job starts."""
    errors: Errors = []
    for section in ("pools", "benchmarks"):
        for name, spec in (config.get(section) or {}).items():
            if spec["source"] == "file" and not _made_here(config, spec["path"]):
                errors += _file(f"{section}.{name}.path", spec["path"])
    for name, spec in (config.get("tasks") or {}).items():
        imp = spec.get("import") or {}
        if imp.get("source") == "file":
            errors += _file(f"tasks.{name}.import.path", imp["path"])
    gen = config.get("generalization") or {}
    for name, spec in (gen.get("sets") or {}).items():
        where = f"generalization.sets.{name}"
        if spec["source"] == "file":
            errors += _file(f"{where}.path", spec["path"])
        scores = spec.get("human_scores")
        if scores:
            paths = sorted({scores.replace("{model}", m) for m in gen.get("models") or []})
            for p in paths or [scores]:
                errors += _file(f"{where}.human_scores", p, "expert-scores CSV")
    for name, spec in (config.get("students") or {}).items():
        where = f"students.{name}"
        if spec["base_model"] != "tiny":
            # a pinned hub base may also be in its snapshot_dir (train.student's default)
            snapshots = spec.get("snapshot_dir") or ".cache/longthought/hub"
            errors += _model_ref(f"{where}.base_model", spec["base_model"],
                                 cache_dirs=(snapshots, None), revision=spec.get("revision"))
        acc = spec.get("accelerate_config")
        if acc:
            found = _file(f"{where}.accelerate_config", acc, "accelerate config")
            errors += found or _yaml_mapping(f"{where}.accelerate_config", acc)
    for name, spec in (config.get("models") or {}).items():
        if spec["kind"] == "hf":
            errors += _model_ref(f"models.{name}.path", spec["path"])
    for ds, spec in (config.get("datasets") or {}).items():
        tok = (spec.get("filters") or {}).get("tokenizer")
        if tok:
            errors += _model_ref(f"datasets.{ds}.filters.tokenizer", tok,
                                 ("tokenizer_config.json", "tokenizer.json"))
    tti = config.get("tti") or {}
    if tti.get("rubric"):
        errors += _file("tti.rubric", tti["rubric"])
    if tti.get("repo_root"):
        errors += _file("tti.repo_root", tti["repo_root"], "directory")
    for i, card in enumerate(tti.get("cards") or []):
        errors += _file(f"tti.cards[{i}]", card, "scorecard")
    return errors


def _yaml_mapping(where: str, path: str) -> Errors:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return [f"{where}: {path!r} cannot be read as YAML: {exc}"]
    return [] if isinstance(data, dict) else [f"{where}: {path!r} is not a YAML mapping"]


def _source_id(spec: dict) -> tuple | None:
    """What identifies a problem source's rows: the same id means the same problems."""
    if spec["source"] == "file":
        return ("file", str(Path(spec["path"]).expanduser().resolve()))
    if spec["source"] == "hf":
        return ("hf", spec["id"], spec.get("config"), spec.get("split"))
    return ("procedural", spec.get("split", "train"))


def _task_source(config: dict, task: str) -> tuple[str, tuple | None]:
    spec = config["tasks"][task]
    if "import" in spec:
        imp = spec["import"]
        return (f"tasks.{task}.import", _source_id(imp) if imp["source"] != "hf"
                else ("hf", imp["id"], imp.get("config"), imp.get("split", "train")))
    pool = (config.get("pools") or {}).get(spec["pool"])
    return (f"pools.{spec['pool']}", _source_id(pool) if pool else None)


def check_train_on_benchmark(config: dict) -> Errors:
    """A stage must not train on an evaluation benchmark's own problems (same file, same hub
    split, or the same procedural split): its scores would measure memory, not skill."""
    benches = {}
    for b in config["evaluation"]["benchmarks"]:
        spec = (config.get("benchmarks") or {}).get(b)
        if spec:
            benches[_source_id(spec)] = b
    errors: Errors = []
    for st, spec in (config.get("students") or {}).items():
        for i, stage in enumerate(spec["stages"]):
            ds = (config.get("datasets") or {}).get(stage["dataset"])
            for task in (ds or {}).get("tasks", []):
                if task not in (config.get("tasks") or {}):
                    continue
                where, source = _task_source(config, task)
                if source in benches:
                    errors.append(
                        f"students.{st}.stages[{i}].dataset: {stage['dataset']!r} trains on "
                        f"{where} (via task {task!r}), which is the evaluation benchmark "
                        f"benchmarks.{benches[source]} itself ({', '.join(map(str, source))})")
    return errors


def check_replicates(config: dict) -> Errors:
    """A student's replicate seeds come from one place: `seed` (+ `replicates`) or `seeds`."""
    errors: Errors = []
    for name, spec in (config.get("students") or {}).items():
        where = f"students.{name}"
        seeds = spec.get("seeds")
        if seeds is None:
            continue
        for key in ("replicates", "seed"):
            if key in spec:
                errors.append(f"{where}.{key}: not used with {where}.seeds (the seeds listed "
                              f"are the replicates); give either seeds or seed/replicates")
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        if twice:
            errors.append(f"{where}.seeds: {twice} listed more than once: each seed is one "
                          f"replicate, {name}{replicates.SEP}<seed>")
    return errors


def check_compare(config: dict) -> Errors:
    """`report.compare` pairs: two different models, each evaluated (generations to compare)."""
    errors: Errors = []
    evaluated = set(replicates.expand(config, config["evaluation"].get("models", [])))
    for i, pair in enumerate((config.get("report") or {}).get("compare") or []):
        for j, name in enumerate(pair):
            if model_kind(config, name) is None:
                errors.append(f"report.compare[{i}][{j}]: {name!r} is not a known model "
                              "(a student, '<student>@init', a replicate, a teacher or an "
                              "entry of 'models:')")
            elif not set(replicates.expand(config, [name])) <= evaluated:
                errors.append(f"report.compare[{i}][{j}]: {name!r} is not evaluated: add it to "
                              "evaluation.models (a comparison needs its generations)")
        if pair[0] == pair[1]:
            errors.append(f"report.compare[{i}]: compares {pair[0]!r} with itself")
    return errors


SEMANTIC_CHECKS: list[Callable[[dict], Errors]] = [
    check_refs, check_unique_names, check_samples, check_generalization, check_token_bounds,
    check_unused_keys, check_teachers, check_tiny, check_templates, check_files,
    check_train_on_benchmark, check_replicates, check_compare,
]


def semantic_errors(config: dict) -> Errors:
    """Every semantic check's errors, in check order (the config must have passed the schema)."""
    return [line for check in SEMANTIC_CHECKS for line in check(config)]


def config_warnings(config: dict) -> Errors:
    """What is not a config error but would fail a job: an API key variable that is not set."""
    used = {t["teacher"] for t in (config.get("tasks") or {}).values() if "teacher" in t}
    used |= {m for m in config["evaluation"]["models"] if model_kind(config, m) == "teacher"}
    used |= {s["teacher"] for s in (config.get("models") or {}).values() if s["kind"] == "api"}
    used.add((config.get("generalization") or {}).get("judge"))
    out = []
    for name in sorted(n for n in used if n in (config.get("teachers") or {})):
        spec = config["teachers"][name]
        env = spec.get("api_key_env")
        if spec.get("base_url", "sim") != "sim" and env and not os.environ.get(env):
            out.append(f"teachers.{name}.api_key_env: the environment variable {env!r} is not "
                       "set; the jobs that call this endpoint will fail until it is exported")
    return out


def config_errors(config: dict, schema_path: str | os.PathLike[str] = SCHEMA) -> Errors:
    """Schema errors; when there are none, the semantic checks' errors. Empty if valid."""
    return schema_errors(config, load_schema(schema_path)) or semantic_errors(config)


def _lines(title: str, lines: Iterator[str] | Errors) -> str:
    return title + "\n" + "\n".join(f"  {line}" for line in lines)


def check_config(config: dict, schema_path: str | os.PathLike[str] = SCHEMA) -> None:
    """Print every error and exit 1 (no traceback), or warnings and return; before any job."""
    errors = config_errors(config, schema_path)
    if errors:
        print(_lines(HEADER, errors), file=sys.stderr, flush=True)
        raise SystemExit(1)
    warnings = config_warnings(config)
    if warnings:
        print(_lines("config warning(s):", warnings), file=sys.stderr, flush=True)
