"""Replicates of a student: their seeds and names, and what a model name in config stands for.

One training run is one draw: another seed (data order, initial weights) gives another number.
So a student can be trained several times, everything fixed but the replicate seed
(`students.<s>.seed`, see `longthought.train.spec.derive_seed`):

- default: once, at `seed` (default 0), under the student's own name (`tiny`);
- `replicates: N`: N times, at seeds `seed, seed + 1, ..., seed + N - 1` (0, 1, 2 by default:
  the first replicate is the student as configured);
- `seeds: [a, b, ...]`: once per listed seed.

With more than one seed, each replicate is a model of its own, named `<student>~s<seed>`
(`tiny~s2`): its own directory `results/models/tiny~s2/`, training job (so replicates run in
parallel on a cluster), generations `results/generations/tiny~s2/<bench>.parquet` and metric rows.
A student with one seed keeps its plain name, so a config without `replicates:` changes nothing.

The untrained model: a tiny student's initial weights are drawn from the replicate seed, so each
replicate has its own, `tiny~s2@init`; a hub or local base model is the same weights for every
replicate, so its replicates share one `<student>@init`.

In `evaluation.models`, `evaluation.budget_models`, `generalization.models` and `report.compare`
a student's name stands for all its replicates, and `<student>@init` for all their untrained
models; the report aggregates them back under that name. A replicate's own name means it alone.

Names in config cannot contain `~` or `@` (config/schema.yaml), so a replicate's name never
collides with a configured one. Light on purpose: the Snakefile imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SEP = "~s"
INIT = "@init"
TINY = "tiny"
REPLICATE_KEYS = ("replicates", "seeds")  # what the training job of a replicate never sees
_REPLICATE = re.compile(r"^(?P<student>.+?)~s(?P<seed>\d+)(?P<init>@init)?$")


def replicate_seeds(spec: dict[str, Any]) -> list[int]:
    """The replicate seeds of a student's config block, in order (checked by configcheck)."""
    if spec.get("seeds") is not None:
        return [int(s) for s in spec["seeds"]]
    first = int(spec.get("seed") or 0)
    return list(range(first, first + int(spec.get("replicates") or 1)))


def replicate_name(student: str, seed: int) -> str:
    """`tiny~s2`: the model name of replicate `seed` of `student`."""
    return f"{student}{SEP}{seed}"


def split_name(name: str) -> tuple[str, int | None]:
    """(the name it aggregates under, replicate seed) of a model name, from the name alone:
    `tiny~s2` -> ("tiny", 2), `tiny~s2@init` -> ("tiny@init", 2), `sim-o1` -> ("sim-o1", None).
    """
    m = _REPLICATE.match(name)
    if not m:
        return name, None
    return m.group("student") + (m.group("init") or ""), int(m.group("seed"))


def group_name(name: str) -> str:
    """The name a model's rows aggregate under (itself unless it is a replicate)."""
    return split_name(name)[0]


@dataclass(frozen=True)
class ModelRef:
    """What a model name means in a config.

    kind: 'student' (a trained model), 'init' (an untrained student), 'teacher' (API),
    'model' (an entry of `models:`); student: the config student it belongs to; seed: its
    replicate seed (trained and tiny-init models).
    """

    name: str
    kind: str
    student: str | None = None
    seed: int | None = None


def _students(config: dict) -> dict[str, dict]:
    return config.get("students") or {}


def per_replicate_init(spec: dict[str, Any]) -> bool:
    """Whether each replicate has its own untrained model: the tiny student's weights are
    drawn from the seed; a hub or local base model is one set of weights for all."""
    return spec.get("base_model") == TINY and len(replicate_seeds(spec)) > 1


def replicates(config: dict, student: str) -> list[tuple[str, int]]:
    """(model name, replicate seed) of every replicate of `student`: plain name when one."""
    seeds = replicate_seeds(_students(config)[student])
    if len(seeds) == 1:
        return [(student, seeds[0])]
    return [(replicate_name(student, s), s) for s in seeds]


def trained_models(config: dict) -> list[str]:
    """Every trained model the config asks for (all replicates of all students)."""
    return [name for s in _students(config) for name, _ in replicates(config, s)]


