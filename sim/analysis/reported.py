"""Reported figures: the public numbers the model is compared with, with their provenance.

The source file is ``scenarios/reported/figures.csv`` (a copy of the shared
``reported_figures.csv``; see ``scenarios/reported/SOURCES.md``). It has one row per figure per
source; conflicting sources each keep their row. :func:`load_reported` turns it into two tables:

``figures`` -- one row per usable figure (a multi-valued cell such as
``"M9 18,047; M7 16,562; M5 6,926"`` gives one row per item, all with the same ``line``):

============== ============================================================================
column         meaning
============== ============================================================================
line           1-based line of the row in the CSV file (header = line 1)
date, entity,  as in the file (``entity`` of a split item names the item, e.g. ``AITO M9``)
metric
raw_value      the ``value`` cell as in the file
unit           base unit of ``value``: ``vehicles``, ``RMB``, ``%``, ``stores``, ``orders``,
               ``rank``, ... (``million vehicles`` and ``RMB bn`` are scaled to units)
raw_unit       the ``unit`` cell as in the file
source, quote  provenance, as in the file
confidence     ``high`` / ``medium`` / ``low`` / ``none``
granularity    of ``date``: ``day``, ``month``, ``quarter``, ``year`` or ``span``
start, end     first and last calendar month covered, ``YYYY-MM``
measure        what is counted (:data:`MEASURES`): deliveries, sales, retail, wholesale,
               registrations and production are different measures and stay apart
frequency      volume measures only: ``monthly``, ``quarterly``, ``annual``, ``cumulative``
               (a sum from ``start`` to ``end``; ``start == end`` when the text does not say
               where the sum starts) or ``point`` (a milestone); None for other measures
cumulative_of  for ``cumulative`` / ``point`` figures, the measure being summed when known
value          central value in ``unit`` (NaN for informational text, e.g. a launch date)
low, high      bounds: equal to ``value`` when exact; ``>x`` -> [x, inf); ``<x`` -> (-inf, x];
               ``~x`` -> x +/- :data:`APPROX_TOLERANCE`; ``a-b`` -> [a, b], value the midpoint
qualifier      ``=``, ``>``, ``<``, ``~``, ``range``; None for informational rows
brand, model   the simulator's names (:data:`BRANDS`; products like ``AITO M9``), or None when
               the row is about nothing the model simulates (alliances, parents, policy)
basis          ``""`` (plain), ``brand`` (SERES-brand figure standing for AITO), ``group``,
               ``alliance`` (HIMA / Huawei channel), ``parent`` (SERES, Sokon), ``disputed``
market         ``CN``, ``EU``, ``US``, or None for group totals that include exports
note           what the parser did beyond the obvious (stripped parenthetical, item label...)
============== ============================================================================

``unusable`` -- every row that gave no figure, with ``line, date, entity, metric, value,
reason``; the reason starts with a short category (``not found``, ``unparseable value``,
``several periods in one value``, ``bad period``, ``bad confidence``, ``malformed row``).
Every line of the file is in at least one of the two tables.

Entity names are mapped by the ordered pattern table :data:`ENTITY_RULES`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.scenario.months import format_month, parse_month
from sim.scenario.yamlio import InputError, Location, Problem, read_bounded

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "scenarios" / "reported" / "figures.csv"

CSV_COLUMNS = ("date", "entity", "metric", "value", "unit", "source", "quote", "confidence")
CONFIDENCE_LEVELS = ("high", "medium", "low", "none")
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
QUALIFIERS = ("=", ">", "<", "~", "range")
BRANDS = (
    "AITO", "Li Auto", "Xiaomi", "Tesla", "BMW", "Mercedes-Benz", "Audi", "Porsche", "NIO",
    "Zeekr", "Denza",
)  # fmt: skip

APPROX_TOLERANCE = 0.05
"""Relative half-width given to a ``~x`` figure: reported roundings are mostly within 5%."""

NEW_M7_FROM = "2023-10"
"""An ``AITO M7`` figure whose period starts on or after this month is the new M7 (Sep 2023)."""

FIGURE_COLUMNS = (
    "line", "date", "entity", "metric", "raw_value", "unit", "raw_unit", "source", "quote",
    "confidence", "granularity", "start", "end", "measure", "frequency", "cumulative_of",
    "value", "low", "high", "qualifier", "brand", "model", "basis", "market", "note",
)  # fmt: skip
UNUSABLE_COLUMNS = ("line", "date", "entity", "metric", "value", "reason")
#: Largest reported-figures file read, in bytes (the project's file is about 100 kB).
MAX_FILE_BYTES = 20_000_000


class ReportedFileError(InputError, ValueError):
    """A reported-figures file that cannot be read as a table: ``file:line: column: message``.

    Rows that can be read but give no figure are not errors: they go to ``unusable``.
    """


# --------------------------------------------------------------------------- entity mapping


@dataclass(frozen=True)
class EntityRule:
    """Maps entity names matching ``pattern`` (case-insensitive, from the start) to the model."""

    pattern: str
    brand: str | None
    model: str | None = None
    basis: str = ""
    market: str | None = "CN"


# First match wins: specific patterns come before general ones.
ENTITY_RULES: tuple[EntityRule, ...] = (
    EntityRule(r"EU CVD\b.*\bTesla\b", "Tesla", market="EU"),
    EntityRule(r"EU\b", None, market="EU"),
    EntityRule(r"US\b", None, market="US"),
    EntityRule(r"China vehicle sales \(CAAM, wholesale incl\. exports\)", None, market=None),
    EntityRule(r"HIMA\b", None, basis="alliance"),
    EntityRule(r"Huawei-SERES\b", "AITO", basis="parent"),
    EntityRule(r"Huawei\b", None, basis="alliance"),
    EntityRule(r"AITO \(per chinacbs; likely HIMA total\)", "AITO", basis="disputed"),
    EntityRule(r"SERES brand\b", "AITO", basis="brand"),
    EntityRule(r"SERES/AITO\b", "AITO"),
    EntityRule(r"SERES SF5\b", None),  # the pre-AITO car sold through Huawei stores
    EntityRule(r"(SERES|Chongqing Sokon)\b", None, basis="parent", market=None),
    EntityRule(r"AITO\b.* / ", "AITO"),  # several models in one row: split by item
    EntityRule(r"AITO new M7\b", "AITO", "AITO new M7"),
    EntityRule(r"AITO M7\b", "AITO", "AITO M7"),
    EntityRule(r"AITO M5 EV\b", "AITO", "AITO M5 EV"),
    EntityRule(r"AITO M5\b", "AITO", "AITO M5"),
    EntityRule(r"AITO M6\b", "AITO", "AITO M6"),
    EntityRule(r"AITO M8\b", "AITO", "AITO M8"),
    EntityRule(r"AITO M9\b", "AITO", "AITO M9"),
    EntityRule(r"AITO\b", "AITO"),
    EntityRule(r"Li Auto L6\b", "Li Auto", "Li Auto L6"),
    EntityRule(r"Li Auto L7\b", "Li Auto", "Li Auto L7"),
    EntityRule(r"Li Auto L8\b", "Li Auto", "Li Auto L8"),
    EntityRule(r"Li Auto L9\b", "Li Auto", "Li Auto L9"),
    EntityRule(r"Li Auto MEGA\b", "Li Auto", "Li Auto MEGA"),
    EntityRule(r"Li Auto i8\b", "Li Auto", "Li Auto i8"),
    EntityRule(r"Li Auto i6\b", "Li Auto", "Li Auto i6"),
    EntityRule(r"Li( Auto)?\b", "Li Auto"),
    EntityRule(r"Xiaomi SU7\b", "Xiaomi", "Xiaomi SU7"),
    EntityRule(r"Xiaomi YU7\b", "Xiaomi", "Xiaomi YU7"),
    EntityRule(r"Xiaomi\b", "Xiaomi"),
    EntityRule(r"Tesla Model 3\b", "Tesla", "Tesla Model 3"),
    EntityRule(r"Tesla Model Y\b", "Tesla", "Tesla Model Y"),
    EntityRule(r"Tesla China \(Shanghai\)", "Tesla", market=None),  # wholesale incl. exports
    EntityRule(r"Tesla\b", "Tesla"),
    EntityRule(r"BMW\b", "BMW"),
    EntityRule(r"Mercedes-Benz\b", "Mercedes-Benz"),
    EntityRule(r"Audi\b", "Audi"),
    EntityRule(r"Porsche\b", "Porsche"),
    EntityRule(r"NIO Inc\. \(group\)", "NIO", basis="group", market=None),
    EntityRule(r"NIO\b", "NIO"),
    EntityRule(r"Zeekr 001\b", "Zeekr", "Zeekr 001"),
    EntityRule(r"Zeekr 7X\b", "Zeekr", "Zeekr 7X"),
    EntityRule(r"Zeekr\b", "Zeekr"),
    EntityRule(r"Denza D9\b", "Denza", "Denza D9"),
    EntityRule(r"Denza\b", "Denza"),
)
_DEFAULT_RULE = EntityRule("", None)  # market totals, policy, other brands: China, no brand
_COMPILED_RULES = tuple((re.compile(r.pattern, re.IGNORECASE), r) for r in ENTITY_RULES)


def resolve_entity(entity: str) -> EntityRule:
    """The first rule of :data:`ENTITY_RULES` whose pattern matches the start of ``entity``.

    Args:
        entity: an entity name as written in the file, e.g. ``"Tesla Model Y (China, BEV)"``.

    Returns:
        The matching rule, or a rule with no brand and market ``CN`` when none matches.
    """
    for pattern, rule in _COMPILED_RULES:
        if pattern.match(entity.strip()):
            return rule
    return _DEFAULT_RULE


# --------------------------------------------------------------------------- periods


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


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ParsedValue:
    """A reported number with its qualifier: ``value`` central, ``[low, high]`` its bounds."""

    value: float
    low: float
    high: float
    qualifier: str
    note: str = ""


@dataclass(frozen=True)
class Item:
    """One item of a multi-valued cell: its label (None when unnamed), text and value."""

    label: str | None
    text: str
    parsed: ParsedValue


_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+|\d+)(?:\.\d+)?"
_SCALE = r"(?:万|million|billion|bn|m|k)"
_SCALES = {"万": 1e4, "million": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9, "k": 1e3}
_QUALIFIER_WORDS = {
    ">": ">", "over": ">", "more than": ">", "above": ">",
    "<": "<", "under": "<", "less than": "<", "below": "<",
    "~": "~", "≈": "~", "about": "~", "around": "~", "approx.": "~", "approximately": "~",
    "roughly": "~", "nearly": "~", "almost": "~",
}  # fmt: skip
_LEAD = re.compile(
    r"^(?P<q>" + "|".join(re.escape(w) for w in sorted(_QUALIFIER_WORDS, key=len, reverse=True)) + r")\s*",
    re.IGNORECASE,
)
_SINGLE = re.compile(rf"^(?P<sign>[-+])?(?P<num>{_NUM})\s*(?P<scale>{_SCALE})?\s*(?P<pct>%)?$", re.IGNORECASE)
_RANGE = re.compile(
    rf"^(?P<a>{_NUM})\s*(?P<sa>{_SCALE})?\s*(?P<pa>%)?\s*(?:-|–|to)\s*"
    rf"(?P<b>{_NUM})\s*(?P<sb>{_SCALE})?\s*(?P<pb>%)?$",
    re.IGNORECASE,
)
_PAREN = re.compile(r"^(?P<body>.*\S)\s*\((?P<paren>[^()]*)\)$")
_VAL = rf"(?:[<>~]\s*)?[-+]?{_NUM}\s*(?:{_SCALE})?\s*%?"
_LABEL_FIRST = re.compile(rf"^(?P<label>[A-Za-z][A-Za-z0-9 .&'\-]*?)\s+(?P<val>{_VAL})$")
_VALUE_FIRST = re.compile(rf"^(?P<val>{_VAL})\s+(?P<label>[A-Za-z~].*)$")


def _unit_scale(unit: str) -> float:
    u = unit.lower()
    if "million" in u:
        return 1e6
    if re.search(r"\b(bn|billion)\b", u):
        return 1e9
    return 1.0


def _number(num: str, scale: str | None, pct: str | None, unit: str) -> float:
    x = float(num.replace(",", "").replace(" ", ""))
    if scale:
        return x * _SCALES[scale.lower()]
    return x if pct else x * _unit_scale(unit)


def parse_value(text: str, unit: str = "") -> ParsedValue:
    """Parse one reported value with its qualifier.

    Understands thousands separators (``,`` or space), scales (``万`` = 10,000, ``m`` /
    ``million``, ``bn``, ``k``), a trailing ``%`` (value stays in percent points), a unit of
    ``million vehicles`` or ``RMB bn`` when the number carries no scale, leading qualifiers
    (``>``, ``<``, ``~`` and words such as ``over``, ``nearly``), ranges ``a-b`` and a
    trailing parenthetical remark (``683,600 (-7%)`` -> 683600, the remark kept in ``note``).

    Args:
        text: the value as reported, e.g. ``">57,000"``, ``"38.63万"``, ``"359,800-449,800"``.
        unit: the row's unit, used only for its scale.

    Returns:
        The value; ``~x`` gets bounds ``x`` +/- :data:`APPROX_TOLERANCE`, ``>x`` gets
        ``[x, inf)``, ``<x`` gets ``(-inf, x]``, a range its ends and its midpoint.

    Raises:
        ValueError: naming the text when it is not one number, qualified number or range.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"cannot parse value {text!r}: empty")
    s, note = text.strip(), ""
    if m := _PAREN.match(s):
        s, note = m["body"], f"({m['paren']})"
    qualifier = "="
    if m := _LEAD.match(s):
        qualifier = _QUALIFIER_WORDS[m["q"].lower()]
        s = s[m.end() :]
    if m := _SINGLE.match(s):
        x = _number(m["num"], m["scale"], m["pct"], unit) * (-1.0 if m["sign"] == "-" else 1.0)
        if qualifier == ">":
            return ParsedValue(x, x, math.inf, ">", note)
        if qualifier == "<":
            return ParsedValue(x, -math.inf, x, "<", note)
        if qualifier == "~":
            lo, hi = sorted((x * (1 - APPROX_TOLERANCE), x * (1 + APPROX_TOLERANCE)))
            return ParsedValue(x, lo, hi, "~", note)
        return ParsedValue(x, x, x, "=", note)
    if (m := _RANGE.match(s)) and qualifier in ("=", "~"):
        scale, pct = m["sa"] or m["sb"], m["pa"] or m["pb"]
        a, b = _number(m["a"], scale, pct, unit), _number(m["b"], scale, pct, unit)
        if b < a:
            raise ValueError(f"cannot parse value {text!r}: range ends below its start")
        if qualifier == "~":
            note = "; ".join(filter(None, ["approximate range", note]))
        return ParsedValue((a + b) / 2, a, b, "range", note)
    raise ValueError(
        f"cannot parse value {text!r}: expected a number with optional qualifier (>, <, ~), "
        "scale (万, m, million, bn) or %, or a range a-b"
    )


