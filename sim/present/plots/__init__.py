"""Figures of a batch: pure matplotlib functions of tidy frames, one function per figure.

Analysis only: the frames come from a results folder's sales table (:func:`monthly_units`,
:func:`cumulative_units`, :func:`shares`, :func:`quantile_bands`) or from :mod:`sim.analysis.pair_comparison`
(paired differences, cannibalisation) and :func:`sim.analysis.targets.target_outcomes`; nothing here
reads files or re-runs the model. :mod:`sim.present.report` puts the figures of a folder together.

Modules by what they hold: :mod:`~sim.present.plots.frames` (the tidy frames),
:mod:`~sim.present.plots.style` (palette, formats, axes, :func:`save`), and one per family of figures:
:mod:`~sim.present.plots.deliveries` (fan chart, brands), :mod:`~sim.present.plots.segments`,
:mod:`~sim.present.plots.target`, :mod:`~sim.present.plots.pairs` (two scenarios),
:mod:`~sim.present.plots.forecast` (a forecast's assimilated figures and effective sample size) and
:mod:`~sim.present.plots.backtest` (the backtest's errors and coverage by horizon). Their public names
are all importable from here.

Every plot function returns a :class:`matplotlib.figure.Figure` drawn on the Agg canvas (no
display, no pyplot state); :func:`save` writes it as PNG, SVG or PDF.

Conventions, for figures an analyst can paste into a deck:

* months on the x-axis as calendar dates (a month's value is drawn at its 15th day);
* units (vehicles) and RMB with thousands separators;
* bands are quantiles over the replicates: the median, the 25-75% range (50% band) and the
  5-95% range (90% band);
* colours from the Okabe-Ito palette (distinguishable by colour-blind readers) and cividis
  for ordered price segments (its lightness rises monotonically, so it survives greyscale),
  always doubled by line styles, markers, hatching or direct labels;
* the forecast (from the scenario's ``forecast_start``) is shaded and labelled.
"""

from sim.present.plots.backtest import plot_backtest
from sim.present.plots.deliveries import Fan, TargetLine, plot_brands, plot_fan
from sim.present.plots.forecast import Window, figure_marks, mark_x, plot_assimilated_fan, plot_ess
from sim.present.plots.frames import QUANTILES, cumulative_units, monthly_units, months_between, quantile_bands, shares
from sim.present.plots.pairs import plot_cannibalisation, plot_paired
from sim.present.plots.segments import plot_segment_brands, plot_segments
from sim.present.plots.style import (
    FORMATS,
    HEADER_INCHES,
    HIGHLIGHT,
    HISTORY,
    MAIN,
    OKABE_ITO,
    REFERENCE,
    brand_styles,
    month_dates,
    month_start,
    png_bytes,
    rmb_text,
    save,
    segment_colours,
    units_text,
)
from sim.present.plots.target import plot_target

__all__ = [
    "FORMATS",
    "HEADER_INCHES",
    "HIGHLIGHT",
    "HISTORY",
    "MAIN",
    "OKABE_ITO",
    "QUANTILES",
    "REFERENCE",
    "Fan",
    "TargetLine",
    "Window",
    "brand_styles",
    "cumulative_units",
    "figure_marks",
    "mark_x",
    "month_dates",
    "month_start",
    "monthly_units",
    "months_between",
    "plot_assimilated_fan",
    "plot_backtest",
    "plot_brands",
    "plot_cannibalisation",
    "plot_ess",
    "plot_fan",
    "plot_paired",
    "plot_segment_brands",
    "plot_segments",
    "plot_target",
    "png_bytes",
    "quantile_bands",
    "rmb_text",
    "save",
    "segment_colours",
    "shares",
    "units_text",
]
