"""What the appeal fit aims at and how the model answers: reported volume targets and simulated months.

A target is a reported volume of a brand or a product over a period (a month, a quarter, a year or
any span) up to a cut-off month (:func:`volume_targets`); the model's answer is the mean over
replicates of its deliveries over the same months (:func:`simulate_monthly`), and how cumulative
deliveries move when demand moves, month by month (:func:`delivery_response`), which gives the fit
its derivatives. Shared by the appeal fit (:mod:`sim.analysis.fit_appeals`) and the ensemble
calibration (:mod:`sim.analysis.calibrate`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from sim.runs.batch import BLAS_THREADS, collect
from sim.runs.run import execute, make_specs
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario

#: Weight of a reported figure by its confidence.
CONFIDENCE_WEIGHT = {"high": 1.0, "medium": 0.7, "low": 0.3}
VOLUME_MEASURES = ("deliveries", "sales", "retail", "registrations")


#: Weight of a figure by its frequency (many monthly figures should not drown the annual totals).
FREQUENCY_WEIGHT = {"annual": 1.0, "quarterly": 0.6, "monthly": 0.3, "cumulative": 0.6}


@dataclass(frozen=True)
class VolumeTarget:
    """A reported volume over a period that the fit aims at."""

    brand: str
    model: str | None
    start: str
    end: str
    value: float
    weight: float
    lines: str
    frequency: str = ""

    @property
    def key(self) -> str:
        period = self.start[:4] if (self.start.endswith("-01") and self.end == self.start[:4] + "-12") else (
            self.start if self.start == self.end else f"{self.start}..{self.end}")
        return f"{self.model or self.brand} {period}"


def volume_targets(scenario: Scenario, through: str, reported: Any = None) -> list[VolumeTarget]:
    """Monthly, quarterly and annual brand and product volumes reported up to ``through``.

    Only figures whose months lie inside the scenario are used. Conflicting sources for
    the same brand/product and period are averaged, weighted by confidence.
    """
    from sim.analysis.reported import load_reported

    rf = reported if reported is not None else load_reported()
    fig = rf.figures
    cut = min(parse_month(through), scenario.end_index)
    brands = {b.name for b in scenario.brands}
    products = {p.name for p in scenario.products}
    sel = fig[
        (fig["measure"].isin(VOLUME_MEASURES) | (fig["measure"] == "cumulative"))
        & fig["frequency"].isin(list(FREQUENCY_WEIGHT))
        & fig["brand"].notna()
        & fig["basis"].fillna("").isin(["", "brand", "group"])
        & fig["confidence"].isin(list(CONFIDENCE_WEIGHT))
        & fig["value"].notna()
    ].copy()
    sel = sel[(sel["end"].map(parse_month) <= cut) & (sel["start"].map(parse_month) >= scenario.start_index)]
    # A cumulative figure is a period sum only when its first month is known (start before end).
    sel = sel[(sel["frequency"] != "cumulative") | (sel["start"] < sel["end"])]
    if "cumulative_of" in sel.columns:
        sel = sel[(sel["frequency"] != "cumulative") | sel["cumulative_of"].isin(["deliveries", "sales"])]
    sel = sel[sel["brand"].isin(brands) & (sel["model"].isna() | sel["model"].isin(products))]
    sel["w"] = sel["confidence"].map(CONFIDENCE_WEIGHT)
    out = []
    keys = ["brand", sel["model"].fillna(""), "start", "end", "frequency"]
    groups = list(sel.groupby(keys, sort=True))
    # Monthly and quarterly figures of one brand or product in one year share their weight:
    # each counts 1/sqrt(n) of its frequency's weight when the year has n of them, so that a
    # series reported every month (Tesla's models, with their export-cycle swings) does not
    # outweigh the annual totals of every other brand.
    per_year = Counter((brand, model, start[:4], freq) for (brand, model, start, _, freq), _ in groups)
    for (brand, model, start, end, freq), g in groups:
        value = float(np.average(g["value"], weights=g["w"]))
        share = 1.0 / np.sqrt(per_year[brand, model, start[:4], freq]) if freq in ("monthly", "quarterly") else 1.0
        weight = float(g["w"].max()) * FREQUENCY_WEIGHT[freq] * share
        out.append(VolumeTarget(brand, model or None, start, end, value, weight, ",".join(map(str, g["line"])), freq))
    return out


def simulate_monthly(scenario: Scenario, replications: int, seed: int, scale: float | None) -> pd.DataFrame:
    """Mean monthly units per brand and product over replicates (China market)."""
    per = replicate_monthly(scenario, replications, seed, scale)
    out = per.groupby(["brand", "model", "month"], observed=True)[["units", "orders"]].mean().reset_index()
    out["m"] = out["month"].map(parse_month)
    return out


def replicate_monthly(
    scenario: Scenario, replications: int, seed: int, scale: float | None, kernel: str = "numba"
) -> pd.DataFrame:
    """Units, orders and backlog per replicate, brand, product and month (China market)."""
    specs = make_specs(scenario, replications, seed=seed, scale=scale, kernel=kernel)
    with threadpool_limits(BLAS_THREADS):  # as in batches, so that fits and batches agree bit for bit
        runs, sales = collect([execute(s) for s in specs])
    failed = runs[runs["status"] != "ok"]
    if len(failed):
        raise RuntimeError(f"a fitting run failed:\n{failed['error'].iloc[0]}")
    sales = sales[sales["market"] == "CN"]
    cols = ["units", "orders", "backlog"]
    return sales.groupby(["replicate", "brand", "model", "month"], observed=True)[cols].sum().reset_index()


def delivery_response(per: pd.DataFrame, months: range, weights: dict[str, Any]) -> pd.DataFrame:
    """Mean monthly units and orders, with how cumulative deliveries answer to demand.

    A product's deliveries up to month ``m`` are its orders up to ``m`` less what is still in its
    order book (and what was cancelled). When its order book is empty at ``m``, every order so
    far has been delivered, so cumulative deliveries move one for one with cumulative orders;
    when buyers are still waiting, the product delivers at its capacity, which demand does not
    move. For each weight ``w`` (a function of a frame with ``model`` and ``m`` columns, giving
    how a parameter moves the log of each month's orders) the column ``r_<name>`` is the mean
    over replicates of ``[backlog(m) == 0] * sum of w * orders up to m``: the derivative of
    cumulative deliveries to ``m``; ``c_<name>`` is the same without the order-book condition
    (the derivative of cumulative orders). Months in which a product is not on sale (before its
    launch, after its end) have no orders and no backlog.
    """
    per = per.astype({"brand": str, "model": str, "month": str})
    keys = per[["brand", "model"]].drop_duplicates()
    grid = pd.MultiIndex.from_product(
        [sorted(per["replicate"].unique()), keys["model"], [format_month(m) for m in months]],
        names=["replicate", "model", "month"],
    )
    full = (per.drop(columns="brand").set_index(["replicate", "model", "month"])
            .reindex(grid, fill_value=0).reset_index())
    full = full.merge(keys, on="model")
    full["m"] = full["month"].map(parse_month)
    full = full.sort_values(["replicate", "model", "m"], kind="stable")
    free = (full["backlog"] <= 0).to_numpy()
    by = [full["replicate"], full["model"]]
    for name, w in weights.items():
        full[f"c_{name}"] = (full["orders"] * w(full)).groupby(by).cumsum()
        full[f"r_{name}"] = free * full[f"c_{name}"]
    cols = ["units", "orders"] + [f"{k}_{n}" for n in weights for k in ("r", "c")]
    return full.groupby(["brand", "model", "month", "m"], observed=True)[cols].mean().reset_index()


def target_rows(sim: pd.DataFrame, t: VolumeTarget) -> pd.DataFrame:
    rows = sim[(sim["brand"] == t.brand) & (sim["m"] >= parse_month(t.start)) & (sim["m"] <= parse_month(t.end))]
    return rows[rows["model"] == t.model] if t.model else rows


def residuals(targets: list[VolumeTarget], sim: pd.DataFrame) -> tuple[np.ndarray, list[float]]:
    res, got = [], []
    for t in targets:
        units = float(target_rows(sim, t)["units"].sum())
        got.append(units)
        res.append(np.log(max(units, 1.0) / t.value))
    return np.array(res), got