def parse_items(text: str, unit: str = "") -> list[Item]:
    """Split a multi-valued cell into items and parse each.

    Items are separated by ``;`` or, failing that, by `` / ``; each is a value, a label then
    a value (``M9 18,047``) or a value then a label (``31.44 m total``). A trailing
    parenthetical on the whole cell is dropped.

    Args:
        text: e.g. ``"Li 51,000; Aito 41,535; Xiaomi >10,000"`` or ``"10,000 / 7,000"``.
        unit: the row's unit, passed to :func:`parse_value`.

    Returns:
        The items in order (one item for a plain value, possibly with a trailing label).

    Raises:
        ValueError: naming the first item that cannot be parsed.
    """
    s = text.strip()
    if (m := _PAREN.match(s)) and (";" in m["body"] or " / " in m["body"]):
        s = m["body"]
    parts = [p.strip() for p in (s.split(";") if ";" in s else s.split(" / "))]
    items = []
    for part in parts:
        try:
            items.append(Item(None, part, parse_value(part, unit)))
            continue
        except ValueError:
            pass
        m = _LABEL_FIRST.match(part) or _VALUE_FIRST.match(part)
        if not m:
            where = f" (item of {text!r})" if len(parts) > 1 else ""
            raise ValueError(f"cannot parse {part!r}{where}")
        items.append(Item(m["label"].strip(), part, parse_value(m["val"], unit)))
    return items


