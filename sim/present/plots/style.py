"""The house style of the figures: palette, number formats, calendar axes, the forecast shading, the
figure with its header, and writing it as PNG, SVG or PDF.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FuncFormatter

from sim.scenario.months import format_month, parse_month

#: Okabe & Ito (2008) colours, safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}  # fmt: skip
#: Colour of the scenario in focus, of the reference scenario (``--vs``) and of the history fan.
MAIN, REFERENCE, HISTORY = OKABE_ITO["blue"], OKABE_ITO["vermillion"], "#6b6b6b"
#: The brand drawn first and in black wherever brands share an axis.
HIGHLIGHT = "AITO"
#: Formats :func:`save` writes.
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


def styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a plot function with the house style (matplotlib reads it when artists are made)."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(cast(Any, _STYLE)):
            return fn(*args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


# --------------------------------------------------------------------------- calendar and numbers


def month_dates(months: Sequence[str] | pd.Series | np.ndarray) -> np.ndarray:
    """Mid-month dates (the 15th, as matplotlib date numbers) where a month's value is drawn."""
    return np.asarray(mdates.date2num(np.array([f"{m}-15" for m in months], dtype="datetime64[D]")), dtype=float)


def month_start(month: str) -> float:
    """The first day of a month as a matplotlib date number (where a boundary is drawn)."""
    return float(mdates.date2num(np.datetime64(f"{month}-01", "D")))


def units_text(x: float, signed: bool = False) -> str:
    """Vehicles with thousands separators (``1,234,567``; ``+12,000`` when ``signed``)."""
    if not math.isfinite(x):
        return "-"
    return f"{x:+,.0f}" if signed else f"{x:,.0f}"


def rmb_text(x: float) -> str:
    """RMB with thousands separators (``RMB 249,800``)."""
    return f"RMB {x:,.0f}" if math.isfinite(x) else "-"


def units_axis(ax: Axes, axis: str = "y", signed: bool = False) -> None:
    """Vehicles with thousands separators on the ``y`` (or ``x``) axis."""
    fmt = FuncFormatter(lambda v, _pos: units_text(v, signed and v != 0))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def month_axis(ax: Axes, first: str, last: str, max_ticks: int = 13) -> None:
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


def shade_forecast(ax: Axes, forecast_start: str | None, first: str, last: str, label: bool = True) -> None:
    """Shade the forecast months and mark their start (nothing when ``first..last`` is all forecast)."""
    if not forecast_start or parse_month(forecast_start) > parse_month(last):
        return
    if parse_month(forecast_start) <= parse_month(first):
        return  # all forecast: nothing to tell apart
    x0, x1 = month_start(forecast_start), month_start(format_month(parse_month(last) + 1))
    ax.axvspan(x0, x1, color="#f1f1f1", zorder=0, lw=0)
    ax.axvline(x0, color="#8c8c8c", lw=0.9, ls=(0, (2, 2)), zorder=1)
    if label:
        ax.text(x0, 1.0, f" forecast from {month_label(forecast_start)}", transform=ax.get_xaxis_transform(),
                va="top", ha="left", fontsize=8, color="#555555")  # fmt: skip


def month_label(month: str) -> str:
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


# --------------------------------------------------------------------------- the figure and its file


#: Height of a figure's header (title and subtitle), inches.
HEADER_INCHES = 0.62


def new_figure(width: float, height: float, title: str, subtitle: str) -> tuple[Figure, SubFigure]:
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

