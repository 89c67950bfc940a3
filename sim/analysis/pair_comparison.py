"""Two scenarios on the same seeds: paired differences of the headline numbers, and cannibalisation.

:func:`compare_pair` gives the paired differences ``B - A`` per replicate of the headline numbers
when both folders were run with the same root seed (common random numbers), and the
cannibalisation table of products new in B (:func:`cannibalisation`).

Analysis only: reads two results folders and never re-runs the model; the output of ``sim compare A B``
is in :mod:`sim.present.comparison`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.compare import as_results
from sim.analysis.metrics import BAND, paired_summary
from sim.analysis.targets import target_outcomes
from sim.analysis.unit_cube import UnitCube, unit_cube
from sim.runs.store import Results
from sim.scenario.months import format_month
from sim.scenario.yamlio import InputError

PAIRED_COLUMNS = (
    "metric", "a_mean", "b_mean", "mean_diff", "diff_p5", "diff_p95", "ci_low", "ci_high", "n",
    "paired", "note",
)  # fmt: skip
CANNIBAL_COLUMNS = ("model", "brand", "a_units", "b_units", "units_lost", "lost_p5", "lost_p95", "share_of_new")


@dataclass
class PairComparison:
    """Scenario B against scenario A: paired differences and cannibalisation."""

    paired: pd.DataFrame
    cannibalisation: pd.DataFrame
    cannibalisation_summary: dict[str, Any]
    is_paired: bool
    replicates: int
    note: str = ""


def _pairing(a: Results, b: Results, ca: UnitCube, cb: UnitCube, unpaired: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """Rows of each cube to pair (same replicate), or all rows when unpaired; refuses bad pairs."""
    if unpaired:
        return np.arange(ca.run_ids.size), np.arange(cb.run_ids.size), "unpaired: differences of independent runs"
    sa, sb = a.manifest.get("seed"), b.manifest.get("seed")
    hint = "; pass --unpaired to compare them as independent samples"
    if sa is None or sb is None or sa != sb:
        raise InputError(f"{a.path} and {b.path} were not run on the same seed ({sa} and {sb}){hint}")
    for c, r in ((ca, a), (cb, b)):
        if len(set(c.replicates.tolist())) != c.replicates.size:
            raise InputError(f"{r.path}: several runs per replicate number (a sweep?); cannot pair{hint}")
    reps_a = set(a.runs["replicate"].tolist()) if "replicate" in a.runs else set(ca.replicates.tolist())
    reps_b = set(b.runs["replicate"].tolist()) if "replicate" in b.runs else set(cb.replicates.tolist())
    if reps_a != reps_b:
        raise InputError(
            f"{a.path} and {b.path} hold different replicate numbers ({len(reps_a)} and {len(reps_b)} runs){hint}"
        )
    common = sorted(set(ca.replicates.tolist()) & set(cb.replicates.tolist()))
    if not common:
        raise InputError(f"{a.path} and {b.path}: no replicate finished in both{hint}")
    for col in ("seed_entropy", "spawn_key"):
        if col in a.runs and col in b.runs:
            ka = a.runs.set_index("replicate")[col].astype(str)
            kb = b.runs.set_index("replicate")[col].astype(str)
            if not (ka.loc[common] == kb.loc[common]).all():
                raise InputError(f"{a.path} and {b.path}: replicates ran on different random streams ({col}){hint}")
    ia = pd.Index(ca.replicates).get_indexer(common)
    ib = pd.Index(cb.replicates).get_indexer(common)
    dropped = len(reps_a) - len(common)
    note = f"paired on {len(common)} replicate(s), seed {sa}" + (
        f"; {dropped} replicate(s) failed in A or B, left out" if dropped else ""
    )
    return ia, ib, note


def _outcomes_by_row(res: Results, cube: UnitCube, target: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Window deliveries and reached (1/0) of one target per run, in the cube's order."""
    sales = res.sales[res.sales["run_id"].isin(cube.run_ids)] if len(res.sales) else res.sales
    oc = target_outcomes(sales, target["brand"], float(target["units"]), target["start"], target["by"]).set_index(
        "run_id"
    )
    delivered = oc["delivered"].astype(float).reindex(cube.run_ids, fill_value=0.0).to_numpy(float)
    reached = oc["reached"].astype(float).reindex(cube.run_ids, fill_value=0.0).to_numpy(float)
    return delivered, reached


