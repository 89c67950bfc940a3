"""The numbers of a reported figure: its ``value`` cell read with its qualifier, scale and unit.

:func:`parse_value` reads one value (``">57,000"``, ``"38.63万"``, ``"359,800-449,800"``) into a
central value and bounds; :func:`parse_items` splits a multi-valued cell (``"M9 18,047; M7 16,562"``)
into labelled items; :func:`row_values` gives the figures of one CSV row, by its measure and unit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sim.analysis.reported_periods import MONTH_NAME

QUALIFIERS = ("=", ">", "<", "~", "range")

APPROX_TOLERANCE = 0.05
"""Relative half-width given to a ``~x`` figure: reported roundings are mostly within 5%."""


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


_INFORMATIONAL_UNITS = ("text", "date", "month", "-")
_CAP = re.compile(r"\bcap\s+(" + _NUM + r")", re.IGNORECASE)
_PERIOD_WORDS = re.compile(rf"\b(\d{{4}}|{MONTH_NAME}|ytd)\b", re.IGNORECASE)


def base_unit(raw_unit: str) -> str:
    """The unit of a ``unit`` cell without remarks and scale: ``million vehicles (wholesale)`` -> ``vehicles``."""
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


def row_values(row: dict[str, str], measure: str) -> list[tuple[str | None, str, ParsedValue | None]]:
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
