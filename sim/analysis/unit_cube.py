"""Simulated deliveries of a results folder as one array: runs x products x months x markets.

Analysis reads the finished runs' ``sales`` table once into a :class:`UnitCube` and sums it over
brands, products, markets and month windows (:mod:`sim.analysis.figure_comparison`,
:mod:`sim.analysis.compare`, :mod:`sim.analysis.pair_comparison`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.runs.store import Results
from sim.scenario.months import format_month, parse_month
from sim.scenario.yamlio import InputError


@dataclass(frozen=True)
class UnitCube:
    """Simulated deliveries of the finished runs as one array (vehicles per month).

    Attributes:
        run_ids: run of each row of ``units``.
        replicates: replicate number of each run.
        first: month index (:func:`sim.scenario.months.parse_month`) of the first month.
        products, product_brand: product names and their brands.
        markets: market names.
        units: ``[run, product, month, market]`` deliveries; zero where nothing was recorded.
        first_delivery: month index of each product's first delivery in the scenario (from its
            ``delivery_start`` or ``launch``), when the manifest says.
    """

    run_ids: np.ndarray
    replicates: np.ndarray
    first: int
    products: tuple[str, ...]
    product_brand: tuple[str, ...]
    markets: tuple[str, ...]
    units: np.ndarray
    first_delivery: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_months(self) -> int:
        return int(self.units.shape[2])

    @property
    def last(self) -> int:
        return self.first + self.n_months - 1

    @property
    def period(self) -> str:
        return f"{format_month(self.first)}..{format_month(self.last)}"

    @property
    def brands(self) -> list[str]:
        return sorted(set(self.product_brand))

    def mask(self, brand: str | None = None, model: str | None = None) -> np.ndarray:
        """Products of ``brand`` (and named ``model`` when given)."""
        p = np.ones(len(self.products), bool)
        if brand is not None:
            p &= np.array([b == brand for b in self.product_brand], bool)
        if model is not None:
            p &= np.array([m == model for m in self.products], bool)
        return p

    def monthly(self, brand: str | None = None, model: str | None = None, market: str | None = None) -> np.ndarray:
        """Deliveries per run and month (``[run, month]``) of a brand or product; all markets when None."""
        u = self.units[:, self.mask(brand, model)]
        u = u.sum(axis=(1, 3)) if market is None else u[..., self.markets.index(market)].sum(axis=1)
        return u

    def window(self, values: np.ndarray, start: int, end: int) -> np.ndarray:
        """Sum of a ``[run, month]`` array over months ``start..end`` (month indices), per run."""
        return values[:, start - self.first : end - self.first + 1].sum(axis=1)


def unit_cube(results: Results) -> UnitCube:
    """Build the :class:`UnitCube` of a results folder's finished runs.

    Raises:
        InputError: when the folder has no finished run.
    """
    runs, sales = results.runs, results.sales
    if len(runs) and "status" in runs:
        ok = runs[runs["status"] == "ok"].sort_values("run_id")
        run_ids = ok["run_id"].to_numpy()
        reps = ok["replicate"].to_numpy() if "replicate" in ok else np.arange(len(ok))
    elif len(sales):
        first_rows = sales.drop_duplicates("run_id").sort_values("run_id")
        run_ids = first_rows["run_id"].to_numpy()
        reps = first_rows["replicate"].to_numpy() if "replicate" in first_rows else np.arange(len(run_ids))
    else:
        run_ids = reps = np.array([], dtype=np.int64)
    if run_ids.size == 0:
        raise InputError(f"{results.path}: no finished runs to compare")
    scen = results.manifest.get("scenario") or {}
    months = [parse_month(m) for m in ([scen["start"], scen["end"]] if scen.get("start") and scen.get("end") else [])]
    if len(sales):
        sales = sales[sales["run_id"].isin(run_ids)]
        months += [parse_month(m) for m in pd.unique(sales["month"].astype(str))]
    if not months:
        raise InputError(f"{results.path}: no months in the results")
    first, last = min(months), max(months)
    products = tuple(sorted(pd.unique(sales["model"].astype(str)))) if len(sales) else ()
    firsts = sales.drop_duplicates("model") if len(sales) else sales
    brand_of = dict(zip(firsts["model"].astype(str), firsts["brand"].astype(str), strict=True)) if len(sales) else {}
    markets = tuple(sorted(pd.unique(sales["market"].astype(str)))) if len(sales) else ()
    shape = (run_ids.size, len(products), last - first + 1, max(len(markets), 1))
    units = np.zeros(shape)
    if len(sales):
        r = pd.Index(run_ids).get_indexer(sales["run_id"])
        p = pd.Index(products).get_indexer(sales["model"].astype(str))
        month_idx = {m: parse_month(m) - first for m in pd.unique(sales["month"].astype(str))}
        t = sales["month"].astype(str).map(month_idx).to_numpy(dtype=np.int64)
        m = pd.Index(markets).get_indexer(sales["market"].astype(str))
        flat = ((r * shape[1] + p) * shape[2] + t) * shape[3] + m
        units = np.bincount(flat, weights=sales["units"].to_numpy(float), minlength=int(np.prod(shape))).reshape(shape)
    first_delivery = {}
    for prod in scen.get("products") or []:
        when = prod.get("delivery_start") or prod.get("launch")
        if prod.get("name") and when:
            first_delivery[str(prod["name"])] = parse_month(str(when))
    return UnitCube(
        run_ids=run_ids,
        replicates=np.asarray(reps),
        first=first,
        products=products,
        product_brand=tuple(str(brand_of[p]) for p in products),
        markets=markets,
        units=units,
        first_delivery=first_delivery,
    )
