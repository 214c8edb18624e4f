"""The course's shared plotting style (tinygrad_llm.course.figures)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from tinygrad_llm.course.figures import MARKERS, PALETTE, label_axes, legend_outside, series_style


def test_fourteen_series_differ_in_colour_and_in_marker():
    styles = [series_style(i) for i in range(14)]
    assert len({s["color"] for s in styles}) == 14
    assert len({s["marker"] for s in styles}) == 14


def test_style_pairs_stay_distinct_beyond_the_palette():
    n = len(PALETTE) * len(MARKERS)
    assert len({(s["color"], s["marker"]) for s in map(series_style, range(n))}) == n
    with pytest.raises(ValueError, match="series index"):
        series_style(-1)


def test_label_axes_insists_on_both_labels():
    fig, ax = plt.subplots()
    label_axes(ax, "step", "loss", "title")
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("step", "loss", "title")
    with pytest.raises(ValueError, match="labels both axes"):
        label_axes(ax, "step", "")
    plt.close(fig)


def test_legend_outside_does_not_overlap_the_axes():
    fig, ax = plt.subplots()
    for i in range(3):
        ax.plot([0, 1], [i, i + 1], **series_style(i), label=f"series {i}")
    legend = legend_outside(ax)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box, axes_box = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert box.x0 >= axes_box.x1, "the legend must sit to the right of the data"
    plt.close(fig)