# --------------------------------------------------------------------------- measures


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
_MON = rf"({'|'.join(_MONTH_NAMES)})[a-z]*\.?"
_METRIC_RANGE = re.compile(rf"\b{_MON}\s*(\d{{4}})?\s*[-–]\s*{_MON}\s*(\d{{4}})?", re.IGNORECASE)
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


def _frequency(measure: str, metric: str, quote: str, period: Period) -> tuple[str | None, str, str | None]:
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


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, eq=False)
class ReportedFigures:
    """The reported figures of one file: ``figures`` usable, ``unusable`` with reasons."""

    path: Path
    figures: pd.DataFrame
    unusable: pd.DataFrame


_INFORMATIONAL_UNITS = ("text", "date", "month", "-")
_CAP = re.compile(r"\bcap\s+(" + _NUM + r")", re.IGNORECASE)
_PERIOD_WORDS = re.compile(rf"\b(\d{{4}}|{_MON}|ytd)\b", re.IGNORECASE)


def _base_unit(raw_unit: str) -> str:
    u = re.sub(r"\s*\([^()]*\)", "", raw_unit).split(" / ")[0]
    u = re.sub(r"\b(million|billion|bn)\b", "", u, flags=re.IGNORECASE).strip()
    return u or raw_unit.strip()


