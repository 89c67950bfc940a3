"""Forecast-accuracy metrics, pure functions of arrays: MAPE, MASE, band coverage, paired differences.

Used by :mod:`sim.analysis.compare`; no I/O and no knowledge of results folders.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: Quantiles of the simulated band (5th and 95th percentiles: a 90% band).
BAND = (0.05, 0.95)

def _arrays(*xs: Any) -> list[np.ndarray]:
    return [np.asarray(x, dtype=float).ravel() for x in xs]


def mape(actual: Any, forecast: Any, weights: Any = None) -> float:
    """Mean absolute percentage error of ``forecast`` against ``actual``, in percent.

    Args:
        actual: reported values (vehicles).
        forecast: simulated values for the same periods, in the same order.
        weights: optional weight per pair (e.g. source confidence); equal weights by default.

    Returns:
        ``100 * sum(w * |forecast - actual| / |actual|) / sum(w)`` over the pairs where both values
        are finite, ``actual`` is not zero and the weight is positive; NaN when no pair is left.
    """
    a, f = _arrays(actual, forecast)
    w = np.ones_like(a) if weights is None else _arrays(weights)[0]
    ok = np.isfinite(a) & np.isfinite(f) & (a != 0) & np.isfinite(w) & (w > 0)
    if not ok.any():
        return math.nan
    return float(100.0 * np.average(np.abs(f[ok] - a[ok]) / np.abs(a[ok]), weights=w[ok]))


def naive_scale(history: pd.Series, lag: int) -> tuple[float, int]:
    """Mean absolute error of the naive forecast ``y[t - lag]`` on a reported series.

    Args:
        history: reported values indexed by date as an integer (a month index, see
            :func:`sim.scenario.months.parse_month`); gaps are allowed.
        lag: how far back the forecast looks, in the index's units (12 for the same month a
            year earlier on a month index).

    Returns:
        ``(scale, pairs)``: the mean of ``|y[t] - y[t - lag]|`` over the dates ``t`` where both
        values are reported, matched by date, and the number of such pairs (scale NaN if none).
    """
    h = pd.Series(history, dtype=float).dropna()
    h = h.groupby(level=0).mean()
    earlier = h.reindex(h.index - lag).to_numpy()
    diffs = np.abs(h.to_numpy() - earlier)
    diffs = diffs[np.isfinite(diffs)]
    return (float(diffs.mean()) if diffs.size else math.nan, int(diffs.size))


def mase(actual: Any, forecast: Any, history: pd.Series, season: int, weights: Any = None) -> float:
    """Mean absolute scaled error: the forecast's mean absolute error over the naive one's.

    Args:
        actual: reported values of the compared periods.
        forecast: simulated values of the same periods.
        history: the reported series (indexed by date as an integer, e.g. a month index) on
            which the scale is measured; usually every reported period, compared or not.
        season: lag of the naive forecast in the index's units (12 on a month index: the
            seasonal naive forecast of monthly, quarterly and annual figures alike).
        weights: optional weight per compared pair.

    Returns:
        ``MAE(forecast) / naive_scale(history, season)``; 1 means as good as the naive forecast.
        NaN when no pair can be compared, the history gives no pair ``season`` apart, or the
        naive forecast is exact (scale 0).
    """
    a, f = _arrays(actual, forecast)
    w = np.ones_like(a) if weights is None else _arrays(weights)[0]
    ok = np.isfinite(a) & np.isfinite(f) & np.isfinite(w) & (w > 0)
    scale, pairs = naive_scale(history, season)
    if not ok.any() or pairs == 0 or not scale > 0:
        return math.nan
    return float(np.average(np.abs(f[ok] - a[ok]), weights=w[ok]) / scale)


def coverage(actual: Any, low: Any, high: Any, weights: Any = None, actual_high: Any = None) -> float:
    """Share of reported values inside the simulated band ``[low, high]``.

    Args:
        actual: reported values; with ``actual_high``, the lower ends of reported intervals.
        low: lower end of the simulated band (e.g. the 5th percentile) per value.
        high: upper end of the band (e.g. the 95th percentile).
        weights: optional weight per value.
        actual_high: upper ends of reported intervals (``>x`` has ``inf``); an interval counts as
            inside when it meets the band.

    Returns:
        The (weighted) share in ``[0, 1]`` over the values with a finite band; NaN if none.
    """
    a, lo, hi = _arrays(actual, low, high)
    ah = a if actual_high is None else _arrays(actual_high)[0]
    w = np.ones_like(a) if weights is None else _arrays(weights)[0]
    ok = np.isfinite(lo) & np.isfinite(hi) & ~np.isnan(a) & ~np.isnan(ah) & np.isfinite(w) & (w > 0)
    if not ok.any():
        return math.nan
    inside = (a[ok] <= hi[ok]) & (ah[ok] >= lo[ok])
    return float(np.average(inside, weights=w[ok]))


def band_overlaps(rep_low: Any, rep_high: Any, sim_low: Any, sim_high: Any) -> np.ndarray:
    """Element-wise: does the reported interval ``[rep_low, rep_high]`` meet ``[sim_low, sim_high]``?

    False where the simulated band is missing.
    """
    rl, rh, sl, sh = _arrays(rep_low, rep_high, sim_low, sim_high)
    with np.errstate(invalid="ignore"):
        return np.isfinite(sl) & np.isfinite(sh) & (rl <= sh) & (rh >= sl)


def paired_summary(a: Any, b: Any, *, paired: bool = True) -> dict[str, float]:
    """The difference ``b - a`` of one headline number across replicates.

    Args:
        a: the number per replicate in scenario A.
        b: the number per replicate in scenario B (same order as ``a`` when ``paired``).
        paired: True when replicate ``i`` of both ran on the same random numbers.

    Returns:
        ``a_mean``, ``b_mean``, ``mean_diff``; ``diff_p5``/``diff_p95``, the 90% interval of the
        differences (paired: of ``b_i - a_i``; unpaired: of ``b_j - a_i`` over all pairs);
        ``ci_low``/``ci_high``, the 95% confidence interval of the mean difference (paired t, or
        Welch's t when unpaired); ``n``, the number of replicates (pairs). NaN where undefined.
    """
    x, y = _arrays(a, b)
    nan = math.nan
    out = {"a_mean": nan, "b_mean": nan, "mean_diff": nan, "diff_p5": nan, "diff_p95": nan,
           "ci_low": nan, "ci_high": nan, "n": float(min(x.size, y.size))}  # fmt: skip
    if x.size == 0 or y.size == 0:
        return out
    out["a_mean"], out["b_mean"] = float(x.mean()), float(y.mean())
    if paired:
        if x.size != y.size:
            raise ValueError(f"paired samples differ in size: {x.size} and {y.size}")
        d = y - x
        mean, n = float(d.mean()), d.size
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else nan
        df = n - 1
    else:
        d = (y[None, :] - x[:, None]).ravel()
        mean = out["b_mean"] - out["a_mean"]
        va = x.var(ddof=1) / x.size if x.size > 1 else nan
        vb = y.var(ddof=1) / y.size if y.size > 1 else nan
        se = float(math.sqrt(va + vb))
        df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1)) if se > 0 else 1.0
    out["mean_diff"] = mean
    out["diff_p5"], out["diff_p95"] = (float(v) for v in np.quantile(d, BAND))
    if math.isfinite(se):
        half = float(stats.t.ppf(0.975, df)) * se if se > 0 else 0.0
        out["ci_low"], out["ci_high"] = mean - half, mean + half
    return out
