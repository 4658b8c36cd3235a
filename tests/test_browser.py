"""The run browser's data and file, without a browser: what is embedded, how it is sampled and
bounded, and that untrusted text cannot break out of the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from longthought.cli import main
from longthought.results.browser import render, write_browser
from longthought.results.browser_data import BrowserSettings, clip, quotas, split_thinking
from longthought.results.synthetic import synthetic_run

ROLES = {"teacher": "teacher", "student": "student", "student@init": "init"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, str]:
    return synthetic_run(tmp_path_factory.mktemp("syn"), 300, workers=1)


def _data(html: str) -> dict:
    block = re.search(r'<script id="lt-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(block.group(1))


def test_quotas_show_rare_outcomes_and_respect_the_budget() -> None:
    counts = {"kept": 95_000, "truncated": 3_000, "correct": 1_990, "decontaminate": 10}
    take = quotas(counts, 1000)
    assert sum(take.values()) <= 1000
    assert take["decontaminate"] == 10  # a rare reason is shown whole
    assert take["truncated"] >= 125 and take["kept"] > take["truncated"]
    assert quotas({"kept": 5, "x": 2}, 1000) == {"kept": 5, "x": 2}


def test_clip_keeps_head_and_tail_and_says_how_much_is_cut() -> None:
    text = "A" * 600 + "B" * 600
    out, cut = clip(text, 100)
    assert out.startswith("A" * 50) and out.endswith("B" * 50) and cut == 1100
    assert "1,100 characters not shown" in out
    assert clip("short", 100) == ("short", 0)


@pytest.mark.parametrize("text,reasoning,expected", [
    ("<think>\nplan\n</think>\n\nanswer", None, ("plan", "answer")),
    ("<think>\ncut off", None, ("cut off", "")),  # never closed: all thinking
    ("just an answer", None, ("", "just an answer")),
    ("answer", "separate reasoning", ("separate reasoning", "answer")),
    ("thinking without an opener</think>ok", None, ("thinking without an opener", "ok")),
])
def test_split_thinking(text, reasoning, expected) -> None:
    assert split_thinking(text, reasoning) == expected


def test_settings_are_checked() -> None:
    assert BrowserSettings.from_spec(None) == BrowserSettings()
    with pytest.raises(ValueError, match="unknown key"):
        BrowserSettings.from_spec({"trace": 5})
    with pytest.raises(ValueError, match="report.browser.samples"):
        BrowserSettings.from_spec({"samples": 0})


def test_embedded_sample_is_stratified_and_stated(run, tmp_path: Path) -> None:
    out = tmp_path / "b.html"
    stats = write_browser(run["db"], out, {"traces": 60, "problems": 10, "samples": 2}, ROLES)
    html = out.read_text()
    data = _data(html)
    con = duckdb.connect(run["db"], read_only=True)
    total = con.execute("select count(*) from traces").fetchone()[0]
    reasons = {r[0] for r in con.execute("select distinct filter from curation where not kept")
               .fetchall()}
    con.close()
    assert stats["traces_total"] == data["trace_stats"]["total"] == total == 300
    assert 50 <= stats["traces"] == len(data["traces"]) <= 60
    shown = {o["filter"] for t in data["traces"] for o in t["outcomes"] if not o["kept"]}
    assert shown == reasons  # every rejection reason of the run is on the page
    assert {t["family"] for t in data["traces"]} <= {"addition", "multiplication", "linear",
                                                     "fractions"}
    for t in data["traces"]:
        assert t["problem"] and t["gold"] and t["source"].startswith("procedural:")
        assert t["tokens"] is None or t["thought"] <= t["tokens"]
    assert data["eval_stats"]["problems_shown"] == 10
    for p in data["evaluation"]["problems"]:
        assert set(p["stats"]) == set(ROLES)  # every model, counted over all its samples
        assert p["stats"]["teacher"][""][0] == 4
        assert p["stats"]["student"]["64"][0] == 4  # budgets are their own columns
        per = {}
        for s in p["samples"]:
            per[(s["model"], s["budget"])] = per.get((s["model"], s["budget"]), 0) + 1
        assert max(per.values()) == 2  # samples shown per (model, budget) are bounded
    assert {m["name"]: m["role"] for m in data["models"]} == ROLES
    assert data["budgets"] == [64, 128]
    assert "stratified by curation outcome" in html and "results/results.duckdb" in html


def test_page_is_self_contained(run, tmp_path: Path) -> None:
    out = tmp_path / "b.html"
    write_browser(run["db"], out, {"traces": 20}, ROLES)
    html = out.read_text()
    assert not re.search(r'<(script|link)[^>]+(src|href)="(?!data:)', html)  # no fetched files
    assert "https://" not in html.split('<script id="lt-data"')[0]
    assert "Alpine" in html and "__DATA__" not in html


def test_untrusted_text_cannot_end_the_data_block() -> None:
    evil = "</script><script>alert(1)</script>\u2028<!--"
    html = render({"traces": [{"id": evil}], "trace_stats": {}, "evaluation": {"problems": []},
                   "eval_stats": {}, "models": [], "budgets": [], "settings": {}})
    assert html.count("</script>") == 3  # the data block, the app and Alpine: nothing more
    assert _data(html)["traces"][0]["id"] == evil


def test_browse_verb_writes_the_page(run, tmp_path: Path, capsys) -> None:
    out = tmp_path / "page.html"
    assert main(["browse", "--db", run["db"], "--out", str(out), "--spec",
                 json.dumps({"traces": 25})]) == 0
    assert out.exists() and "traces" in capsys.readouterr().out
    assert len(_data(out.read_text())["traces"]) <= 25


def test_fit_cap_clips_only_the_longest() -> None:
    from longthought.results.browser_data import fit_cap

    assert fit_cap([100, 200, 300], 10_000, 4000) == 4000  # fits: nothing clipped further
    cap = fit_cap([100, 5000, 9000], 2100, 4000)
    assert 100 + 2 * cap <= 2100 and 100 + 2 * (cap + 1) > 2100


def test_page_stays_under_max_mb(run, tmp_path: Path) -> None:
    out = tmp_path / "b.html"
    write_browser(run["db"], out, {"max_mb": 1, "max_chars": 100_000}, ROLES)
    data = _data(out.read_text())
    assert out.stat().st_size < 1.2e6  # the scripts (~80 KB) ride on top of the budget
    assert data["trace_stats"]["max_chars"] < 100_000
    assert len(data["traces"]) == 300  # every trace still shown, clipped


def test_report_rule_declares_every_report_file() -> None:
    """The rule's outputs and the files `longthought report` writes are the same names."""
    from longthought.results.build import REPORT_FILES

    rule = (Path(__file__).resolve().parents[1] / "rules" / "report.smk").read_text()
    declared = set(re.findall(r'"results/report/([\w.]+)"', rule))
    assert declared == set(REPORT_FILES.values())
    for name in declared - {"summary.md"}:  # each in Snakemake's report, with a caption file
        pattern = rf'"results/report/{re.escape(name)}",\s*caption="\.\./(report/\w+\.rst)"'
        caption = re.search(pattern, rule)
        assert caption, name
        assert (Path(__file__).resolve().parents[1] / caption.group(1)).exists(), name
