"""Target arithmetic: did a brand deliver ``units`` between ``start`` and ``by``?

Works on the stored sales table only (analysis never re-runs the model).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sim.scenario.months import format_month, parse_month


def window_deliveries(sales: pd.DataFrame, brand: str, start: str, by: str) -> pd.DataFrame:
    """Monthly deliveries of ``brand`` per run inside the window, with their running total.

    Returns:
        Columns ``run_id``, ``month``, ``units``, ``cumulative`` (all markets together),
        every month of the window present for every run (zero where nothing was delivered).
    """
    lo, hi = parse_month(start), parse_month(by)
    months = [format_month(i) for i in range(lo, hi + 1)]
    runs = pd.Index(sorted(sales["run_id"].unique()), name="run_id") if len(sales) else pd.Index([], name="run_id")
    sel = sales[(sales["brand"] == brand) & sales["month"].isin(months)]
    monthly = sel.groupby(["run_id", "month"], observed=True)["units"].sum()
    full = pd.MultiIndex.from_product([runs, months], names=["run_id", "month"])
    monthly = monthly.reindex(full, fill_value=0).astype("int64").reset_index()
    monthly["cumulative"] = monthly.groupby("run_id")["units"].cumsum()
    return monthly


def target_outcomes(sales: pd.DataFrame, brand: str, units: float, start: str, by: str) -> pd.DataFrame:
    """Per run: deliveries in the window, whether the target was reached, when, and the shortfall.

    Returns:
        Columns ``run_id``, ``delivered``, ``reached``, ``month_reached`` (``YYYY-MM``
        or missing), ``shortfall`` (units short at ``by``; 0 if reached).
    """
    w = window_deliveries(sales, brand, start, by)
    rows = []
    for run_id, g in w.groupby("run_id", sort=True):
        cum = g["cumulative"].to_numpy()
        hit = np.flatnonzero(cum >= units)
        delivered = int(cum[-1]) if cum.size else 0
        rows.append(
            {
                "run_id": run_id,
                "delivered": delivered,
                "reached": bool(hit.size),
                "month_reached": g["month"].iloc[hit[0]] if hit.size else None,
                "shortfall": max(0.0, units - delivered),
            }
        )
    return pd.DataFrame(rows, columns=["run_id", "delivered", "reached", "month_reached", "shortfall"])


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default)."""
    return wilson_interval_share(successes / n, n, z) if n else (math.nan, math.nan)


def wilson_interval_share(p: float, n: float, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a share ``p`` observed over ``n`` runs (``n`` may be an effective, fractional count)."""
    if n <= 0:
        return (math.nan, math.nan)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def month_quantile(months: pd.Series, q: float) -> str | None:
    """Quantile of months reached, runs that never reach counting as later than all; None if it falls there."""
    idx = np.array([parse_month(m) if isinstance(m, str) else np.inf for m in months], float)
    if idx.size == 0:
        return None
    val = np.quantile(idx, q, method="inverted_cdf")
    return None if not np.isfinite(val) else format_month(int(val))


def effective_runs(reached: np.ndarray, groups: np.ndarray) -> float:
    """How many independent runs a share of clustered runs is worth (for its interval).

    Replicates branched from one particle of a forecast share its history and its draws: they are not
    independent, and a share counted over them is less certain than over as many independent runs. The
    cluster-robust variance of the share ``p`` (clusters: ``groups``), ``C / (C - 1) * sum_c (s_c - n_c p)**2
    / n**2``, gives the effective count ``p (1 - p) / variance``, at most ``n``; when every run agrees
    (``p`` 0 or 1) the count of clusters.
    """
    y = np.asarray(reached, float)
    n = y.size
    frame = pd.DataFrame({"y": y, "g": np.asarray(groups)})
    by = frame.groupby("g")["y"].agg(["sum", "size"])
    c = len(by)
    if n == 0 or c < 2:
        return float(min(n, c))
    p = float(y.mean())
    var = c / (c - 1) * float(((by["sum"] - by["size"] * p) ** 2).sum()) / n**2
    if p in (0.0, 1.0) or var <= 0:
        return float(c)
    return float(min(n, p * (1 - p) / var))


def summarize(outcomes: pd.DataFrame, units: float, clusters: pd.Series | None = None) -> dict[str, Any]:
    """Probability (with 95% Wilson interval), month reached quantiles and shortfall distribution.

    Args:
        outcomes: per run (:func:`target_outcomes`).
        units: the target.
        clusters: run id -> cluster (a forecast's replicates: their particle); the interval then counts the
            runs as the :func:`effective_runs` they are worth (``runs_effective`` in the result).
    """
    n = len(outcomes)
    k = int(outcomes["reached"].sum()) if n else 0
    n_eff = float(n)
    if clusters is not None and n:
        groups = outcomes["run_id"].map(clusters)
        if groups.notna().all():
            n_eff = effective_runs(outcomes["reached"].to_numpy(bool), groups.to_numpy())
    lo, hi = wilson_interval_share(k / n, n_eff) if n else (math.nan, math.nan)
    short = outcomes["shortfall"].to_numpy(float) if n else np.array([])
    deliv = outcomes["delivered"].to_numpy(float) if n else np.array([])
    q = (lambda a, p: float(np.quantile(a, p)) if a.size else math.nan)  # noqa: E731
    return {
        "runs": n,
        "runs_effective": round(n_eff, 1),
        "probability": k / n if n else math.nan,
        "probability_low": lo,
        "probability_high": hi,
        "month_reached_p5": month_quantile(outcomes["month_reached"], 0.05),
        "month_reached_median": month_quantile(outcomes["month_reached"], 0.5),
        "month_reached_p95": month_quantile(outcomes["month_reached"], 0.95),
        "delivered_mean": float(deliv.mean()) if n else math.nan,
        "delivered_p5": q(deliv, 0.05),
        "delivered_p95": q(deliv, 0.95),
        "shortfall_mean": float(short.mean()) if n else math.nan,
        "shortfall_p50": q(short, 0.5),
        "shortfall_p95": q(short, 0.95),
        "units": units,
    }