def init_name(config: dict, trained: str) -> str:
    """The untrained model a trained model starts from (`tiny~s2` -> `tiny~s2@init`, or the
    shared `<student>@init` of a hub/local base)."""
    ref = resolve(config, trained)
    if ref is None or ref.kind != "student":
        raise KeyError(f"{trained!r} is not a trained model of this config")
    if per_replicate_init(_students(config)[ref.student]):
        return trained + INIT
    return ref.student + INIT


def init_models(config: dict) -> list[str]:
    """Every untrained model the config can build (one per replicate, or one per student)."""
    return list(dict.fromkeys(init_name(config, m) for m in trained_models(config)))


def resolve(config: dict, name: str) -> ModelRef | None:
    """The model `name` is in this config, or None when it is no single model (unknown, or a
    student's name that stands for several replicates: see `expand`)."""
    students = _students(config)
    base, seed = split_name(name)
    if seed is not None:  # a replicate's name: its student must have that seed, replicated
        student = base.removesuffix(INIT)
        spec = students.get(student)
        if spec is None or seed not in replicate_seeds(spec) or len(replicate_seeds(spec)) < 2:
            return None
        if base.endswith(INIT):
            return ModelRef(name, "init", student, seed) if per_replicate_init(spec) else None
        return ModelRef(name, "student", student, seed)
    if name in students:
        seeds = replicate_seeds(students[name])
        return ModelRef(name, "student", name, seeds[0]) if len(seeds) == 1 else None
    if name.endswith(INIT) and name[: -len(INIT)] in students:
        student = name[: -len(INIT)]
        spec = students[student]
        if per_replicate_init(spec):
            return None
        seeds = replicate_seeds(spec)
        return ModelRef(name, "init", student, seeds[0] if spec.get("base_model") == TINY
                        else None)
    if name in (config.get("teachers") or {}):
        return ModelRef(name, "teacher")
    if name in (config.get("models") or {}):
        return ModelRef(name, "model")
    return None


def expand(config: dict, names: Iterable[str]) -> list[str]:
    """Model names with each student's name replaced by its replicates' names (and
    `<student>@init` by their untrained models' names); order kept, duplicates dropped.
    Unknown names stay as they are (configcheck reports them)."""
    students = _students(config)
    out: list[str] = []
    for name in names:
        student = name.removesuffix(INIT)
        if resolve(config, name) is None and student in students:
            reps = [n for n, _ in replicates(config, student)]
            out += [r + INIT for r in reps] if name.endswith(INIT) else reps
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def is_known(config: dict, name: str) -> bool:
    """A single model of the config, or a student's (or its init's) name standing for its
    replicates."""
    return resolve(config, name) is not None or name.removesuffix(INIT) in _students(config)


def replicate_spec(config: dict, trained: str) -> dict[str, Any]:
    """The config block a trained model is built from: its student's, with its replicate seed
    as `seed` and without `replicates`/`seeds` (so adding a replicate leaves the others'
    training jobs as they were). A student with one seed gets its block unchanged."""
    ref = resolve(config, trained)
    if ref is None or ref.kind != "student":
        raise KeyError(f"{trained!r} is not a trained model of this config")
    spec = {k: v for k, v in _students(config)[ref.student].items() if k not in REPLICATE_KEYS}
    if ref.seed or "seed" in spec:  # seed 0 stays implicit, as a config without it writes it
        spec["seed"] = ref.seed
    return spec


def compare_pairs(config: dict) -> list[list[str]]:
    """The pairs the report compares: `report.compare`, else the config's two students when it
    has exactly two (the paper's one-stage vs two-stage), else none. Each pair is [first,
    second]; the report states the second's gain over the first. The default needs both
    students evaluated."""
    given = (config.get("report") or {}).get("compare")
    if given is not None:
        return [list(pair) for pair in given]
    students = list(_students(config))
    evaluated = set(expand(config, (config.get("evaluation") or {}).get("models") or []))
    if len(students) == 2 and set(expand(config, students)) <= evaluated:
        return [students]
    return []
