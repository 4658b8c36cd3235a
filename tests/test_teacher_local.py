"""An open teacher run locally (`mode: local`): the same traces table as an online teacher, a GPU
job that resumes after being killed without regenerating anything, shards merged into the cache
(a job killed mid-shard included), and the compute-node guard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from longthought.evaluate.fixtures import build_tiny_chat_model
from longthought.evaluate.outputs import Output
from longthought.io import read_table, write_table
from longthought.problems.procedural import generate
from longthought.teacher.cache import CacheEntry, RequestCache
from longthought.teacher.collect import ChatRequest, run_requests
from longthought.teacher.guard import ENV, ComputeNodeError
from longthought.teacher.local import LocalTransport, split_thought
from longthought.teacher.records import Job
from longthought.teacher.shards import ShardWriter, merge_shards, read_shard, shard_keys
from longthought.teacher.traces import collect_traces, plan_local, shard_dir_for

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
PROMPT = CONFIG["prompts"]["distill"]  # the demo's task: distill-arith
FAMILIES = list(CONFIG["pools"]["arith"]["families"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.mktemp("teacher") / "model")


@pytest.fixture()
def pool(tmp_path) -> str:
    path = tmp_path / "pool.parquet"
    write_table(pd.DataFrame(generate(FAMILIES, 8, 3, "train")), path, "problems")
    return str(path)


def local_teacher(model: Path, **local) -> dict:
    return {"mode": "local", "model": str(model), "sampling": {"temperature": 0.7, "top_p": 0.95,
                                                               "max_tokens": 24, "seed": 5},
            "local": {"backend": "transformers", "device": "cpu", "chunk_size": 2, **local}}


def task_spec(teacher: dict, n: int = 2) -> dict:
    return {"task": {"teacher": "t", "prompt": "distill", "pool": "p",
                     "samples_per_problem": n},
            "teacher": teacher, "prompt": PROMPT, "teacher_name": "t",
            "prompt_name": "distill"}


def test_online_and_local_traces_have_the_same_schema(tmp_path, pool, tiny):
    online = CONFIG["teachers"]["sim-o1"]  # the demo's teacher, through its API
    collect_traces("on", task_spec(online), pool, str(tmp_path / "cache"),
                   str(tmp_path / "on.parquet"), progress=False)
    collect_traces("loc", task_spec(local_teacher(tiny)), pool, str(tmp_path / "cache"),
                   str(tmp_path / "loc.parquet"), progress=False)
    a, b = pq.read_schema(tmp_path / "on.parquet"), pq.read_schema(tmp_path / "loc.parquet")
    assert a.remove_metadata() == b.remove_metadata()
    on, loc = read_table(tmp_path / "on.parquet", "traces"), read_table(tmp_path / "loc.parquet",
                                                                        "traces")
    assert list(on.columns) == list(loc.columns) and (on.dtypes == loc.dtypes).all()
    assert len(loc) == 16 and (loc["status"] == "ok").all() and not loc["cached"].any()
    assert loc["completion_tokens"].between(1, 24).all() and loc["content"].str.len().gt(0).all()
    assert set(loc["finish_reason"]) <= {"stop", "length"}
    # samples of one problem differ (each request's own seed), and a re-run pays nothing
    first = loc[loc["problem_id"] == loc["problem_id"].iloc[0]]
    assert first["request_key"].nunique() == 2
    again = collect_traces("loc", task_spec(local_teacher(tiny)), pool, str(tmp_path / "cache"),
                           str(tmp_path / "again.parquet"), progress=False)
    rerun = read_table(tmp_path / "again.parquet", "traces")
    assert again["rows"] == 16 and rerun["cached"].all()
    assert list(rerun["content"]) == list(loc["content"])


GENERATE = [sys.executable, "-m", "longthought.cli", "traces-generate", "--task", "loc"]


def test_local_collection_killed_half_way_resumes_without_regenerating(tmp_path, pool, tiny):
    cache = str(tmp_path / "cache")
    spec = task_spec(local_teacher(tiny, chunk_size=1), n=3)
    spec["teacher"]["sampling"]["max_tokens"] = 96
    todo = str(tmp_path / "todo.parquet")
    assert plan_local("loc", spec, pool, cache, todo) == 24
    shards = shard_dir_for(cache, "loc")
    args = [*GENERATE, "--spec", json.dumps(spec), "--todo", todo, "--shards", shards,
            "--quiet"]
    env = {**os.environ, ENV: "1", "OMP_NUM_THREADS": "1"}  # as on a compute node
    proc = subprocess.Popen([*args, "--out", str(tmp_path / "first.json")], env=env)
    deadline = time.monotonic() + 120
    while len(shard_keys(shards)) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = shard_keys(shards)
    assert 3 <= len(before) < 24, len(before)  # killed half way
    old_files = set(Path(shards).iterdir())
    done = subprocess.run([*args, "--out", str(tmp_path / "second.json")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "second.json").read_text())
    new = {e.key for f in set(Path(shards).iterdir()) - old_files for e in read_shard(f).entries}
    assert new.isdisjoint(before)  # nothing finished was generated again
    assert summary["already_in_shards"] == len(before)
    assert summary["generated"] + summary["failed"] == 24 - len(before)
    with RequestCache(cache) as c:  # the job never wrote the shared cache (the plan made it)
        assert not c.get_many(before | new)
    # the local rule merges the shards and writes the table from the cache alone
    out = tmp_path / "loc.parquet"
    record = collect_traces("loc", spec, pool, cache, str(out), progress=False, shards=shards)
    assert record["rows"] == 24
    table = read_table(out, "traces")
    assert (table["status"] == "ok").sum() == summary["generated"] + len(before)
    assert not list(Path(shards).glob("*.jsonl"))  # merged shards are removed


def test_shards_merge_and_a_job_killed_mid_shard(tmp_path):
    shards = tmp_path / "shards"
    entries = [CacheEntry(f"k{i}", f'{{"i":{i}}}', json.dumps({"choices": [{"message": {
        "content": f"answer {i}"}, "finish_reason": "stop"}]}), 0.1, 1, 3, 4, 0, None, "t")
        for i in range(6)]
    with ShardWriter(shards) as w:
        for e in entries[:3]:
            w.put(e)
    with ShardWriter(shards) as w:  # a second job; killed while writing its last line
        for e in entries[3:]:
            w.put(e)
        path = w.path
    text = path.read_text()
    path.write_text(text[: len(text) - 25])  # the last line cut short
    with open(path, "a") as fh:
        fh.write('\n{"entry": {"key": "bad"}, "sha256": "0"}\n')  # and one failing its check
    assert shard_keys(shards) == {"k0", "k1", "k2", "k3", "k4"}
    report = merge_shards(shards, tmp_path / "cache")
    assert (report.shards, report.entries, report.new, report.damaged) == (2, 5, 5, 2)
    assert not list(shards.glob("*.jsonl"))
    with RequestCache(tmp_path / "cache") as cache:
        got = cache.get_many(e.key for e in entries)
    assert set(got) == {"k0", "k1", "k2", "k3", "k4"} and got["k2"].response == entries[2].response
    # merging the same entries again is harmless (first writer wins)
    with ShardWriter(shards) as w:
        w.put(entries[0])
    again = merge_shards(shards, tmp_path / "cache")
    assert (again.entries, again.new) == (1, 0)


def test_reasoning_is_captured_inline_or_as_a_field(tiny):
    text = "<think>\n7 + 4 = 11, carry 1.\n</think>\n\nThe answer is \\boxed{11}."
    out = Output(text=text, output_tokens=20, thinking_tokens=12, finish_reason="stop",
                 latency_s=0.1)
    job = Job("k" * 64, {"model": "m", "messages": [{"role": "user", "content": "7+4"}]}, 0, 5,
              5, 0.0)
    inline = LocalTransport(local_teacher(tiny)).completion(job, out)
    msg = inline["choices"][0]["message"]
    assert msg["content"] == text and "reasoning_content" not in msg
    assert inline["usage"]["completion_tokens_details"]["reasoning_tokens"] == 12
    field = LocalTransport(local_teacher(tiny, reasoning="field")).completion(job, out)
    msg = field["choices"][0]["message"]
    assert msg["reasoning_content"] == "7 + 4 = 11, carry 1." and msg["content"].startswith(
        "The answer")
    assert split_thought("<think>cut short", "<think>", "</think>") == ("cut short", "")
    assert split_thought("no thought", "<think>", "</think>") == (None, "no thought")
    with pytest.raises(ValueError, match="local: unknown key.*chunk"):
        LocalTransport({"mode": "local", "model": "m", "local": {"chunk": 3}})
    with pytest.raises(ValueError, match="local.refill must be auto, true or false"):
        LocalTransport({"mode": "local", "model": "m", "local": {"refill": "yes"}})


@pytest.mark.parametrize("refill,want", [(None, None), ("auto", None), (True, True)])
def test_local_refill_reaches_the_generation_backend(tiny, monkeypatch, refill, want):
    import longthought.evaluate.backends as backends

    seen = []

    def spy(spec, prompts, sampling, n, **kwargs):
        seen.append(kwargs)
        return [[Output(text="x", output_tokens=1, thinking_tokens=None, finish_reason="stop",
                        latency_s=0.0)] for _ in prompts]

    monkeypatch.setattr(backends, "generate_texts", spy)
    opts = {} if refill is None else {"refill": refill}
    job = Job("k" * 64, {"model": "m", "messages": [{"role": "user", "content": "1+1"}]}, 0, 5,
              5, 0.0)
    LocalTransport(local_teacher(tiny, batch_size=3, **opts))._generate([job], {})
    assert seen == [{"batch_size": 3, "refill": want}]


def test_local_teacher_in_process_through_run_requests(tmp_path, tiny):
    reqs = [ChatRequest([{"role": "user", "content": f"{a} + 1"}], sample_index=k)
            for a in range(3) for k in range(2)]
    results = run_requests(local_teacher(tiny), reqs, str(tmp_path), None, progress=False)
    assert all(r.status == "ok" and r.model == str(tiny) for r in results)
    assert len({r.key for r in results}) == 6
    with pytest.raises(ValueError, match="does not support sampling key"):
        run_requests({**local_teacher(tiny), "sampling": {"max_tokens": 4, "stop": ["x"]}},
                     reqs[:1], str(tmp_path), None, progress=False)


def test_the_compute_node_guard(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "1")
    online = {"base_url": "sim", "model": "sim-o1", "limits": {"timeout_s": 5}}
    with pytest.raises(ComputeNodeError, match="compute-node job"):
        run_requests(online, [ChatRequest([{"role": "user", "content": "1+1"}])],
                     str(tmp_path), "http://127.0.0.1:9/v1", progress=False)
    with pytest.raises(ComputeNodeError):
        RequestCache(tmp_path / "c")
    assert not (tmp_path / "c").exists()
    monkeypatch.setenv(ENV, "0")
    with RequestCache(tmp_path / "c"):
        pass


def test_the_workflow_wires_a_local_teacher_task(tmp_path):
    """Dry runs: plan (local) -> GPU job with the teacher's resources -> traces; a local teacher
    as the judge is refused before any job."""
    import subprocess as sp

    from conftest import SMALL, SNAKEMAKE, copy_workflow, workflow_env

    work = copy_workflow(tmp_path / "wf")
    overlay = {"pools": {"mini": {"source": "procedural", "split": "train", "n": 4, "seed": 5,
                                  "families": {"addition": {"digits": 2}}}},
               "teachers": {"qwq": {"mode": "local", "model": "Qwen/QwQ-32B",
                                    "local": {"tensor_parallel_size": 4},
                                    "resources": {"slurm_partition": "gpu", "gpu": 4,
                                                  "runtime": 1440}}},
               "tasks": {"distill-qwq": {"teacher": "qwq", "prompt": "distill", "pool": "mini"}}}
    (work / "o.yaml").write_text(yaml.safe_dump(overlay))
    dry = sp.run([SNAKEMAKE, "results/traces/distill-qwq.parquet", "-n", "--cores", "2",
                  "--configfile", SMALL, "o.yaml"], cwd=work, env=workflow_env(),
                 capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    out = dry.stdout
    assert "rule traces_plan:" in out and "checkpoint traces:" in out  # (all local in a dry run)
    gen = out[out.index("rule traces_generate:"):].split("\n\n")[0]
    assert "input: results/traces/distill-qwq.todo.parquet" in gen
    assert "gpu=4" in gen and "runtime=1440" in gen and "slurm_partition=gpu" in gen
    (work / "bad.yaml").write_text(yaml.safe_dump({**overlay, "generalization": {"judge": "qwq"}}))
    bad = sp.run([SNAKEMAKE, "-n", "--cores", "2", "--configfile", SMALL, "o.yaml", "bad.yaml"],
                 cwd=work, env=workflow_env(), capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "mode: local teacher cannot judge" in bad.stdout + bad.stderr
