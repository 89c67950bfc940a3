"""The figure of a target: the probability of reaching it and the month it is reached, per scenario.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from sim.analysis.targets import wilson_interval
from sim.present.plots.frames import months_between
from sim.present.plots.style import MAIN, REFERENCE, month_label, new_figure, styled
from sim.scenario.months import parse_month


@styled
def plot_target(
    outcomes: Sequence[tuple[str, pd.DataFrame]],
    *,
    by: str,
    title: str,
    subtitle: str = "",
    start: str | None = None,
) -> Figure:
    """The probability of reaching a target (95% Wilson interval) and the month it is reached.

    Args:
        outcomes: per scenario, a label and its :func:`sim.analysis.targets.target_outcomes` frame
            (``reached``, ``month_reached``); the first is the scenario in focus.
        by: the target's last month; runs not reached by then form the last bar.
        start: the target window's first month (the histogram's left edge; default: the
            earliest month reached).
    """
    fig, body = new_figure(10.5, 4.4, title, subtitle)
    ax_p, ax_h = body.subplots(1, 2, width_ratios=[1, 2.6])
    n_s = len(outcomes)
    colours, hatches = [MAIN, REFERENCE], ["", "////"]
    for i, (label, oc) in enumerate(outcomes):
        n, k = len(oc), int(oc["reached"].sum())
        p = k / n if n else math.nan
        lo, hi = wilson_interval(k, n)
        y = n_s - 1 - i
        ax_p.barh(y, p, color=colours[i % 2] if not hatches[i % 2] else "white", edgecolor=colours[i % 2],
                  hatch=hatches[i % 2], height=0.55, lw=1.2)  # fmt: skip
        ax_p.errorbar(p, y, xerr=[[max(0.0, p - lo)], [max(0.0, hi - p)]], color="black", capsize=5, lw=1.2)
        ax_p.text(0.02, y + 0.36, f"{label}: {100 * p:.0f}%  (95% CI {100 * lo:.0f}-{100 * hi:.0f}%, {n} runs)",
                  fontsize=8.5, va="bottom")  # fmt: skip
    ax_p.set_xlim(0, 1)
    ax_p.set_ylim(-0.6, n_s - 0.1 + 0.35)
    ax_p.set_yticks([])
    ax_p.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax_p.set_title("probability of reaching the target")
    reached_months = [str(m) for _, oc in outcomes for m in oc["month_reached"].dropna()]
    lo_m = start or (min(reached_months) if reached_months else by)
    months = months_between(lo_m, by)
    x_all = np.arange(len(months) + 1, dtype=float)
    width = 0.8 / n_s
    for i, (label, oc) in enumerate(outcomes):
        n = max(len(oc), 1)
        counts = oc["month_reached"].dropna().astype(str).value_counts()
        heights = np.array([counts.get(m, 0) / n for m in months] + [float((~oc["reached"].astype(bool)).sum()) / n])
        some = heights > 0  # empty months get no bar (their outline would draw a line at zero)
        ax_h.bar((x_all + (i - (n_s - 1) / 2) * width)[some], heights[some], width=width, color=colours[i % 2] if not hatches[i % 2] else "white",
                 edgecolor=colours[i % 2], hatch=hatches[i % 2], lw=1.0, label=label)  # fmt: skip
    ticks = [j for j, m in enumerate(months) if (parse_month(m) % 12) in (0, 6)] or [0]
    ax_h.set_xticks([*ticks, len(months)], [month_label(months[j]) for j in ticks] + [f"not by\n{month_label(by)}"])
    ax_h.axvline(len(months) - 0.5, color="black", lw=1.0, ls=(0, (1, 2)))
    ax_h.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax_h.set_ylabel("share of runs")
    ax_h.set_title("month the target is reached")
    if n_s > 1:
        ax_h.legend(loc="upper left")
    return fig

