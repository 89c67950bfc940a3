"""Figures of deliveries over time: the fan chart of cumulative deliveries (and a target), and
monthly deliveries per brand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from sim.present.plots.frames import QUANTILES, quantile_bands
from sim.present.plots.style import (
    HIGHLIGHT,
    HISTORY,
    MAIN,
    REFERENCE,
    month_axis,
    month_dates,
    month_label,
    month_start,
    new_figure,
    shade_forecast,
    styled,
    units_axis,
    units_text,
)
from sim.scenario.months import format_month, parse_month


@dataclass(frozen=True)
class Fan:
    """One fan of a fan chart.

    Attributes:
        label: legend text.
        values: ``run_id``, ``month``, ``value`` (e.g. :func:`~sim.present.plots.frames.cumulative_units`).
        role: ``main`` (filled bands, solid median), ``reference`` (hatched bands, dashed
            median) or ``history`` (grey, light).
        anchor: a value every run starts from, drawn one month before the first (e.g. the
            reported cumulative at a target's start); None: no anchor.
    """

    label: str
    values: pd.DataFrame
    role: str = "main"
    anchor: float | None = None


@dataclass(frozen=True)
class TargetLine:
    """A target on a cumulative axis: reach ``level`` by the end of month ``by``."""

    level: float
    by: str
    label: str


def _draw_fan(ax: Axes, fan: Fan) -> None:
    b = quantile_bands(fan.values, ["month"])
    months, cols = list(b["month"]), {k: b[k].to_numpy(float) for k in QUANTILES}
    if fan.anchor is not None and len(months):
        months = [format_month(parse_month(months[0]) - 1), *months]
        cols = {k: np.r_[fan.anchor, v] for k, v in cols.items()}
    x = month_dates(months)
    colour = {"main": MAIN, "reference": REFERENCE, "history": HISTORY}[fan.role]
    if fan.role == "reference":
        ax.fill_between(x, cols["p5"], cols["p95"], facecolor="none", edgecolor=colour, hatch="////", lw=0, alpha=0.55)
        ax.fill_between(x, cols["p25"], cols["p75"], color=colour, alpha=0.22, lw=0)
        ax.plot(x, cols["p50"], color=colour, lw=2.0, ls="--", label=f"{fan.label}: median")
    else:
        light, dark = (0.12, 0.28) if fan.role == "history" else (0.18, 0.38)
        ax.fill_between(x, cols["p5"], cols["p95"], color=colour, alpha=light, lw=0)
        ax.fill_between(x, cols["p25"], cols["p75"], color=colour, alpha=dark, lw=0)
        ax.plot(x, cols["p50"], color=colour, lw=2.2 if fan.role == "main" else 1.5,
                ls="-" if fan.role == "main" else ":", label=f"{fan.label}: median")  # fmt: skip


@styled
def plot_fan(
    fans: Sequence[Fan],
    *,
    title: str,
    subtitle: str = "",
    target: TargetLine | None = None,
    reported: pd.DataFrame | None = None,
    forecast_start: str | None = None,
    ylabel: str = "cumulative deliveries (vehicles)",
    from_zero: bool = True,
) -> Figure:
    """Fan chart: per fan the median, the 50% and the 90% bands over runs; a target line and its date.

    Args:
        fans: the fans, drawn in order (history first, then reference, then main looks best).
        title, subtitle: what and which scenario.
        target: a horizontal line at ``level`` and a vertical one at the end of month ``by``.
        reported: reported points, columns ``month``, ``value`` and optionally ``label``
            (written beside the point).
        forecast_start: first forecast month (shaded).
        ylabel: the y-axis label.
        from_zero: start the y-axis at zero (else at the data).
    """
    fig, body = new_figure(10.5, 5.6, title, subtitle)
    ax = body.add_subplot()
    months = sorted({str(m) for f in fans for m in f.values["month"]})
    first = min([months[0]] + [format_month(parse_month(f.values["month"].min()) - 1) for f in fans if f.anchor is not None])
    last = months[-1]
    if target is not None and parse_month(target.by) > parse_month(last):
        last = target.by
    shade_forecast(ax, forecast_start, first, last)
    draw_fans(ax, fans, target=target, reported=reported, first=first)
    month_axis(ax, first, last)
    units_axis(ax)
    ax.set_ylabel(ylabel)
    if from_zero:
        ax.set_ylim(bottom=0)
    return fig


def draw_fans(ax: Axes, fans: Sequence[Fan], *, target: TargetLine | None, reported: pd.DataFrame | None,
              first: str, legend: bool = True) -> None:  # fmt: skip
    """The fans, the target and the reported points of :func:`plot_fan` on one axis (``first``: its first month)."""
    for fan in fans:
        _draw_fan(ax, fan)
    if target is not None:
        ax.axhline(target.level, color="black", lw=1.2, ls=(0, (6, 3)))
        end = month_start(format_month(parse_month(target.by) + 1))
        ax.axvline(end, color="black", lw=1.0, ls=(0, (1, 2)))
        ax.annotate(f"{target.label}: {units_text(target.level)} by end of {month_label(target.by)}",
                    (month_start(first), target.level), xytext=(4, 4), textcoords="offset points",
                    fontsize=9, fontweight="bold", va="bottom")  # fmt: skip
    if reported is not None and len(reported):
        x = month_dates(reported["month"].astype(str))
        ax.scatter(x, reported["value"], marker="D", s=42, color="white", edgecolor="black", lw=1.4, zorder=5,
                   label="reported")  # fmt: skip
        for xi, (_, r) in zip(x, reported.iterrows(), strict=True):
            text = str(r.get("label") or units_text(float(r["value"])))
            ax.annotate(text, (xi, r["value"]), xytext=(-6, 6), textcoords="offset points", ha="right", fontsize=8)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        handles += [Patch(color="#555555", alpha=0.38, lw=0), Patch(color="#555555", alpha=0.18, lw=0)]
        labels += ["50% band (25-75%)", "90% band (5-95%)"]
        ax.legend(handles, labels, loc="center left", bbox_to_anchor=(0.0, 0.55), ncols=1)  # below the target line, above the early curve


# --------------------------------------------------------------------------- brands


@styled
def plot_brands(
    monthly: pd.DataFrame,
    *,
    title: str,
    subtitle: str = "",
    reported: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
    reference_label: str = "reference",
    forecast_start: str | None = None,
    brands: Sequence[str] | None = None,
    ncols: int = 4,
) -> Figure:
    """Monthly deliveries per brand, one panel each: median, 50% and 90% bands, reported points.

    Args:
        monthly: ``run_id``, ``month``, ``brand``, ``units`` (:func:`~sim.present.plots.frames.monthly_units`).
        reported: reported monthly figures: ``brand``, ``month``, ``value`` and ``used`` (True:
            counted in the comparison's metrics, drawn filled; False: shown only, hollow).
        reference: another scenario's ``monthly``; its median is drawn dashed.
        forecast_start: first forecast month (shaded).
        brands: the brands and their order (default: AITO first, then by total deliveries).
    """
    if brands is None:
        totals = monthly.groupby("brand")["units"].sum().sort_values(ascending=False)
        brands = sorted(totals.index, key=lambda b: (b != HIGHLIGHT, -totals[b]))
    brands = list(brands)
    nrows = max(1, math.ceil(len(brands) / ncols))
    fig, body = new_figure(3.1 * ncols, 2.25 * nrows + 0.9, title, subtitle)
    axes = body.subplots(nrows, ncols, squeeze=False)
    bands = quantile_bands(monthly, ["brand", "month"], "units")
    ref = quantile_bands(reference, ["brand", "month"], "units") if reference is not None else None
    first, last = str(monthly["month"].min()), str(monthly["month"].max())
    for i, ax in enumerate(axes.flat):
        if i >= len(brands):
            ax.set_visible(False)
            continue
        brand = brands[i]
        b = bands[bands["brand"] == brand]
        x = month_dates(b["month"])
        shade_forecast(ax, forecast_start, first, last, label=False)
        ax.fill_between(x, b["p5"], b["p95"], color=MAIN, alpha=0.18, lw=0)
        ax.fill_between(x, b["p25"], b["p75"], color=MAIN, alpha=0.38, lw=0)
        ax.plot(x, b["p50"], color=MAIN, lw=1.6)
        if ref is not None:
            r = ref[ref["brand"] == brand]
            ax.plot(month_dates(r["month"]), r["p50"], color=REFERENCE, lw=1.3, ls="--")
        if reported is not None and len(reported):
            rep = reported[reported["brand"] == brand]
            for used, face in ((True, "black"), (False, "white")):
                pts = rep[rep["used"] == used]
                if len(pts):
                    ax.scatter(month_dates(pts["month"].astype(str)), pts["value"], s=14, marker="o",
                               facecolor=face, edgecolor="black", lw=0.8, zorder=5)  # fmt: skip
        ax.set_title(brand, fontsize=10, fontweight="bold" if brand == HIGHLIGHT else "normal")
        ax.set_ylim(bottom=0)
        units_axis(ax)
        month_axis(ax, first, last, max_ticks=4)
    handles: list[Any] = [
        matplotlib.lines.Line2D([], [], color=MAIN, lw=1.6),
        Patch(color=MAIN, alpha=0.38, lw=0),
        Patch(color=MAIN, alpha=0.18, lw=0),
    ]
    labels = ["median", "50% band", "90% band"]
    if ref is not None:
        handles.append(matplotlib.lines.Line2D([], [], color=REFERENCE, lw=1.3, ls="--"))
        labels.append(f"{reference_label}: median")
    if reported is not None and len(reported):
        handles += [matplotlib.lines.Line2D([], [], ls="", marker="o", mfc=f, mec="black", ms=5) for f in ("black", "white")]
        labels += ["reported (in the comparison's metrics)", "reported (shown only: other measure or basis)"]
    handles.append(Patch(color="#f1f1f1", lw=0))
    labels.append(f"forecast (from {month_label(forecast_start)})" if forecast_start else "forecast")
    body.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    body.supylabel("deliveries per month (vehicles)", fontsize=9.5)
    return fig