def _metric_labels(metric: str, n: int) -> list[str] | None:
    """Item names given by the metric: ``(BYD/Geely/SAIC)`` or ``... NEV / ICE``."""
    for group in re.findall(r"\(([^()]*/[^()]*)\)", metric):
        names = [g.strip() for g in group.split("/")]
        if len(names) == n:
            return names
    parts = metric.split(" / ")
    if len(parts) == n and n > 1:
        return [parts[0].split()[-1]] + [p.split()[0] for p in parts[1:]]
    return None


def _parse_row(row: dict[str, str], measure: str) -> list[tuple[str | None, str, ParsedValue | None]]:
    """(label, item text, value or None if informational) per figure of a row.

    Raises:
        ValueError: with a message starting ``unparseable value`` or ``several periods``.
    """
    raw, unit = row["value"], row["unit"]
    if measure == "rank":
        if m := re.match(r"^#(\d+)", raw.strip()):
            rank = float(m[1])
            return [(None, raw, ParsedValue(rank, rank, rank, "="))]
        raise ValueError(f"unparseable value: rank {raw!r} is not '#n'")
    if unit.strip().lower() in _INFORMATIONAL_UNITS:
        return [(None, raw, None)]
    try:
        return [(None, raw, parse_value(raw, unit))]
    except ValueError:
        pass
    if measure == "policy":
        # tax rules read as text; the number that matters is the cap per vehicle
        if m := _CAP.search(raw):
            x = _number(m[1], None, None, unit)
            return [(None, raw, ParsedValue(x, x, x, "=", "per-vehicle cap"))]
        return [(None, raw, None)]
    try:
        items = parse_items(raw, unit)
    except ValueError as e:
        raise ValueError(f"unparseable value: {e}") from None
    if len(items) == 1:
        it, p = items[0], items[0].parsed
        note = "; ".join(filter(None, [p.note, f"trailing text: {it.label}" if it.label else ""]))
        return [(None, raw, ParsedValue(p.value, p.low, p.high, p.qualifier, note))]
    dated = [it.label for it in items if it.label and _PERIOD_WORDS.search(it.label)]
    if dated:
        raise ValueError(f"several periods in one value: items {', '.join(dated)}")
    names = _metric_labels(row["metric"], len(items))
    return [(it.label or (names[k] if names else None), it.text, it.parsed) for k, it in enumerate(items)]


