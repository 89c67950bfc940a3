"""Figures of a batch: pure matplotlib functions of tidy frames, one function per figure.

Analysis only: the frames come from a results folder's sales table (:func:`monthly_units`,
:func:`cumulative_units`, :func:`shares`, :func:`quantile_bands`) or from :mod:`sim.analysis.compare`
(paired differences, cannibalisation) and :func:`sim.analysis.targets.target_outcomes`; nothing here
reads files or re-runs the model. :mod:`sim.present.report` puts the figures of a folder together.

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

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from sim.analysis.targets import wilson_interval
from sim.scenario.months import format_month, parse_month

#: Okabe & Ito (2008) colours, safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}  # fmt: skip
#: Colour of the scenario in focus, of the reference scenario (``--vs``) and of the history fan.
MAIN, REFERENCE, HISTORY = OKABE_ITO["blue"], OKABE_ITO["vermillion"], "#6b6b6b"
#: Quantiles drawn as bands: 5%, 25%, 50% (median), 75%, 95%.
QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
#: The brand drawn first and in black wherever brands share an axis.
HIGHLIGHT = "AITO"
FORMATS = ("png", "svg", "pdf")

# Okabe-Ito without yellow (too light on white) and black (AITO's), plus a mid grey
_BRAND_COLOURS = [*(OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky")), "#7f7f7f"]
_LINESTYLES = ["-", "--", "-.", ":"]
_MARKERS = ["s", "^", "v", "D", "P", "X", "*", "<", ">", "h"]
_STYLE = {
    "font.size": 9.5, "axes.titlesize": 10.5, "axes.titlelocation": "left", "axes.labelsize": 9.5,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "axes.axisbelow": True,
    "grid.color": "#dddddd", "grid.linewidth": 0.6, "legend.frameon": False, "legend.fontsize": 8.5,
    "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "figure.titlesize": 13, "figure.titleweight": "bold",
    "hatch.linewidth": 0.8,
}  # fmt: skip

P = ParamSpec("P")
R = TypeVar("R")


def _styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a plot function with the house style (matplotlib reads it when artists are made)."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(cast(Any, _STYLE)):
            return fn(*args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


# --------------------------------------------------------------------------- tidy frames


def months_between(first: str, last: str) -> list[str]:
    """Every month ``first..last`` as ``YYYY-MM``."""
    return [format_month(i) for i in range(parse_month(first), parse_month(last) + 1)]


def month_dates(months: Sequence[str] | pd.Series | np.ndarray) -> np.ndarray:
    """Mid-month dates (the 15th, as matplotlib date numbers) where a month's value is drawn."""
    return np.asarray(mdates.date2num(np.array([f"{m}-15" for m in months], dtype="datetime64[D]")), dtype=float)


def month_start(month: str) -> float:
    """The first day of a month as a matplotlib date number (where a boundary is drawn)."""
    return float(mdates.date2num(np.datetime64(f"{month}-01", "D")))


def _month_span(sales: pd.DataFrame) -> list[str]:
    months = pd.unique(sales["month"].astype(str))
    return months_between(min(months), max(months)) if len(months) else []


def monthly_units(sales: pd.DataFrame, by: str = "brand", months: Sequence[str] | None = None) -> pd.DataFrame:
    """Deliveries per run, month and ``by`` (all markets together), zero where nothing was delivered.

    Args:
        sales: a sales table (``run_id``, ``month``, ``units`` and the column ``by``).
        by: the grouping column (``brand``, ``model``, ``segment``...).
        months: the months to cover (default: every month from the table's first to its last).

    Returns:
        Columns ``run_id``, ``month``, ``by``, ``units`` (vehicles), one row for every run, month
        and value of ``by`` seen in the table.
    """
    months = list(months) if months is not None else _month_span(sales)
    runs = sorted(pd.unique(sales["run_id"]).tolist()) if len(sales) else []
    keys = sorted(pd.unique(sales[by].astype(str)).tolist()) if len(sales) else []
    full = pd.MultiIndex.from_product([runs, months, keys], names=["run_id", "month", by])
    if not len(sales):
        return pd.DataFrame({"run_id": [], "month": [], by: [], "units": []})
    g = sales.assign(month=sales["month"].astype(str), **{by: sales[by].astype(str)})
    summed = g.groupby(["run_id", "month", by], observed=True)["units"].sum()
    return summed.reindex(full, fill_value=0).astype(float).rename("units").reset_index()


