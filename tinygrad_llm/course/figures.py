"""One plotting style for every lesson's figures (lessons 01 onwards).

Figures compare many series (lesson 13 draws 14 quantization methods in one plot), so the style
gives each series index a colour and a marker that no other index within ``len(PALETTE) *
len(MARKERS)`` shares, puts legends outside the axes so they never hide a point, and insists on
labelled axes. ``save_figure`` (``course.settings``) saves a finished figure; it is re-exported here
so that a lesson imports its plotting helpers from one place.
"""

from __future__ import annotations

from typing import Any

from .settings import save_figure

# Colour-blind-safe qualitative colours (Okabe-Ito, then Tableau's darker tones): 14 distinct hues.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
           "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD", "#F0E442", "#2CA02C")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "8")
LINESTYLES = ("-", "--", "-.", ":")


def series_style(i: int) -> dict[str, Any]:
    """Keyword arguments for ``ax.plot`` / ``ax.scatter`` for series ``i``: a colour and a marker.

    Colours and markers advance together, so series 0..13 all differ in both; after 14 series the
    markers shift by one, so the (colour, marker) pairs stay distinct up to 14 * 14 series.
    >>> series_style(0)["color"] != series_style(13)["color"]
    True
    """
    if i < 0:
        raise ValueError(f"series index must be >= 0, got {i}")
    colour = PALETTE[i % len(PALETTE)]
    marker = MARKERS[(i + i // len(PALETTE)) % len(MARKERS)]
    return {"color": colour, "marker": marker}


def line_style(i: int) -> dict[str, Any]:
    """``series_style`` plus a line style, for curves drawn with markers at a few points."""
    return {**series_style(i), "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)]}


def label_axes(ax, xlabel: str, ylabel: str, title: str | None = None) -> None:
    """Every figure of the course names both axes (with units where there are any)."""
    if not xlabel or not ylabel:
        raise ValueError("a course figure labels both axes")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def legend_outside(ax, **kwargs: Any):
    """A legend to the right of the axes, outside the data, so that it never covers a point."""
    options = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, "frameon": False}
    options.update(kwargs)
    return ax.legend(**options)


__all__ = ["PALETTE", "MARKERS", "series_style", "line_style", "label_axes", "legend_outside", "save_figure"]
