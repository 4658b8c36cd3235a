"""What a user meets on the console and the shared filesystem: every verb's --help, a failed
job's reason on the console, row numbers as an editor counts them, files that honour the umask,
and `traces-status` on a cache directory that does not exist."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import SMALL, SNAKEMAKE, copy_workflow, workflow_env

from longthought import io
from longthought.cli import build_parser, main

# --- every verb's --help ---


def _verbs(parser: argparse.ArgumentParser, name: str = "longthought"):
    """(command, parser, help line) for every verb and sub-verb."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for verb, sub in action.choices.items():
                yield f"{name} {verb}", sub, helps.get(verb)
                yield from _verbs(sub, f"{name} {verb}")


def test_every_verb_and_every_option_has_a_help_text():
    verbs = list(_verbs(build_parser()))
    assert len(verbs) >= 15  # problems, traces, curate, train, generate, report, tti ..., all
    missing = []
    for command, parser, line in verbs:
        if not line:
            missing.append(command)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not (action.help or "").strip():
                missing.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
        text = parser.format_help()  # renders (a stray % in a help text would fail here)
        assert "usage:" in text
    assert not missing, f"options without a help text: {missing}"


def test_help_prints_and_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["problems", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--rejected" in out and "filters removed" in out


# --- traces-status ---


def test_traces_status_with_a_missing_cache_dir_is_an_error(tmp_path, capsys):
    missing = tmp_path / "no-such-cache"
    assert main(["traces-status", "--cache-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--cache-dir {missing}: no such directory" in err
    (tmp_path / "cache").mkdir()  # an existing directory without a cache yet: empty, not an error
    assert main(["traces-status", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "empty" in capsys.readouterr().out


# --- row numbers as an editor counts them ---


def test_a_jsonl_row_is_its_line_blank_lines_counted(tmp_path):
    from longthought.problems.loaders import load_problems

    path = tmp_path / "p.jsonl"
    path.write_text('{"problem": "1+1?", "answer": "2"}\n\n{"problem": "", "answer": "3"}\n')
    with pytest.raises(ValueError, match=r"p\.jsonl: row 3: missing problem text"):
        load_problems({"source": "file", "path": str(path)})


def test_a_csv_row_counts_from_the_first_data_line(tmp_path):
    from longthought.problems.loaders import load_problems

    path = tmp_path / "p.csv"
    path.write_text("problem,answer\n1+1?,2\n2+2?,\n")
    with pytest.raises(ValueError, match=r"p\.csv: row 2: missing answer"):
        load_problems({"source": "file", "path": str(path)})
    path.write_text("question,right,wrong\nPick one,a,\n")
    with pytest.raises(ValueError, match=r"p\.csv: row 1: an empty option"):
        load_problems({"source": "file", "path": str(path), "columns": {"problem": "question"},
                       "multiple_choice": {"correct": "right", "incorrect": ["wrong"]}})


def test_a_parquet_row_and_a_schema_failure_count_from_one(tmp_path):
    from longthought.problems.loaders import load_problems

    path = tmp_path / "p.parquet"
    pd.DataFrame({"problem": ["a?", "b?", "c?"], "answer": ["1", "2", None]}).to_parquet(path)
    with pytest.raises(ValueError, match=r"p\.parquet: row 3: missing answer"):
        load_problems({"source": "file", "path": str(path)})
    df = pd.DataFrame({"dataset": ["d"] * 3, "step": [0, 1, -1], "filter": ["a", "b", "c"],
                       "rows_in": [3, 3, 3], "removed": [0, 0, 0], "rows_out": [3, 3, 3]})
    with pytest.raises(io.TableError, match=r"row 3, column 'step'"):
        io.write_table(df, tmp_path / "f.parquet", "funnel")


def test_a_generalization_set_and_an_imported_trace_name_their_line(tmp_path):
    from longthought.generalization.sets import load_set
    from longthought.teacher.importer import import_traces

    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a", "question": "q?"}\n\n{"id": "b", "question": ""}\n')
    with pytest.raises(ValueError, match=r"row 3 \(item 'b'\) has an empty question"):
        load_set({"name": "s", "category": "safety", "source": "file", "path": str(path),
                  "columns": {"item_id": "id"}})
    traces = tmp_path / "t.jsonl"
    traces.write_text('{"problem": "1+1?", "content": "2"}\n{"problem": "", "content": "3"}\n')
    spec = {"task": {"import": {"source": "file", "path": str(traces)}}}
    with pytest.raises(ValueError, match=r"t\.jsonl: row 2: empty problem"):
        import_traces("imp", spec, None)


# --- files honour the umask ---


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_and_temporary_dirs_get_the_umask_modes(tmp_path, umask):
    assert io.current_umask() == umask
    files, dirs = 0o666 & ~umask, 0o777 & ~umask
    io.write_text(tmp_path / "a.txt", "x")
    io.write_json(tmp_path / "b.json", {"a": 1})
    io.write_jsonl(tmp_path / "c.jsonl", [{"a": 1}])
    df = pd.DataFrame({"dataset": ["d"], "step": [0], "filter": ["a"], "rows_in": [1],
                       "removed": [0], "rows_out": [1]})
    io.write_table(df, tmp_path / "d.parquet", "funnel")
    with io.atomic_path(tmp_path / "e.bin") as tmp:
        tmp.unlink()  # a library that writes a new file at the path
        tmp.write_bytes(b"x")
    for name in ("a.txt", "b.json", "c.jsonl", "d.parquet", "e.bin"):
        assert _mode(tmp_path / name) == files, name
    made = io.make_temp_dir(tmp_path / "sub", ".out.")
    assert _mode(made) == dirs and _mode(tmp_path / "sub") == dirs
    (made / "inner").mkdir(mode=0o700)
    (made / "inner" / "weights.safetensors").touch(mode=0o600)  # as safetensors writes them
    io.apply_umask(made)
    assert _mode(made / "inner") == dirs and _mode(made / "inner" / "weights.safetensors") == files


# --- end to end: the console and the filesystem of real runs ---


def test_a_failed_jobs_reason_is_on_the_console(tmp_path):
    """The default workflow profile (profiles/default) prints a failed job's log."""
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "bad.jsonl").write_text('{"problem": "1+1?", "answer": "2"}\n\n'
                                       '{"problem": "", "answer": "3"}\n')
    overlay = tmp_path / "bad.yaml"
    overlay.write_text(yaml.safe_dump({"pools": {"bad": {"source": "file", "path": "bad.jsonl"}}}))
    # targets before --configfile: after it, Snakemake would read them as more config files
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "1", "results/problems/bad.parquet", "--configfile", SMALL,
         str(overlay)], cwd=workdir, env=workflow_env(), capture_output=True, text=True,
        timeout=300)
    console = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "workflow specific profile profiles/default" in console
    assert "Logfile results/logs/problems/bad.log:" in console
    assert "longthought problems: error: bad.jsonl: row 3: missing problem text" in console


def _wrong_modes(root: Path, umask: int, protected: set[Path]) -> list[str]:
    """Files and directories under `root` whose mode is not what the umask gives."""
    files, dirs = 0o666 & ~umask, 0o777 & ~umask
    wrong = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        want = dirs if path.is_dir() else files
        if path in protected:  # a read-only traces version: the write bits removed
            want &= ~0o222
        if _mode(path) != want:
            wrong.append(f"{oct(_mode(path))} {path.relative_to(root.parent)}")
    return wrong


@pytest.mark.slow
def test_a_run_under_umask_002_leaves_group_writable_results(tmp_path):
    """Tables, the curated export (a temporary dir renamed into place) and the tiny student's
    init dir (another) land as 0664 / 0775 under umask 002, as a shared project needs."""
    workdir = copy_workflow(tmp_path / "wf")
    cache = tmp_path / "cache"
    overlay = tmp_path / "cache.yaml"
    overlay.write_text(json.dumps({"cache_dir": str(cache)}))
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "results/datasets/format-arith.parquet",
         "results/models/tiny@init", "--configfile", SMALL, str(overlay)],
        cwd=workdir, env=workflow_env(), capture_output=True, text=True, timeout=900,
        preexec_fn=lambda: os.umask(0o002))
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = workdir / "results"
    assert (results / "datasets" / "format-arith.hf" / "hf").is_dir()
    assert (results / "models" / "tiny@init" / "config.json").is_file()
    protected = set((results / "traces" / ".versions").rglob("*.parquet"))
    assert protected
    assert _wrong_modes(results, 0o002, protected) == []
    assert _wrong_modes(cache, 0o002, set()) == []


@pytest.mark.slow
def test_the_full_runs_files_have_the_modes_of_the_umask(small_local_run):
    """Every file of the session's full run (report, database, datasets, model weights, logs)."""
    small_local_run.wait()
    umask = io.current_umask()  # the test process's, inherited by the run
    results = small_local_run.workdir / "results"
    protected = set((results / "traces" / ".versions").rglob("*.parquet"))
    assert protected
    assert _wrong_modes(results, umask, protected) == []