def cumulative_units(
    sales: pd.DataFrame, brand: str, start: str | None = None, end: str | None = None, level: float = 0.0
) -> pd.DataFrame:
    """A brand's running total of deliveries per run, from ``start`` (default: the table's first month).

    Args:
        sales: a sales table.
        brand: whose deliveries.
        start, end: first and last month summed (``YYYY-MM``); default the table's span.
        level: added to every total (e.g. the reported cumulative at a target's start).

    Returns:
        Columns ``run_id``, ``month``, ``value``: ``level`` plus the deliveries of ``start..month``.
    """
    span = _month_span(sales)
    months = months_between(start or span[0], end or span[-1]) if span else []
    m = monthly_units(sales[sales["brand"] == brand].assign(brand=brand), "brand", months)
    if m.empty and len(sales):  # the brand sells nothing: zeros for every run
        runs = sorted(pd.unique(sales["run_id"]).tolist())
        m = pd.DataFrame([(r, mo, brand, 0.0) for r in runs for mo in months], columns=["run_id", "month", "brand", "units"])
    m = m.sort_values(["run_id", "month"], kind="stable")
    m["value"] = m.groupby("run_id")["units"].cumsum() + level
    return m[["run_id", "month", "value"]].reset_index(drop=True)


def quantile_bands(df: pd.DataFrame, keys: Sequence[str], value: str = "value") -> pd.DataFrame:
    """Mean and quantiles over runs of ``value`` per ``keys``.

    Returns:
        Columns ``keys``, ``mean``, and :data:`QUANTILES` (``p5``, ``p25``, ``p50``, ``p75``,
        ``p95``), sorted by ``keys``.
    """
    g = df.groupby(list(keys), observed=True, sort=True)[value]
    out = g.mean().rename("mean").to_frame()
    for name, q in QUANTILES.items():
        out[name] = g.quantile(q)
    return out.reset_index()


def _quarter_month(months: pd.Series) -> pd.Series:
    """The middle month of each month's calendar quarter (a quarter is drawn at its middle)."""
    idx = months.astype(str).map(parse_month)
    return (idx - idx % 3 + 1).map(format_month)


def shares(sales: pd.DataFrame, group: str, within: str | None = None, quarterly: bool = False) -> pd.DataFrame:
    """Mean share (over runs) of each ``group`` in the deliveries of its ``within`` cell, per period.

    Args:
        sales: a sales table.
        group: what the shares are of (``segment``, ``brand``...).
        within: shares inside each value of this column (e.g. ``segment``); None: of all deliveries.
        quarterly: per calendar quarter (labelled by its middle month) instead of per month.

    Returns:
        Columns ``[within]``, ``month``, ``group``, ``share`` (0..1). Per run, period and
        ``within`` cell the shares sum to one; ``share`` is their mean over the runs in which
        the cell delivered anything.
    """
    d = sales.assign(month=sales["month"].astype(str), **{group: sales[group].astype(str)})
    if quarterly:
        d["month"] = _quarter_month(d["month"])
    cell = ["run_id", "month"] + ([within] if within else [])
    if within:
        d[within] = d[within].astype(str)
    units = d.groupby([*cell, group], observed=True)["units"].sum().unstack(group, fill_value=0)
    total = units.sum(axis=1)
    share = units[total > 0].div(total[total > 0], axis=0)
    mean = share.groupby(level=cell[1:], observed=True).mean()
    out = mean.stack().rename("share").reset_index()
    return out[[*cell[1:], group, "share"]]


# --------------------------------------------------------------------------- styling helpers


def units_text(x: float, signed: bool = False) -> str:
    """Vehicles with thousands separators (``1,234,567``; ``+12,000`` when ``signed``)."""
    if not math.isfinite(x):
        return "-"
    return f"{x:+,.0f}" if signed else f"{x:,.0f}"


def rmb_text(x: float) -> str:
    """RMB with thousands separators (``RMB 249,800``)."""
    return f"RMB {x:,.0f}" if math.isfinite(x) else "-"


