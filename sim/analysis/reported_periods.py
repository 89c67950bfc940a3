"""The months and the measure of a reported figure: its ``date`` and ``metric`` cells.

:func:`parse_period` reads a ``date`` cell (a day, month, quarter, year or span) into the months it
covers; :func:`classify_measure` tells from the ``metric`` text what is counted (deliveries, sales,
wholesale, a share, a price...); :func:`figure_frequency` whether a volume is monthly, quarterly,
annual, a sum to date or a milestone, and where a sum to date starts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sim.scenario.months import format_month, parse_month

GRANULARITIES = ("day", "month", "quarter", "year", "span")
MEASURES = (
    "deliveries", "sales", "retail", "wholesale", "registrations", "production", "cumulative",
    "share", "rank", "price", "orders", "stores", "target", "policy", "tariff", "subsidy",
    "revenue", "date", "other",
)  # fmt: skip
VOLUME_MEASURES = (
    "deliveries", "sales", "retail", "wholesale", "registrations", "production", "cumulative",
)  # fmt: skip
FREQUENCIES = ("monthly", "quarterly", "annual", "cumulative", "point")


@dataclass(frozen=True)
class Period:
    """The months a ``date`` cell covers: ``start`` and ``end`` as ``YYYY-MM``, inclusive."""

    granularity: str
    start: str
    end: str


_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")
_YEAR_SPAN = re.compile(r"^(\d{4})\s*-\s*(\d{4})$")


def _single_period(text: str) -> Period:
    s = text.strip()
    if m := _DAY.match(s):
        try:
            day = dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError as e:
            raise ValueError(f"invalid day {text!r}: {e}") from None
        month = format_month(parse_month(f"{day.year:04d}-{day.month:02d}"))
        return Period("day", month, month)
    if _MONTH_RE.match(s):
        month = format_month(parse_month(s))
        return Period("month", month, month)
    if m := _QUARTER.match(s):
        first = parse_month(f"{m[1]}-01") + 3 * (int(m[2]) - 1)
        return Period("quarter", format_month(first), format_month(first + 2))
    if m := _YEAR.match(s):
        return Period("year", format_month(parse_month(f"{m[1]}-01")), f"{m[1]}-12")
    raise ValueError(f"cannot read the period {text!r}: expected YYYY, YYYY-MM, YYYY-MM-DD, YYYY-Qn, YYYY-YYYY or A..B")


def parse_period(text: str) -> Period:
    """Read a ``date`` cell into the months it covers.

    Args:
        text: ``2024-07-29`` (day), ``2024-07`` (month), ``2024-Q1`` (quarter), ``2024``
            (year), ``2024-01-01..2025-12-31`` or ``2024-2025`` (span).

    Returns:
        The period; a day gives its month, a quarter its three months, a year Jan..Dec.

    Raises:
        ValueError: when the text is none of these forms or a span ends before it starts.
    """
    if not isinstance(text, str):
        raise ValueError(f"cannot read the period {text!r}: not a string")
    s = text.strip()
    if ".." in s:
        first, last = (_single_period(part) for part in s.split("..", 1))
        start, end = first.start, last.end
    elif m := _YEAR_SPAN.match(s):
        start, end = _single_period(m[1]).start, _single_period(m[2]).end
    else:
        return _single_period(s)
    if parse_month(end) < parse_month(start):
        raise ValueError(f"the period {text!r} ends before it starts")
    return Period("span", start, end)


# --------------------------------------------------------------------------- measures and frequencies


def classify_measure(metric: str, entity: str = "", unit: str = "") -> str:
    """The measure (one of :data:`MEASURES`) a row reports, from its metric text.

    Args:
        metric: the ``metric`` cell, e.g. ``"Jan-Jul 2024 cumulative"``.
        entity: the ``entity`` cell; taxes, duties and subsidies are recognised from it.
        unit: the row's (or item's) unit; a ``%`` figure of a metric naming a share is a share.

    Returns:
        The measure; ``other`` when no rule applies.
    """
    m, e = metric.lower(), entity.lower()
    both = f"{m} {e}"
    rules: tuple[tuple[str, bool], ...] = (
        ("date", unit.strip().lower() in ("date", "month")),
        ("policy", "purchase tax" in e),
        ("tariff", bool(re.search(r"\b(tariff|duty|duties|cvd)\b", both))),
        ("subsidy", "subsidy" in both or "trade-in" in both),
        ("target", bool(re.search(r"\b(target|plan|planned)\b", m))),
        ("cumulative", "cumulative" in m or "milestone" in m),
        ("share", ("share" in m or "penetration" in m) and unit.strip() == "%"),
        ("rank", bool(re.search(r"\brank", m))),
        ("price", "price" in m),
        ("orders", "order" in m),
        ("stores", bool(re.search(r"\b(store|outlet|experience cent)", m))),
        ("revenue", "revenue" in m),
        ("date", bool(re.search(r"\b(date|launch|unveil|delivery start)", m))),
        ("production", "production" in m),
        ("wholesale", "wholesale" in m),
        ("registrations", "registration" in m),
        ("retail", "retail" in m),
        ("deliveries", "deliver" in m),
        ("sales", bool(re.search(r"\b(sales|sold)\b", m))),
        # metric silent ("total & NEV"): the entity may say what is counted
        ("wholesale", "wholesale" in e),
        ("retail", "retail" in e),
    )
    measure = next((name for name, hit in rules if hit), "other")
    # a percentage reported beside a volume ("31.44 m total; ...; 40.9%") is a share
    return "share" if measure in VOLUME_MEASURES and unit.strip() == "%" else measure


_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NUMBER = {name: i + 1 for i, name in enumerate(_MONTH_NAMES)}
#: A month's name or abbreviation in a metric text (``Jan``, ``Sept.``, ``July``), as a regular expression.
MONTH_NAME = rf"({'|'.join(_MONTH_NAMES)})[a-z]*\.?"
_METRIC_RANGE = re.compile(rf"\b{MONTH_NAME}\s*(\d{{4}})?\s*[-–]\s*{MONTH_NAME}\s*(\d{{4}})?", re.IGNORECASE)
_SINCE = re.compile(r"\bsince (\d{4}-\d{2})", re.IGNORECASE)
_CUMULATIVE_OF = (
    ("production", re.compile(r"production|off (the )?line|rolled off", re.IGNORECASE)),
    ("deliveries", re.compile(r"deliver", re.IGNORECASE)),
    ("sales", re.compile(r"\b(sales|sold)\b", re.IGNORECASE)),
)
_FREQUENCY = {"month": "monthly", "quarter": "quarterly", "year": "annual", "day": "point"}


def _sum_start(metric: str, period: Period) -> str | None:
    """Where a to-date sum starts when the metric says (``Jan-Jul 2024``, ``since 2023-09``)."""
    if m := _SINCE.search(metric):
        return format_month(parse_month(m[1]))
    if m := _METRIC_RANGE.search(metric):
        year = m[2] or m[4] or period.end[:4]
        return f"{year}-{_MONTH_NUMBER[m[1].lower()]:02d}"
    return None


def figure_frequency(measure: str, metric: str, quote: str, period: Period) -> tuple[str | None, str, str | None]:
    """(frequency, start month, cumulative_of) of a figure."""
    if measure not in VOLUME_MEASURES:
        return None, period.start, None
    start = _sum_start(metric, period) if period.granularity in ("month", "day") else None
    if measure == "cumulative":
        of = next((n for n, p in _CUMULATIVE_OF if p.search(metric)), None)
        of = of or next((n for n, p in _CUMULATIVE_OF if p.search(quote)), None)
        if "milestone" in metric.lower():
            return "point", period.end, of
        return "cumulative", start or period.start, of
    if start is not None or period.granularity == "span":
        return "cumulative", start or period.start, measure
    frequency = _FREQUENCY[period.granularity]
    return frequency, period.start, (measure if frequency == "point" else None)