def _figure_rows(line: int, row: dict[str, str], period: Period) -> list[dict[str, Any]]:
    """The figures of one CSV row (several for a multi-valued cell); raises ValueError."""
    entity, metric, raw_unit = row["entity"], row["metric"], row["unit"]
    measure = classify_measure(metric, entity, _base_unit(raw_unit))
    parsed = _parse_row(row, measure)
    rule = resolve_entity(entity)
    n = len(parsed)
    units = ["%" if text.strip().endswith("%") else _base_unit(raw_unit) for _, text, _ in parsed]
    measures = [classify_measure(metric, entity, u) for u in units] if n > 1 else [measure]
    prefix = entity.split()[0] if rule.brand and " / " in entity else None
    out = []
    for k, ((label, text, pv), item_measure) in enumerate(zip(parsed, measures, strict=True)):
        brand, model, item_entity, notes = rule.brand, rule.model, entity, []
        if n > 1:
            if label is None:
                label = item_measure if len(set(measures)) > 1 else f"{k + 1}/{n}"
            if prefix:
                item_entity = f"{prefix} {label}"
                sub = resolve_entity(item_entity)
                brand, model = sub.brand, sub.model
            else:
                item_entity = f"{entity} [{label}]"
                sub = resolve_entity(label)
                if sub.brand:
                    brand, model = sub.brand, sub.model
            notes.append(f"item {k + 1}/{n} ({text!r}) of a multi-valued cell")
        if model == "AITO M7" and period.start >= NEW_M7_FROM:
            model = "AITO new M7"
            notes.append("reported as M7; after the Sep 2023 relaunch this is the new M7")
        frequency, start, cumulative_of = _frequency(item_measure, metric, row["quote"], period)
        if pv is None:
            notes.append("informational: no number")
        elif pv.note:
            notes.append(pv.note)
        unit, nan = ("rank" if measure == "rank" else units[k]), math.nan
        out.append({
            "line": line, "date": row["date"], "entity": item_entity, "metric": metric,
            "raw_value": row["value"], "unit": unit,
            "raw_unit": raw_unit, "source": row["source"], "quote": row["quote"],
            "confidence": row["confidence"], "granularity": period.granularity,
            "start": start, "end": period.end, "measure": item_measure,
            "frequency": frequency, "cumulative_of": cumulative_of,
            "value": pv.value if pv else nan, "low": pv.low if pv else nan,
            "high": pv.high if pv else nan, "qualifier": pv.qualifier if pv else None,
            "brand": brand, "model": model, "basis": rule.basis, "market": rule.market,
            "note": "; ".join(notes),
        })  # fmt: skip
    return out


