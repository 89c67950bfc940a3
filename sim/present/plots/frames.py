"""Tidy frames of a batch for the figures: deliveries per run and month, running totals, bands and shares.

Pure pandas functions of a results folder's sales table; nothing is drawn here.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sim.scenario.months import format_month, parse_month

#: Quantiles drawn as bands: 5%, 25%, 50% (median), 75%, 95%.
QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}


def months_between(first: str, last: str) -> list[str]:
    """Every month ``first..last`` as ``YYYY-MM``."""
    return [format_month(i) for i in range(parse_month(first), parse_month(last) + 1)]



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

