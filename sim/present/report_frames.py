"""The frames the figures of a batch draw: the fans toward a target, the reported points, the runs counted.

Shared by the batch's figures (:mod:`sim.present.report_figures`) and a forecast's
(:mod:`sim.present.report_forecast`). matplotlib is imported when a figure is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.present.report_batch import Batch
from sim.present.report_html import number
from sim.scenario.yamlio import InputError

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not when the command line starts
    from sim.present import plots


def need_target(batch: Batch) -> dict[str, Any]:
    """The first target of the batch's scenario (:class:`InputError` when it has none)."""
    if not batch.target:
        raise InputError(f"{batch.results.path}: the scenario has no targets")
    return batch.target


def target_level(target: Mapping[str, Any]) -> float:
    """The reported cumulative at a target's start (0 when unknown): where its fan starts."""
    v = target.get("reported_cumulative_at_start")
    return float(v) if v is not None and math.isfinite(float(v)) else 0.0


def target_fan(batch: Batch, target: Mapping[str, Any], role: str = "main") -> plots.Fan:
    """Deliveries counted toward a target: the reported cumulative at its start plus the simulated."""
    from sim.present import plots

    level = target_level(target)
    values = plots.cumulative_units(batch.sales, target["brand"], target["start"], target["by"], level)
    what = f"reported {plots.units_text(level)} + simulated" if level else "simulated"
    return plots.Fan(f"{batch.label}: counted toward the target ({what})", values, role, anchor=level)


def cumulative_fans(batch: Batch) -> tuple[list[plots.Fan], plots.TargetLine | None]:
    """The fans of the brand's cumulative deliveries and the target line: with a target, the history since its
    first deliveries up to the target's start and the deliveries counted toward it; without, one fan."""
    from sim.present import plots

    brand, target = batch.brand, batch.target
    if not target:
        return [plots.Fan(batch.label, plots.cumulative_units(batch.sales, brand), "main")], None
    history = plots.cumulative_units(batch.sales, brand, end=target["start"])
    return [plots.Fan("simulated since first deliveries", history, "history"), target_fan(batch, target)], target_line(target)


def target_line(target: Mapping[str, Any]) -> plots.TargetLine:
    """The target on the cumulative axis: its level counted from the reported cumulative at its start."""
    from sim.present import plots

    return plots.TargetLine(target_level(target) + float(target["units"]), str(target["by"]), f"target '{target['name']}'")


def reported_cumulative(batch: Batch, brand: str) -> pd.DataFrame:
    """Reported cumulative figures of a brand summed since its first deliveries (for the fan chart)."""
    f = batch.comparison.figures
    since = batch.first_delivery(brand)
    if f.empty or since is None:
        return pd.DataFrame(columns=["month", "value", "label"])
    rows = f[(f["brand"] == brand) & f["model"].isna() & f["frequency"].isin(["cumulative", "point"])
             & (f["start"] == since) & f["qualifier"].isin(["=", "~"])]  # fmt: skip
    rows = rows.drop_duplicates(["end", "reported"])
    out = pd.DataFrame({"month": rows["end"].astype(str), "value": rows["reported"].astype(float)})
    out["label"] = [f"{number(v)} reported" for v in out["value"]]
    return out.reset_index(drop=True)


def reported_monthly(batch: Batch) -> pd.DataFrame:
    """Reported monthly figures of whole brands: ``brand``, ``month``, ``value``, ``used``."""
    f = batch.comparison.figures
    if f.empty:
        return pd.DataFrame(columns=["brand", "month", "value", "used"])
    rows = f[(f["frequency"] == "monthly") & f["model"].isna() & (f["start"] == f["end"])
             & f["qualifier"].isin(["=", "~", "range"])]  # fmt: skip
    return pd.DataFrame({"brand": rows["brand"].astype(str), "month": rows["start"].astype(str),
                         "value": rows["reported"].astype(float), "used": rows["used"].astype(bool)})  # fmt: skip


def runs_text(batch: Batch) -> str:
    """How many runs a figure shows (``12 runs``; a partial batch says so)."""
    c = batch.results.completeness
    if c is not None and c.partial:  # a figure of a partial batch says so where it counts its runs
        return f"PARTIAL: {batch.runs} run{'s' if batch.runs != 1 else ''} of {c.asked if c.asked is not None else '?'} asked"
    return f"{batch.runs} run{'s' if batch.runs != 1 else ''}"
