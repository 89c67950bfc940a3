"""The backtest's figure (``sim backtest``): how good the model's forecasts were, by months ahead.

Left: the mean absolute log error of the model and of each benchmark forecaster by horizon, on
the same figures; middle (when the backtest has it): the model's error with and without
assimilating the figures before each origin, on the figures both scored; right: the share of
reported figures inside the model's 50% and 90% bands by horizon, against their nominal 50% and 90%.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from sim.present.plots.style import MAIN, OKABE_ITO, REFERENCE, new_figure, styled

# The benchmarks' colours, line styles and markers, in order (the model is black and solid).
_COLOURS = [OKABE_ITO[k] for k in ("vermillion", "green", "orange", "purple", "sky", "blue")]
_STYLES = ["--", "-.", ":", (0, (5, 1.5)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1))]
_MARKERS = ["s", "^", "v", "P", "X", "<"]


@styled
def plot_backtest(errors: pd.DataFrame, coverage: pd.DataFrame, *, title: str, subtitle: str = "",
                  labels: Mapping[str, str] | None = None, model: str = "model",
                  assimilated: pd.DataFrame | None = None) -> Figure:  # fmt: skip
    """Mean absolute log error by horizon (model against benchmarks) and the model's band coverage.

    Args:
        errors: indexed by horizon (months ahead), one column per forecaster (the model's column
            named ``model``): mean absolute log error on the figures every forecaster scored.
        coverage: indexed by horizon, ``coverage_50``, ``coverage_90`` (shares 0..1) and
            ``n_figures`` (the model's figures scored at that horizon).
        labels: how forecasters read in the legend (default: their names).
        assimilated: indexed by horizon, the previous origin's fit's mean absolute log error without
            (``model``) and with the figures since assimilated (``model_assimilated``) on the ``n_figures`` both scored; drawn
            as a middle panel when given and not empty.
    """
    labels = dict(labels or {})
    middle = assimilated is not None and len(assimilated) > 0
    fig, body = new_figure(15.5 if middle else 11.5, 4.6, title, subtitle)
    axes = body.subplots(1, 3 if middle else 2, width_ratios=[1.25, 0.8, 1] if middle else [1.25, 1])
    left, right = axes[0], axes[-1]
    others = [c for c in errors.columns if c != model]
    for i, name in enumerate(others):
        left.plot(errors.index, errors[name], color=_COLOURS[i % len(_COLOURS)], ls=_STYLES[i % len(_STYLES)],
                  marker=_MARKERS[i % len(_MARKERS)], ms=5, lw=1.4, label=labels.get(name, name))  # fmt: skip
    if model in errors.columns:
        left.plot(errors.index, errors[model], color="black", lw=2.6, marker="o", ms=6, label=labels.get(model, "the model"),
                  zorder=5)  # fmt: skip
    left.set_title("mean |log error| by months ahead (lower is better)")
    left.set_ylabel("mean |log error|  (0.1 ≈ 10% off)")
    left.legend(loc="upper left", fontsize=8)
    _headroom(left, float(errors.max().max()) if errors.size else 0.0, 1.2 + 0.08 * len(errors.columns))
    if middle:
        assert assimilated is not None
        _assimilation_panel(axes[1], assimilated)
    for name, colour, ls, marker, nominal in (("coverage_90", MAIN, "-", "s", 0.9), ("coverage_50", REFERENCE, "--", "o", 0.5)):
        right.plot(coverage.index, coverage[name], color=colour, ls=ls, marker=marker, ms=5, lw=1.8,
                   label=f"{round(100 * nominal)}% band: share of figures inside")  # fmt: skip
        right.axhline(nominal, color=colour, lw=1.0, ls=":")
        right.annotate(f"nominal {round(100 * nominal)}%", (1.0, nominal), xycoords=("axes fraction", "data"),
                       xytext=(-2, 3), textcoords="offset points", ha="right", va="bottom", fontsize=8, color=colour)  # fmt: skip
    right.set_title("coverage of the model's bands")
    right.set_ylim(0, 1.05)
    right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    right.legend(loc="upper left", bbox_to_anchor=(0.0, 0.88), fontsize=8)
    _counted_horizons(right, coverage["n_figures"])
    for ax in axes:
        ax.set_xlabel("horizon (months after the origin)\n(figures scored)" if ax is right else "horizon (months after the origin)")
        if ax is not right:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _assimilation_panel(ax: Axes, errors: pd.DataFrame) -> None:
    """The model's error without and with assimilation by horizon, on the figures both scored."""
    ax.plot(errors.index, errors["model"], color="black", lw=2.6, marker="o", ms=6, label="without the figures since")
    ax.plot(errors.index, errors["model_assimilated"], color=MAIN, lw=2.2, ls="--", marker="D", ms=6,
            label="with them assimilated")  # fmt: skip
    ax.set_title("the previous origin's fit, with and\nwithout the figures since assimilated")
    ax.legend(loc="upper left", fontsize=8, title=f"on the {int(errors['n_figures'].sum())} figures both scored",
              title_fontsize=8, alignment="left")  # fmt: skip
    _headroom(ax, float(errors[["model", "model_assimilated"]].max().max()), 1.35)


def _headroom(ax: Axes, top: float, factor: float) -> None:
    """Room above the lines for the legend (``top``: the highest value drawn)."""
    if top > 0:
        ax.set_ylim(0, top * factor)


def _counted_horizons(ax: Axes, counts: pd.Series) -> None:
    """Every horizon on the axis, with the figures scored at it under its number."""
    ax.set_xticks(list(counts.index), [f"{h}\n({n})" for h, n in counts.items()])
    ax.tick_params(axis="x", labelsize=8)
