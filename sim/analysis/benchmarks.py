"""Simple benchmark forecasters of reported volumes, fitted at a forecast origin to the figures up to it.

The model's forecasts are judged against these rivals on the same figures (see
``sim backtest``): ``naive`` (the last known month), ``seasonal_naive`` (the same month a year
before), ``drift`` (a random walk with drift), ``ets`` (exponential smoothing, statsforecast's
AutoETS) and ``bass`` (a Bass diffusion curve). Each is fitted to one entity (a brand or a
product) at a time, from the figures whose last month is the origin or earlier
(:func:`sim.analysis.figures.figures_upto` is applied inside, so nothing later can leak in).

Conventions:

- **Monthly history** (:func:`monthly_history`): monthly figures as reported (sources of one month
  averaged, weighted by confidence); quarterly, annual and period-sum figures are spread over
  their months not covered by monthly figures or by shorter periods (shortest periods first; the
  remainder spread evenly, a negative remainder clipped at zero and noted). Months before the
  entity's first month count zero; months nothing covers are NaN.
- **Forecasters** share one signature, ``(history, horizon, **info) -> np.ndarray``: the monthly
  means (vehicles a month) for the ``horizon`` months after the history's last month. A history
  that ends in unknown months is forecast from its last known month on (those months are part of
  the forecast path). Forecasts are never negative. ``info`` may hold ``notes`` (a list that
  receives what the forecaster did beyond the obvious: fallbacks, clipping), ``first_delivery``
  and ``periods`` (both used by ``bass``).
- **Unknown months up to the origin** (needed when a scored figure starts before the origin):
  for ``bass``, the fitted curve; for the others, interior gaps interpolated log-linearly between
  the known months around them; a leading gap (before the first figure) as a straight ramp from
  zero to the first known month after a given first delivery, else flat at the first known month.
- **First delivery**: months before an entity's first delivery count zero vehicles. An entity
  whose first delivery is not given (on sale before the scenario, or before its figures) starts
  at its earliest figure, read or scored, and its Bass start is fitted.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from sim.analysis.figures import Period, figures_upto, month_index, reported_periods
from sim.scenario.months import format_month

BENCHMARKS = ("naive", "seasonal_naive", "drift", "ets", "bass")
#: Months in a season (the year).
SEASON = 12
#: ETS falls back to the naive forecast with fewer known months than this.
ETS_MIN_MONTHS = 6
#: ETS may be seasonal only with at least this many months of history (two full years).
ETS_SEASONAL_MONTHS = 24
#: Bounds of the Bass innovation coefficient ``p`` and imitation coefficient ``q``, per year.
BASS_P_BOUNDS = (1e-4, 0.2)
BASS_Q_BOUNDS = (0.0, 1.5)
#: The Bass market potential ``m`` may be at most this many times the cumulative volume so far.
BASS_M_MAX_FACTOR = 100.0
#: When fitted, the Bass start may lie at most this many months before its anchor.
BASS_MAX_OFFSET = 120
#: The Bass start is fixed at the first delivery when the first figure starts within this many months of it.
BASS_SEEN_LAUNCH = 6
#: Bass needs at least this many figures (months or period sums) to be fitted.
BASS_MIN_FIGURES = 3
#: A period whose months are already known is noted when its sum differs by more than this share.
PERIOD_MISMATCH = 0.005


def monthly_history(figs: pd.DataFrame, entity: str, first: str | int, origin: str | int) -> pd.Series:
    """Monthly volumes of ``entity`` from ``first`` to ``origin``, from its figures up to ``origin``.

    Monthly figures are kept as they are; a quarter, a year or a period sum is spread over its
    months that are not yet known (periods taken shortest first), the remainder evenly. So the
    sum over a figure's months equals the figure whenever its remainder is not negative.

    Args:
        figs: a :func:`sim.analysis.figures.scorable_figures` table (figures after ``origin``
            are ignored).
        entity: a brand or product name.
        first: the entity's first month of deliveries; months before it count zero vehicles
            (for an entity on sale before its figures, a month no later than its first
            figure's start).
        origin: the last month of the history.

    Returns:
        Vehicles a month indexed by month index ``first..origin`` (NaN where nothing is
        known). ``attrs["notes"]`` lists what was clipped or did not add up.
    """
    lo, hi = month_index(first), month_index(origin)
    known = pd.Series(np.nan, index=pd.RangeIndex(lo, hi + 1), dtype=float)
    notes: list[str] = []
    periods = reported_periods(figs, entity, hi)
    for p in sorted(periods, key=lambda p: (p.end - p.start, p.start)):  # months first, then shortest periods
        span = known.loc[max(p.start, lo) : p.end]
        if span.empty:
            notes.append(f"{entity} {_period_name(p)}: before the first month, ignored")
            continue
        if p.start == p.end:
            known[p.start] = p.value
            continue
        gaps = span.index[span.isna()]
        remainder = p.value - float(span.sum())
        if len(gaps) == 0:
            if abs(remainder) > PERIOD_MISMATCH * p.value:
                notes.append(f"{entity} {_period_name(p)}: its months sum to {span.sum():,.0f}, not {p.value:,.0f}")
            continue
        if remainder < 0:
            notes.append(f"{entity} {_period_name(p)}: known months exceed it by {-remainder:,.0f}; others set to 0")
            remainder = 0.0
        known[gaps] = remainder / len(gaps)
    known.attrs["notes"] = notes
    return known


def _period_name(p: Period) -> str:
    return format_month(p.start) if p.start == p.end else f"{format_month(p.start)}..{format_month(p.end)}"


# --------------------------------------------------------------------------- the forecasters


def _trimmed(history: pd.Series) -> pd.Series:
    """The history up to its last known month."""
    known = history.dropna()
    return history.loc[: known.index[-1]] if len(known) else history.iloc[:0]


def _interpolated(history: pd.Series) -> pd.Series:
    """Known months and the gaps between them, filled log-linearly (linearly when a known month is zero)."""
    y = _trimmed(history)
    y = y.loc[y.first_valid_index() :] if len(y) else y
    if not y.isna().any():
        return y.astype(float)
    if (y.dropna() > 0).all():
        return pd.Series(np.exp(np.log(y).interpolate(method="index")), index=y.index)
    return y.interpolate(method="index")


def _naive_steps(history: pd.Series, steps: int, info: Mapping[str, Any], notes: list[str]) -> np.ndarray:
    y = history.dropna()
    return np.full(steps, float(y.iloc[-1]) if len(y) else np.nan)


def _seasonal_naive_steps(history: pd.Series, steps: int, info: Mapping[str, Any], notes: list[str]) -> np.ndarray:
    y = _trimmed(history)
    if y.dropna().empty:
        return np.full(steps, np.nan)
    last, level = int(y.index[-1]), float(y.dropna().iloc[-1])
    out = np.empty(steps)
    fallbacks = 0
    for k in range(steps):
        month = last + 1 + k
        before = month - SEASON
        if before > last:  # a forecast month: the forecast a season earlier
            out[k] = out[before - last - 1]
        elif before in y.index and not np.isnan(y[before]):
            out[k] = y[before]
        else:
            out[k], fallbacks = level, fallbacks + 1
    if fallbacks:
        notes.append(f"seasonal_naive: {fallbacks} of {steps} months had no value a year before (naive used)")
    return out


def _drift_steps(history: pd.Series, steps: int, info: Mapping[str, Any], notes: list[str]) -> np.ndarray:
    y = history.dropna()
    if y.empty:
        return np.full(steps, np.nan)
    span = int(y.index[-1] - y.index[0])
    slope = (float(y.iloc[-1]) - float(y.iloc[0])) / span if span else 0.0
    out = float(y.iloc[-1]) + slope * np.arange(1, steps + 1)
    if (out < 0).any():
        notes.append("drift: forecast reached zero (clipped)")
    return np.maximum(out, 0.0)


def _ets_steps(history: pd.Series, steps: int, info: Mapping[str, Any], notes: list[str]) -> np.ndarray:
    n_known = int(history.notna().sum())
    if n_known < ETS_MIN_MONTHS:
        notes.append(f"ets: {n_known} known months (< {ETS_MIN_MONTHS}); naive used")
        return _naive_steps(history, steps, info, notes)
    from statsforecast.models import AutoETS  # imported here: it takes seconds to load

    y = _interpolated(history).to_numpy(float)
    season = SEASON if len(y) >= ETS_SEASONAL_MONTHS else 1
    try:  # a flat stretch makes the library divide by zero on its way to a good fit: not worth a warning
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.asarray(AutoETS(season_length=season).fit(y).predict(steps)["mean"], dtype=float)
    except Exception as exc:  # noqa: BLE001 -- any failure of the library falls back, with its reason noted
        mean = np.array([np.nan])
        notes.append(f"ets: fit failed ({type(exc).__name__}: {exc})")
    if not np.isfinite(mean).all():
        notes.append("ets: naive used")
        return _naive_steps(history, steps, info, notes)
    if (mean < 0).any():
        notes.append("ets: forecast reached zero (clipped)")
    return np.maximum(mean, 0.0)


_STEPS: dict[str, Callable[[pd.Series, int, Mapping[str, Any], list[str]], np.ndarray]] = {
    "naive": _naive_steps, "seasonal_naive": _seasonal_naive_steps, "drift": _drift_steps, "ets": _ets_steps,
}  # fmt: skip


def benchmark_path(name: str, history: pd.Series, through: int, **info: Any) -> pd.Series:
    """One benchmark's monthly path: the history where known, the benchmark elsewhere, up to ``through``.

    Args:
        name: one of :data:`BENCHMARKS`.
        history: vehicles a month indexed by consecutive month indices (:func:`monthly_history`).
        through: the last month of the path (a month index, at or after the history's last).
        **info: ``notes`` (a list receiving notes), ``first_delivery`` and ``periods`` (for Bass).

    Returns:
        Vehicles a month indexed by month index, from the history's first month to ``through``.
    """
    given = info.pop("notes", None)
    notes: list[str] = given if isinstance(given, list) else []
    first, last = int(history.index[0]), int(history.index[-1])
    months = pd.RangeIndex(first, max(through, last) + 1)
    path = history.reindex(months).astype(float)
    if history.dropna().empty:
        notes.append(f"{name}: no known month")
        return path
    if name == "bass":
        fit = fit_bass(history, notes=notes, **info)
        if fit is not None:
            return path.fillna(pd.Series(fit.monthly(months.to_numpy()), index=months))
        notes.append("bass: naive used")
        name = "naive"
    if name not in _STEPS:
        raise ValueError(f"unknown benchmark {name!r}: expected one of {', '.join(BENCHMARKS)}")
    inner = _interpolated(history)
    path = path.fillna(inner)
    first_known = int(inner.index[0])
    if first_known > first:
        # after a first delivery, a launch ramp from zero to the first known month; else flat
        ramp = np.arange(1, first_known - first + 1) / (first_known - first + 1)
        launched = info.get("first_delivery") is not None
        path.loc[first : first_known - 1] = float(inner.iloc[0]) * (ramp if launched else 1.0)
    last_known = int(inner.index[-1])
    steps = int(months[-1]) - last_known
    if steps > 0:
        path.loc[last_known + 1 :] = _STEPS[name](history.loc[:last_known], steps, info, notes)
    return path


def _forecast(name: str, history: pd.Series, horizon: int, info: dict[str, Any]) -> np.ndarray:
    origin = int(history.index[-1])
    return benchmark_path(name, history, origin + horizon, **info).loc[origin + 1 :].to_numpy()


def naive(history: pd.Series, horizon: int, **info: Any) -> np.ndarray:
    """The last known month's volume, for each of the ``horizon`` months after the history (vehicles a month)."""
    return _forecast("naive", history, horizon, info)


def seasonal_naive(history: pd.Series, horizon: int, **info: Any) -> np.ndarray:
    """The volume of the same month a year earlier (the naive value where that month is unknown; counted in ``notes``)."""
    return _forecast("seasonal_naive", history, horizon, info)


def drift(history: pd.Series, horizon: int, **info: Any) -> np.ndarray:
    """Random walk with drift: the last known volume plus the mean monthly change since the first known month."""
    return _forecast("drift", history, horizon, info)


def ets(history: pd.Series, horizon: int, **info: Any) -> np.ndarray:
    """Exponential smoothing: statsforecast's AutoETS, the model chosen by AICc, forecast means (vehicles a month).

    Seasonal (12 months) only with two years of history; the naive forecast (noted) with fewer
    than :data:`ETS_MIN_MONTHS` known months. Gaps are interpolated log-linearly before the fit.
    """
    return _forecast("ets", history, horizon, info)


def bass(history: pd.Series, horizon: int, **info: Any) -> np.ndarray:
    """The fitted Bass diffusion curve's monthly volumes after the history (see :func:`fit_bass`)."""
    return _forecast("bass", history, horizon, info)


FORECASTERS: dict[str, Callable[..., np.ndarray]] = {
    "naive": naive, "seasonal_naive": seasonal_naive, "drift": drift, "ets": ets, "bass": bass,
}  # fmt: skip


# --------------------------------------------------------------------------- Bass diffusion


@dataclass(frozen=True)
class BassFit:
    """A fitted Bass curve: cumulative volume ``m F(t)``, ``t`` years since month ``start``.

    ``F(t) = (1 - exp(-(p + q) t)) / (1 + (q / p) exp(-(p + q) t))`` for ``t > 0``, 0 before.

    Attributes:
        p: innovation coefficient, per year.
        q: imitation coefficient, per year.
        m: market potential, vehicles.
        start: month index at which ``t = 0`` (may be fractional when fitted).
        start_fitted: whether ``start`` was fitted (True) or the first delivery (False).
    """

    p: float
    q: float
    m: float
    start: float
    start_fitted: bool

    def cumulative(self, month_starts: np.ndarray) -> np.ndarray:
        """Vehicles delivered before each of the given month indices (the start of those months)."""
        return self.m * _bass_f(self.p, self.q, (np.asarray(month_starts, float) - self.start) / SEASON)

    def monthly(self, months: np.ndarray) -> np.ndarray:
        """Vehicles delivered in each of the given months."""
        months = np.asarray(months, float)
        return self.cumulative(months + 1) - self.cumulative(months)


def _bass_f(p: float, q: float, t: np.ndarray) -> np.ndarray:
    t = np.maximum(t, 0.0)
    e = np.exp(-(p + q) * t)
    return (1.0 - e) / (1.0 + (q / p) * e)


def fit_bass(
    history: pd.Series,
    *,
    first_delivery: str | int | None = None,
    periods: list[Period] | None = None,
    notes: list[str] | None = None,
    **_: Any,
) -> BassFit | None:
    """Fit a Bass diffusion curve by least squares on log volumes (scipy's ``least_squares``).

    The residual of each figure is ``sqrt(weight) * log(curve / figure)``, the curve summed
    over the figure's months, so a month and a year count alike and volumes of any size weigh
    the same. Bounds: ``p`` and ``q`` in :data:`BASS_P_BOUNDS` and :data:`BASS_Q_BOUNDS` (per
    year), ``m`` between the cumulative volume so far (the history's sum, unknown months
    counted zero) and :data:`BASS_M_MAX_FACTOR` times it. The curve starts (``t = 0``) at the
    first delivery when the figures start within :data:`BASS_SEEN_LAUNCH` months of it;
    otherwise (no first delivery given, as for an entity on sale before the scenario, or a
    first figure long after it) the start is fitted, at most :data:`BASS_MAX_OFFSET` months
    before the first delivery (or before the first figure when none is given) and no later.

    Args:
        history: vehicles a month (:func:`monthly_history`); its known months are the figures
            when ``periods`` is None.
        first_delivery: the entity's first delivery month, or None when unknown.
        periods: the reported figures (:func:`reported_periods`), months and period sums; those
            ending after the history are ignored.
        notes: a list receiving a note when the curve cannot be fitted.

    Returns:
        The fit, or None (with a note) when there are fewer than :data:`BASS_MIN_FIGURES`
        figures with a positive volume.
    """
    notes = notes if notes is not None else []
    last = int(history.index[-1])
    if periods is None:
        known = history.dropna()
        periods = [Period(int(k), int(k), float(v), 1.0) for k, v in known.items()]
    targets = [p for p in periods if p.end <= last and p.value > 0]
    if len(targets) < BASS_MIN_FIGURES:
        notes.append(f"bass: {len(targets)} figures (< {BASS_MIN_FIGURES}); not fitted")
        return None
    starts = np.array([p.start for p in targets], float)
    ends = np.array([p.end for p in targets], float) + 1
    log_obs = np.log([p.value for p in targets])
    w = np.sqrt([p.weight for p in targets])
    cum = max(float(history.fillna(0.0).sum()), float(max(p.value for p in targets)), 1.0)
    first_figure = int(starts.min())
    fd = None if first_delivery is None else month_index(first_delivery)
    fixed = fd is not None and first_figure - fd <= BASS_SEEN_LAUNCH
    anchor = float(fd if fd is not None else first_figure)

    def curve(x: np.ndarray) -> tuple[float, float, float, float]:
        start = anchor if fixed else anchor - x[3]
        return x[0], x[1], float(np.exp(x[2])), start

    def residuals(x: np.ndarray) -> np.ndarray:
        p, q, m, start = curve(x)
        pred = m * (_bass_f(p, q, (ends - start) / SEASON) - _bass_f(p, q, (starts - start) / SEASON))
        return w * (np.log(np.maximum(pred, 1.0)) - log_obs)

    lower = [BASS_P_BOUNDS[0], BASS_Q_BOUNDS[0], np.log(cum)]
    upper = [BASS_P_BOUNDS[1], BASS_Q_BOUNDS[1], np.log(cum * BASS_M_MAX_FACTOR)]
    if not fixed:
        lower.append(0.0)
        upper.append(float(BASS_MAX_OFFSET))
    best = None
    for p0, q0, f0, d0 in _bass_starts(fixed):
        x0 = np.clip([p0, q0, np.log(cum * f0)] + ([] if fixed else [d0]), lower, upper)
        sol = least_squares(residuals, x0, bounds=(lower, upper), x_scale="jac")
        if best is None or sol.cost < best.cost:
            best = sol
    assert best is not None
    p, q, m, start = curve(best.x)
    return BassFit(float(p), float(q), m, start, not fixed)


def _bass_starts(fixed: bool) -> list[tuple[float, float, float, float]]:
    """Starting points (p, q per year; m as a multiple of the volume so far; start offset, months)."""
    offsets = (0.0,) if fixed else (6.0, 36.0)
    return [(p, q, f, d) for p in (0.01, 0.05) for q in (0.3, 0.9) for f in (2.0, 8.0) for d in offsets]


# --------------------------------------------------------------------------- forecasts of figures


BENCHMARK_COLUMNS = ("origin", "line", "entity", "horizon", "benchmark", "forecast", "note")


def benchmark_forecasts(
    scored: pd.DataFrame,
    history_figs: pd.DataFrame,
    origin: str | int,
    first_delivery: Mapping[str, int | None],
    horizon: int = 12,
) -> pd.DataFrame:
    """Each benchmark's forecast of each scored figure that ends 1 to ``horizon`` months after ``origin``.

    A figure's forecast is the sum over its months of the benchmark's path
    (:func:`benchmark_path`): months up to the origin from the history where known (observed or
    spread from a period), the rest from the benchmark; months before the entity's first month
    count zero.

    Args:
        scored: the figures to forecast (:func:`sim.analysis.figures.scorable_figures`).
        history_figs: the figures the benchmarks may be fitted to; only those ending at
            ``origin`` or earlier are read.
        origin: the forecast origin (``YYYY-MM`` or a month index).
        first_delivery: first delivery month (index) of each entity; a missing or None entry
            means on sale before its figures (the history then starts at its earliest figure,
            read or scored, and the Bass start is fitted). Pass None for a product whose
            scenario delivery start is only the scenario's first month.
        horizon: the longest horizon scored, months.

    Returns:
        The table of :data:`BENCHMARK_COLUMNS`: ``origin`` (``YYYY-MM``), ``line`` and
        ``entity`` (the figure), ``horizon`` (its last month less the origin, months),
        ``benchmark`` (a name of :data:`BENCHMARKS`), ``forecast`` (vehicles over the figure's
        months; NaN when the entity has no figure up to the origin) and ``note``.
    """
    cut = month_index(origin)
    seen = figures_upto(history_figs, cut)
    todo = scored[(scored["end_index"] > cut) & (scored["end_index"] - cut <= horizon)]
    rows: list[dict[str, Any]] = []
    for entity, group in todo.groupby("entity", sort=True):
        entity = str(entity)
        mine = seen[seen["entity"] == entity]
        fd = first_delivery.get(entity)
        starts = [*mine["start_index"], *group["start_index"]]
        first = min(month_index(fd) if fd is not None else int(min(starts)), cut)
        paths: dict[str, tuple[pd.Series | None, str]] = {}
        if mine.empty:
            paths = {name: (None, f"no figure of {entity} up to the origin") for name in BENCHMARKS}
        else:
            history = monthly_history(mine, entity, first, cut)
            periods, through = reported_periods(mine, entity, cut), int(group["end_index"].max())
            for name in BENCHMARKS:
                notes = list(history.attrs.get("notes", []))
                path = benchmark_path(name, history, through, notes=notes, first_delivery=fd, periods=periods)
                paths[name] = (path, "; ".join(notes))
        for fig in group.itertuples(index=False):
            lo, hi = max(int(fig.start_index), first), int(fig.end_index)  # months before the first count zero
            for name in BENCHMARKS:
                path, note = paths[name]
                value = np.nan if path is None else float(path.loc[lo:hi].sum())
                rows.append({
                    "origin": format_month(cut), "line": int(fig.line), "entity": entity,
                    "horizon": int(fig.end_index) - cut, "benchmark": name, "forecast": value, "note": note,
                })  # fmt: skip
    return pd.DataFrame(rows, columns=list(BENCHMARK_COLUMNS))
