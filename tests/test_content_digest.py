"""Content digests beside tables, and the traces table's read-only versions behind a link:
what lets a consumer skip when content did not change, and keeps paid-for traces safe."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from longthought import digest
from longthought.cli import main
from longthought.curate.synthetic import trace_record
from longthought.io import read_table, write_table
from longthought.teacher.tracestore import PROVENANCE_COLUMNS, versions_dir, write_traces


def traces(n: int = 4, *, cached: bool = False, status: str = "ok", text: str = "x"):
    rows = [trace_record("t", f"p{i}", f"What is {i}+1?", str(i + 1),
                         f"<think>{text}</think> \\boxed{{{i + 1}}}" if status == "ok" else None,
                         status=status, error=None if status == "ok" else "HTTP 500")
            for i in range(n)]
    df = pd.DataFrame(rows)
    df["cached"] = cached
    df["latency_s"] = 0.5 if not cached else 0.01
    return df


def test_content_digest_ignores_excluded_columns_only(tmp_path):
    a, b, c = (tmp_path / f"{x}.parquet" for x in "abc")
    write_table(traces(), a, "traces")
    write_table(traces(cached=True), b, "traces")  # same answers, served from the cache
    write_table(traces(text="y"), c, "traces")  # other answers
    assert digest.content_digest(a, PROVENANCE_COLUMNS) == digest.content_digest(
        b, PROVENANCE_COLUMNS)
    assert digest.content_digest(a) != digest.content_digest(b)
    assert digest.content_digest(a, PROVENANCE_COLUMNS) != digest.content_digest(
        c, PROVENANCE_COLUMNS)


def test_content_digest_of_files_and_directories(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("one")
    first = digest.content_digest(tmp_path / "d")
    (tmp_path / "d" / "g.txt").write_text("two")
    assert digest.content_digest(tmp_path / "d") != first
    (tmp_path / "card.yaml").write_text("a: 1\n")
    assert digest.content_digest(tmp_path / "card.yaml").startswith("sha256:")


def test_recorded_digest_is_absent_recorded_or_recomputed(tmp_path):
    table = tmp_path / "t.parquet"
    assert digest.recorded_digest(table) == digest.ABSENT
    write_table(traces(), table, "traces")
    record = digest.write_digest(table, exclude=PROVENANCE_COLUMNS)
    assert json.loads(digest.sidecar(table).read_text())["digest"] == record["digest"]
    assert digest.recorded_digest(table) == record["digest"]
    write_table(traces(6), table, "traces")  # replaced by hand: the record no longer fits
    assert digest.read_record(table) is None
    assert digest.recorded_digest(table) == digest.content_digest(table)


def test_traces_are_read_only_versions_behind_a_relative_link(tmp_path):
    out = tmp_path / "traces" / "t.parquet"
    first = write_traces(traces(), out, round_=0)
    assert out.is_symlink() and not os.path.isabs(os.readlink(out))
    version = out.resolve()
    assert version.parent == versions_dir(out).resolve()
    assert not stat.S_IMODE(version.stat().st_mode) & 0o222  # no write bit for anyone
    assert first["digest"] == digest.recorded_digest(out) and first["partial"] is False

    # served from the cache: same content, same version name, this run's provenance
    again = write_traces(traces(cached=True), out, round_=0)
    assert again["digest"] == first["digest"] and out.resolve() == version
    assert read_table(out, "traces")["cached"].all()

    # new content: a new version; the previous one is kept, older ones go
    write_traces(traces(text="y"), out)
    write_traces(traces(text="z"), out)
    kept = sorted(p.name for p in versions_dir(out).glob("*.parquet"))
    assert len(kept) == 2 and version.name not in kept
    assert out.resolve().name in kept

    # deleting the link (by hand, by Snakemake) leaves the data
    current = out.resolve()
    out.unlink()
    assert current.exists()


def test_a_partial_collection_is_recorded_as_such(tmp_path):
    out = tmp_path / "t.parquet"
    df = pd.concat([traces(3), traces(1, status="failed").assign(trace_id="t/p9/0")])
    record = write_traces(df, out, round_=1)
    assert record["partial"] and record["missing"] == 1 and record["rows"] == 4
    assert record["round"] == 1 and digest.read_record(out)["partial"]
    imported = write_traces(df, tmp_path / "i.parquet", collected=False)
    assert not imported["partial"]  # an import's empty rows are the source's


SIM = {"base_url": "sim", "model": "sim-o1", "api_key_env": "LONGTHOUGHT_SIM_API_KEY",
       "sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 256},
       "samples_per_problem": 1,
       "limits": {"max_concurrency": 4, "timeout_s": 30, "max_retries": 0},
       "pricing": {"input": 3.0, "output": 12.0, "reasoning": 12.0}, "budget_usd": None,
       "sim": {"seed": 7, "faults": {"rate_500": 1.0}}}


@pytest.fixture
def pool(tmp_path) -> Path:
    from longthought.problems.procedural import generate

    path = tmp_path / "pool.parquet"
    write_table(pd.DataFrame(generate({"addition": {}}, 3, 1, "train")), path, "problems")
    return path


@pytest.mark.parametrize("allow_partial,code", [(True, 0), (False, 3)])
def test_a_partial_collection_says_so_and_may_hold_curation_back(
        pool, tmp_path, capsys, caplog, allow_partial, code):
    out = tmp_path / "traces" / "d.parquet"
    spec = {"task": {"teacher": "sim-o1", "prompt": "p", "pool": "arith",
                     "allow_partial": allow_partial},
            "teacher": SIM, "prompt": {"user": "{problem}"}, "teacher_name": "sim-o1",
            "prompt_name": "p", "round": 4}
    job = tmp_path / "job.json"
    job.write_text(json.dumps(spec))
    argv = ["traces", "--task", "d", "--spec", str(job), "--problems", str(pool),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--quiet"]
    assert main(argv) == code
    log = caplog.text  # the job's log
    assert "PARTIAL collection: 3 of 3 rows missing (100.0%: 3 failed)" in log
    assert "collection round 5" in log
    assert ("allow_partial is false" in capsys.readouterr().err) == (not allow_partial)
    record = digest.read_record(out)
    assert record["partial"] and record["round"] == 4

    if not allow_partial:
        out.unlink()  # what Snakemake does with the output of a failed job
    assert main(["traces-status", str(out)]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("d "))
    assert line.split()[-2:] == ["100.0%", "PARTIAL"]
    assert "PARTIAL collection" in text
    assert ("not linked" in text) == (not allow_partial)


def test_the_report_funnel_shows_the_missing_share():
    from longthought.results.report import funnel_table

    rows = [("missing", 200, 40), ("malformed", 160, 0), ("correct", 160, 10)]
    funnel = pd.DataFrame([{"dataset": "d", "step": i, "filter": f, "rows_in": n, "removed": r,
                            "rows_out": n - r} for i, (f, n, r) in enumerate(rows)])
    text = funnel_table(funnel)
    assert "200 traces in (40 missing, 20.0%: the collection is partial" in text
    assert "150 kept" in text
    complete = funnel_table(funnel.assign(removed=0, rows_out=funnel["rows_in"]))
    assert "missing," not in complete
