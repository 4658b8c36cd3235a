# Config accessors, cross-reference checks, wildcard constraints and path helpers.
# Rules only wire files and params; every config slice a rule depends on reaches it via
# `params:` (as JSON), so a changed knob re-runs exactly the rules it reaches.

import glob
import json
import os
import re
import shlex


def _names(section):
    return list(config.get(section) or {})


def _check_refs():
    """Fail before any job runs when a name in config points at nothing (schema can't see this)."""
    errors = []

    def need(key, name, section):
        if name not in (config.get(section) or {}):
            errors.append(
                f"{key}: {name!r} is not defined under '{section}:' "
                f"(known: {', '.join(_names(section)) or 'none'})"
            )

    for task, spec in (config.get("tasks") or {}).items():
        if "import" in spec:
            continue
        need(f"tasks.{task}.teacher", spec["teacher"], "teachers")
        need(f"tasks.{task}.prompt", spec["prompt"], "prompts")
        need(f"tasks.{task}.pool", spec["pool"], "pools")
    for ds, spec in (config.get("datasets") or {}).items():
        for i, task in enumerate(spec["tasks"]):
            need(f"datasets.{ds}.tasks[{i}]", task, "tasks")
        benches = spec.get("decontaminate", {}).get("benchmarks", "all")
        if isinstance(benches, list):
            for i, b in enumerate(benches):
                need(f"datasets.{ds}.decontaminate.benchmarks[{i}]", b, "benchmarks")
    for st, spec in (config.get("students") or {}).items():
        for i, stage in enumerate(spec["stages"]):
            need(f"students.{st}.stages[{i}].dataset", stage["dataset"], "datasets")
        for i, task in enumerate((spec.get("tiny") or {}).get("tokenizer_tasks", [])):
            need(f"students.{st}.tiny.tokenizer_tasks[{i}]", task, "tasks")
    ev = config.get("evaluation") or {}
    for i, b in enumerate(ev.get("benchmarks", [])):
        need(f"evaluation.benchmarks[{i}]", b, "benchmarks")
    for i, m in enumerate(ev.get("models", [])):
        if model_kind(m) is None:
            errors.append(
                f"evaluation.models[{i}]: {m!r} is neither a student, '<student>@init', "
                f"a teacher nor an entry of 'models:'"
            )
    gen = config.get("generalization") or {}
    for i, m in enumerate(gen.get("models", [])):
        if model_kind(m) is None:
            errors.append(f"generalization.models[{i}]: {m!r} is not a known model")
    if gen.get("sets"):
        need("generalization.judge", gen.get("judge"), "teachers")
    clash = set(_names("students")) & (set(_names("teachers")) | set(_names("models")))
    if clash:
        errors.append(
            f"names used both for a student and another model: {sorted(clash)}"
        )
    if errors:
        raise ValueError("config error(s):\n  " + "\n  ".join(errors))


def model_kind(name):
    """'student', 'init', 'teacher' (API), 'model' (entry of models:) or None if unknown."""
    if name in _names("students"):
        return "student"
    if name.endswith("@init") and name[: -len("@init")] in _names("students"):
        return "init"
    if name in _names("teachers"):
        return "teacher"
    if name in _names("models"):
        return "model"
    return None


def is_api_model(name):
    kind = model_kind(name)
    return kind == "teacher" or (
        kind == "model" and config["models"][name].get("kind") == "api"
    )


def model_spec(name):
    """The model spec the generation verbs take (see docs/architecture.md)."""
    kind = model_kind(name)
    if kind == "student":
        return {
            "name": name,
            "kind": "local",
            "path": f"results/models/{name}",
            "backend": config["students"][name].get("backend", "transformers"),
        }
    if kind == "init":
        student = name[: -len("@init")]
        return {
            "name": name,
            "kind": "local",
            "path": f"results/models/{name}",
            "backend": config["students"][student].get("backend", "transformers"),
        }
    if kind == "teacher":
        return {"name": name, "kind": "api", "teacher": config["teachers"][name]}
    spec = dict(config["models"][name])
    if spec.pop("kind") == "api":
        return {
            "name": name,
            "kind": "api",
            "teacher": config["teachers"][spec["teacher"]],
        }
    # hub/local models: pass backend options (device, dtype, vLLM sizes) through untouched
    return {"name": name, "kind": "local", "backend": "transformers", **spec}