def headline_numbers(
    res: Results, cube: UnitCube, years: Iterable[int], brands: Iterable[str], targets: Sequence[Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """Headline numbers per run (in cube order): deliveries per brand and year, and per target.

    Returns:
        ``"<brand> deliveries <year>"`` (vehicles, all markets), ``"<target> window deliveries"``
        and ``"<target> reached"`` (1 or 0) mapped to one value per run.
    """
    out: dict[str, np.ndarray] = {}
    for brand in brands:
        monthly = cube.monthly(brand)
        for y in years:
            lo, hi = max(y * 12, cube.first), min(y * 12 + 11, cube.last)
            out[f"{brand} deliveries {y}"] = cube.window(monthly, lo, hi) if lo <= hi else np.zeros(cube.run_ids.size)
    for t in targets:
        out[f"{t['name']}: window deliveries"], out[f"{t['name']}: reached"] = _outcomes_by_row(res, cube, t)
    return out


def compare_pair(a: Results | str | Path, b: Results | str | Path, *, unpaired: bool = False) -> PairComparison:
    """Scenario B against scenario A, replicate by replicate.

    Args:
        a: the reference results (scenario A).
        b: the alternative (scenario B), run with the same root seed so that replicate ``r`` of
            both draws the same random numbers.
        unpaired: compare as independent samples instead of refusing folders not run on the
            same seeds.

    Returns:
        ``paired``: per headline number (the brands of the targets and AITO, deliveries per
        calendar year of the results; per target, window deliveries and reached 1/0), the means,
        mean difference ``B - A``, 90% interval of the differences and 95% CI of the mean
        (:func:`paired_summary`). ``cannibalisation``: see :func:`cannibalisation`.

    Raises:
        InputError: when the folders were not run on the same seed and replicates, unless
            ``unpaired``.
    """
    ra, rb = as_results(a), as_results(b)
    ca, cb = unit_cube(ra), unit_cube(rb)
    ia, ib, note = _pairing(ra, rb, ca, cb, unpaired)
    targets = {t["name"]: t for t in (rb.manifest.get("scenario") or {}).get("targets") or []}
    targets.update({t["name"]: t for t in (ra.manifest.get("scenario") or {}).get("targets") or []})
    brands = ["AITO"] + sorted({t["brand"] for t in targets.values()} - {"AITO"})
    brands = [x for x in brands if x in ca.brands or x in cb.brands]
    lo, hi = max(ca.first, cb.first), min(ca.last, cb.last)
    years = range(lo // 12, hi // 12 + 1)
    na = headline_numbers(ra, ca, years, brands, list(targets.values()))
    nb = headline_numbers(rb, cb, years, brands, list(targets.values()))
    rows = []
    for key in na:
        s = paired_summary(na[key][ia], nb[key][ib], paired=not unpaired)
        row_note = ""
        y = key.rsplit(" ", 1)[-1]
        if "deliveries" in key and y.isdigit():
            first, last = max(int(y) * 12, lo), min(int(y) * 12 + 11, hi)
            if (first, last) != (int(y) * 12, int(y) * 12 + 11):
                row_note = f"months {format_month(first)}..{format_month(last)} only"
        rows.append({"metric": key, **s, "paired": not unpaired, "note": row_note})
    paired = pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))
    table, summary = cannibalisation(ca, cb, ia, ib, paired=not unpaired)
    return PairComparison(paired, table, summary, not unpaired, int(min(ia.size, ib.size)), note)


def cannibalisation(
    ca: UnitCube, cb: UnitCube, ia: np.ndarray, ib: np.ndarray, *, paired: bool = True
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Where the buyers of B's new products came from.

    New products are those in B's results and not in A's. Over the window of their deliveries
    in B (first to last month any run delivers one, within the months of both results), every
    other product's mean deliveries in A minus in B are the units it lost (positive = lost).

    Args:
        ca, cb: simulated deliveries of A and B.
        ia, ib: rows of each cube to use (paired replicates in the same order when ``paired``).
        paired: whether ``ia[i]`` and ``ib[i]`` share random numbers (gives the 90% interval
            ``lost_p5``/``lost_p95`` of the per-replicate losses; NaN otherwise).

    Returns:
        The products table (:data:`CANNIBAL_COLUMNS`, sorted by units lost, ``share_of_new`` =
        units lost / new units) and a summary: ``new_products``, ``window_start``, ``window_end``,
        ``new_units`` (mean deliveries of the new products in the window), ``units_lost_total``,
        ``outside_option`` (new units minus the units lost by others: buyers who would not have
        bought at all in A) and ``outside_option_share``.
    """
    new = [p for p in cb.products if p not in ca.products]
    summary: dict[str, Any] = {"new_products": new, "window_start": None, "window_end": None, "new_units": 0.0,
                               "units_lost_total": 0.0, "outside_option": 0.0, "outside_option_share": math.nan}  # fmt: skip
    empty = pd.DataFrame(columns=list(CANNIBAL_COLUMNS))
    lo, hi = max(ca.first, cb.first), min(ca.last, cb.last)
    if not new or lo > hi:
        summary["note"] = "no new products in B" if not new else "the results share no month"
        return empty, summary
    new_mask = np.isin(np.array(cb.products), new)
    new_monthly = cb.units[ib][:, new_mask].sum(axis=(1, 3))  # run x month
    active = np.flatnonzero(new_monthly.sum(axis=0) > 0) + cb.first
    active = active[(active >= lo) & (active <= hi)]
    if active.size == 0:
        summary["note"] = "the new products deliver nothing in the months of both results"
        return empty, summary
    w0, w1 = int(active.min()), int(active.max())
    new_units = float(cb.window(new_monthly, w0, w1).mean())
    rows = []
    for name in sorted((set(ca.products) | set(cb.products)) - set(new)):
        ua = ca.window(ca.monthly(model=name)[ia], w0, w1) if name in ca.products else np.zeros(ia.size)
        ub = cb.window(cb.monthly(model=name)[ib], w0, w1) if name in cb.products else np.zeros(ib.size)
        lost = float(ua.mean() - ub.mean())
        band = np.quantile(ua - ub, BAND) if paired and ua.size else (math.nan, math.nan)
        brand = (
            ca.product_brand[ca.products.index(name)]
            if name in ca.products
            else cb.product_brand[cb.products.index(name)]
        )
        rows.append({"model": name, "brand": brand, "a_units": float(ua.mean()), "b_units": float(ub.mean()),
                     "units_lost": lost, "lost_p5": float(band[0]), "lost_p95": float(band[1]),
                     "share_of_new": lost / new_units if new_units else math.nan})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(CANNIBAL_COLUMNS))
    table = table.sort_values(["units_lost", "model"], ascending=[False, True], kind="stable").reset_index(drop=True)
    lost_total = float(table["units_lost"].sum())
    summary.update({
        "window_start": format_month(w0), "window_end": format_month(w1), "new_units": new_units,
        "units_lost_total": lost_total, "outside_option": new_units - lost_total,
        "outside_option_share": (new_units - lost_total) / new_units if new_units else math.nan,
    })  # fmt: skip
    return table, summary
