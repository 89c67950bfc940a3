"""Scores of forecasts against reported figures, on the log scale, per figure and pooled.

Volumes range over orders of magnitude (a launch month of a few hundred vehicles, a brand's year
of several hundred thousand), so errors are scored on log volumes: a log error of 0.1 is a 10.5%
overshoot whatever the size. Volumes are floored at :data:`MIN_VOLUME` (one vehicle) before
taking logs, so a forecast of zero scores as a large finite miss.

Qualifiers (the ``qualifier`` column of :func:`sim.analysis.figures.scorable_figures`):

============ =================================================================================
qualifier    convention
============ =================================================================================
``=``        scored against ``value``
``~``,       point and CRPS scores against ``value`` (the central value); a band covers the
``range``    figure when it overlaps ``[low, high]``, and the interval score's penalty is the
             distance between the band and ``[low, high]``
``>``        the figure says only "at least ``low``": a point forecast at or above ``low`` has
             zero error, one below is scored against ``low``; a band covers it when its upper
             end is at least ``low`` (penalty: the shortfall); CRPS against
             ``max(low, sample median)``, the value the figure allows nearest to the forecast's
             centre
``<``        the mirror image: zero error at or below ``high``; covered when the band's lower
             end is at most ``high``; CRPS against ``min(high, sample median)``
============ =================================================================================

The interval score of a central ``(1 - alpha)`` band ``[l, u]`` for an observation ``y``
(Gneiting & Raftery 2007, eq. 43) is ``(u - l) + (2 / alpha) (l - y) [y < l] + (2 / alpha)
(y - u) [y > u]``, here on log volumes (log units); lower is better. CRPS is computed on log
volumes from the replicates by ``scoringrules.crps_ensemble`` with the energy estimator
(:data:`CRPS_ESTIMATOR`: the CRPS of the replicates' own distribution), in log units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

#: Volumes are floored at this many vehicles before taking logs.
MIN_VOLUME = 1.0
#: Central bands scored: name -> alpha, the probability outside the band (the band runs from the
#: alpha/2 to the 1 - alpha/2 quantile of the replicates, read as :data:`BAND_QUANTILES` says).
BANDS = {"50": 0.5, "90": 0.1}
#: How the bands' ends are read from the replicates: at plotting positions ``p (n + 1)`` (numpy's
#: "weibull", Hyndman & Fan's type 6), so that an n-replicate band holds a new draw of the same law with
#: its nominal probability; the default linear positions ``p (n - 1) + 1`` give an n = 20 band of 90%
#: about 81% (a band from few replicates is narrower than the law's).
BAND_QUANTILES: Final = "weibull"
#: scoringrules' CRPS estimator: "nrg" is the CRPS of the ensemble's empirical distribution.
CRPS_ESTIMATOR = "nrg"
#: Columns identifying one figure forecast from one origin, when present in a score table.
KEY_COLUMNS = ("origin", "line", "entity")


def _log(x: Any) -> Any:
    return np.log(np.maximum(x, MIN_VOLUME))


def _target(value: float, low: float, high: float, qualifier: str, centre: float) -> float:
    """The volume a forecast centred at ``centre`` is scored against, by the qualifier's convention."""
    if qualifier == ">":
        return max(low, centre)
    if qualifier == "<":
        return min(high, centre)
    return value


def _bounds(value: float, low: float, high: float, qualifier: str) -> tuple[float, float]:
    """The interval of volumes the figure allows (log units): a point for ``=``."""
    if qualifier == "=":
        return float(_log(value)), float(_log(value))
    lo = -np.inf if not np.isfinite(low) else float(_log(low))
    hi = np.inf if not np.isfinite(high) else float(_log(high))
    return lo, hi