def model_input(name):
    """Files a model's generation depends on: the model dir for students (or a local path)."""
    if model_kind(name) in ("student", "init"):
        return [f"results/models/{name}"]
    path = (config.get("models") or {}).get(name, {}).get("path", "")
    return [path] if path and os.path.exists(path) else []


def as_json(obj):
    """Canonical JSON of a config slice: stable key order, so params compare equal across runs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) or "__none__"


_check_refs()

API_MODELS = [
    m
    for m in set(config["evaluation"]["models"])
    | set((config.get("generalization") or {}).get("models", []))
    if is_api_model(m)
]
LOCAL_MODELS = [
    m
    for m in set(config["evaluation"]["models"])
    | set((config.get("generalization") or {}).get("models", []))
    if not is_api_model(m)
]


wildcard_constraints:
    pool=_alternatives(_names("pools")),
    bench=_alternatives(_names("benchmarks")),
    task=_alternatives(_names("tasks")),
    dataset=_alternatives(_names("datasets")),
    student=_alternatives(_names("students")),
    gset=_alternatives(list((config.get("generalization") or {}).get("sets") or {})),


# --- accessors the rules call -------------------------------------------------------------------


def task_spec(task):
    spec = config["tasks"][task]
    if "import" in spec:
        return {"task": spec}
    return {
        "task": spec,
        "teacher_name": spec["teacher"],
        "teacher": config["teachers"][spec["teacher"]],
        "prompt_name": spec["prompt"],
        "prompt": config["prompts"][spec["prompt"]],
    }


def task_problems(wildcards):
    spec = config["tasks"][wildcards.task]
    return [] if "import" in spec else [f"results/problems/{spec['pool']}.parquet"]


def decontam_benchmarks(dataset):
    benches = (
        config["datasets"][dataset].get("decontaminate", {}).get("benchmarks", "all")
    )
    if benches == "all":
        benches = config["evaluation"]["benchmarks"]
    return [f"results/benchmarks/{b}.parquet" for b in benches or []]


def student_datasets(student):
    return [
        f"results/datasets/{s['dataset']}.parquet"
        for s in config["students"][student]["stages"]
    ]


def tokenizer_traces(student):
    tiny = config["students"][student].get("tiny") or {}
    if config["students"][student]["base_model"] != "tiny":
        return []
    tasks = tiny.get("tokenizer_tasks") or sorted(
        {
            t
            for s in config["students"][student]["stages"]
            for t in config["datasets"][s["dataset"]]["tasks"]
        }
    )
    return [f"results/traces/{t}.parquet" for t in tasks]


def resources_from(blocks):
    """Snakemake `resources` from config `resources:` blocks, one per wildcard value.

    `blocks` maps a wildcard value (e.g. a student name) to its block; the result maps each
    resource key set anywhere to a callable picking that wildcard's value. Unset keys are left
    out, so the profile's defaults apply. Changing resources never re-runs a job.
    """
    keys = sorted(
        {k for b in blocks.values() for k, v in (b or {}).items() if v is not None}
    )

    def pick(key):
        def value(wildcards, attempt=1):
            name = wildcards[0] if len(blocks) > 1 else next(iter(blocks))
            v = (blocks.get(name) or {}).get(key)
            return (
                v
                if v is not None
                else (
                    ""
                    if key.startswith("slurm") or key in ("gpu_model", "constraint")
                    else 0
                )
            )

        return value

    return {k: pick(k) for k in keys}


def student_resources():
    return resources_from(
        {s: spec.get("resources") for s, spec in config["students"].items()}
    )


def eval_resources():
    return resources_from({"evaluation": config["evaluation"].get("resources")})


def eval_spec(model):
    ev = config["evaluation"]
    return {
        "model": model_spec(model),
        "sampling": ev["sampling"],
        "budgets": ev.get("budgets", []) if not is_api_model(model) else [],
        "batch_size": ev.get("batch_size", 32),
        "checker": ev.get("checker", {}),
        "prompt": ev.get("prompt"),
        **(
            {"budget_forcing": ev["budget_forcing"]} if ev.get("budget_forcing") else {}
        ),
    }


def source_files(spec):
    """Local files a problem/set source reads: inputs, so editing one re-runs its rule."""
    files = [spec["path"]] if spec.get("source") == "file" and spec.get("path") else []
    return files + ([spec["human_scores"]] if spec.get("human_scores") else [])


def get_final_outputs():
    return [
        "results/results.duckdb",
        "results/report/summary.md",
    ]


def generalization_sets():
    return list((config.get("generalization") or {}).get("sets") or {})


def generalization_outputs():
    models = (config.get("generalization") or {}).get("models", [])
    return [
        f"results/generalization/{m}/{g}.parquet"
        for m in models
        for g in generalization_sets()
    ]


def generalization_source_files():
    sets = (config.get("generalization") or {}).get("sets") or {}
    return [f for spec in sets.values() for f in source_files(spec)]


def generalize_args(model):
    """`--set S --spec JSON --out F --items F` for every set: one job runs a model on all sets.

    Quoted here (not with {:q}) because the pairs repeat; the specs are params, so editing one
    set's config re-runs this model's job.
    """
    args = []
    for gset in generalization_sets():
        base = f"results/generalization/{model}/{gset}"
        args += ["--set", gset, "--spec", as_json(generalize_spec(model, gset))]
        args += ["--out", f"{base}.parquet", "--items", f"{base}.items.parquet"]
    return " ".join(shlex.quote(a) for a in args)


def generalize_spec(model, gset):
    gen = config["generalization"]
    judge = gen.get("judge")
    return {
        "model": model_spec(model),
        "set": {"name": gset, **gen["sets"][gset]},
        "judge": {"name": judge, **config["teachers"][judge]} if judge else None,
        "judge_prompt": (gen.get("judge_prompts") or {}).get(
            gen["sets"][gset]["category"]
        ),
        "sampling": gen.get("sampling") or config["evaluation"]["sampling"],
        "batch_size": gen.get("batch_size", config["evaluation"].get("batch_size", 32)),
        "checker": config["evaluation"].get("checker", {}),
    }


def generation_outputs():
    ev = config["evaluation"]
    return [
        f"results/generations/{m}/{b}.parquet"
        for m in ev["models"]
        for b in ev["benchmarks"]
    ]


def funnel_outputs():
    return [f"results/datasets/{d}.funnel.parquet" for d in config["datasets"]]


def student_outputs():
    return [f"results/models/{s}" for s in config["students"]]


def trace_outputs():
    return [f"results/traces/{t}.parquet" for t in config["tasks"]]


def student_spec(student):
    """A student's config without `resources`: placement never re-runs training."""
    return {k: v for k, v in config["students"][student].items() if k != "resources"}


def fail_once(rule_name):
    """Test-only fault injection, config `testing.fail_once: [<rule>, ...]` (tests/test_slurm.py).

    A shell prefix that makes the first attempt of every job of `rule_name` exit 1 before any
    work, so retries are tested on a real cluster. It leaves
    results/testing/fail_once/<rule>/<wildcards>; the next attempt finds it and runs normally.
    Empty (no effect) unless `rule_name` is listed. (Named so: `snakemake --lint` takes the word
    rule followed by a colon anywhere in a file for a rule definition.)
    """

    def prefix(wildcards):
        if rule_name not in (config.get("testing") or {}).get("fail_once", []):
            return ""
        tag = ",".join(f"{k}={v}" for k, v in wildcards.items()) or "all"
        marker = shlex.quote(f"results/testing/fail_once/{rule_name}/{tag}")
        return (
            f'if [ ! -e {marker} ]; then mkdir -p "$(dirname {marker})" && touch {marker}'
            f" && echo 'testing.fail_once: {rule_name} fails its first attempt on purpose' >&2"
            " && exit 1; fi; "
        )

    return prefix
