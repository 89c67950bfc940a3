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

Entity names are mapped by the ordered pattern table of :mod:`sim.analysis.reported_entities`
(:data:`~sim.analysis.reported_entities.BRANDS`); the cells are read by
:mod:`sim.analysis.reported_periods` (date and metric: :data:`~sim.analysis.reported_periods.MEASURES`)
and :mod:`sim.analysis.reported_values` (value: :data:`~sim.analysis.reported_values.APPROX_TOLERANCE`),
the file by :mod:`sim.analysis.reported_csv`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.reported_csv import csv_records
from sim.analysis.reported_entities import NEW_M7_FROM, resolve_entity
from sim.analysis.reported_periods import Period, classify_measure, figure_frequency, parse_period
from sim.analysis.reported_values import base_unit, row_values
from sim.scenario.shipped import shipped_file

#: The shipped figures (``scenarios/reported/figures.csv`` of a checkout, package data of a wheel).
DEFAULT_PATH = shipped_file("reported", "figures.csv")

CONFIDENCE_LEVELS = ("high", "medium", "low", "none")
FIGURE_COLUMNS = (
    "line", "date", "entity", "metric", "raw_value", "unit", "raw_unit", "source", "quote",
    "confidence", "granularity", "start", "end", "measure", "frequency", "cumulative_of",
    "value", "low", "high", "qualifier", "brand", "model", "basis", "market", "note",
)  # fmt: skip
UNUSABLE_COLUMNS = ("line", "date", "entity", "metric", "value", "reason")


@dataclass(frozen=True, eq=False)
class ReportedFigures:
    """The reported figures of one file: ``figures`` usable, ``unusable`` with reasons."""

    path: Path
    figures: pd.DataFrame
    unusable: pd.DataFrame


def _figure_rows(line: int, row: dict[str, str], period: Period) -> list[dict[str, Any]]:
    """The figures of one CSV row (several for a multi-valued cell); raises ValueError."""
    entity, metric, raw_unit = row["entity"], row["metric"], row["unit"]
    measure = classify_measure(metric, entity, base_unit(raw_unit))
    parsed = row_values(row, measure)
    rule = resolve_entity(entity)
    n = len(parsed)
    units = ["%" if text.strip().endswith("%") else base_unit(raw_unit) for _, text, _ in parsed]
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
        frequency, start, cumulative_of = figure_frequency(item_measure, metric, row["quote"], period)
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
    for line, header, cells in csv_records(path):
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
        brand: a name of :data:`~sim.analysis.reported_entities.BRANDS`; with ``model`` None only brand-level rows are kept
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
