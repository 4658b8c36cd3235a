"""Published recipes (config/recipes/) and the README's real-API config plan correctly: a dry run
under `--profile slurm` (no cluster needed) lists the expected jobs, and each GPU job asks for
the nodes, GPUs and runtime its source gives."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SNAKEMAKE, copy_workflow, workflow_env
from test_workflow import _resources

RECIPES = {
    "o1-journey-part2": {
        "jobs": {"problems": 1, "benchmark": 2, "traces": 2, "curate": 2, "init_student": 1,
                 "train": 1, "generate_local": 4, "generate_api": 2, "report": 1},
        "gpu_jobs": {("train", "student=qwen-math-72b"): {"nodes": "4", "gpu": "8",
                                                          "runtime": "2880"},
                     ("generate_local", "model=qwen-math-72b, bench=aime24"): {
                         "nodes": "1", "gpu": "8", "runtime": "360"}},
    },
    "s1": {
        "jobs": {"benchmark": 3, "traces": 1, "curate": 1, "init_student": 1, "train": 1,
                 "generate_local": 6, "report": 1},
        "gpu_jobs": {("train", "student=s1-32b"): {"nodes": "2", "gpu": "8", "runtime": "180",
                                                   "gpu_model": "h100"},
                     ("generate_local", "model=s1-32b, bench=gpqa-diamond"): {
                         "nodes": "1", "gpu": "4", "runtime": "240"}},
    },
    "sky-t1": {
        # QwQ's traces, then GPT-4o-mini's reformatting of them (read back as a second pool)
        "jobs": {"problems": 2, "benchmark": 2, "traces_plan": 1, "traces_generate": 1,
                 "traces": 2, "curate": 1, "init_student": 1, "train": 1, "generate_local": 6,
                 "report": 1},
        "gpu_jobs": {("traces_generate", "task=qwq-numina"): {"nodes": "1", "gpu": "4",
                                                              "runtime": "1440"},
                     ("train", "student=sky-t1-32b"): {"nodes": "1", "gpu": "8",
                                                       "runtime": "1440"}},
    },
    "limo": {
        "jobs": {"benchmark": 2, "traces": 1, "curate": 1, "init_student": 1, "train": 1,
                 "generate_local": 4, "report": 1},
        "gpu_jobs": {("train", "student=limo-32b"): {"nodes": "1", "gpu": "8",
                                                     "runtime": "720"}},
    },
}
LOCAL_RULES = {"problems", "benchmark", "traces", "traces_plan", "init_student", "generate_api",
               "run_config", "tti_self", "report"}


def _dry_run(workdir: Path, configfile: str) -> str:
    """`snakemake -n --profile slurm` with `configfile` replacing the demo default. Hub ids are
    only checked against a local cache when HF_HUB_OFFLINE is set, so it is unset here."""
    env = {k: v for k, v in workflow_env().items() if k != "HF_HUB_OFFLINE"}
    proc = subprocess.run([SNAKEMAKE, "-n", "-p", "--profile", "slurm",
                           "--replace-workflow-config", "--configfile", configfile],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _jobs(out: str) -> dict[str, int]:
    table = out.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for line in table.splitlines()
            if (m := re.match(r"^(\S+)\s+(\d+)$", line.strip())) and m.group(1) not in
            ("total", "all", "run_config", "tti_self")}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("recipes"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_plans_its_jobs_and_resources(workdir, name):
    want = RECIPES[name]
    out = _dry_run(workdir, f"config/recipes/{name}.yaml")
    assert _jobs(out) == {k: v for k, v in want["jobs"].items()}, out[-2500:]
    jobs = _resources(out)
    for key, res in want["gpu_jobs"].items():
        got = jobs[key]
        assert {k: got.get(k) for k in res} == res, (key, got)
        assert got["slurm_partition"] == "gpu"
    for (rule, _), res in jobs.items():  # API calls and small files stay on the login node
        if rule in LOCAL_RULES:
            assert "gpu" not in res and "nodes" not in res, (rule, res)


def test_every_number_in_a_recipe_has_its_source():
    """Each line of a recipe that sets a number says where it comes from (a comment on it, or
    on the block it belongs to), so a user can tell the paper's numbers from ours."""
    for path in sorted((REPO / "config" / "recipes").glob("*.yaml")):
        lines = path.read_text().splitlines()
        commented = 0
        for i, line in enumerate(lines):
            body = line.split("#", 1)[0]
            if not re.search(r":\s*-?\d", body) or "seed:" in body and "#" not in line:
                continue
            context = lines[max(0, i - 6):i + 1]
            assert any("#" in c for c in context), f"{path.name}:{i + 1}: {line.strip()}"
            commented += 1
        assert commented >= 10, path.name
        assert "# Sources" in path.read_text() or "says where it comes from" in path.read_text()


@pytest.mark.slow
def test_readme_real_api_config_plans_pool_to_evaluation(workdir, tmp_path):
    """The README's "Pointing it at a real API" block is a whole config: it plans every stage
    from the pool to the evaluation of the trained student."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Pointing it at a real API", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    config = yaml.safe_load(block)
    assert {"pools", "tasks", "datasets", "students", "evaluation"} <= set(config)
    path = tmp_path / "mine.yaml"
    path.write_text(block)
    out = _dry_run(workdir, str(path))
    jobs = _jobs(out)
    assert jobs == {"problems": 1, "benchmark": 2, "traces": 1, "curate": 1, "init_student": 1,
                    "train": 1, "generate_local": 4, "generate_api": 2, "report": 1}, jobs
    train = _resources(out)[("train", "student=qwen7b")]
    assert train["gpu"] == "8" and train["runtime"] == "720"
    assert os.environ.get("OPENAI_API_KEY", "") not in out or not os.environ.get("OPENAI_API_KEY")