def _frame(records: list[dict[str, Any]], columns: Sequence[str], floats: Sequence[str] = ()) -> pd.DataFrame:
    """A table with ints for ``line``, floats for ``floats`` and objects (None kept) else."""
    data: dict[str, pd.Series] = {}
    for c in columns:
        values = [r[c] for r in records]
        if c == "line":
            data[c] = pd.Series(values, dtype="int64")
        elif c in floats:
            data[c] = pd.Series(values, dtype="float64")
        else:
            data[c] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, columns=list(columns))


def load_reported(path: str | Path | None = None) -> ReportedFigures:
    """Load and parse the reported-figures file.

    Args:
        path: the CSV file; None for the project's ``scenarios/reported/figures.csv``.

    Returns:
        The usable figures and the unusable rows with their reasons; every line of the file
        is in at least one of the two tables.

    Raises:
        ReportedFileError: (a ``ValueError``) when the file is not a readable table: missing,
            empty, too large, binary, not UTF-8, broken quoting, a column missing or repeated
            in the header; the message names the file, the line and the column.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    figures: list[dict[str, Any]] = []
    unusable: list[dict[str, Any]] = []
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = _header(reader, path)
    while True:
        line = reader.line_num + 1  # first physical line of the next record
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            where, column, what = _csv_trouble(text) or (reader.line_num, None, "")
            name = (header[column] if column < len(header) else f"column {column + 1}") if column is not None else ""
            raise ReportedFileError(
                Problem(f"not valid CSV: {what + ' (' if what else ''}{exc}{')' if what else ''}", Location(str(path), where), name)
            ) from None
        if cells is None:
            break
        if not any(c.strip() for c in cells):
            continue
        row = dict(zip(header, cells, strict=False))
        reason = _check_row(row, len(cells), len(header))
        if reason is None:
            try:
                period = parse_period(row["date"])
            except ValueError as e:
                reason = f"bad period: {e}"
        if reason is None:
            try:
                figures.extend(_figure_rows(line, row, period))
                continue
            except ValueError as e:
                reason = str(e)
        keep = {k: row.get(k, "") for k in ("date", "entity", "metric", "value")}
        unusable.append({"line": line, **keep, "reason": reason})
    return ReportedFigures(
        path,
        _frame(figures, FIGURE_COLUMNS, floats=("value", "low", "high")),
        _frame(unusable, UNUSABLE_COLUMNS),
    )


def _read_text(path: Path) -> str:
    """The file's text; a file that is missing, too large, binary or not UTF-8 is an error."""
    name = str(path)
    try:
        raw = read_bounded(path, MAX_FILE_BYTES)  # a regular file (not a FIFO or a device), bounded
    except InputError as exc:
        raise ReportedFileError(exc.problems) from None
    if b"\x00" in raw:
        raise ReportedFileError(Problem("binary data (NUL bytes), not CSV text", Location(name, 1)))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        before = raw[: exc.start].decode("utf-8", errors="replace")
        header = next(csv.reader(io.StringIO(before, newline="")), [])
        column = _column_at_end(before)
        field = header[column] if line > 1 and column < len(header) else ""
        raise ReportedFileError(Problem("not UTF-8 text", Location(name, line), field)) from None
    if not text.strip():
        raise ReportedFileError(
            Problem(f"file is empty; expected a header line with the columns {', '.join(CSV_COLUMNS)}", Location(name, 1))
        )
    return text