def point_scores(value: float, qualifier: str, low: float, high: float, forecast: float) -> dict[str, float]:
    """Scores of a point forecast (a benchmark's, or the model's mean) of one figure.

    Args:
        value: the figure's central value, vehicles.
        qualifier: ``=``, ``~``, ``range``, ``>`` or ``<``.
        low, high: the figure's bounds, vehicles (``inf`` for an open end).
        forecast: the forecast, vehicles over the figure's months.

    Returns:
        ``forecast``; ``error``, the relative error ``(forecast - target) / target``;
        ``log_error``, ``log(forecast / target)`` (log units); ``abs_log_error``. The target is
        ``value``, except that a ``>`` figure has zero error when the forecast is at least
        ``low`` (else the target is ``low``), and a ``<`` figure when it is at most ``high``.
        All NaN when the forecast is NaN.
    """
    if not np.isfinite(forecast):
        return {"forecast": float(forecast), "error": np.nan, "log_error": np.nan, "abs_log_error": np.nan}
    target = _target(value, low, high, qualifier, forecast)
    log_error = float(_log(forecast) - _log(target))
    error = (forecast - target) / target if target else np.nan
    return {"forecast": float(forecast), "error": float(error), "log_error": log_error, "abs_log_error": abs(log_error)}


def interval_score(lower: float, upper: float, obs_low: float, obs_high: float, alpha: float) -> float:
    """Interval score of the band ``[lower, upper]`` for an observation known to lie in ``[obs_low, obs_high]``.

    With ``obs_low == obs_high`` this is Gneiting & Raftery's score ``(u - l) + (2 / alpha)
    (l - y) [y < l] + (2 / alpha) (y - u) [y > u]``; for an interval observation the penalty is
    the distance between the two intervals (zero when they overlap). Units are those of the
    arguments (log units here).
    """
    miss = max(0.0, lower - obs_high) + max(0.0, obs_low - upper)
    return float((upper - lower) + 2.0 / alpha * miss)


