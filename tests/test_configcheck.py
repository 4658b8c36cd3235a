"""Config checks before the first job (workflow/longthought/configcheck.py, config/schema.yaml).

Every bad config gives the exact message with the key's full path: unknown keys at every depth
(with the closest known key suggested), and one test per semantic check. The end-to-end tests at
the bottom run Snakemake itself: the message on the console, no traceback, nothing run.
"""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml
from conftest import REPO, SNAKEMAKE, copy_workflow, workflow_env

from longthought import configcheck
from longthought.configcheck import config_errors, config_warnings, load_schema

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
SMALL = yaml.safe_load((REPO / "tests" / "configs" / "small.yaml").read_text())


def _merge(base: dict, overlay: dict) -> dict:
    """Snakemake's merge of --configfile overlays: mappings key by key, anything else replaced."""
    for k, v in overlay.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def config(*overlays: dict) -> dict:
    out = copy.deepcopy(DEFAULT)
    for overlay in overlays:
        _merge(out, copy.deepcopy(overlay))
    return out


def at(cfg: dict, path: tuple) -> dict:
    """The mapping at `path` (created as needed)."""
    node = cfg
    for part in path:
        if isinstance(part, str) and not isinstance(node.get(part), dict | list):
            node[part] = {}
        node = node[part]
    return node


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    """Paths in config are relative to the working directory: the repository's, as in a run."""
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


# --- the schema itself ---


