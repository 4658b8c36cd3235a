"""Job specs: the content/operational split each rule's params use, the job files that carry a
config slice to its verb, and the `--spec <file>` every verb accepts."""

from __future__ import annotations

import json
import os
import stat

import pytest

from longthought import jobspec
from longthought.cli import main

TEACHER = {"base_url": "sim", "model": "sim-o1", "api_key_env": "KEY",
           "sampling": {"temperature": 0.7}, "samples_per_problem": 1,
           "limits": {"max_concurrency": 32}, "pricing": {"input": 1.0}, "budget_usd": 10.0,
           "sim": {"seed": 7, "slip_rate": 0.1, "latency_ms": 5, "rate_limit_rpm": 60,
                   "faults": {"rate_500": 0.1}}}


def test_the_sim_content_keys_match_the_request_cache():
    """The cache keys the sim by these keys; a knob that changes the cache key must be content."""
    from longthought.teacher.records import SIM_CONTENT_KEYS

    assert tuple(SIM_CONTENT_KEYS) == jobspec.SIM_CONTENT_KEYS


def test_teacher_content_keeps_what_decides_the_answers():
    got = jobspec.teacher_content(TEACHER)
    assert got == {"base_url": "sim", "model": "sim-o1", "sampling": {"temperature": 0.7},
                   "samples_per_problem": 1, "sim": {"seed": 7, "slip_rate": 0.1}}
    assert TEACHER["limits"] == {"max_concurrency": 32}  # the input is not changed
    # online or through the Batch API: the same endpoint, the same answers and cache keys
    batch = {**TEACHER, "mode": "batch", "batch": {"poll_interval_s": 60},
             "pricing": {"input": 1.0, "batch_discount": 0.5},
             "sim": {**TEACHER["sim"], "batch": {"in_progress_s": 9}}}
    assert jobspec.teacher_content(batch) == got
    local = jobspec.teacher_content({**TEACHER, "mode": "local"})
    assert local["mode"] == "local"
    # how a local teacher's GPU job batches its requests does not decide its answers
    run_as = {"batch_size": 64, "chunk_size": 8, "gpu_memory_utilization": 0.5, "refill": True}
    local_opts = jobspec.teacher_content({**TEACHER, "mode": "local",
                                          "local": {"dtype": "bf16", **run_as}})
    assert local_opts["local"] == {"dtype": "bf16"}
    escalated = jobspec.teacher_content({**TEACHER, "escalate_max_tokens": [4096]})
    assert escalated["escalate_max_tokens"] == [4096]  # it changes what the table holds


@pytest.mark.parametrize("kind,spec,want", [
    ("traces", {"task": {"pool": "p", "allow_partial": False}, "teacher": TEACHER, "round": 2,
                "prompt": {"user": "{problem}"}},
     {"task": {"pool": "p"}, "teacher": jobspec.teacher_content(TEACHER),
      "prompt": {"user": "{problem}"}}),
    ("generate", {"model": {"kind": "api", "teacher": TEACHER}, "batch_size": 256,
                  "refill": True, "checker": {"timeout_s": 5, "workers": 2}, "sampling": {"n": 4}},
     {"model": {"kind": "api", "teacher": jobspec.teacher_content(TEACHER)},
      "checker": {"timeout_s": 5}, "sampling": {"n": 4}}),
    ("generalize", {"qa": {"batch_size": 8, "refill": "auto",
                           "model": {"kind": "api", "teacher": TEACHER}}},
     {"qa": {"model": {"kind": "api", "teacher": jobspec.teacher_content(TEACHER)}}}),
    ("judge", {"qa": {"judge": TEACHER, "checker": {"workers": 2}, "model": {"name": "m"}}},
     {"qa": {"judge": jobspec.teacher_content(TEACHER), "checker": {}, "model": {"name": "m"}}}),
    ("train", {"stages": [{"lr": 1e-3}], "checkpoint_every": 200, "resources": {"gpu": 1},
               "evaluation": {"system": None, "prompt": None}},
     {"stages": [{"lr": 1e-3}]}),
    ("problems", {"n": 10, "description": "why"}, {"n": 10}),
    ("curate", {"filters": {"correct": True}}, {"filters": {"correct": True}}),
])
def test_content_drops_exactly_the_operational_keys(kind, spec, want):
    assert jobspec.content(kind, spec) == want


def test_unknown_kind_is_an_error():
    with pytest.raises(KeyError, match="unknown job kind 'nope'"):
        jobspec.content("nope", {})


def test_job_files_are_content_addressed_and_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        a = jobspec.write_job_file(tmp_path, "traces", "distill", {"x": 1, "y": [1, 2]})
        again = jobspec.write_job_file(tmp_path, "traces", "distill", {"y": [1, 2], "x": 1})
        b = jobspec.write_job_file(tmp_path, "traces", "distill", {"x": 2})
    finally:
        os.umask(old)
    assert a == again != b  # same slice, same file; another slice, another file
    assert json.loads(open(a).read()) == {"x": 1, "y": [1, 2]}
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == sorted(
        [os.path.basename(a), os.path.basename(b)])  # no temp files left behind


def test_every_verb_reads_its_spec_from_a_file(tmp_path, capsys):
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"tasks": ["t"], "filters": {"typo": 1}}))
    traces = tmp_path / "t.parquet"
    argv = ["curate", "--dataset", "d", "--spec", str(spec), "--traces", str(traces),
            "--out", str(tmp_path / "o.parquet"), "--rejected", str(tmp_path / "r.parquet"),
            "--funnel", str(tmp_path / "f.parquet")]
    assert main(argv) == 2  # the file was read: its typo is what fails
    assert "typo" in capsys.readouterr().err


@pytest.mark.parametrize("content,match", [
    (None, "no such file"),
    ("{not json", "not valid JSON (line 1"),
    ("[1, 2]", "must hold a JSON object"),
])
def test_a_bad_spec_file_is_one_clear_line(tmp_path, capsys, content, match):
    spec = tmp_path / "job.json"
    if content is not None:
        spec.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main(["problems", "--name", "p", "--spec", str(spec), "--out", "o", "--rejected", "r"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    if content is not None and "{" in content:
        assert str(spec) in err