def _units_axis(ax: Axes, axis: str = "y", signed: bool = False) -> None:
    fmt = FuncFormatter(lambda v, _pos: units_text(v, signed and v != 0))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _month_axis(ax: Axes, first: str, last: str, max_ticks: int = 13) -> None:
    """Calendar months on the x-axis: January ticks show the year, the others the month."""
    span = parse_month(last) - parse_month(first) + 1
    step = next((s for s in (1, 2, 3, 6, 12) if span / s <= max_ticks), 12)
    locator: mdates.DateLocator
    if step < 12:
        locator = mdates.MonthLocator(bymonth=list(range(1, 13, step)))
    else:
        locator = mdates.YearLocator(base=max(1, math.ceil(span / 12 / max_ticks)))
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator, formats=["%Y", "%b", "%d", "%H:%M", "%H:%M", "%S"], show_offset=False)
    )
    ax.set_xlim(month_start(first), month_start(format_month(parse_month(last) + 1)))


def _forecast(ax: Axes, forecast_start: str | None, first: str, last: str, label: bool = True) -> None:
    """Shade the forecast months and mark their start (nothing when ``first..last`` is all forecast)."""
    if not forecast_start or parse_month(forecast_start) > parse_month(last):
        return
    if parse_month(forecast_start) <= parse_month(first):
        return  # all forecast: nothing to tell apart
    x0, x1 = month_start(forecast_start), month_start(format_month(parse_month(last) + 1))
    ax.axvspan(x0, x1, color="#f1f1f1", zorder=0, lw=0)
    ax.axvline(x0, color="#8c8c8c", lw=0.9, ls=(0, (2, 2)), zorder=1)
    if label:
        ax.text(x0, 1.0, f" forecast from {_month_label(forecast_start)}", transform=ax.get_xaxis_transform(),
                va="top", ha="left", fontsize=8, color="#555555")  # fmt: skip


def _month_label(month: str) -> str:
    """``2026-01`` -> ``Jan 2026``."""
    i = parse_month(month)
    return f"{['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][i % 12]} {i // 12}"


def brand_styles(brands: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A fixed colour, line style and marker per brand, distinct as a triple for up to 28 brands.

    :data:`HIGHLIGHT` (AITO) is black, solid and heavier; the others take Okabe-Ito colours
    with line styles and markers cycling at different rates, so that two brands never share
    colour and line style (within 28), and greyscale prints keep them apart by style.
    """
    out: dict[str, dict[str, Any]] = {}
    others = [b for b in sorted(brands) if b != HIGHLIGHT]
    if HIGHLIGHT in brands:
        out[HIGHLIGHT] = {"color": OKABE_ITO["black"], "ls": "-", "marker": "o", "lw": 2.2}
    n_col = len(_BRAND_COLOURS)
    for i, b in enumerate(others):
        out[b] = {"color": _BRAND_COLOURS[i % n_col], "ls": _LINESTYLES[(i // n_col) % len(_LINESTYLES)],
                  "marker": _MARKERS[i % len(_MARKERS)], "lw": 1.4}  # fmt: skip
    return out


def segment_colours(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` cividis colours, dark to light (lightness rises monotonically: readable in greyscale)."""
    cmap = matplotlib.colormaps["cividis"]
    return [cmap(x) for x in np.linspace(0.08, 0.95, n)] if n > 1 else [cmap(0.4)]


#: Height of a figure's header (title and subtitle), inches.
HEADER_INCHES = 0.62


def _figure(width: float, height: float, title: str, subtitle: str) -> tuple[Figure, SubFigure]:
    """A figure on the Agg canvas: a header with the title (bold) and subtitle, and the body to draw in.

    ``height`` is the body's; the figure's label (:meth:`Figure.get_label`) is the title.
    """
    fig = Figure(figsize=(width, height + HEADER_INCHES), layout="constrained")
    FigureCanvasAgg(fig)
    fig.set_label(title)
    head, body = np.asarray(fig.subfigures(2, 1, height_ratios=[HEADER_INCHES, height]), dtype=object)
    head.text(0.008, 0.92, title, fontsize=13, fontweight="bold", va="top", ha="left")
    if subtitle:
        head.text(0.008, 0.2, subtitle, fontsize=9.5, color="#3d3d3d", va="center", ha="left")
    return fig, body


def save(fig: Figure, target: str | Path | io.BytesIO, fmt: str | None = None, dpi: int = 150) -> None:
    """Write a figure as PNG, SVG or PDF (``fmt`` default: the file's suffix)."""
    fmt = fmt or Path(str(target)).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}: use one of {', '.join(FORMATS)}")
    fig.savefig(target, format=fmt, dpi=dpi, facecolor="white", metadata={"Software": None} if fmt == "png" else None)


