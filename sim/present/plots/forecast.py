"""Figures of a forecast that assimilated reported figures (``sim forecast``): the fan chart with the
figures assimilated marked, and the particles' effective sample size by month.

The marks (:func:`figure_marks`) follow what a figure says: a figure (``=``) is a filled diamond, an
approximate one (``~``, a range) a diamond with its range, a lower bound (``>``, "over 57,000") a
triangle pointing up at the bound, an upper bound (``<``) one pointing down; a figure over several
months (a quarter, a year) is a bar across its months at its monthly average. A cumulative milestone
on a day of the month sits where the fan's line counts the same deliveries: the fan draws a month's
closing total at mid-month, so a total reached part of the way through month ``m`` is drawn that
part of the way from mid ``m-1`` to mid ``m``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim.present.plots.deliveries import Fan, TargetLine, draw_fans
from sim.present.plots.frames import quantile_bands
from sim.present.plots.style import (
    MAIN,
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

#: Marks on an axis up to which every one is labelled with its value (beyond: those of the origin month only).
MAX_LABELS = 6
#: Marker of an assimilated figure by qualifier.
MARKERS = {"=": "D", "~": "D", "range": "D", ">": "^", "<": "v"}
_MARK_TEXT = {"=": "assimilated figure", "~": "assimilated figure (approximate, with its range)",
              "range": "assimilated figure (approximate, with its range)", ">": "assimilated lower bound (>: at least)",
              "<": "assimilated upper bound (<: at most)"}  # fmt: skip


@dataclass(frozen=True)
class Window:
    """The months of an assimilation: figures weighed ``first..origin``, the forecast branching after ``origin``."""

    first: str
    origin: str


def figure_marks(figures: pd.DataFrame) -> pd.DataFrame:
    """Where each figure is drawn: ``axis`` (cumulative or monthly), ``start``/``end`` months, ``value`` (a
    span's monthly average), ``low``/``high`` (its range; NaN: none), ``qualifier``, ``label`` and
    ``fraction`` (of its last month, where a cumulative one is drawn; 1: the whole month).

    Args:
        figures: assimilated figures of one brand with ``kind`` (monthly, span, cumulative), ``start``,
            ``end``/``month``, ``reported``, ``qualifier`` and optionally ``low``/``high``, and for a
            cumulative one ``date``, ``basis`` and ``fraction``
            (:attr:`sim.present.forecast_folder.Assimilation.figures`).
    """
    rows = []
    for _, f in figures.iterrows():
        q, value = str(f["qualifier"]), float(f["reported"])
        prefix = q if q in "<>~" else ""
        if f["kind"] == "cumulative":
            date, basis = f.get("date"), f.get("basis")
            label = prefix + units_text(value) + (f" {basis}" if basis == "built" else "") + (f" to {date}" if date else "")
            fraction = float(f.get("fraction", 1.0))
            rows.append(("cumulative", f["month"], f["month"], value, np.nan, np.nan, q, label, fraction))
            continue
        start, end = str(f["start"]), str(f["end"] or f["month"])
        n = parse_month(end) - parse_month(start) + 1
        low, high = (float(f.get("low", np.nan)), float(f.get("high", np.nan))) if q in ("~", "range") else (np.nan, np.nan)
        label = prefix + units_text(value) + (f" in {n} months" if n > 1 else "")
        rows.append(("monthly", start, end, value / n, low / n, high / n, q, label, 1.0))
    return pd.DataFrame(rows, columns=["axis", "start", "end", "value", "low", "high", "qualifier", "label", "fraction"])


def mark_x(mark: pd.Series) -> float:
    """Where a mark is drawn: a span at the middle of its months, a month at mid-month, a cumulative total
    ``fraction`` of the way from the previous mid-month to its own (the fan's closing totals are at mid-month)."""
    if mark["start"] != mark["end"]:
        return (month_start(mark["start"]) + month_start(format_month(parse_month(mark["end"]) + 1))) / 2
    previous, own = month_dates([format_month(parse_month(mark["end"]) - 1), mark["end"]])
    fraction = float(mark["fraction"]) if mark["axis"] == "cumulative" else 1.0
    return float(previous + fraction * (own - previous))


def _draw_marks(ax: Axes, marks: pd.DataFrame) -> None:
    for _, m in marks.iterrows():
        x0, x1 = month_start(m["start"]), month_start(format_month(parse_month(m["end"]) + 1))
        x = mark_x(m)
        if m["start"] != m["end"]:
            ax.hlines(m["value"], x0, x1, color="black", lw=2.2, zorder=6)
        if np.isfinite(m["low"]) and np.isfinite(m["high"]):
            ax.vlines(x, m["low"], m["high"], color="black", lw=1.2, zorder=6)
        ax.scatter([x], [m["value"]], marker=MARKERS.get(m["qualifier"], "D"), s=64, color="black", edgecolor="white",
                   lw=0.9, zorder=7)  # fmt: skip
        if not m["label"]:
            continue
        ax.annotate(m["label"], (x, m["value"]), xytext=(-7, 5), textcoords="offset points", ha="right", va="bottom",
                    fontsize=8, fontweight="bold")  # fmt: skip


def _fewer_labels(marks: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Beyond :data:`MAX_LABELS` marks on an axis, only those ending at the origin keep their label (the labels of
    many figures, some of them over several months, overlap; the report's table lists them all)."""
    if len(marks) <= MAX_LABELS:
        return marks
    return marks.assign(label=[lbl if end == origin else "" for lbl, end in zip(marks["label"], marks["end"], strict=True)])


def _window(ax: Axes, window: Window, label: bool) -> None:
    """The months weighed by figures: from a dotted line at their first to a dashed line at the origin's end."""
    x0, x1 = month_start(window.first), month_start(format_month(parse_month(window.origin) + 1))
    ax.axvline(x0, color="black", lw=0.9, ls=(0, (1, 2)), zorder=1)
    ax.axvline(x1, color="black", lw=1.3, ls=(0, (5, 2)), zorder=1)
    if label:
        ax.text(x1, 0.97, f" origin {month_label(window.origin)}: the forecast branches here", transform=ax.get_xaxis_transform(),
                ha="left", va="top", fontsize=8, fontweight="bold")  # fmt: skip
        ax.text(x0, 0.97, f"figures assimilated from {month_label(window.first)} \u2192 ", transform=ax.get_xaxis_transform(),
                ha="right", va="top", fontsize=8, color="#3d3d3d")  # fmt: skip


def _legend_marks(qualifiers: Sequence[str]) -> tuple[list[Line2D], list[str]]:
    seen: dict[str, Line2D] = {}
    for q in qualifiers:
        text = _MARK_TEXT.get(q, "assimilated figure")
        if text not in seen:
            seen[text] = Line2D([], [], ls="", marker=MARKERS.get(q, "D"), mfc="black", mec="white", ms=8)
    return list(seen.values()), list(seen)


@styled
def plot_assimilated_fan(
    fans: Sequence[Fan],
    monthly: pd.DataFrame,
    figures: pd.DataFrame,
    window: Window,
    *,
    title: str,
    subtitle: str = "",
    brand: str,
    target: TargetLine | None = None,
    reported: pd.DataFrame | None = None,
    reported_monthly: pd.DataFrame | None = None,
) -> Figure:
    """Fan chart of a forecast with the figures it assimilated: cumulative deliveries above, monthly below.

    Args:
        fans: the cumulative fans (as :func:`~sim.present.plots.deliveries.plot_fan`).
        monthly: the brand's deliveries per run and month (``run_id``, ``month``, ``units``).
        figures: the brand's assimilated figures (:func:`figure_marks` reads them); cumulative ones are
            drawn above, the others below.
        window: the months weighed by figures and the origin; the forecast after it is shaded.
        title, subtitle: what and which forecast. brand: whose deliveries.
        target: the target on the cumulative axis.
        reported: other reported cumulative figures (``month``, ``value``, ``label``), hollow diamonds.
        reported_monthly: other reported monthly figures (``month``, ``value``), small hollow circles.
    """
    fig, body = new_figure(10.5, 7.4, title, subtitle)
    top, bottom = body.subplots(2, 1, sharex=True, height_ratios=[1.45, 1])
    marks = figure_marks(figures)
    months = sorted({str(m) for f in fans for m in f.values["month"]} | set(monthly["month"].astype(str)))
    first = min([months[0]] + [format_month(parse_month(f.values["month"].min()) - 1) for f in fans if f.anchor is not None])
    last = months[-1] if target is None or parse_month(target.by) <= parse_month(months[-1]) else target.by
    forecast = format_month(parse_month(window.origin) + 1)
    for ax in (top, bottom):
        shade_forecast(ax, forecast, first, last, label=ax is top)
        _window(ax, window, label=ax is bottom)
    draw_fans(top, fans, target=target, reported=reported, first=first, legend=False)
    _draw_marks(top, marks[marks["axis"] == "cumulative"])
    b = quantile_bands(monthly.rename(columns={"units": "value"}), ["month"])
    x = month_dates(b["month"])
    bottom.fill_between(x, b["p5"], b["p95"], color=MAIN, alpha=0.18, lw=0)
    bottom.fill_between(x, b["p25"], b["p75"], color=MAIN, alpha=0.38, lw=0)
    bottom.plot(x, b["p50"], color=MAIN, lw=1.8, label=f"{brand} monthly deliveries: median")
    if reported_monthly is not None and len(reported_monthly):
        bottom.scatter(month_dates(reported_monthly["month"].astype(str)), reported_monthly["value"], s=16, marker="o",
                       facecolor="white", edgecolor="#444444", lw=0.8, zorder=5)  # fmt: skip
    _draw_marks(bottom, _fewer_labels(marks[marks["axis"] == "monthly"], window.origin))
    handles, labels = top.get_legend_handles_labels()
    handles += [Patch(color="#555555", alpha=0.38, lw=0), Patch(color="#555555", alpha=0.18, lw=0)]
    labels += ["50% band (25-75%)", "90% band (5-95%)"]
    mark_h, mark_l = _legend_marks(list(marks["qualifier"]))
    handles += mark_h
    labels += mark_l
    if reported_monthly is not None and len(reported_monthly):
        handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec="#444444", ms=5))
        labels.append("reported monthly figure of the fitted history")
    anchor = 0.83
    if target is not None:  # the legend's top just under the target line and its label
        lo, hi = top.get_ylim()
        anchor = min(max((target.level - lo) / (hi - lo) - 0.06, 0.4), 0.83) if hi > lo else anchor
    top.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, anchor), ncols=1, fontsize=8)
    month_axis(bottom, first, last)
    for ax, label in ((top, "cumulative deliveries (vehicles)"), (bottom, "deliveries per month")):
        units_axis(ax)
        ax.set_ylabel(label)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.1)  # room for the labels above the marks
    return fig