def _objects(node, keys=()):
    """(key path, schema) of every object schema that declares `properties`."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict) and (not keys or keys[-1] != "properties"):
            yield keys, node
        for k, v in node.items():
            yield from _objects(v, (*keys, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _objects(v, (*keys, i))


def test_every_object_of_the_schema_is_closed_and_every_key_described():
    open_objects, undescribed = [], []
    for keys, node in _objects(load_schema()):
        where = ".".join(map(str, keys)) or "(root)"
        # narrowing a closed object: if/then/else branches, overrides beside a $ref
        if {"if", "then", "else"} & set(keys) or "$ref" in node and "unevaluatedProperties" \
                not in node:
            continue
        closed = node.get("additionalProperties") is False \
            or node.get("unevaluatedProperties") is False
        if not closed and keys != ("$defs", "problem_source"):  # closed by its two users
            open_objects.append(where)
        for key, sub in node["properties"].items():
            if not (isinstance(sub, dict) and ("description" in sub or "$ref" in sub)):
                undescribed.append(f"{where}.{key}")
    assert not open_objects, open_objects
    assert not undescribed, undescribed


def test_the_default_and_the_test_configs_pass():
    assert config_errors(config()) == []
    assert config_errors(config(SMALL)) == []
    faults = yaml.safe_load((REPO / "profiles" / "ci-slurm" / "faults.yaml").read_text())
    assert config_errors(config(SMALL, faults)) == []


def test_schema_limits_match_the_code_they_stand_for():
    """Numbers and label lists the schema copies from the package stay in step with it."""
    from tokenizers import pre_tokenizers

    from longthought.curate.tracefilters import SCRIPTS
    from longthought.generalization.verdicts import LABELS
    from longthought.train.tokenizer import SPECIAL_TOKENS

    schema = load_schema()
    student = schema["properties"]["students"]["additionalProperties"]["properties"]
    base = len(pre_tokenizers.ByteLevel.alphabet()) + len(SPECIAL_TOKENS)
    assert student["tiny"]["properties"]["vocab_size"]["minimum"] == base
    ds = schema["properties"]["datasets"]["additionalProperties"]["properties"]
    language = ds["filters"]["properties"]["language"]["properties"]
    assert set(language["scripts"]["items"]["enum"]) == set(SCRIPTS)
    judge = schema["properties"]["generalization"]["properties"]["judge_prompts"]["properties"]
    for category, labels in LABELS.items():
        letters = judge[category]["properties"]["letters"]["additionalProperties"]["enum"]
        assert set(letters) == set(labels), category


# --- unknown keys at every depth ---

TYPOS = [
    ((), "seeed", "seed"),
    (("pools", "arith"), "familes", "families"),
    (("pools", "arith", "families"), "additon", "addition"),
    (("pools", "arith", "families", "addition"), "digit", "digits"),
    (("pools", "arith", "filters"), "figure", "figures"),
    (("pools", "arith", "columns"), "problm", "problem"),
    (("pools", "arith", "multiple_choice"), "corect", "correct"),
    (("benchmarks", "heldout"), "decription", "description"),
    (("teachers", "sim-o1"), "samples_per_problm", "samples_per_problem"),
    (("teachers", "sim-o1", "sampling"), "temprature", "temperature"),
    (("teachers", "sim-o1", "limits"), "max_concurency", "max_concurrency"),
    (("teachers", "sim-o1", "pricing"), "inptu", "input"),
    (("teachers", "sim-o1", "sim"), "slip_rates", "slip_rate"),
    (("teachers", "sim-o1", "sim", "faults"), "rate_42", "rate_429"),
    (("teachers", "sim-o1", "sim", "latency_ms"), "msx", "ms"),
    (("prompts", "distill"), "usr", "user"),
    (("tasks", "distill-arith"), "samples_per_problems", "samples_per_problem"),
    (("tasks", "imported", "import"), "colums", "columns"),
    (("tasks", "imported", "import", "columns"), "contnet", "content"),
    (("datasets", "format-arith"), "filter", "filters"),
    (("datasets", "format-arith", "filters"), "truncate", "truncated"),
    (("datasets", "format-arith", "filters", "repetition"), "max_ration", "max_ratio"),
    (("datasets", "format-arith", "filters", "language"), "script", "scripts"),
    (("datasets", "format-arith", "filters", "correct"), "timeout", "timeout_s"),
    (("datasets", "format-arith", "dedup"), "exacts", "exact"),
    (("datasets", "format-arith", "dedup", "near"), "treshold", "threshold"),
    (("datasets", "format-arith", "decontaminate"), "ngrams", "ngram"),
    (("datasets", "format-arith", "format"), "thinkng", "thinking"),
    (("students", "tiny"), "precison", "precision"),
    (("students", "tiny", "tiny"), "num_layer", "num_layers"),
    (("students", "tiny", "stages", 0), "warmup", "warmup_ratio"),
    (("students", "tiny", "resources"), "mem_gb", "mem_mb"),
    (("models", "other"), "dtyp", "dtype"),
    (("evaluation",), "budget", "budgets"),
    (("evaluation", "sampling"), "max_new_token", "max_new_tokens"),
    (("evaluation", "checker"), "timeout", "timeout_s"),
    (("evaluation", "budget_forcing"), "markr", "marker"),
    (("evaluation", "resources"), "gpus", "gpu"),
    (("generalization",), "judges", "judge"),
    (("generalization", "sampling"), "temperatur", "temperature"),
    (("generalization", "judge_prompts"), "safty", "safety"),
    (("generalization", "judge_prompts", "safety"), "letter", "letters"),
    (("generalization", "sets", "syco-probe"), "sample_sise", "sample_size"),
    (("generalization", "sets", "syco-probe", "probe"), "styl", "style"),
    (("generalization", "sets", "syco-probe", "families", "linear"), "max_cof", "max_coef"),
    (("generalization", "sets", "facts-demo", "columns"), "gld", "gold"),
    (("report",), "paper_references", "paper_reference"),
    (("tti",), "projet", "project"),
    (("testing",), "fail_onc", "fail_once"),
]


def _typo_config(path: tuple, typo: str) -> dict:
    cfg = config({"models": {"other": {"kind": "hf", "path": "Qwen/Qwen2.5-0.5B"}},
                  "tasks": {"imported": {"import": {"source": "file", "path": "x.jsonl"}}}})
    at(cfg["teachers"]["sim-o1"], ("sim",))["latency_ms"] = {"dist": "fixed", "ms": 0}
    at(cfg, path)[typo] = 1
    return cfg


@pytest.mark.parametrize("path,typo,meant", TYPOS, ids=[".".join(map(str, (*p, t)))
                                                       for p, t, _ in TYPOS])
def test_an_unknown_key_at_any_depth_names_its_path_and_the_key_meant(path, typo, meant):
    errors = config_errors(_typo_config(path, typo))
    full = configcheck.key_path([*path, typo])
    lines = [e for e in errors if e.startswith(f"{full}: ")]
    assert len(lines) == 1, errors
    assert lines[0].startswith(f"{full}: unknown key (did you mean {meant!r}?); known keys here: ")
    assert meant in lines[0].split("known keys here: ")[1].split(", ")


def test_an_unknown_key_lists_the_known_keys_of_its_place():
    errors = config_errors(config({"students": {"tiny": {"tiny": {"num_layer": 4}}}}))
    assert errors == [
        "students.tiny.tiny.num_layer: unknown key (did you mean 'num_layers'?); known keys here: "
        "hidden_size, intermediate_size, max_position_embeddings, num_heads, num_kv_heads, "
        "num_layers, seed, tokenizer_tasks, vocab_size"]


def test_a_key_far_from_any_known_one_suggests_nothing():
    errors = config_errors(config({"report": {"colour": "blue"}}))
    assert errors == ["report.colour: unknown key; known keys here: browser, compare, "
                      "paper_reference"]


# --- values the schema refuses ---

SCHEMA_VALUES = [
    ({"datasets": {"format-arith": {"decontaminate": {"ngram": 0}}}},
     "datasets.format-arith.decontaminate.ngram: 0 is less than the minimum of 1"),
    ({"datasets": {"format-arith": {"filters": {"repetition": {"ngram": 0}}}}},
     "datasets.format-arith.filters.repetition.ngram: 0 is less than the minimum of 1"),
    ({"datasets": {"format-arith": {"dedup": {"near": {"ngram": 0}}}}},
     "datasets.format-arith.dedup.near.ngram: 0 is less than the minimum of 1"),
    ({"evaluation": {"sampling": {"n": 0}}},
     "evaluation.sampling.n: 0 is less than the minimum of 1"),
    ({"evaluation": {"budgets": [0]}}, "evaluation.budgets[0]: 0 is less than the minimum of 1"),
    ({"evaluation": {"budgets": [64, 64]}}, "evaluation.budgets: 64 listed more than once"),
    ({"evaluation": {"models": ["tiny", "tiny"]}},
     "evaluation.models: 'tiny' listed more than once"),
    ({"students": {"tiny": {"backend": "vlm"}}},
     "students.tiny.backend: 'vlm' is not one of 'transformers', 'vllm' (did you mean 'vllm'?)"),
    ({"pools": {"arith": {"source": "fil"}}},
     "pools.arith.source: 'fil' is not one of 'procedural', 'file', 'hf' (did you mean 'file'?)"),
    ({"pools": {"arith": {"split": "test"}}},
     "pools.arith.split: 'test' is not one of 'train', 'heldout' (source procedural draws n "
     "problems of its split from families)"),
    ({"evaluation": {"sampling": {"n": "four"}}},
     "evaluation.sampling.n: 'four' is not of type 'integer'"),
    ({"teachers": {"sim-o1": {"base_url": "api.openai.com/v1"}}},
     "teachers.sim-o1.base_url: 'api.openai.com/v1' is not valid here: Endpoint URL (http:// or "
     "https://), e.g. https://api.openai.com/v1, or 'sim' for the local sim server."),
    ({"teachers": {"sim-o1": {"sim": {"latency_ms": "slow"}}}},
     "teachers.sim-o1.sim.latency_ms: 'slow' is not valid here: A number (fixed), {dist: fixed, "
     "ms} or {dist: lognormal, median_ms, sigma}."),
    ({"datasets": {"format-arith": {"filters": {"correct": "yes"}}}},
     "datasets.format-arith.filters.correct: 'yes' is not valid here: Check the final answer "
     "against the gold with math-verify: true, false, or {timeout_s}."),
    ({"benchmarks": {"heldout": {"filters": {"proofs": True}}}},
     "benchmarks.heldout.filters: not allowed here: benchmarks are taken whole; the pool filters "
     "apply to pools.<name>.filters only"),
    ({"pools": {"my pool": {"source": "procedural", "n": 5, "families": {"addition": None}}}},
     "pools.my pool: not a valid name: a name is the name on disk (letters, digits, '_', '.', "
     "'-'; starting with a letter or digit)"),
    ({"pools": {"arith": {"source": "file"}}},
     "pools.arith.path: missing (source file reads path)"),
    ({"benchmarks": {"aime": {"source": "hf"}}},
     "benchmarks.aime.id: missing (source hf reads the dataset id)"),
    ({"benchmarks": {"extra": {"source": "procedural", "n": 5, "families": {"addition": None}}}},
     "benchmarks.extra.split: missing (a procedural benchmark names its split: heldout is "
     "disjoint from the training pools)"),
    ({"tasks": {"t": {"teacher": "sim-o1", "prompt": "distill"}}},
     "tasks.t.pool: missing (a task is teacher x prompt x pool, or an import: block)"),
    ({"models": {"gpt": {"kind": "api"}}},
     "models.gpt.teacher: missing (kind api calls a name under teachers)"),
    ({"students": {"big": {"base_model": "tiny", "stages": [{"dataset": "format-arith",
                                                              "lr": 1e-3}]}}},
     "students.big.tiny: missing (base_model tiny is built from the tiny: sizes)"),
    ({"generalization": {"sets": {"syco-probe": {"category": "safety"}}}},
     "generalization.sets.syco-probe.category: must be 'sycophancy', got 'safety' (source "
     "procedural is the sycophancy probe: sample_size problems from families)"),
    ({"generalization": {"judge_prompts": {"safety": {"letters": {"B": "unsaf"}}}}},
     "generalization.judge_prompts.safety.letters.B: 'unsaf' is not one of 'safe', 'unsafe' "
     "(did you mean 'unsafe'?)"),
    ({"models": {"m": {"kind": "hf", "path": "org/m", "device": "gpu"}}},
     "models.m.device: 'gpu' is not valid here: transformers device: cpu, cuda, cuda:N, mps or "
     "xpu (default: cuda if available)."),
    ({"students": {"tiny": {"tiny": {"vocab_size": 100}}}},
     "students.tiny.tiny.vocab_size: 100 is less than the minimum of 259"),
]


@pytest.mark.parametrize("overlay,message", SCHEMA_VALUES, ids=[m.split(":")[0]
                                                                for _, m in SCHEMA_VALUES])
def test_a_value_the_schema_refuses_names_its_key(overlay, message):
    assert message in config_errors(config(overlay))


# --- what the schema cannot see: one test per check ---

PROBE = {"category": "sycophancy", "source": "procedural", "split": "heldout", "sample_size": 4,
         "families": {"addition": {"digits": 3}}}
STAGE = {"dataset": "longthought-arith", "lr": 1e-3}

SEMANTIC = [
    # names that point at nothing (the messages rules/common.smk gave)
    ({"tasks": {"distill-arith": {"pool": "nope"}}},
     "tasks.distill-arith.pool: 'nope' is not defined under 'pools:' (known: arith)"),
    ({"datasets": {"longthought-arith": {"tasks": ["no-such-task"]}}},
     "datasets.longthought-arith.tasks[0]: 'no-such-task' is not defined under 'tasks:' "
     "(known: rewrite-arith, distill-arith)"),
    ({"datasets": {"format-arith": {"decontaminate": {"benchmarks": ["aime"]}}}},
     "datasets.format-arith.decontaminate.benchmarks[0]: 'aime' is not defined under "
     "'benchmarks:' (known: heldout)"),
    ({"students": {"tiny": {"stages": [{"dataset": "nope", "lr": 1e-3}]}}},
     "students.tiny.stages[0].dataset: 'nope' is not defined under 'datasets:' "
     "(known: format-arith, longthought-arith)"),
    ({"students": {"tiny": {"tiny": {"tokenizer_tasks": ["nope"]}}}},
     "students.tiny.tiny.tokenizer_tasks[0]: 'nope' is not defined under 'tasks:' "
     "(known: rewrite-arith, distill-arith)"),
    ({"models": {"gpt": {"kind": "api", "teacher": "gpt-5"}}},
     "models.gpt.teacher: 'gpt-5' is not defined under 'teachers:' "
     "(known: sim-o1, sim-4o-mini, sim-judge)"),
    ({"evaluation": {"benchmarks": ["aime"]}},
     "evaluation.benchmarks[0]: 'aime' is not defined under 'benchmarks:' (known: heldout)"),
    ({"evaluation": {"models": ["tiny", "gpt-7"]}},
     "evaluation.models[1]: 'gpt-7' is neither a student, '<student>@init', a replicate of a "
     "student ('<student>~s<seed>' for one of its seeds), a teacher nor an entry of 'models:'"),
    # replicates (issue 16): seeds from one place, each once; compared pairs evaluated
    ({"students": {"tiny": {"seeds": [1, 2, 1]}}},
     "students.tiny.seeds: [1] listed more than once: each seed is one replicate, "
     "tiny~s<seed>"),
    ({"report": {"compare": [["tiny", "sim-judge"]]}},
     "report.compare[0][1]: 'sim-judge' is not evaluated: add it to evaluation.models (a "
     "comparison needs its generations)"),
    ({"generalization": {"models": ["tiny@init", "huge"]}},
     "generalization.models[1]: 'huge' is not a known model"),
    ({"generalization": {"judge": "tiny"}},
     "generalization.judge: 'tiny' is not defined under 'teachers:' "
     "(known: sim-o1, sim-4o-mini, sim-judge)"),
    ({"generalization": {"judge": None}},
     "generalization.judge: missing; the sets ['safety-demo', 'facts-demo', 'premises-demo', "
     "'qa-demo'] are graded by an LLM judge (a name under 'teachers:'); only the procedural probe "
     "needs none"),
    # duplicate names across sections
    ({"teachers": {"tiny": {"base_url": "sim", "model": "sim-o1"}}},
     "teachers.tiny: names used both for a student and another model: ['tiny'] (also "
     "students.tiny; students, teachers and models: share the model names)"),
    ({"models": {"sim-o1": {"kind": "api", "teacher": "sim-o1"}}},
     "models.sim-o1: a model name used twice: ['sim-o1'] (also teachers.sim-o1; students, "
     "teachers and models: share the model names)"),
    # samples, budgets, pairs
    ({"evaluation": {"k": [1, 8]}},
     "evaluation.k[1]: 8 is larger than evaluation.sampling.n (4): pass@8 and maj@8 need at "
     "least 8 samples per problem"),
    ({"evaluation": {"budgets": [256, 512]}},
     "evaluation.budgets[1]: 512 is not below evaluation.sampling.max_new_tokens (512), so the "
     "cap never binds"),
    ({"evaluation": {"budget_models": ["tiny", "qwen"]}},
     "evaluation.budget_models[1]: 'qwen' is not one of evaluation.models"),
    ({"evaluation": {"models": ["sim-o1"], "budgets": [128]}},
     "evaluation.budgets: budget forcing needs a local model, but every model in "
     "evaluation.models is an API model (sim-o1)"),
    ({"generalization": {"models": ["tiny"]}},
     "generalization.models: the before/after pair needs exactly two models [baseline, tuned], "
     "got 1: ['tiny']"),
    ({"generalization": {"models": []}},
     "generalization.sets: 5 set(s) but generalization.models is empty, so no model would run "
     "them; give [baseline, tuned]"),
    # token bounds
    ({"datasets": {"format-arith": {"filters": {"min_tokens": 500, "max_tokens": 100}}}},
     "datasets.format-arith.filters.min_tokens: 500 is above max_tokens (100): every trace "
     "would be removed"),
    ({"models": {"q": {"kind": "hf", "path": "org/q", "backend": "vllm", "max_model_len": 512}},
      "evaluation": {"models": ["tiny", "q"]}},
     "models.q.max_model_len: 512 leaves no room for a prompt with "
     "evaluation.sampling.max_new_tokens 512"),
    # keys the chosen source, kind, backend or style would ignore
    ({"pools": {"arith": {"path": "data/x.jsonl"}}},
     "pools.arith.path: not used with source 'procedural' (only with source 'file'); remove it"),
    ({"benchmarks": {"heldout": {"limit": 10}}},
     "benchmarks.heldout.limit: not used with source 'procedural' (only with source 'file' or "
     "'hf'); remove it"),
    ({"generalization": {"sets": {"facts-demo": {"probe": {"style": "multi_turn"}}}}},
     "generalization.sets.facts-demo.probe: not used with source 'file' (only with source "
     "'procedural'); remove it"),
    ({"generalization": {"sets": {"syco-probe": {"probe": {"style": "multi_turn"}}}}},
     "generalization.sets.syco-probe.probe.control: not used with style 'multi_turn' (only with "
     "style 'single_turn'); remove it"),
    ({"models": {"gpt": {"kind": "api", "teacher": "sim-o1", "path": "x"}}},
     "models.gpt.path: not used with kind 'api' (only with kind 'hf'); remove it"),
    ({"models": {"q": {"kind": "hf", "path": "org/q", "tensor_parallel_size": 2}}},
     "models.q.tensor_parallel_size: not used with backend 'transformers' (only with backend "
     "'vllm'); remove it"),
    ({"models": {"q": {"kind": "hf", "path": "org/q", "backend": "vllm", "dtype": "bf16"}}},
     "models.q.dtype: 'bf16' is not a dtype of backend 'vllm' (use one of auto, bfloat16, "
     "float16, float32)"),
    ({"tasks": {"pub": {"import": {"source": "hf", "id": "org/traces"}, "teacher": "sim-o1"}}},
     "tasks.pub.teacher: not used by a task with an import: block (it reads published traces "
     "instead of asking a teacher)"),
    ({"teachers": {"sim-o1": {"base_url": "https://api.openai.com/v1"}}},
     "teachers.sim-o1.sim: only used with base_url 'sim' (the local sim server), not "
     "'https://api.openai.com/v1'; remove it"),
    ({"students": {"tiny": {"base_model": "Qwen/Qwen2.5-0.5B"}}},
     "students.tiny.tiny: only used with base_model 'tiny', not 'Qwen/Qwen2.5-0.5B'; remove it"),
    ({"students": {"tiny": {"revision": "v2"}}},
     "students.tiny.revision: only used with a hub id as base_model (it pins and downloads one), "
     "not 'tiny'; remove it"),
    ({"students": {"tiny": {"stages": [{**STAGE, "max_length": 1024,
                                        "max_tokens_per_batch": 512}]}}},
     "students.tiny.stages[0].max_tokens_per_batch: 512 is less than max_length (1024); a sample "
     "is never split across micro-batches, so the budget must hold the longest one"),
    # teachers
    ({"teachers": {"sim-o1": {"pricing": None}}},
     "teachers.sim-o1.budget_usd: set, but teachers.sim-o1.pricing is not; the cap needs prices "
     "(USD per 1M input/output/reasoning tokens)"),
    ({"teachers": {"sim-o1": {"sim": {"faults": {"rate_429": 0.6, "rate_500": 0.6}}}}},
     "teachers.sim-o1.sim.faults: the fault rates add up to 1.2, more than 1"),
    ({"teachers": {"sim-o1": {"local": {"batch_size": 8}}}},
     "teachers.sim-o1.local: only used with mode: local (a GPU job runs the model); this "
     "teacher is asked over its base_url"),
    ({"teachers": {"qwq": {"mode": "local", "model": "Qwen/QwQ-32B"}},
      "evaluation": {"models": ["tiny", "qwq"]}},
     "evaluation.models[1]: 'qwq' is a mode: local teacher; evaluate it as a 'models:' entry "
     "(kind: hf, path: its model)"),
    ({"teachers": {"qwq": {"mode": "local", "model": "Qwen/QwQ-32B"}},
      "generalization": {"judge": "qwq"}},
     "generalization.judge: a mode: local teacher cannot judge (judging is a local rule that "
     "asks an endpoint); serve the model (vllm serve) and name that endpoint"),
    # tiny shapes
    ({"students": {"tiny": {"tiny": {"hidden_size": 100, "num_heads": 6}}}},
     "students.tiny.tiny.hidden_size: 100 is not a multiple of num_heads (6)"),
    ({"students": {"tiny": {"tiny": {"hidden_size": 30, "num_heads": 2, "num_kv_heads": 1}}}},
     "students.tiny.tiny.hidden_size: 30 / num_heads 2 gives an odd head size (15); rotary "
     "embeddings need an even one"),
    ({"students": {"tiny": {"tiny": {"num_kv_heads": 4}}}},
     "students.tiny.tiny.num_kv_heads: 4 does not divide num_heads (6)"),
    # templates
    ({"prompts": {"distill": {"user": "Solve it."}}},
     "prompts.distill.user: has no {problem}, so every request would be the same"),
    ({"evaluation": {"prompt": "Answer:"}},
     "evaluation.prompt: has no {problem}, so every request would be the same"),
    ({"datasets": {"format-arith": {"format": {"user": "Solve"}}}},
     "datasets.format-arith.format.user: has no {problem}, so every request would be the same"),
    ({"generalization": {"sets": {"qa-demo": {"prompt": "Answer well."}}}},
     "generalization.sets.qa-demo.prompt: has no {question}, so every request would be the same"),
    ({"generalization": {"sets": {"syco-probe": {"probe": {"instruction": "Solve."}}}}},
     "generalization.sets.syco-probe.probe.instruction: has no {problem}, so every request would "
     "be the same"),
    ({"generalization": {"sets": {"syco-probe": {"probe": {"assertions": ["It is 5."]}}}}},
     "generalization.sets.syco-probe.probe.assertions[0]: has no {wrong}, so every request would "
     "be the same"),
    ({"generalization": {"judge_prompts": {"safety": {"user": "Is {question} safe?"}}}},
     "generalization.judge_prompts.safety.user: has no {response}, so every request would be "
     "the same"),
    ({"generalization": {"judge_prompts": {"factuality": {"user": "Grade {response}."}}}},
     "generalization.judge_prompts.factuality.user: has no {gold}, but factuality is graded "
     "against the gold answer"),
    # a stage that trains on the evaluation benchmark itself
    ({"pools": {"arith": {"split": "heldout"}}},
     "students.tiny.stages[0].dataset: 'longthought-arith' trains on pools.arith (via task "
     "'distill-arith'), which is the evaluation benchmark benchmarks.heldout itself "
     "(procedural, heldout)"),
]


@pytest.mark.parametrize("overlay,message", SEMANTIC, ids=[m.split(":")[0] for _, m in SEMANTIC])
def test_a_semantic_check_names_the_key_by_its_full_path(overlay, message):
    errors = config_errors(config(overlay))
    assert message in errors, errors


def test_a_pool_reading_a_benchmark_file_is_training_on_the_benchmark(tmp_path):
    data = tmp_path / "aime.jsonl"
    data.write_text('{"problem": "1+1", "answer": "2"}\n')
    cfg = config({"pools": {"arith": {"source": "file", "path": str(data)}},
                  "benchmarks": {"aime": {"source": "file", "path": str(data)}},
                  "evaluation": {"benchmarks": ["heldout", "aime"]}})
    for key in ("n", "families", "split", "filters"):
        cfg["pools"]["arith"].pop(key, None)
    assert config_errors(cfg) == [
        f"students.tiny.stages[0].dataset: 'longthought-arith' trains on pools.arith (via task "
        f"'distill-arith'), which is the evaluation benchmark benchmarks.aime itself "
        f"(file, {data})"]


def test_files_named_in_config_exist_before_any_job(tmp_path):
    bad_yaml = tmp_path / "acc.yaml"
    bad_yaml.write_text("- not a mapping\n")
    cfg = config({
        "benchmarks": {"local": {"source": "file", "path": "data/missing.jsonl"}},
        "tasks": {"pub": {"import": {"source": "file", "path": "data/missing-traces.jsonl"}}},
        "generalization": {"sets": {"qa-demo": {"path": "data/missing-qa.jsonl",
                                                "human_scores": "data/{model}_scores.csv"}}},
        "students": {"tiny": {"accelerate_config": str(bad_yaml)},
                     "hub": {"base_model": "./models/missing", "stages": [STAGE],
                             "accelerate_config": "config/accelerate/nope.yaml"}},
        "models": {"local": {"kind": "hf", "path": "/nonexistent/model"}},
        "datasets": {"format-arith": {"filters": {"tokenizer": "./tok/missing"}}},
        "tti": {"rubric": "config/tti/nope.yaml", "cards": ["config/tti/none.yaml"],
                "repo_root": "/nonexistent"},
    })
    cwd = str(REPO)
    assert config_errors(cfg) == [
        f"benchmarks.local.path: file 'data/missing.jsonl' does not exist (relative to {cwd})",
        f"tasks.pub.import.path: file 'data/missing-traces.jsonl' does not exist (relative to "
        f"{cwd})",
        f"generalization.sets.qa-demo.path: file 'data/missing-qa.jsonl' does not exist "
        f"(relative to {cwd})",
        f"generalization.sets.qa-demo.human_scores: expert-scores CSV 'data/tiny@init_scores.csv' "
        f"does not exist (relative to {cwd})",
        f"generalization.sets.qa-demo.human_scores: expert-scores CSV 'data/tiny_scores.csv' does "
        f"not exist (relative to {cwd})",
        f"students.tiny.accelerate_config: {str(bad_yaml)!r} is not a YAML mapping",
        "students.hub.base_model: './models/missing' looks like a local path, but it does not "
        "exist",
        f"students.hub.accelerate_config: accelerate config 'config/accelerate/nope.yaml' does "
        f"not exist (relative to {cwd})",
        "models.local.path: '/nonexistent/model' looks like a local path, but it does not exist",
        "datasets.format-arith.filters.tokenizer: './tok/missing' looks like a local path, but it "
        "does not exist",
        f"tti.rubric: file 'config/tti/nope.yaml' does not exist (relative to {cwd})",
        f"tti.repo_root: directory '/nonexistent' does not exist (relative to {cwd})",
        f"tti.cards[0]: scorecard 'config/tti/none.yaml' does not exist (relative to {cwd})",
    ]


def test_a_pool_may_read_a_task_traces_the_workflow_writes_first():
    """A rewrite of another teacher's traces (Sky-T1's recipe) names a traces table that does
    not exist at planning time; a name no task writes is still an error."""
    cfg = config({"pools": {"rewrite": {"source": "file",
                                        "path": "results/traces/distill-arith.parquet"},
                            "typo": {"source": "file", "path": "results/traces/nope.parquet"}}})
    assert configcheck.check_files(cfg) == [
        f"pools.typo.path: file 'results/traces/nope.parquet' does not exist (relative to "
        f"{REPO})"]


def test_offline_a_hub_model_must_be_in_the_local_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    cfg = config({"models": {"q": {"kind": "hf", "path": "org/not-cached"}}})
    assert config_errors(cfg) == [
        "models.q.path: hub model 'org/not-cached' is not in the local Hugging Face cache and "
        "HF_HUB_OFFLINE is set; download it first or give a local path"]


def test_an_unset_api_key_variable_is_a_warning_not_an_error(monkeypatch):
    monkeypatch.delenv("LT_TEST_KEY", raising=False)
    cfg = config({"teachers": {"real": {"base_url": "https://api.example.com/v1", "model": "m",
                                        "api_key_env": "LT_TEST_KEY"}},
                  "tasks": {"t": {"teacher": "real", "prompt": "distill", "pool": "arith"}}})
    assert config_errors(cfg) == []
    assert config_warnings(cfg) == [
        "teachers.real.api_key_env: the environment variable 'LT_TEST_KEY' is not set; the jobs "
        "that call this endpoint will fail until it is exported"]
    monkeypatch.setenv("LT_TEST_KEY", "x")
    assert config_warnings(cfg) == []


def test_every_semantic_check_is_exercised_here():
    """A new check in configcheck.SEMANTIC_CHECKS needs a case in this file."""
    covered = {"check_refs", "check_unique_names", "check_samples", "check_generalization",
               "check_token_bounds", "check_unused_keys", "check_teachers", "check_tiny",
               "check_templates", "check_files", "check_train_on_benchmark",
               "check_replicates", "check_compare"}
    assert {c.__name__ for c in configcheck.SEMANTIC_CHECKS} == covered


# --- what a user sees: Snakemake itself ---

E2E = [
    ({"students": {"tiny": {"tiny": {"num_layer": 4}}}},
     "students.tiny.tiny.num_layer: unknown key (did you mean 'num_layers'?)"),
    ({"evaluation": {"k": [1, 8]}},
     "evaluation.k[1]: 8 is larger than evaluation.sampling.n (2)"),
    ({"tasks": {"distill-arith": {"pool": "no-such-pool"}}},
     "tasks.distill-arith.pool: 'no-such-pool' is not defined under 'pools:' (known: arith)"),
]


@pytest.mark.parametrize("overlay,needle", E2E, ids=[n.split(":")[0] for _, n in E2E])
def test_snakemake_prints_the_message_without_a_traceback_and_runs_nothing(tmp_path, overlay,
                                                                           needle):
    workdir = copy_workflow(tmp_path / "wf")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(overlay))
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "1", "--configfile", "tests/configs/small.yaml", str(bad)],
        cwd=workdir, env=workflow_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "config error(s), nothing was run:\n  " + needle in proc.stderr
    assert "Traceback" not in proc.stderr and 'File "' not in proc.stderr
    assert not (workdir / "results").exists()  # no job ran