def png_bytes(fig: Figure, dpi: int = 150) -> bytes:
    """The figure as PNG."""
    buf = io.BytesIO()
    save(fig, buf, "png", dpi)
    return buf.getvalue()


# --------------------------------------------------------------------------- fan chart


@dataclass(frozen=True)
class Fan:
    """One fan of a fan chart.

    Attributes:
        label: legend text.
        values: ``run_id``, ``month``, ``value`` (e.g. :func:`cumulative_units`).
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


@_styled
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
    fig, body = _figure(10.5, 5.6, title, subtitle)
    ax = body.add_subplot()
    months = sorted({str(m) for f in fans for m in f.values["month"]})
    first = min([months[0]] + [format_month(parse_month(f.values["month"].min()) - 1) for f in fans if f.anchor is not None])
    last = months[-1]
    if target is not None and parse_month(target.by) > parse_month(last):
        last = target.by
    _forecast(ax, forecast_start, first, last)
    for fan in fans:
        _draw_fan(ax, fan)
    if target is not None:
        ax.axhline(target.level, color="black", lw=1.2, ls=(0, (6, 3)))
        end = month_start(format_month(parse_month(target.by) + 1))
        ax.axvline(end, color="black", lw=1.0, ls=(0, (1, 2)))
        ax.annotate(f"{target.label}: {units_text(target.level)} by end of {_month_label(target.by)}",
                    (month_start(first), target.level), xytext=(4, 4), textcoords="offset points",
                    fontsize=9, fontweight="bold", va="bottom")  # fmt: skip
    if reported is not None and len(reported):
        x = month_dates(reported["month"].astype(str))
        ax.scatter(x, reported["value"], marker="D", s=42, color="white", edgecolor="black", lw=1.4, zorder=5,
                   label="reported")  # fmt: skip
        for xi, (_, r) in zip(x, reported.iterrows(), strict=True):
            text = str(r.get("label") or units_text(float(r["value"])))
            ax.annotate(text, (xi, r["value"]), xytext=(-6, 6), textcoords="offset points", ha="right", fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    handles += [Patch(color="#555555", alpha=0.38, lw=0), Patch(color="#555555", alpha=0.18, lw=0)]
    labels += ["50% band (25-75%)", "90% band (5-95%)"]
    ax.legend(handles, labels, loc="center left", bbox_to_anchor=(0.0, 0.55), ncols=1)  # below the target line, above the early curve
    _month_axis(ax, first, last)
    _units_axis(ax)
    ax.set_ylabel(ylabel)
    if from_zero:
        ax.set_ylim(bottom=0)
    return fig


# --------------------------------------------------------------------------- brands


@_styled
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
        monthly: ``run_id``, ``month``, ``brand``, ``units`` (:func:`monthly_units`).
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
    fig, body = _figure(3.1 * ncols, 2.25 * nrows + 0.9, title, subtitle)
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
        _forecast(ax, forecast_start, first, last, label=False)
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
        _units_axis(ax)
        _month_axis(ax, first, last, max_ticks=4)
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
    labels.append(f"forecast (from {_month_label(forecast_start)})" if forecast_start else "forecast")
    body.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    body.supylabel("deliveries per month (vehicles)", fontsize=9.5)
    return fig


# --------------------------------------------------------------------------- segments


@_styled
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
        segment_shares: ``month``, ``segment``, ``share`` (:func:`shares` by ``segment``).
        order: the segments from cheapest to dearest (default: as they sort).
        forecast_start: first forecast month (shaded).
    """
    wide = segment_shares.pivot_table(index="month", columns="segment", values="share", fill_value=0.0)
    order = [s for s in (order or sorted(wide.columns)) if s in wide.columns]
    wide = wide[order].sort_index()
    fig, body = _figure(10.5, 5.4, title, subtitle)
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
        ax.text(month_start(forecast_start), 1.01, f" forecast from {_month_label(forecast_start)}",
                transform=ax.get_xaxis_transform(), fontsize=8, va="bottom")  # fmt: skip
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("share of deliveries (segment by transaction price, RMB)")
    _month_axis(ax, str(wide.index[0]), last)
    ax.grid(False)
    body.legend(*ax.get_legend_handles_labels(), loc="outside right upper", reverse=True, title="segment (RMB)")
    return fig


