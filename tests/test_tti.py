"""TTI rubric, scorecards, the paper's leaderboard, scores and the `tti` verbs."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from longthought.cli import main
from longthought.io import validate
from longthought.transparency.cards import card_to_yaml, load_card, load_cards, parse_card
from longthought.transparency.rubric import load_rubric, parse_rubric
from longthought.transparency.scores import (
    card_rows,
    leaderboard,
    leaderboard_markdown,
    plot_leaderboard,
    scores_table,
)

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "config" / "tti" / "rubric.yaml"
CARDS = ROOT / "config" / "tti" / "projects"

# The paper's Table 4: data, methodology, evaluation, open source, total.
TABLE4 = {
    "Open O1": (0, 8, 20, 5, 33),
    "O1-Journey (Part 1)": (10, 33, 24, 9, 76),
    "LLaMA-O1": (0, 6, 0, 5, 11),
    "K0Math": (0, 0, 16, 0, 16),
    "Skywork O1": (0, 0, 0, 0, 0),
    "DeepSeek-R1-Lite": (0, 0, 20, 0, 20),
    "O1-Journey (Part 2)": (10, 33, 24, 12, 79),
}
DIMS = ["data", "methodology", "evaluation", "open_source"]


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(RUBRIC)


@pytest.fixture(scope="module")
def cards(rubric):
    return load_cards([str(CARDS)], rubric)


def _raw_rubric() -> dict:
    return yaml.safe_load(RUBRIC.read_text())


def _blank_card(rubric, project="X") -> dict:
    return {"project": project,
            "answers": {it.id: {"answer": "no", "note": "", "inferred": False}
                        for it in rubric.items}}


# --- rubric ---------------------------------------------------------------------------------------

def test_rubric_adds_up(rubric):
    assert rubric.total == 100
    assert {d.id: d.points for d in rubric.dimensions} == {
        "data": 14, "methodology": 33, "evaluation": 24, "open_source": 29}
    assert sum(it.points for it in rubric.items) == 100
    assert len(rubric.item_ids) == len(set(rubric.item_ids)) == 25
    for d in rubric.dimensions:
        assert sum(it.points for it in rubric.items_of(d.id)) == d.points
    # the paper's item points
    assert rubric.item("search_algorithm").points == 6
    assert rubric.item("long_thought_data").points == 5
    assert [it.points for it in rubric.items_of("evaluation")] == [4] * 6
    assert all(it.description and it.evidence for it in rubric.items)


def test_rubric_duplicate_id_is_named():
    data = _raw_rubric()
    data["items"][1]["id"] = data["items"][0]["id"]
    with pytest.raises(ValueError, match=r"items\[1\] \(data_sources\)\.id: duplicate id"):
        parse_rubric(data, "r.yaml")


def test_rubric_points_must_add_up():
    data = _raw_rubric()
    data["items"][0]["points"] = 2  # data now sums to 13
    with pytest.raises(ValueError, match=r"r\.yaml: dimensions\.data\.points: is 14 .* to 13"):
        parse_rubric(data, "r.yaml")
    data = _raw_rubric()
    data["total"] = 99
    with pytest.raises(ValueError, match=r"total: .*100 points"):
        parse_rubric(data, "r.yaml")


@pytest.mark.parametrize("key, value, message", [
    ("points", "three", r"items\[0\] \(data_sources\)\.points: must be an integer"),
    ("points", True, r"items\[0\] \(data_sources\)\.points: must be an integer"),
    ("dimension", "vibes", r"items\[0\] \(data_sources\)\.dimension: unknown dimension 'vibes'"),
    ("colour", "red", r"items\[0\]: unknown key\(s\) \['colour'\]"),
])
def test_rubric_bad_item_names_key(key, value, message):
    data = _raw_rubric()
    data["items"][0][key] = value
    with pytest.raises(ValueError, match=message):
        parse_rubric(data, "r.yaml")


# --- the paper's seven scorecards -------------------------------------------------------------

def test_seven_cards_reproduce_table4(cards):
    assert sorted(c.project for c in cards) == sorted(TABLE4)
    for c in cards:
        sub = c.subtotals()
        assert tuple(sub[d] for d in DIMS) + (sub["total"],) == TABLE4[c.project], c.project
        assert c.published == dict(zip(DIMS + ["total"], TABLE4[c.project], strict=True))


def test_leaderboard_matches_table4(cards, rubric):
    board = leaderboard(cards, rubric)
    assert list(board.columns) == ["project", *DIMS, "total"]
    assert list(board["total"]) == sorted(board["total"], reverse=True)
    for r in board.itertuples():
        assert (r.data, r.methodology, r.evaluation, r.open_source, r.total) == TABLE4[r.project]
    # Part 2: the table says 79 (its text calls it perfect); we reproduce the table
    assert board.iloc[0]["project"] == "O1-Journey (Part 2)" and board.iloc[0]["total"] == 79


def test_inferred_marks_item_choices_the_paper_does_not_make(cards, rubric):
    for c in cards:
        sub = c.subtotals()
        for d in rubric.dimensions:
            determined = sub[d.id] in (0, d.points)
            for it in rubric.items_of(d.id):
                a = c.answers[it.id]
                assert a.inferred is (not determined), (c.project, it.id)
                assert a.note, (c.project, it.id)
                if a.yes:
                    assert a.evidence, (c.project, it.id)


def test_part2_withholds_distillation_prompt(cards):
    part2 = next(c for c in cards if c.project == "O1-Journey (Part 2)")
    assert not part2.answers["synthetic_data_process"].yes
    assert part2.answers["search_algorithm"].yes and part2.answers["rl_algorithm"].yes


# --- card validation ------------------------------------------------------------------------------

def test_missing_item_is_named(rubric):
    data = _blank_card(rubric)
    del data["answers"]["ablations"]
    with pytest.raises(ValueError, match=r"card\.yaml: answers\.ablations: missing"):
        parse_card(data, rubric, "card.yaml")


def test_yes_without_evidence_is_named(rubric):
    data = _blank_card(rubric)
    data["answers"]["base_model"]["answer"] = True  # YAML's bare `yes`
    with pytest.raises(ValueError, match=r"answers\.base_model\.evidence: a yes needs evidence"):
        parse_card(data, rubric, "card.yaml")
    data["answers"]["base_model"]["evidence"] = "   "
    with pytest.raises(ValueError, match=r"answers\.base_model\.evidence"):
        parse_card(data, rubric, "card.yaml")


def test_unknown_item_is_named(rubric):
    data = _blank_card(rubric)
    data["answers"]["vibes"] = {"answer": "yes", "evidence": "trust me"}
    with pytest.raises(ValueError, match=r"answers\.vibes: unknown item"):
        parse_card(data, rubric, "card.yaml")


def test_all_problems_reported_together(rubric):
    data = _blank_card(rubric)
    del data["answers"]["compute"]
    data["answers"]["rl_algorithm"]["answer"] = "maybe"
    data["answers"]["usage_guide"]["inferred"] = "sometimes"
    with pytest.raises(ValueError) as exc:
        parse_card(data, rubric, "card.yaml")
    msg = str(exc.value)
    assert "answers.compute: missing" in msg
    assert "answers.rl_algorithm.answer: must be yes or no (got 'maybe')" in msg
    assert "answers.usage_guide.inferred: must be true or false" in msg


def test_published_mismatch_is_named(rubric):
    data = _blank_card(rubric)
    data["published"] = {"methodology": 8}
    with pytest.raises(ValueError, match=r"published\.methodology: the card earns 0 .* is 8"):
        parse_card(data, rubric, "card.yaml")
    data["published"] = {"vibes": 1}
    with pytest.raises(ValueError, match=r"published\.vibes: unknown dimension"):
        parse_card(data, rubric, "card.yaml")


def test_yes_no_strings_and_bools_both_read(rubric):
    data = _blank_card(rubric)
    data["answers"]["base_model"] = {"answer": "Yes", "evidence": ["a", "b"]}
    data["answers"]["compute"] = {"answer": True, "evidence": "c"}
    card = parse_card(data, rubric, "card.yaml")
    assert card.answers["base_model"].yes and card.answers["base_model"].evidence == ("a", "b")
    assert card.subtotals()["methodology"] == 6


def test_card_yaml_round_trips_with_bare_yes_no(cards, rubric, tmp_path):
    card = next(c for c in cards if c.project == "Open O1")
    text = card_to_yaml(card, header="hello")
    assert text.startswith("# hello\n")
    assert "answer: yes\n" in text and "answer: no\n" in text
    path = tmp_path / "c.yaml"
    path.write_text(text)
    again = load_card(path, rubric)
    assert again.answers == card.answers and again.published == card.published


def test_duplicate_project_names_rejected(rubric, tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(_blank_card(rubric, "Same")))
    with pytest.raises(ValueError, match="more than one card: \\['Same'\\]"):
        load_cards([str(tmp_path)], rubric)


# --- scores -------------------------------------------------------------------------------------

def test_card_rows_schema_and_sums(cards, rubric):
    part1 = next(c for c in cards if c.project == "O1-Journey (Part 1)")
    rows = card_rows(part1, rubric)
    validate(rows, "tti_scores", "test")
    assert list(rows.columns) == ["project", "dimension", "item", "points", "earned", "evidence"]
    assert len(rows) == 25 and rows["points"].sum() == 100 and rows["earned"].sum() == 76
    assert rows.groupby("dimension")["earned"].sum().to_dict() == {
        "data": 10, "evaluation": 24, "methodology": 33, "open_source": 9}
    yes = rows[rows["earned"] > 0]
    assert yes["evidence"].notna().all()
    assert rows[rows["earned"] == 0]["evidence"].isna().all()
    lt = rows.set_index("item").loc["long_thought_data", "evidence"]
    assert lt == "https://huggingface.co/datasets/GAIR/o1-journey"


def test_leaderboard_from_rows_equals_from_cards(cards, rubric):
    rows = scores_table(cards)
    assert len(rows) == 7 * 25
    from_rows = leaderboard(rows, rubric)
    pd.testing.assert_frame_equal(from_rows, leaderboard(cards, rubric))


def test_markdown_and_plot(cards, rubric, tmp_path):
    board = leaderboard(cards, rubric)
    md = leaderboard_markdown(board, rubric)
    lines = md.strip().splitlines()
    assert lines[0] == ("| project | Data (14) | Methodology (33) | Evaluation (24) | "
                        "Open source (29) | total (100) |")
    assert lines[2] == "| O1-Journey (Part 2) | 10 | 33 | 24 | 12 | **79** |"
    assert len(lines) == 2 + 7
    assert "| data | methodology |" in leaderboard_markdown(board)  # no rubric: raw ids
    png = tmp_path / "report" / "tti.png"
    plot_leaderboard(board, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert not list(png.parent.glob("*.tmp"))


# --- CLI ----------------------------------------------------------------------------------------

def test_cli_score_prints_breakdown(capsys):
    rc = main(["tti", "score", str(CARDS / "llama-o1.yaml"), "--rubric", str(RUBRIC)])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("LLaMA-O1: 11 / 100")
    assert "Methodology: 6 / 33" in out and "Open source: 5 / 29" in out
    assert "[yes]  6/6  search_algorithm (inferred)" in out
    assert "(matched)" in out


def test_cli_validate_ok_and_errors(capsys, rubric, tmp_path):
    assert main(["tti", "validate", str(CARDS), "--rubric", str(RUBRIC)]) == 0
    assert "7 card(s) valid" in capsys.readouterr().out
    bad = copy.deepcopy(_blank_card(rubric))
    bad["answers"]["model_weights"]["answer"] = "yes"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    rc = main(["tti", "validate", str(tmp_path / "bad.yaml"), "--rubric", str(RUBRIC)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "bad.yaml: answers.model_weights.evidence: a yes needs evidence" in err
    assert main(["tti", "validate", str(tmp_path / "none.yaml"), "--rubric", str(RUBRIC)]) == 2
    assert "none.yaml: scorecard not found" in capsys.readouterr().err


def test_tti_verbs_work_outside_the_repository(tmp_path):
    """The rubric and the paper's cards ship with the package: no repository checkout needed."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "longthought"
    for verb in (["leaderboard"], ["validate"], ["score", str(CARDS / "open-o1.yaml")]):
        done = subprocess.run([str(exe), "tti", *verb], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert "| O1-Journey (Part 2) | 10 | 33 | 24 | 12 | **79** |" in subprocess.run(
        [str(exe), "tti", "leaderboard"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120).stdout
    # config/tti in the repository is the same data (a link to the package's copy)
    from longthought.transparency.rubric import DEFAULT_RUBRIC

    assert (ROOT / "config" / "tti").resolve() == DEFAULT_RUBRIC.parent.resolve()


def test_evidence_markdown_shows_every_item(cards, rubric):
    from longthought.transparency.scores import evidence_markdown

    card = next(c for c in cards if c.project == "O1-Journey (Part 2)")
    md = evidence_markdown(card)
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(rubric.items)  # header + one row per item
    assert md.startswith("O1-Journey (Part 2): **79/100**")
    assert "| model_weights (no) | 0/5 |" in md
    assert "| base_model (yes) | 4/4 | `https://arxiv.org/abs/2411.16489`" in md
