"""The reported figures a forecast can be scored on, and what a forecaster at an origin may see.

A figure is *scorable* when it maps to a model output: a volume (deliveries, sales, retail or
registrations, all read as the model's deliveries) of a brand or product the scenario simulates,
over a known run of months: a month, a quarter, a year, or a period sum whose first month is
known (``cumulative`` with ``start < end``). Milestones (``point``) and to-date totals whose start
is unknown are not scorable. Each source keeps its own row: conflicting sources are separate
figures, each scored on its own.

:func:`scorable_figures` gives the table, one row per figure:

=============== ==========================================================================
column          meaning
=============== ==========================================================================
line            1-based line of the figure's row in the reported-figures file; with
                ``entity`` it names the figure (a multi-valued cell gives several figures
                with one line)
brand, model    the simulator's brand and product (``model`` None for a brand figure)
entity          ``model`` for a product figure, else ``brand``
start, end      first and last month the figure covers, ``YYYY-MM`` (inclusive)
start_index,    the same as month indices (:func:`sim.scenario.months.parse_month`)
end_index
months          number of months covered, ``end_index - start_index + 1``
frequency       ``monthly``, ``quarterly``, ``annual`` or ``cumulative`` (a period sum)
measure         the reported measure (``deliveries``, ``sales``, ``retail``, ``registrations``,
                ``cumulative``)
value           central value, vehicles over the figure's months
low, high       bounds, vehicles (``>x``: ``[x, inf)``, ``<x``: ``(-inf, x]``, ``~x``:
                ``x`` +/- 5%, a range its ends; equal to ``value`` when exact)
qualifier       ``=``, ``>``, ``<``, ``~`` or ``range``
confidence      ``high``, ``medium`` or ``low``
basis           ``""``, ``brand`` (SERES-brand figure standing for AITO) or ``group``
source          provenance, as in the file
=============== ==========================================================================

:func:`figures_upto` is the one gate between the figures and anything fitted at an origin
``T``: it keeps the figures whose last month is ``T`` or earlier. (The file records the period a
figure covers, not the day it was published: a figure for ``T`` is taken as known at ``T``.)
:func:`reported_periods` gives one entity's figures up to ``T``, one per period, conflicting
sources averaged by confidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import overload

import numpy as np
import pandas as pd

from sim.analysis.reported import ReportedFigures
from sim.scenario.months import parse_month

#: Reported measures that stand for the model's deliveries.
SCORED_MEASURES = ("deliveries", "sales", "retail", "registrations")
#: Frequencies of scorable figures (a ``cumulative`` one must be a period sum: start before end).
SCORED_FREQUENCIES = ("monthly", "quarterly", "annual", "cumulative")
#: Bases that count the brand itself (not an alliance, a parent or a disputed total).
SCORED_BASES = ("", "brand", "group")
#: Confidence levels of usable figures, with the weight given when sources are averaged.
CONFIDENCE_WEIGHT = {"high": 1.0, "medium": 0.7, "low": 0.3}

SCORABLE_COLUMNS = (
    "line", "brand", "model", "entity", "start", "end", "start_index", "end_index", "months",
    "frequency", "measure", "value", "low", "high", "qualifier", "confidence", "basis", "source",
)  # fmt: skip


def month_index(month: str | int) -> int:
    """A month given as ``YYYY-MM`` or already as a month index, as a month index."""
    return parse_month(month) if isinstance(month, str) else int(month)


def scorable_figures(
    reported: ReportedFigures | pd.DataFrame,
    brands: Iterable[str],
    products: Iterable[str],
    *,
    after: str | int | None = None,
    through: str | int | None = None,
) -> pd.DataFrame:
    """The reported figures that map to a model output, one row per figure and source.

    Args:
        reported: loaded figures (:func:`sim.analysis.reported.load_reported`) or their
            ``figures`` table.
        brands: the brands the scenario simulates; brand figures of other brands are dropped.
        products: the products the scenario simulates; product figures of others are dropped.
        after: keep only figures whose last month is later than this (``YYYY-MM`` or a month
            index); None keeps all.
        through: keep only figures whose last month is this or earlier; None keeps all.

    Returns:
        The table of :data:`SCORABLE_COLUMNS` (see the module docstring), sorted by ``end``,
        ``start``, ``entity`` and ``line``, with a fresh index.
    """
    fig = reported.figures if isinstance(reported, ReportedFigures) else reported
    brand_set, product_set = set(brands), set(products)
    freq = fig["frequency"]
    of = fig["cumulative_of"] if "cumulative_of" in fig.columns else pd.Series(None, index=fig.index, dtype=object)
    period_sum = (freq == "cumulative") & (fig["start"] < fig["end"]) & of.isin(SCORED_MEASURES)
    keep = (
        (fig["measure"].isin(SCORED_MEASURES) | (fig["measure"] == "cumulative"))
        & (freq.isin(["monthly", "quarterly", "annual"]) | period_sum)
        & fig["brand"].isin(brand_set)
        & (fig["model"].isna() | fig["model"].isin(product_set))
        & fig["basis"].fillna("").isin(SCORED_BASES)
        & fig["confidence"].isin(list(CONFIDENCE_WEIGHT))
        & fig["value"].notna()
    )
    if "market" in fig.columns:  # figures of Europe or the US are not the model's China market
        keep &= fig["market"].isna() | (fig["market"] == "CN")
    out = fig.loc[keep].copy()
    out["model"] = out["model"].where(out["model"].notna(), None)
    out["entity"] = [m if m is not None else b for b, m in zip(out["brand"], out["model"], strict=True)]
    out["start_index"] = out["start"].map(parse_month).astype("int64")
    out["end_index"] = out["end"].map(parse_month).astype("int64")
    out["months"] = out["end_index"] - out["start_index"] + 1
    out["basis"] = out["basis"].fillna("")
    if "source" not in out.columns:
        out["source"] = ""
    if after is not None:
        out = out[out["end_index"] > month_index(after)]
    if through is not None:
        out = out[out["end_index"] <= month_index(through)]
    out = out.sort_values(["end_index", "start_index", "entity", "line"], kind="stable")
    return out.loc[:, list(SCORABLE_COLUMNS)].reset_index(drop=True)


@overload
def figures_upto(reported_or_table: ReportedFigures, origin: str | int) -> ReportedFigures: ...


@overload
def figures_upto(reported_or_table: pd.DataFrame, origin: str | int) -> pd.DataFrame: ...


def figures_upto(
    reported_or_table: ReportedFigures | pd.DataFrame, origin: str | int
) -> ReportedFigures | pd.DataFrame:
    """What a fit or a benchmark made at ``origin`` may see: the figures whose last month is ``origin`` or earlier.

    Args:
        reported_or_table: loaded figures (then a copy with its ``figures`` cut is returned,
            fit for :func:`sim.analysis.fit_appeals.volume_targets`), the raw ``figures``
            table or a :func:`scorable_figures` table.
        origin: the forecast origin ``T``, ``YYYY-MM`` or a month index.

    Returns:
        The same kind of object holding only figures with ``end <= origin``. Figures without
        an ``end`` month are dropped.
    """
    cut = month_index(origin)
    if isinstance(reported_or_table, ReportedFigures):
        return replace(reported_or_table, figures=_upto(reported_or_table.figures, cut))
    return _upto(reported_or_table, cut)


def _upto(table: pd.DataFrame, cut: int) -> pd.DataFrame:
    """Rows of ``table`` whose last month is ``cut`` or earlier (by ``end_index`` when present)."""
    if "end_index" in table.columns:
        ends = table["end_index"]
    else:
        ends = table["end"].map(lambda e: parse_month(e) if isinstance(e, str) else None)
    return table.loc[ends.notna() & (ends.astype("float64") <= cut)].reset_index(drop=True)


@dataclass(frozen=True)
class Period:
    """A reported volume over months ``start..end`` (indices, inclusive): vehicles, with the sources' weight."""

    start: int
    end: int
    value: float
    weight: float


def reported_periods(figs: pd.DataFrame, entity: str, origin: str | int) -> list[Period]:
    """The figures of ``entity`` up to ``origin``, sources of one period averaged (weighted by confidence).

    Args:
        figs: a :func:`scorable_figures` table.
        entity: a brand or product name (the ``entity`` column).
        origin: the last month that may be read (``YYYY-MM`` or a month index).

    Returns:
        One :class:`Period` per distinct ``(start, end)``, in order of start and end; the
        weight is the highest confidence weight among its sources.
    """
    mine = figures_upto(figs[figs["entity"] == entity], origin)
    out = []
    for (start, end), g in mine.groupby(["start_index", "end_index"], sort=True):
        w = g["confidence"].map(CONFIDENCE_WEIGHT).fillna(min(CONFIDENCE_WEIGHT.values())).to_numpy(float)
        value = float(np.average(g["value"].to_numpy(float), weights=w))
        out.append(Period(int(start), int(end), value, float(w.max())))
    return out
