# Config accessors, cross-reference checks, wildcard constraints and path helpers.
# Rules only wire files and params. How a changed knob reaches exactly the jobs it should:
#
#   - `job_params(kind, spec)`: a rule's config slice goes to its verb as a small job file
#     (`--spec {params.spec}`); only the slice's *content* is a param Snakemake compares, so an
#     operational setting (limits, budgets, workers, resources...) reaches the job and re-runs
#     nothing. `operational(value)` passes any other operational value (e.g. the cache dir).
#   - `content_input(paths)` + `content_digests(paths)`: an input consumed by its content.
#     The producing rule is a `checkpoint` whose verb records a digest beside its output
#     (longthought.digest); the consumer takes the file as `ancient()` and the digest as a
#     param, so it re-runs when the content changed, not whenever the producer re-ran.
#   - `resources_from(blocks, wildcard)`: per-wildcard resources that fall back to the profile.

import glob
import json
import os
import re
import shlex

from longthought import digest as _digest
from longthought import jobspec as _jobspec


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
    return _jobspec.canonical_json(obj)


# --- job files, content params and content-addressed inputs --------------------------------------

JOBS_DIR = "results/jobs"


def _job_name(wildcards):
    """A job's name under results/jobs/<kind>/: its wildcard values, or `all`."""
    return os.path.join(*[str(v) for v in wildcards]) if len(wildcards) else "all"


def job_params(kind, spec):
    """`params` for a job whose verb reads its config slice from a job file. Unpack them with
    `params: **job_params("curate", lambda w: ...)` and pass `--spec {params.spec}`.

    - `content`: the slice without the operational keys of `kind` (longthought.jobspec:
      OPERATIONAL) as canonical JSON. Snakemake compares it: a changed content knob re-runs.
    - `spec`: the path of the job file holding the whole slice, written here (content-addressed
      under results/jobs/<kind>/, so a concurrent dry run never rewrites it). Its function takes
      `output`, which makes Snakemake count it as derived from the output and leave it out of
      the params trigger: an operational change reaches the job and re-runs nothing.

    `spec(wildcards)` returns the slice (any JSON-able object).
    """

    def content(wildcards):
        return as_json(_jobspec.content(kind, spec(wildcards)))

    def job_file(wildcards, output):
        return _jobspec.write_job_file(
            JOBS_DIR, kind, _job_name(wildcards), spec(wildcards)
        )

    return {"content": content, "spec": job_file}


def operational(value):
    """A param that reaches the job but never re-runs it (e.g. `cache=operational(cache_dir)`):
    its function takes `output`, so Snakemake counts it as derived and does not compare it.
    `value` is a constant or a function of the wildcards."""

    def get(wildcards, output):
        return value(wildcards) if callable(value) else value

    return get


def config_params():
    """`params` for a job that reads the whole resolved config (`--config {params.config_file}`):
    `config_content` (compared: the config without its operational keys, see
    longthought.jobspec OPERATIONAL["config"]) and `config_file` (the job file, not compared).
    """
    return {
        "config_content": lambda w: as_json(_jobspec.content("config", config)),
        "config_file": operational(
            lambda w: _jobspec.write_job_file(JOBS_DIR, "config", "resolved", config)
        ),
    }


def content_input(paths):
    """Input files consumed by their content: `ancient()`, so a re-run upstream job that wrote
    the same content (its output touched) does not make this job re-run. Pair it with
    `content_digests(paths)` in `params`, and make the producing rule a `checkpoint` whose verb
    writes the digest (longthought.digest.write_digest): Snakemake then re-evaluates this job
    once the producer has finished, and runs it only if a digest changed.
    `paths` is a function of the wildcards (or a list)."""

    def files(wildcards):
        return [ancient(p) for p in (paths(wildcards) if callable(paths) else paths)]

    return files


def content_digests(paths):
    """The param of `content_input`: {path: recorded content digest} of those files."""

    def digests(wildcards):
        files = paths(wildcards) if callable(paths) else paths
        return as_json({p: _digest.recorded_digest(p) for p in files})

    return digests


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
    """A task's job spec for `longthought traces` (the whole teacher block: its limits, pricing
    and budget are operational, see longthought.jobspec; `round` is `traces_round`)."""
    spec = config["tasks"][task]
    if "import" in spec:
        return {"task": spec, "round": traces_round(task)}
    return {
        "task": spec,
        "teacher_name": spec["teacher"],
        "teacher": config["teachers"][spec["teacher"]],
        "prompt_name": spec["prompt"],
        "prompt": config["prompts"][spec["prompt"]],
        "round": traces_round(task),
    }


