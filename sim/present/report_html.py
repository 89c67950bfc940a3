"""HTML building blocks of the report: escaping, numbers, tables and embedded figures."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Resolution of the PNG images embedded in the report (dots per inch).
REPORT_DPI = 120


def esc(x: Any) -> str:
    """Text escaped for HTML (None: empty)."""
    return html.escape("" if x is None else str(x))


def number(x: Any, digits: int = 0, signed: bool = False) -> str:
    """A number with thousands separators and ``digits`` decimals (``signed``: ``+`` before a positive one); ``-`` when missing."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-" if x is None else esc(x)
    if not math.isfinite(v):
        return "-"
    if round(v, digits) == 0:
        v = 0.0  # no "-0" or "+0.0" for what rounds to zero
    return f"{v:+,.{digits}f}" if signed and v else f"{v:,.{digits}f}"


def rmb(x: Any) -> str:
    """An amount in RMB (``RMB 249,800``)."""
    v = number(x)
    return v if v == "-" else f"RMB {v}"


def percent(x: Any, digits: int = 0) -> str:
    """A share (0..1) in percent (``12%``)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return f"{100 * v:.{digits}f}%" if math.isfinite(v) else "-"


def html_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "", cls: str = "") -> str:
    """An HTML table; cells are HTML already (escape with :func:`esc`).

    ``align`` has one letter per column: ``l`` left, ``r`` right-aligned number, ``n`` left and
    never wrapped (months); missing letters are ``l``.
    """
    css = {"l": "", "r": "num", "n": "nw"}
    kinds = [css[a] for a in align.ljust(len(header), "l")]
    head = "".join(f'<th class="{k}">{esc(h)}</th>' for h, k in zip(header, kinds, strict=True))
    body = "".join(
        "<tr>" + "".join(f'<td class="{k}">{c}</td>' for c, k in zip(r, kinds, strict=True)) + "</tr>" for r in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def embedded_figure(fig: Figure, alt: str, caption: str, anchor: str) -> str:
    """A figure embedded as a base64 PNG, with its caption (HTML) and anchor."""
    from sim.present import plots

    data = base64.b64encode(plots.png_bytes(fig, dpi=REPORT_DPI)).decode("ascii")
    return (f'<figure id="{esc(anchor)}"><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>")  # fmt: skip