def _header(reader: Any, path: Path) -> list[str]:
    """The header line: every column of :data:`CSV_COLUMNS`, none twice."""
    try:
        header = next(reader, None) or []
    except csv.Error as exc:
        raise ReportedFileError(Problem(f"not valid CSV: {exc}", Location(str(path), 1))) from None
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ReportedFileError(Problem(f"missing column(s) {', '.join(missing)}", Location(str(path), 1)))
    twice = sorted({c for c in header if c in CSV_COLUMNS and header.count(c) > 1})
    if twice:
        raise ReportedFileError(
            [Problem(f"column appears {header.count(c)} times in the header", Location(str(path), 1), c) for c in twice]
        )
    return header


def _csv_trouble(text: str) -> tuple[int, int, str] | None:
    """Line, column index and kind of the first broken quoting or overlong field in CSV ``text``, or None.

    A quoted field must end with a quote followed by a separator or the end of the line; a
    field may not be longer than ``csv.field_size_limit()`` (an unclosed quote usually runs
    to the end of the file).
    """
    limit = csv.field_size_limit()
    line, column, length = 1, 0, 0
    quoted = closed = False
    start_line = 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quoted:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    i += 1
                else:
                    quoted, closed = False, True
            else:
                length += 1
                line += ch == "\n"
        elif closed and ch not in ",\r\n":
            return line, column, "text after a closing quote"
        elif ch == ",":
            column, length, closed = column + 1, 0, False
        elif ch == "\n":
            line, column, length, closed = line + 1, 0, 0, False
        elif ch == '"' and length == 0 and not closed:
            quoted, start_line = True, line
        elif ch != "\r":
            length += 1
        if length > limit:
            return (start_line if quoted else line), column, f"a field longer than {limit:,} characters"
        i += 1
    return (start_line, column, "a quoted field is never closed") if quoted else None


def _column_at_end(text: str) -> int:
    """Index of the CSV column that ``text`` (a file's beginning) ends in."""
    column, quoted = 0, False
    for ch in text:
        if ch == '"':
            quoted = not quoted  # a doubled quote toggles twice
        elif not quoted and ch == ",":
            column += 1
        elif not quoted and ch == "\n":
            column = 0
    return column


def _check_row(row: dict[str, str], n_cells: int, n_columns: int) -> str | None:
    """Why a row cannot give a figure, found before reading its date and value, or None."""
    if n_cells != n_columns:
        return f"malformed row: {n_cells} fields, expected {n_columns}"
    if row["confidence"] not in CONFIDENCE_LEVELS:
        return f"bad confidence: {row['confidence']!r} is not one of {', '.join(CONFIDENCE_LEVELS)}"
    if row["confidence"] == "none" or row["value"].strip().upper().startswith("NOT FOUND"):
        return f"not found: {row['value']} (confidence {row['confidence']})"
    return None


def volume_series(
    rf: ReportedFigures,
    brand: str | None = None,
    model: str | None = None,
    measures: Iterable[str] = ("deliveries", "sales", "retail", "registrations"),
    include_models: bool = False,
) -> pd.DataFrame:
    """Usable volume figures about one brand or one product, in time order.

    Args:
        rf: loaded figures.
        brand: a name of :data:`BRANDS`; with ``model`` None only brand-level rows are kept
            (no model) unless ``include_models``.
        model: a product name such as ``"AITO M9"``.
        measures: measures to keep; add ``"cumulative"`` for milestones and to-date sums
            labelled cumulative, ``"wholesale"`` or ``"production"`` for those bases.
        include_models: with ``brand`` only, also keep the brand's per-model rows.

    Returns:
        The matching rows of ``rf.figures`` with a number (all columns), sorted by ``end``,
        ``start`` and ``line``. Rows of every ``frequency`` and ``basis`` are kept: filter
        ``frequency`` before comparing, and ``basis`` to drop SERES-brand or disputed rows.
    """
    f = rf.figures
    keep = f["measure"].isin(list(measures)) & f["value"].notna()
    if brand is not None:
        keep &= f["brand"] == brand
        if model is None and not include_models:
            keep &= f["model"].isna()
    if model is not None:
        keep &= f["model"] == model
    return f[keep].sort_values(["end", "start", "line"], kind="stable").reset_index(drop=True)
