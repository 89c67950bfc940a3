"""Scalar outcomes per run: what an exploratory tool (EMA Workbench, a notebook) wants of a batch.

One row per run, one column per outcome, every name a Python identifier
(:func:`sim.model.observe.column_name`):

- ``deliveries_<brand>_<year>``: the brand's deliveries in the calendar year, all markets (units);
- for each target of the scenario, ``<target>_delivered`` (deliveries in its window), ``_reached``
  (bool), ``_month_reached`` (``YYYY-MM``, missing if not reached), ``_months_to_reach`` (months
  from the window's start, 1 = its first month; NaN if not reached) and ``_shortfall`` (units
  short at its end, 0 if reached) (:func:`sim.analysis.targets.target_outcomes`);
- ``share_<segment>_<year>``: the price segment's share of all deliveries in the year (NaN in a
  year without deliveries).

Before them, the run's identity: ``run_id``, ``scenario``, ``replicate``, ``status``, and the
``member`` of an ensemble, the ``point`` and ``param:<path>`` values of a sweep when the runs
table has them. A failed run keeps its row, its outcomes missing. Reads the stored tables only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.targets import target_outcomes
from sim.model.observe import column_name
from sim.scenario.months import parse_month

#: Columns of the runs table copied to the outcomes, when present, in this order.
ID_COLUMNS = ("run_id", "scenario", "replicate", "status", "member", "point")


def run_outcomes(
    runs: pd.DataFrame,
    sales: pd.DataFrame,
    scenario: Mapping[str, Any],
    *,
    brands: Iterable[str] | None = None,
    years: Iterable[int | str] | None = None,
    targets: bool = True,
    shares: bool = True,
) -> pd.DataFrame:
    """Scalar outcomes of each run (see the module docstring for the columns).

    Args:
        runs: the runs table (one row per run).
        sales: the sales table of those runs.
        scenario: the resolved scenario as data (a manifest's ``scenario``): its brands, segments,
            targets and months decide the columns, whatever the runs delivered.
        brands: the brands whose deliveries are reported (default: all of the scenario's).
        years: the calendar years reported (default: every year the scenario covers).
        targets: report the scenario's targets.
        shares: report the segments' shares.

    Raises:
        ValueError: a brand or year the scenario does not have, or two names that give the same column.
    """
    all_brands = [str(b["name"]) for b in scenario.get("brands") or []]
    first, last = parse_month(str(scenario["start"])) // 12, parse_month(str(scenario["end"])) // 12
    chosen = list(all_brands if brands is None else brands)
    wanted = [str(y) for y in (range(first, last + 1) if years is None else years)]
    unknown = [b for b in chosen if b not in all_brands] + [y for y in wanted if not first <= int(y) <= last]
    if unknown:
        raise ValueError(f"not in the scenario: {', '.join(map(str, unknown))} (brands: {', '.join(all_brands)}; "
                         f"years {first}-{last})")  # fmt: skip
    ids = [c for c in ID_COLUMNS if c in runs.columns] + [c for c in runs.columns if str(c).startswith("param:")]
    out = runs[ids].sort_values("run_id", kind="stable").reset_index(drop=True)
    ok = out.loc[out["status"] == "ok", "run_id"].to_numpy()
    sales = sales[sales["run_id"].isin(ok)]
    year = sales["month"].astype(str).str[:4]
    columns: dict[str, pd.Series] = {}
    by_year = sales.groupby([sales["run_id"], sales["brand"].astype(str), year])["units"].sum()
    for b in chosen:
        for y in wanted:
            columns[column_name("deliveries", b, y)] = _per_run(by_year, (b, y), ok, fill=0.0)
    if targets:
        for t in scenario.get("targets") or []:
            columns.update(_target_columns(sales, t, ok))
    if shares:
        segs = sales.groupby([sales["run_id"], year, sales["segment"].astype(str)])["units"].sum()
        totals = sales.groupby([sales["run_id"], year])["units"].sum()
        for s in [str(x["name"]) for x in scenario.get("segments") or []]:
            for y in wanted:
                total = _per_run(totals, (y,), ok, fill=0.0)
                columns[column_name("share", s, y)] = _per_run(segs, (y, s), ok, fill=0.0) / total.where(total > 0)
    _check_unique([*out.columns, *columns])
    values = pd.DataFrame({k: v.reindex(out["run_id"]).reset_index(drop=True) for k, v in columns.items()}, index=out.index)
    return pd.concat([out, values], axis=1)


def _per_run(sums: pd.Series, key: tuple[str, ...], runs: np.ndarray, fill: float) -> pd.Series:
    """The sums of ``sums`` (indexed by run, then ``key``'s levels) at ``key``, one value per run of ``runs``."""
    try:
        part = sums.xs(key, level=list(range(1, 1 + len(key))))
    except KeyError:
        part = pd.Series(dtype=float)
    return part.reindex(pd.Index(runs, name="run_id"), fill_value=fill).astype(float)


def _target_columns(sales: pd.DataFrame, target: Mapping[str, Any], runs: np.ndarray) -> dict[str, pd.Series]:
    """A target's outcome columns, one value per run of ``runs``."""
    name = str(target["name"])
    oc = target_outcomes(sales, str(target["brand"]), float(target["units"]), str(target["start"]), str(target["by"]))
    oc = oc.set_index("run_id").reindex(pd.Index(runs, name="run_id"))
    start = parse_month(str(target["start"]))
    months = [np.nan if not isinstance(m, str) else float(parse_month(m) - start + 1) for m in oc["month_reached"]]
    return {
        column_name(name, "delivered"): oc["delivered"].astype(float),
        column_name(name, "reached"): oc["reached"].astype("boolean"),
        column_name(name, "month_reached"): oc["month_reached"].astype("string"),
        column_name(name, "months_to_reach"): pd.Series(months, index=oc.index, dtype=float),
        column_name(name, "shortfall"): oc["shortfall"].astype(float),
    }


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"two outcomes are named '{n}' (names of brands, targets or segments that differ "
                             "only by punctuation)")  # fmt: skip
        seen.add(n)
