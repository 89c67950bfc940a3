"""Figures of price segments: their shares of deliveries, and the brands' shares inside each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from sim.present.plots.style import (
    HIGHLIGHT,
    brand_styles,
    month_axis,
    month_dates,
    month_label,
    month_start,
    new_figure,
    segment_colours,
    shade_forecast,
    styled,
)
from sim.scenario.months import parse_month


@styled
def plot_segments(
    segment_shares: pd.DataFrame,
    *,
    title: str,
    subtitle: str = "",
    order: Sequence[str] | None = None,
    forecast_start: str | None = None,
) -> Figure:
    """Price segments' shares of deliveries over time, stacked (cheapest at the bottom).

    Args:
        segment_shares: ``month``, ``segment``, ``share`` (:func:`~sim.present.plots.frames.shares` by ``segment``).
        order: the segments from cheapest to dearest (default: as they sort).
        forecast_start: first forecast month (shaded).
    """
    wide = segment_shares.pivot_table(index="month", columns="segment", values="share", fill_value=0.0)
    order = [s for s in (order or sorted(wide.columns)) if s in wide.columns]
    wide = wide[order].sort_index()
    fig, body = new_figure(10.5, 5.4, title, subtitle)
    ax = body.add_subplot()
    if wide.empty:  # a batch with no deliveries (no capacity, no buyers) has no shares to stack
        ax.text(0.5, 0.5, "no deliveries in the batch: no segment shares", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    x = month_dates(list(wide.index))
    colours = segment_colours(len(order))
    hatches = ["", "..", "", "//", "", "xx", "", "\\\\"]
    bottom = np.zeros(len(wide))
    last = str(wide.index[-1])
    for i, seg in enumerate(order):
        top = bottom + wide[seg].to_numpy(float)
        ax.fill_between(x, bottom, top, facecolor=colours[i], edgecolor="white", hatch=hatches[i % len(hatches)],
                        lw=0.4, label=seg, step="mid")  # fmt: skip
        mid = (bottom[-1] + top[-1]) / 2
        if top[-1] - bottom[-1] > 0.025:
            ax.annotate(f"{seg} {100 * (top[-1] - bottom[-1]):.0f}%", (x[-1], mid), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=8.5)  # fmt: skip
        bottom = top
    if forecast_start and parse_month(forecast_start) <= parse_month(last):
        ax.axvline(month_start(forecast_start), color="black", lw=1.2, ls=(0, (3, 2)))
        ax.text(month_start(forecast_start), 1.01, f" forecast from {month_label(forecast_start)}",
                transform=ax.get_xaxis_transform(), fontsize=8, va="bottom")  # fmt: skip
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("share of deliveries (segment by transaction price, RMB)")
    month_axis(ax, str(wide.index[0]), last)
    ax.grid(False)
    body.legend(*ax.get_legend_handles_labels(), loc="outside right upper", reverse=True, title="segment (RMB)")
    return fig


@styled
def plot_segment_brands(
    brand_shares: pd.DataFrame,
    *,
    title: str,
    subtitle: str = "",
    order: Sequence[str] | None = None,
    forecast_start: str | None = None,
    top: int = 5,
    ncols: int = 3,
) -> Figure:
    """Brand shares inside each price segment, one panel per segment, the ``top`` brands (and AITO).

    Args:
        brand_shares: ``segment``, ``month``, ``brand``, ``share``
            (:func:`~sim.present.plots.frames.shares` of ``brand`` within ``segment``).
        order: the segments (panels) in order.
        forecast_start: first forecast month (marked).
        top: brands drawn per panel, by mean share; AITO is always drawn where it sells.
    """
    segs = [s for s in (order or sorted(brand_shares["segment"].unique())) if s in set(brand_shares["segment"])]
    styles = brand_styles(sorted(brand_shares["brand"].unique()))
    nrows = max(1, math.ceil(len(segs) / ncols))
    fig, body = new_figure(4.0 * ncols, 2.9 * nrows + 0.9, title, subtitle)
    axes = body.subplots(nrows, ncols, squeeze=False)
    first, last = str(brand_shares["month"].min()), str(brand_shares["month"].max())
    drawn: set[str] = set()
    for i, ax in enumerate(axes.flat):
        if i >= len(segs):
            ax.set_visible(False)
            continue
        d = brand_shares[brand_shares["segment"] == segs[i]]
        wide = d.pivot_table(index="month", columns="brand", values="share", fill_value=0.0).sort_index()
        ranked = wide.mean().sort_values(ascending=False)
        ranked = ranked[ranked > 0]  # brands that never sell in this segment are not drawn
        keep = list(ranked.index[:top]) + ([HIGHLIGHT] if HIGHLIGHT in ranked.index[top:] else [])
        x = month_dates(list(wide.index))
        shade_forecast(ax, forecast_start, first, last, label=False)
        for b in sorted(keep, key=lambda b: (b != HIGHLIGHT, -ranked[b])):
            s = styles[b]
            ax.plot(x, wide[b], color=s["color"], ls=s["ls"], lw=s["lw"], marker=s["marker"], ms=3.5,
                    markevery=max(1, len(x) // 8), label=b)  # fmt: skip
            drawn.add(b)
        ax.set_title(f"{segs[i]} RMB", fontsize=10)
        ax.set_ylim(0, min(1.0, max(0.2, float(wide[keep].to_numpy().max()) * 1.1)))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        month_axis(ax, first, last, max_ticks=5)
    handles = [matplotlib.lines.Line2D([], [], color=styles[b]["color"], ls=styles[b]["ls"], lw=styles[b]["lw"],
                                       marker=styles[b]["marker"], ms=4)
               for b in sorted(drawn, key=lambda b: (b != HIGHLIGHT, b))]  # fmt: skip
    body.legend(handles, sorted(drawn, key=lambda b: (b != HIGHLIGHT, b)), loc="outside lower center",
               ncols=min(len(drawn), 7))  # fmt: skip
    body.supylabel("share of the segment's deliveries", fontsize=9.5)
    return fig

