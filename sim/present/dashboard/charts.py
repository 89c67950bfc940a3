"""The dashboard's charts: matplotlib figures drawn from a :class:`~sim.present.dashboard.summary.Summary`.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot: no global state, safe from the
server's threads). Units: vehicles; months on the x axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from sim.present.dashboard.summary import Summary

SCENARIO_COLOUR = "#1f5fa8"
BASELINE_COLOUR = "#8a8a8a"
TARGET_COLOUR = "#c0392b"
REPORTED_COLOUR = "#111111"
BRAND_COLOURS = ("#1f5fa8", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#d35400", "#2c3e50")


def _months(values: Sequence[str] | pd.Series) -> np.ndarray:
    """``YYYY-MM`` -> numpy datetime64 (first of the month), for date axes."""
    return np.array([f"{m}-01" for m in values], dtype="datetime64[D]")


def _thousands(x: float, _pos: int) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def _figure(width: float = 9.0, height: float = 4.2) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def fan_chart(summary: Summary) -> Figure:
    """Cumulative deliveries as the target counts them, scenario fan against the baseline.

    Scenario: 5-95% and 25-75% bands and the median; baseline: its median (dashed) and 5-95%
    band (grey); the target (``anchor + units`` at ``by``) as a red line; the reported
    cumulative figures since launch as black points (with the simulated history as a thin line,
    whose gap to them is the model's error on the history).
    """
    fig = _figure()
    ax = fig.add_subplot()
    brand = summary.brand
    if summary.target is None or summary.fan.empty:
        ax.text(0.5, 0.5, "this scenario has no target", ha="center", va="center", transform=ax.transAxes)
        return fig
    t = summary.target
    base = summary.fan[summary.fan["role"] == "baseline"]
    scen = summary.fan[summary.fan["role"] == "scenario"]
    xb, xs = _months(base["month"]), _months(scen["month"])
    ax.fill_between(
        xb, base["q05"], base["q95"], color=BASELINE_COLOUR, alpha=0.18, lw=0, label=f"{summary.baseline_name} 5-95%"
    )
    ax.plot(xb, base["q50"], color=BASELINE_COLOUR, ls="--", lw=1.5, label=f"{summary.baseline_name} median")
    ax.fill_between(
        xs, scen["q05"], scen["q95"], color=SCENARIO_COLOUR, alpha=0.18, lw=0, label=f"{summary.scenario_name} 5-95%"
    )
    ax.fill_between(
        xs, scen["q25"], scen["q75"], color=SCENARIO_COLOUR, alpha=0.30, lw=0, label=f"{summary.scenario_name} 25-75%"
    )
    ax.plot(xs, scen["q50"], color=SCENARIO_COLOUR, lw=2, label=f"{summary.scenario_name} median")
    goal = summary.anchor + float(t["units"])
    ax.axhline(goal, color=TARGET_COLOUR, lw=1.2)
    ax.annotate(f"target {goal:,.0f} by {t['by']}", (xs[-1], goal), xytext=(-4, 4), textcoords="offset points",
                ha="right", va="bottom", color=TARGET_COLOUR, fontsize=9)  # fmt: skip
    hist = summary.history[(summary.history["role"] == "scenario")]
    lo = _months([t["start"]])[0] - np.timedelta64(730, "D")
    hist = hist[_months(hist["month"]) >= lo]
    ax.plot(
        _months(hist["month"]),
        hist["q50"],
        color=SCENARIO_COLOUR,
        lw=0.8,
        ls=":",
        label="simulated cumulative since launch",
    )
    rep = summary.reported_cumulative
    if len(rep):
        rep = rep[_months(rep["month"].astype(str)) >= lo]
        ax.scatter(_months(rep["month"].astype(str)), rep["reported"], color=REPORTED_COLOUR, zorder=5, s=22,
                   label="reported cumulative since launch")  # fmt: skip
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_ylabel(f"{brand} cumulative deliveries")
    ax.set_title(
        f"{brand}: {summary.anchor:,.0f} reported at {t['start']} + simulated deliveries from {t['start']}", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", ncol=2)
    return fig


def monthly_chart(summary: Summary, brands: Sequence[str]) -> Figure:
    """Mean monthly deliveries per brand: scenario solid, baseline dashed, reported points."""
    fig = _figure()
    ax = fig.add_subplot()
    m = summary.monthly
    rep = summary.reported_monthly
    for i, brand in enumerate(brands):
        colour = BRAND_COLOURS[i % len(BRAND_COLOURS)]
        for role, ls, lw in (("baseline", "--", 1.0), ("scenario", "-", 1.8)):
            sel = m[(m["role"] == role) & (m["brand"] == brand)]
            label = brand if role == "scenario" else None
            ax.plot(_months(sel["month"]), sel["units"], color=colour, ls=ls, lw=lw, label=label)
        pts = rep[rep["brand"] == brand] if len(rep) else rep
        if len(pts):
            ax.scatter(
                _months(pts["month"].astype(str)),
                pts["reported"],
                color=colour,
                s=10,
                zorder=4,
                edgecolor="black",
                lw=0.3,
            )
    if summary.target is not None:
        for when in (summary.target["start"], summary.target["by"]):
            ax.axvline(_months([when])[0], color=TARGET_COLOUR, lw=0.8, alpha=0.5)
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_ylabel("deliveries a month (mean over replicates)")
    ax.set_title(f"{summary.scenario_name} (solid) vs {summary.baseline_name} (dashed); dots: reported", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncol=3)
    return fig


def segment_chart(summary: Summary) -> Figure:
    """Share of deliveries per price segment over the target window, baseline and scenario."""
    fig = _figure(9.0, 3.4)
    ax = fig.add_subplot()
    seg = summary.segments
    if seg.empty:
        ax.text(0.5, 0.5, "no deliveries in the window", ha="center", va="center", transform=ax.transAxes)
        return fig
    x = np.arange(len(seg))
    ax.bar(x - 0.2, 100 * seg["baseline_share"], width=0.4, color=BASELINE_COLOUR, label=summary.baseline_name)
    ax.bar(x + 0.2, 100 * seg["scenario_share"], width=0.4, color=SCENARIO_COLOUR, label=summary.scenario_name)
    for xi, (b, s) in enumerate(zip(seg["baseline_brand_share"], seg["scenario_brand_share"], strict=True)):
        if not (math.isnan(b) and math.isnan(s)):
            top = 100 * max(seg["baseline_share"].iloc[xi], seg["scenario_share"].iloc[xi])
            text = f"{summary.brand} {_pct(b)} -> {_pct(s)}"
            ax.annotate(text, (xi, top), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7.5)
    ax.set_xticks(x, list(seg["segment"]))
    ax.set_ylabel("% of deliveries in the window")
    window = f"{summary.target['start']}..{summary.target['by']}" if summary.target else "the forecast"
    ax.set_title(
        f"price segments (by transaction price), {window}; labels: {summary.brand}'s share of the segment", fontsize=10
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


def _pct(v: float) -> str:
    return "-" if math.isnan(v) else f"{100 * v:.0f}%"


def window_chart(summary: Summary) -> Figure:
    """Each replicate's deliveries in the target window, baseline and scenario, against the target."""
    fig = _figure(9.0, 2.6)
    ax = fig.add_subplot()
    if summary.target is None or not summary.window:
        ax.text(0.5, 0.5, "this scenario has no target", ha="center", va="center", transform=ax.transAxes)
        return fig
    for row, (role, colour) in enumerate((("baseline", BASELINE_COLOUR), ("scenario", SCENARIO_COLOUR))):
        v = summary.window.get(role, np.array([]))
        ax.scatter(v, np.full(v.size, row), color=colour, s=28, alpha=0.8)
        if v.size:
            ax.plot([v.mean()] * 2, [row - 0.3, row + 0.3], color=colour, lw=2)
    units = float(summary.target["units"])
    ax.axvline(units, color=TARGET_COLOUR, lw=1.2)
    ax.set_yticks([0, 1], [summary.baseline_name, summary.scenario_name])
    ax.set_ylim(-0.6, 1.6)
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_xlabel(
        f"{summary.brand} deliveries {summary.target['start']}..{summary.target['by']} per replicate (bar: mean; red: target)"
    )
    ax.grid(alpha=0.3, axis="x")
    return fig
