"""Plots a reader can read: numbered ticks on every axis (log axes within one decade included),
the paper's points labelled, one colour per model in every plot."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pandas as pd
import pytest

from longthought.evaluate.plots import (
    draw_accuracy_vs_budget,
    draw_accuracy_vs_tokens,
    model_base,
    model_colors,
    nice_log_ticks,
)
from longthought.results.report import draw_loss


def _metrics(bench: str = "heldout") -> pd.DataFrame:
    rows = []
    for model, acc, tokens in (("sim-o1", 0.94, 166), ("tiny", 0.89, 217), ("tiny@init", 0.0, 175)):
        for metric, k in (("pass@1", 1), ("maj@4", 4)):
            rows.append({"model": model, "benchmark": bench, "metric": metric, "budget": None,
                         "value": acc, "stderr": 0.02, "avg_output_tokens": k * tokens,
                         "avg_thinking_tokens": k * tokens * 0.8, "thinking_share": 1.0,
                         "n_problems": 100, "n_samples": 400})
    for budget, acc in ((32, 0.05), (64, 0.3), (128, 0.7)):
        rows.append({"model": "tiny", "benchmark": bench, "metric": "pass@1", "budget": budget,
                     "value": acc, "stderr": 0.03, "avg_output_tokens": budget + 20,
                     "avg_thinking_tokens": budget, "thinking_share": 1.0, "n_problems": 100,
                     "n_samples": 400})
    df = pd.DataFrame(rows)
    df["budget"] = df["budget"].astype("Int64")
    return df


def _labels(fig) -> list[tuple[list[str], list[str]]]:
    """Per visible axes: the x and y tick labels that are drawn inside the view."""
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        got = []
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(lo, hi), max(lo, hi)
            got.append([t.get_text() for t, v in zip(axis.get_ticklabels(), axis.get_ticklocs(),
                                                     strict=False)
                        if t.get_text() and lo <= v <= hi])
        out.append(tuple(got))
    return out


@pytest.mark.parametrize("lo,hi", [(133, 1088), (160, 230), (700, 9000), (1.1, 1.4), (5, 5e5)])
def test_log_ticks_number_any_range(lo: float, hi: float) -> None:
    ticks = nice_log_ticks(lo, hi)
    assert len(ticks) >= 2 and all(lo <= t <= hi for t in ticks)


def test_every_axis_has_numbers_even_within_one_decade() -> None:
    # 166..868 tokens: between two powers of ten, where decade ticks would leave the axis bare
    for x_labels, y_labels in _labels(draw_accuracy_vs_tokens(_metrics())):
        assert len(x_labels) >= 3 and len(y_labels) >= 3, (x_labels, y_labels)
        assert all(label.replace(",", "").isdigit() for label in x_labels)
    for x_labels, y_labels in _labels(draw_accuracy_vs_budget(_metrics())):
        assert x_labels == ["32", "64", "128"] and len(y_labels) >= 3


def test_the_papers_points_are_labelled() -> None:
    fig = draw_accuracy_vs_tokens(_metrics("aime24"))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"o1-mini: 21/30", "o1-preview: 12/30",
            "distilled Qwen2.5-Math-72B: 13/30"} <= set(texts)
    x_labels, _ = _labels(fig)[0]
    assert len(x_labels) >= 3
    no_ref = draw_accuracy_vs_tokens(_metrics("aime24"), paper_reference=False)
    assert not any(":" in t.get_text() for t in no_ref.axes[0].texts)


def test_one_colour_per_model_in_every_plot() -> None:
    colors = model_colors(["sim-o1", "tiny", "tiny@init"])
    assert len({colors[m] for m in ("sim-o1", "tiny", "tiny@init")}) == 3

    def line_colors(fig) -> dict[str, str]:
        ax = fig.axes[0]
        handles, labels = ax.get_legend_handles_labels()
        out = {}
        for h, label in zip(handles, labels, strict=True):
            artist = h.lines[0] if hasattr(h, "lines") else h
            out[label] = mcolors.to_hex(artist.get_color())
        return out

    tokens = line_colors(draw_accuracy_vs_tokens(_metrics(), colors=colors))
    budget = line_colors(draw_accuracy_vs_budget(_metrics(), colors=colors))
    log = pd.DataFrame({"student": "tiny", "stage": 1, "dataset": "d", "step": [1, 2, 3],
                        "loss": [2.0, 1.0, 0.5]})
    loss = line_colors(draw_loss(log, colors))
    for model in ("sim-o1", "tiny", "tiny@init"):
        assert tokens[model] == colors[model]
    assert budget["tiny"] == budget["tiny, no cap"] == colors["tiny"]
    assert loss["tiny, stage 1 (d)"] == colors["tiny"]  # stages numbered from 1
    _, y_labels = _labels(draw_loss(log, colors))[0]
    assert len(y_labels) >= 3  # the log loss axis (0.5..2) is numbered too


def test_replicates_share_their_models_colour() -> None:
    assert model_base("tiny~s2") == "tiny" and model_base("a~b") == "a~b"
    colors = model_colors(["tiny~s1", "tiny~s2", "sim-o1"])
    assert colors["tiny~s1"] == colors["tiny~s2"] == colors["tiny"] != colors["sim-o1"]
    # adding replicates does not move the other models' colours
    assert model_colors(["tiny", "sim-o1"])["sim-o1"] == colors["sim-o1"]