@styled
def plot_ess(ess: pd.Series, particles: int, *, title: str, subtitle: str = "", resampled: Sequence[str] = (),
             figures_per_month: dict[str, int] | None = None) -> Figure:  # fmt: skip
    """The particles' effective sample size by month, against the resampling threshold (half the particles).

    Args:
        ess: ``YYYY-MM`` -> effective sample size (particles' worth), after the month's figures.
        particles: the filter's particles (the axis' top).
        resampled: months after which the particles were resampled (hatched bars).
        figures_per_month: figures assimilated per month (written above the bars).
    """
    fig, body = new_figure(10.5, 2.9, title, subtitle)
    ax = body.add_subplot()
    months = list(ess.index)
    x = month_dates(months)
    hatch = ["////" if m in set(resampled) else "" for m in months]
    bars = ax.bar(x, ess.to_numpy(float), width=24, color=MAIN, alpha=0.75, edgecolor="black", lw=0.6)
    for bar, h in zip(bars, hatch, strict=True):
        bar.set_hatch(h)
    ax.axhline(particles / 2, color="black", lw=1.1, ls=(0, (5, 2)))
    ax.axhline(particles, color="#8c8c8c", lw=0.8, ls=":")
    for xi, m, v in zip(x, months, ess.to_numpy(float), strict=True):
        n = (figures_per_month or {}).get(m, 0)
        if n:
            ax.annotate(f"{n} fig.", (xi, v), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7.5)
    handles = [Patch(facecolor=MAIN, alpha=0.75, edgecolor="black", lw=0.6),
               Line2D([], [], color="black", lw=1.1, ls=(0, (5, 2))), Line2D([], [], color="#8c8c8c", lw=0.8, ls=":")]  # fmt: skip
    labels = ["effective sample size after the month's figures", f"resampling threshold ({particles / 2:g})",
              f"all {particles} particles"]  # fmt: skip
    if resampled:
        handles.append(Patch(facecolor=MAIN, alpha=0.75, edgecolor="black", hatch="////", lw=0.6))
        labels.append("resampled after this month")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    if months:
        month_axis(ax, months[0], months[-1])
    ax.set_ylim(0, particles * 1.12)
    ax.set_ylabel("particles' worth")
    return fig


__all__ = ["MARKERS", "Window", "figure_marks", "mark_x", "plot_assimilated_fan", "plot_ess"]