@_styled
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
        brand_shares: ``segment``, ``month``, ``brand``, ``share`` (:func:`shares` of ``brand``
            within ``segment``).
        order: the segments (panels) in order.
        forecast_start: first forecast month (marked).
        top: brands drawn per panel, by mean share; AITO is always drawn where it sells.
    """
    segs = [s for s in (order or sorted(brand_shares["segment"].unique())) if s in set(brand_shares["segment"])]
    styles = brand_styles(sorted(brand_shares["brand"].unique()))
    nrows = max(1, math.ceil(len(segs) / ncols))
    fig, body = _figure(4.0 * ncols, 2.9 * nrows + 0.9, title, subtitle)
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
        _forecast(ax, forecast_start, first, last, label=False)
        for b in sorted(keep, key=lambda b: (b != HIGHLIGHT, -ranked[b])):
            s = styles[b]
            ax.plot(x, wide[b], color=s["color"], ls=s["ls"], lw=s["lw"], marker=s["marker"], ms=3.5,
                    markevery=max(1, len(x) // 8), label=b)  # fmt: skip
            drawn.add(b)
        ax.set_title(f"{segs[i]} RMB", fontsize=10)
        ax.set_ylim(0, min(1.0, max(0.2, float(wide[keep].to_numpy().max()) * 1.1)))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        _month_axis(ax, first, last, max_ticks=5)
    handles = [matplotlib.lines.Line2D([], [], color=styles[b]["color"], ls=styles[b]["ls"], lw=styles[b]["lw"],
                                       marker=styles[b]["marker"], ms=4)
               for b in sorted(drawn, key=lambda b: (b != HIGHLIGHT, b))]  # fmt: skip
    body.legend(handles, sorted(drawn, key=lambda b: (b != HIGHLIGHT, b)), loc="outside lower center",
               ncols=min(len(drawn), 7))  # fmt: skip
    body.supylabel("share of the segment's deliveries", fontsize=9.5)
    return fig


# --------------------------------------------------------------------------- target


@_styled
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
    fig, body = _figure(10.5, 4.4, title, subtitle)
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
    ax_h.set_xticks([*ticks, len(months)], [_month_label(months[j]) for j in ticks] + [f"not by\n{_month_label(by)}"])
    ax_h.axvline(len(months) - 0.5, color="black", lw=1.0, ls=(0, (1, 2)))
    ax_h.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax_h.set_ylabel("share of runs")
    ax_h.set_title("month the target is reached")
    if n_s > 1:
        ax_h.legend(loc="upper left")
    return fig


# --------------------------------------------------------------------------- two scenarios


@_styled
def plot_paired(paired: pd.DataFrame, *, title: str, subtitle: str = "", drop_identical: bool = True) -> Figure:
    """Paired differences B - A: the mean, its 95% CI (thick) and 90% of the differences (thin).

    Args:
        paired: the ``paired`` table of :func:`sim.analysis.compare.compare_pair` (``metric``,
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
    fig, body = _figure(10.5, 1.2 + 0.42 * max(len(d) for d, _ in parts) if parts else 3, title, subtitle)
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
            _units_axis(ax, "x", signed=True)
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


@_styled
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
        table: the ``cannibalisation`` table of :func:`sim.analysis.compare.compare_pair` (``model``,
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
    fig, body = _figure(10.5, 1.4 + 0.36 * len(labels), title, subtitle)
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
    _units_axis(ax, "x")
    ax.set_xlabel("units lost to the new products (mean over paired runs; whiskers: 90% of the paired losses)")
    ax.grid(axis="y", visible=False)
    handles = [Patch(facecolor=MAIN), Patch(facecolor=REFERENCE, hatch="////", edgecolor="white"), Patch(facecolor="#bdbdbd")]
    body.legend(handles, ["other brands", "same brand as the new products", "outside option"],
               loc="outside lower center", ncols=3)  # fmt: skip
    ax.margins(x=0.08)
    return fig