def figure_scores(
    value: float, low: float, high: float, qualifier: str, samples: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """Scores of a forecast ensemble (the model's replicates) for one figure.

    Args:
        value: the figure's central value, vehicles.
        low, high: its bounds, vehicles (``inf`` for an open end).
        qualifier: ``=``, ``~``, ``range``, ``>`` or ``<`` (see the module docstring).
        samples: the forecast of the figure by each replicate, vehicles over its months.

    Returns:
        ``n_samples``; the point scores of the samples' mean (:func:`point_scores`:
        ``forecast``, ``error``, ``log_error``, ``abs_log_error``); ``median``; for each band
        of :data:`BANDS` (``50``, ``90``), its ends ``lower_50``, ``upper_50`` (vehicles),
        ``covered_50`` (1.0 or 0.0) and ``interval_score_50`` (log units); ``crps`` (log
        units). Scores are NaN when there are no finite samples.
    """
    x = np.asarray(samples, dtype=float)
    x = x[np.isfinite(x)]
    out: dict[str, float] = {"n_samples": float(len(x))}
    if len(x) == 0:
        out |= point_scores(value, qualifier, low, high, np.nan) | {"median": np.nan, "crps": np.nan}
        for band in BANDS:
            out |= {
                f"lower_{band}": np.nan,
                f"upper_{band}": np.nan,
                f"covered_{band}": np.nan,
                f"interval_score_{band}": np.nan,
            }
        return out
    out |= point_scores(value, qualifier, low, high, float(x.mean()))
    median = float(np.median(x))
    out["median"] = median
    obs_low, obs_high = _bounds(value, low, high, qualifier)
    for band, alpha in BANDS.items():
        lower, upper = (float(v) for v in np.quantile(x, [alpha / 2, 1 - alpha / 2], method=BAND_QUANTILES))
        log_l, log_u = float(_log(lower)), float(_log(upper))
        out[f"lower_{band}"], out[f"upper_{band}"] = lower, upper
        out[f"covered_{band}"] = float(log_l <= obs_high and log_u >= obs_low)
        out[f"interval_score_{band}"] = interval_score(log_l, log_u, obs_low, obs_high, alpha)
    out["crps"] = crps_log(_target(value, low, high, qualifier, median), x)
    return out


def crps_log(observed: float, samples: np.ndarray) -> float:
    """CRPS of an ensemble of volumes for an observed volume, both on log scale (log units)."""
    import scoringrules as sr  # imported here: it loads its numba kernels

    return float(sr.crps_ensemble(float(_log(observed)), _log(np.asarray(samples, float)), estimator=CRPS_ESTIMATOR))


def summarize(table: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Pooled scores of a table of per-figure scores, overall or per group.

    Args:
        table: one row per scored figure, with ``log_error`` and, for ensemble forecasts,
            ``covered_50``, ``covered_90``, ``crps``, ``interval_score_50`` and
            ``interval_score_90`` (missing columns give NaN).
        by: column(s) to group by (e.g. ``"horizon"``, ``["origin"]``); None pools all rows.

    Returns:
        One row per group (one row when ``by`` is None) with ``n_figures`` (rows with a finite
        log error), ``coverage_50`` and ``coverage_90`` (shares of figures covered), ``crps``,
        ``interval_score_50``, ``interval_score_90`` (means, log units), ``mae_log`` (mean
        absolute log error) and ``median_abs_error`` (median absolute relative error).
    """
    cols = ("covered_50", "covered_90", "crps", "interval_score_50", "interval_score_90")
    t = table.copy()
    for c in (*cols, "log_error", "error"):
        if c not in t.columns:
            t[c] = np.nan
    t = t[np.isfinite(t["log_error"].astype(float))]
    t["abs_log"] = t["log_error"].abs()
    t["abs_err"] = t["error"].abs()
    aggs: dict[str, Any] = {
        "n_figures": ("abs_log", "size"),
        "coverage_50": ("covered_50", "mean"), "coverage_90": ("covered_90", "mean"),
        "crps": ("crps", "mean"),
        "interval_score_50": ("interval_score_50", "mean"), "interval_score_90": ("interval_score_90", "mean"),
        "mae_log": ("abs_log", "mean"), "median_abs_error": ("abs_err", "median"),
    }  # fmt: skip
    if by is None:
        return t.assign(_all=0).groupby("_all").agg(**aggs).reset_index(drop=True)
    return t.groupby(list([by] if isinstance(by, str) else by), sort=True).agg(**aggs).reset_index()


def relative_mae(
    model_table: pd.DataFrame, benchmark_table: pd.DataFrame, by: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """The model's mean absolute log error relative to each benchmark's, on the same figures.

    A figure counts when both the model and the benchmark scored it (a finite ``log_error``);
    a figure scored by one side only is dropped from both and counted in ``n_dropped``.

    Args:
        model_table: the model's per-figure scores: the key columns of :data:`KEY_COLUMNS`
            present in both tables (``line`` and ``entity`` at least) and ``log_error``.
        benchmark_table: the benchmarks' per-figure scores with the same keys, ``benchmark``
            and ``log_error``.
        by: further column(s) of the model's table to group by (e.g. ``"horizon"``).

    Returns:
        One row per benchmark (and group): ``benchmark``, ``n_figures``, ``n_dropped``,
        ``mae_model``, ``mae_benchmark`` and ``relative_mae`` (their ratio: below 1 means the
        model is the better forecaster).
    """
    groups = [] if by is None else list([by] if isinstance(by, str) else by)
    keys = [c for c in KEY_COLUMNS if c in model_table.columns and c in benchmark_table.columns]
    keys += [g for g in groups if g in benchmark_table.columns and g not in keys]
    model = model_table[[*keys, *(g for g in groups if g not in keys), "log_error"]].rename(
        columns={"log_error": "model"}
    )
    bench = benchmark_table[[*keys, "benchmark", "log_error"]].rename(columns={"log_error": "bench"})
    rows = []
    for name, b in bench.groupby("benchmark", sort=False):
        both = model.merge(b.drop(columns="benchmark"), on=keys, how="outer")
        both["ok"] = np.isfinite(both["model"].astype(float)) & np.isfinite(both["bench"].astype(float))
        for key, g in both.groupby(groups, sort=True, dropna=False) if groups else [((), both)]:
            k = g["ok"]
            mae_m, mae_b = float(g.loc[k, "model"].abs().mean()), float(g.loc[k, "bench"].abs().mean())
            row = dict(zip(groups, key if isinstance(key, tuple) else (key,), strict=True))
            rows.append(row | {
                "benchmark": name, "n_figures": int(k.sum()), "n_dropped": int((~k).sum()),
                "mae_model": mae_m, "mae_benchmark": mae_b, "relative_mae": mae_m / mae_b if mae_b > 0 else np.nan,
            })  # fmt: skip
    columns = [*groups, "benchmark", "n_figures", "n_dropped", "mae_model", "mae_benchmark", "relative_mae"]
    return pd.DataFrame(rows, columns=columns)
