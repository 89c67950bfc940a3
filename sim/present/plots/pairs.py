"""Figures of two scenarios on the same seeds: paired differences, and where the new products' buyers came from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from sim.present.plots.style import MAIN, REFERENCE, new_figure, styled, units_axis, units_text


@styled
def plot_paired(paired: pd.DataFrame, *, title: str, subtitle: str = "", drop_identical: bool = True) -> Figure:
    """Paired differences B - A: the mean, its 95% CI (thick) and 90% of the differences (thin).

    Args:
        paired: the ``paired`` table of :func:`sim.analysis.pair_comparison.compare_pair` (``metric``,
            ``mean_diff``, ``ci_low``, ``ci_high``, ``diff_p5``, ``diff_p95``); metrics ending
            in ``reached`` are probabilities (right panel), the others vehicles (left panel).
        drop_identical: leave out the delivery rows identical in every pair (the years before
            the scenarios differ).
    """
    if drop_identical:
        same = (paired[["mean_diff", "diff_p5", "diff_p95"]].astype(float) == 0).all(axis=1)
        paired = paired[~same | paired["metric"].astype(str).str.endswith("reached")]
    is_p = paired["metric"].astype(str).str.endswith("reached")
    parts = [(paired[~is_p], False), (paired[is_p], True)]
    parts = [(d, p) for d, p in parts if len(d)]
    fig, body = new_figure(10.5, 1.2 + 0.42 * max(len(d) for d, _ in parts) if parts else 3, title, subtitle)
    axes = body.subplots(1, len(parts), squeeze=False, width_ratios=[3 if not p else 1.3 for _, p in parts])[0]
    for ax, (d, prob) in zip(axes, parts, strict=True):
        y = np.arange(len(d))[::-1]
        ax.hlines(y, d["diff_p5"], d["diff_p95"], color=MAIN, lw=1.2)
        ax.hlines(y, d["ci_low"], d["ci_high"], color=MAIN, lw=5, alpha=0.6)
        ax.plot(d["mean_diff"], y, "o", color="black", ms=5, zorder=4)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, list(d["metric"]))
        for yi, v in zip(y, d["mean_diff"], strict=True):
            text = f"{100 * v:+.0f} pp" if prob else units_text(float(v), signed=True)
            ax.annotate(text, (float(v), yi), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=8)
        if prob:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{100 * v:+.0f} pp" if v else "0"))
            ax.set_title("probability of the target")
        else:
            units_axis(ax, "x", signed=True)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
            ax.set_title("deliveries (vehicles)")
        ax.grid(axis="y", visible=False)
        ax.margins(x=0.15, y=0.12)
    handles = [matplotlib.lines.Line2D([], [], ls="", marker="o", color="black"),
               matplotlib.lines.Line2D([], [], color=MAIN, lw=5, alpha=0.6),
               matplotlib.lines.Line2D([], [], color=MAIN, lw=1.2)]  # fmt: skip
    body.legend(handles, ["mean difference", "95% CI of the mean", "90% of the paired differences"],
               loc="outside lower center", ncols=3)  # fmt: skip
    return fig


@styled
def plot_cannibalisation(
    table: pd.DataFrame,
    summary: Mapping[str, Any],
    *,
    title: str,
    subtitle: str = "",
    own_brands: Sequence[str] = (),
    top: int = 12,
) -> Figure:
    """Where the new products' deliveries came from: units each product lost, and the outside option.

    Args:
        table: the ``cannibalisation`` table of :func:`sim.analysis.pair_comparison.compare_pair` (``model``,
            ``brand``, ``units_lost``, ``lost_p5``, ``lost_p95``), sorted by units lost.
        summary: its ``cannibalisation_summary`` (``outside_option``, ``new_units``,
            ``new_products``).
        own_brands: the new products' brands (their own products are hatched: self-cannibalisation).
        top: products shown (the rest are summed into one bar).
    """
    new_brands = set(own_brands)
    shown = table.head(top)
    rest = table.iloc[top:]
    labels = [f"{m} ({b})" if not str(m).startswith(str(b)) else str(m) for m, b in zip(shown["model"], shown["brand"], strict=True)]
    values = list(shown["units_lost"].astype(float))
    lows, highs = list(shown["lost_p5"].astype(float)), list(shown["lost_p95"].astype(float))
    brands = list(shown["brand"])
    if len(rest):
        labels.append(f"{len(rest)} other products")
        values.append(float(rest["units_lost"].sum()))
        lows.append(math.nan)
        highs.append(math.nan)
        brands.append("")
    labels.append("outside option (buyers who would not have bought)")
    values.append(float(summary.get("outside_option", math.nan)))
    lows.append(math.nan)
    highs.append(math.nan)
    brands.append("(outside)")
    fig, body = new_figure(10.5, 1.4 + 0.36 * len(labels), title, subtitle)
    ax = body.add_subplot()
    y = np.arange(len(labels))[::-1]
    for yi, v, hi, b in zip(y, values, highs, brands, strict=True):
        own = b in new_brands
        face = "#bdbdbd" if b == "(outside)" else (REFERENCE if own else MAIN)
        ax.barh(yi, v, color=face, hatch="////" if own else "", edgecolor="white", height=0.7)
        right = max(v, hi if math.isfinite(hi) else v, 0.0)
        ax.annotate(units_text(v), (right, yi), xytext=(5, 0), textcoords="offset points", va="center", fontsize=8)
    err = np.array([[v - lo if math.isfinite(lo) else 0.0 for v, lo in zip(values, lows, strict=True)],
                    [hi - v if math.isfinite(hi) else 0.0 for v, hi in zip(values, highs, strict=True)]])  # fmt: skip
    ok = np.array([math.isfinite(lo) for lo in lows])
    if ok.any():
        ax.errorbar(np.array(values)[ok], y[ok], xerr=err[:, ok], fmt="none", ecolor="black", capsize=3, lw=1)
    ax.set_yticks(y, labels)
    ax.axvline(0, color="black", lw=0.8)
    units_axis(ax, "x")
    ax.set_xlabel("units lost to the new products (mean over paired runs; whiskers: 90% of the paired losses)")
    ax.grid(axis="y", visible=False)
    handles = [Patch(facecolor=MAIN), Patch(facecolor=REFERENCE, hatch="////", edgecolor="white"), Patch(facecolor="#bdbdbd")]
    body.legend(handles, ["other brands", "same brand as the new products", "outside option"],
               loc="outside lower center", ncols=3)  # fmt: skip
    ax.margins(x=0.08)
    return fig