def traces_round(task):
    """Which collection round the traces of `task` are due for: 0 before the first, the recorded
    round once complete, one more while the table is partial (failed or budget-skipped rows).

    A param: a partial table makes the next run re-run `traces`, which asks only for the missing
    rows (the rest come from the request cache). The value converges: the job records the round
    it ran as, so a completed table asks for nothing more.
    """
    record = _digest.read_record(f"results/traces/{task}.parquet") or {}
    done = int(record.get("round") or 0)
    return done + 1 if record.get("partial") else done


def task_problems(wildcards):
    spec = config["tasks"][wildcards.task]
    return [] if "import" in spec else [f"results/problems/{spec['pool']}.parquet"]


def dataset_traces(wildcards):
    return [
        f"results/traces/{t}.parquet"
        for t in config["datasets"][wildcards.dataset]["tasks"]
    ]


def decontam_benchmarks(dataset):
    benches = (
        config["datasets"][dataset].get("decontaminate", {}).get("benchmarks", "all")
    )
    if benches == "all":
        benches = config["evaluation"]["benchmarks"]
    return [f"results/benchmarks/{b}.parquet" for b in benches or []]


def curate_inputs(wildcards):
    """Every table curation reads by content: its traces and the decontamination benchmarks."""
    return dataset_traces(wildcards) + decontam_benchmarks(wildcards.dataset)


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


# Resources whose value Snakemake converts to a size or a duration: it refuses None for them.
_SIZED_RESOURCES = (
    "mem",
    "mem_mb",
    "mem_mib",
    "disk",
    "disk_mb",
    "disk_mib",
    "runtime",
)


def _profile_default(key, wildcards, aux):
    """The profile's `default-resources` value of `key` for this job (None if it sets none)."""
    defaults = workflow.resource_settings.default_resources
    if defaults is None or key not in list(defaults):
        return 0 if key in _SIZED_RESOURCES else None
    return defaults[key].evaluate(wildcards, **aux).value


def resources_from(blocks, wildcard=None):
    """Snakemake `resources` from config `resources:` blocks, one per value of `wildcard`.

    `blocks` maps a wildcard value (e.g. a student name) to its block, or has one entry when
    the rule has no such wildcard. Each resource key set in some block gets a function that
    picks this job's value; where this job's block leaves the key unset (or null), the
    profile's `default-resources` value applies (e.g. `runtime: 60`, `mem_mb: 4000`), and a key
    the profile does not set stays unset. Changing resources never re-runs a job.
    """
    keys = sorted(
        {k for b in blocks.values() for k, v in (b or {}).items() if v is not None}
    )

    def pick(key):
        def value(wildcards, **aux):
            name = getattr(wildcards, wildcard) if wildcard else next(iter(blocks))
            v = (blocks.get(name) or {}).get(key)
            return v if v is not None else _profile_default(key, wildcards, aux)

        return value

    return {k: pick(k) for k in keys}


def student_resources():
    return resources_from(
        {s: spec.get("resources") for s, spec in config["students"].items()}, "student"
    )


def eval_resources():
    return resources_from({"evaluation": config["evaluation"].get("resources")})


def eval_spec(model, bench):
    """The job spec of `longthought generate` (batch size, checker workers and an API model's
    limits/pricing/budget are operational, see longthought.jobspec)."""
    ev = config["evaluation"]
    return {
        "model": model_spec(model),
        "benchmark": bench,
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
        "results/config.yaml",
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


def generalize_specs(model):
    """The job spec of `longthought generalize`: {set name: that set's spec}."""
    return {gset: generalize_spec(model, gset) for gset in generalization_sets()}


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
    """A student's config without `resources` (placement) and its generation `backend`; the job
    spec of `longthought train` (`checkpoint_every` is operational, see longthought.jobspec).
    """
    return {
        k: v
        for k, v in config["students"][student].items()
        if k not in ("resources", "backend")
    }


def init_spec(student):
    """What builds the untrained student: the base model and the tiny model's sizes. Training
    knobs (stages, precision...) do not rebuild it, so they do not re-run `<student>@init`'s
    evaluation either."""
    spec = config["students"][student]
    return {k: spec[k] for k in ("base_model", "tiny") if k in spec}


def report_spec():
    """The job spec of `longthought report`. Its `inputs` are the rule's own input files (the
    job file carries the long lists; `inputs` is operational, since Snakemake already re-runs
    the report when its input files change)."""
    return {
        "k": config["evaluation"].get("k", [1]),
        "report": config.get("report") or {},
        "pair": (config.get("generalization") or {}).get("models", []),
        "inputs": {
            "generations": generation_outputs(),
            "funnels": funnel_outputs(),
            "models": student_outputs(),
            "generalization": generalization_outputs(),
            "tti_cards": ["results/tti/longthought.yaml", *tti_cards()],
            "rubric": "config/tti/rubric.yaml",
        },
    }


def tti_cards():
    """The published projects' TTI scorecards the leaderboard compares this run with."""
    return sorted(glob.glob("config/tti/projects/*.yaml"))


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
