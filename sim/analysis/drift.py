"""How far brand and product appeal drift after the data: the scale of the random walk, from forecast errors.

A forecast made at an origin carries the model's own spread (its parameter draws and its agents'
sampling noise) but not the drift of what the model holds constant after the data end: a brand's
appeal moves month by month for reasons no input records (a viral launch, a scandal, a rival's
campaign). The model carries that drift as a random walk of each brand's (and each product's)
appeal from the first month after the data, with a monthly step of standard deviation
``sigma`` (utils) drawn per run (:mod:`sim.model`, the scenario's ``uncertainty`` section).

Its scale is estimated from past forecast errors, as a forecaster sets the width of the bands: a
figure ``i`` scored against a forecast made at an origin has log error ``e_i`` with variance

    v_i + k**2 * (tau_brand**2 * L_i + sigma_brand**2 * H_i)
        + [i is a product's figure] * k**2 * (tau_product**2 * L_i + sigma_product**2 * H_i),

where ``v_i`` is the variance of the forecast's own replicates (log units), ``tau`` is the
standard deviation of the appeal's offset at the origin (the fit fixes the level of a brand's
appeal at the origin only so well: a random walk is not a trend), ``L_i`` the squared share of
the figure's months after the origin (:func:`level_weight`), ``k`` converts utils
into log volume (``1 / nest_lambda``: a brand's volume moves by about ``d / lambda`` when its
appeal moves by ``d`` utils in a nested logit where its share is small) and ``H_i`` is the
variance, in months, that a unit random walk started at the origin gives the log of the figure's
total (:func:`horizon_variance`: a month ``h`` months after the origin has variance ``h``; the
figure sums months whose walks share their path up to the earlier one). The scales are the maximum
likelihood estimates under normal errors (:func:`estimate_drift`).

Which errors are used decides whether the bands are honest: ``sim backtest`` estimates the scale used
at an origin only from forecasts made at earlier origins and scored on figures already reported at
that origin (prequential), so that no figure after the origin sets the width of its bands.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln

from sim.scenario.months import parse_month

#: Largest monthly step considered (utils): an estimate at the bound says the data cannot tell.
MAX_SIGMA = 1.0


def horizon_variance(horizons: np.ndarray, shares: np.ndarray | None = None) -> float:
    """Variance (months) of the log of a figure's total under a unit random walk from the origin.

    Args:
        horizons: months after the origin of each month the figure sums (0 or less: at or before
            the origin, no drift yet).
        shares: each month's share of the figure's total (default: equal).

    Returns:
        ``sum_a sum_b s_a s_b min(h_a, h_b)``, with negative horizons counted as 0: the variance of
        the share-weighted mean of the walk's values over the figure's months, the first-order
        variance of the log of their sum.
    """
    h = np.clip(np.asarray(horizons, float), 0.0, None)
    s = np.full(h.size, 1.0 / max(h.size, 1)) if shares is None else np.asarray(shares, float)
    total = s.sum()
    if total <= 0:
        s = np.full(h.size, 1.0 / max(h.size, 1))
    else:
        s = s / total
    return float(s @ np.minimum.outer(h, h) @ s)


def level_weight(horizons: np.ndarray, shares: np.ndarray | None = None) -> float:
    """Weight of an offset at the origin in the log of a figure's total: the squared share of its months after it."""
    h = np.asarray(horizons, float)
    s = np.full(h.size, 1.0 / max(h.size, 1)) if shares is None else np.asarray(shares, float)
    total = s.sum()
    after = float(s[h > 0].sum() / total) if total > 0 else float(np.mean(h > 0)) if h.size else 0.0
    return after**2


@dataclass(frozen=True)
class DriftEstimate:
    """Appeal offsets at the origin and monthly random-walk steps (utils) estimated from forecast errors.

    Attributes:
        brand: standard deviation of a brand's monthly appeal step.
        product: standard deviation of a product's own monthly appeal step (on top of its brand's).
        brand_level: standard deviation of a brand's appeal offset at the origin.
        product_level: standard deviation of a product's own offset at the origin.
        figures: number of forecast errors the estimate rests on.
        log_likelihood: at the estimate.
        level_df: degrees of freedom of the Student-t errors the estimate chose (0: normal).
        brand_scale: ``(brand, factor)`` pairs: each brand's factor on its scales (:func:`estimate_brand_scales`;
            a brand not named: 1).
    """

    brand: float
    product: float
    figures: int
    log_likelihood: float
    brand_level: float = 0.0
    product_level: float = 0.0
    level_df: float = 0.0
    brand_scale: tuple[tuple[str, float], ...] = ()

    def scaled(self, factor: float) -> DriftEstimate:
        """The same estimate with every scale multiplied by ``factor`` (e.g. log-volume units into utils)."""
        return replace(self, brand=self.brand * factor, product=self.product * factor,
                       brand_level=self.brand_level * factor, product_level=self.product_level * factor)  # fmt: skip

    @property
    def zero(self) -> bool:
        return not any((self.brand, self.product, self.brand_level, self.product_level))

    def overrides(self) -> dict[str, Any]:
        """The scenario values that carry the estimate (paths of the ``uncertainty`` section)."""
        return {"uncertainty.brand_drift": round(self.brand, 6), "uncertainty.product_drift": round(self.product, 6),
                "uncertainty.brand_level": round(self.brand_level, 6),
                "uncertainty.product_level": round(self.product_level, 6), "uncertainty.level_df": self.level_df,
                "uncertainty.brand_scale": {b: round(f, 4) for b, f in self.brand_scale}}  # fmt: skip


#: Qualifiers whose figures teach the drift scale (one-sided figures do not give an error).
TWO_SIDED = ("=", "~", "range")


def two_sided_upto(errors: list[pd.DataFrame], month: int) -> pd.DataFrame:
    """The errors on two-sided figures (:data:`TWO_SIDED`) whose last month is ``month`` or before: what a
    drift estimated at ``month`` may learn from."""
    errors = [e for e in errors if not e.empty]
    if not errors:
        return pd.DataFrame()
    e = pd.concat(errors, ignore_index=True)
    return e[(e["end"].map(parse_month) <= month) & e["qualifier"].isin(TWO_SIDED)]


#: Degrees of freedom of the Student-t error laws the estimate tries beside the normal.
LEVEL_DFS = (3.0, 4.0, 6.0, 10.0, 30.0)

#: No drift at all.
NO_DRIFT = DriftEstimate(0.0, 0.0, 0, float("nan"))


def utils_variance(errors: pd.DataFrame, drift: DriftEstimate) -> np.ndarray:
    """Variance (utils squared) the drift gives the log of each figure, before conversion to log volume."""
    is_product = (errors["level"] == "product").to_numpy()
    h, lw = errors["H"].to_numpy(float), errors["L"].to_numpy(float)
    return (h * drift.brand**2 + lw * drift.brand_level**2
            + is_product * (h * drift.product**2 + lw * drift.product_level**2))  # fmt: skip


def added_and_asked(without: pd.DataFrame, with_drift: pd.DataFrame, drift: DriftEstimate) -> pd.DataFrame:
    """Per figure forecast both ways: its brand, the variance a drift added to its log replicates (``added``) and
    the variance (utils) the drift was asked to give it (``asked``)."""
    both = without[["line", "entity", "brand", "spread", "H", "L", "level"]].merge(
        with_drift[["line", "entity", "spread"]], on=["line", "entity"], suffixes=("", "_drift"))
    asked = utils_variance(both, drift)
    added = np.clip(both["spread_drift"].to_numpy(float) - both["spread"].to_numpy(float), 0.0, None)
    ok = np.isfinite(asked) & np.isfinite(added)
    return pd.DataFrame({"brand": both["brand"].to_numpy()[ok], "added": added[ok], "asked": asked[ok]})


def estimate_drift(errors: pd.DataFrame, *, utils_to_log: float = 1.0, prior: DriftEstimate | None = None) -> DriftEstimate:
    """Maximum likelihood offsets and steps of the brand and product walks.

    Args:
        errors: one row per scored figure with ``log_error`` (log of forecast mean over reported
            value), ``spread`` (variance of the forecast's log replicates), ``H``
            (:func:`horizon_variance`), ``L`` (:func:`level_weight`) and ``level`` (``"brand"``
            or ``"product"``).
        utils_to_log: log-volume change per util of appeal (``1 / nest_lambda``).
        prior: returned unchanged when there are no errors to learn from.

    Returns:
        The estimate; all scales 0 when ``errors`` is empty and no prior is given.
    """
    e = errors.dropna(subset=["log_error", "spread", "H", "L"])
    e = e[(e["H"] > 0) | (e["L"] > 0)]
    if e.empty:
        return prior if prior is not None else NO_DRIFT
    err = e["log_error"].to_numpy(float)
    v = e["spread"].to_numpy(float)
    h = e["H"].to_numpy(float) * utils_to_log**2
    lw = e["L"].to_numpy(float) * utils_to_log**2
    is_product = (e["level"] == "product").to_numpy()
    has_products = bool(is_product.any())
    free = 4 if has_products else 2

    def scales(x: np.ndarray) -> np.ndarray:
        out = np.zeros(4)
        out[:free] = np.exp(x[:free])
        return out  # brand step, brand level, product step, product level

    def nll(x: np.ndarray, df: float) -> float:
        sb, lb, sp, lp = scales(x)
        var = v + h * sb**2 + lw * lb**2 + is_product * (h * sp**2 + lw * lp**2) + 1e-8
        return _neg_log_likelihood(err, var, df)

    # The errors' tails: normal, or a Student-t of the degrees of freedom (profiled over LEVEL_DFS) that
    # fits them best; a few forecasts far off and most close is what past errors look like.
    best, best_df = None, 0.0
    for df in (0.0, *LEVEL_DFS):
        for start in (np.log(0.01), np.log(0.05), np.log(0.2)):
            res = minimize(nll, np.full(free, start), args=(df,), method="L-BFGS-B",
                           bounds=[(np.log(1e-4), np.log(MAX_SIGMA))] * free)  # fmt: skip
            if best is None or res.fun < best.fun:
                best, best_df = res, df
    assert best is not None
    # Maximum likelihood variances are biased low in small samples: scale them by n / (n - p), p the
    # scales estimated (the plug-in bands would otherwise cover less than they say). The errors of one
    # entity forecast from one origin move together (one path), so n counts those groups, not figures.
    groups = [c for c in ("origin", "entity") if c in e.columns]
    n = int(e[groups].drop_duplicates().shape[0]) if groups else len(e)
    inflate = np.sqrt(n / (n - free)) if n > free + 1 else np.sqrt(2.0)
    sb, lb, sp, lp = scales(best.x) * inflate
    return DriftEstimate(brand=float(sb), product=float(sp), figures=int(len(e)), log_likelihood=-float(best.fun),
                         brand_level=float(lb), product_level=float(lp), level_df=best_df)  # fmt: skip


#: Standard deviations tried for the spread of the brands' log factors (the prior's, estimated from the errors).
SCALE_SPREADS = (0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3)
#: Bounds of a brand's factor (assumption): the data of a few figures cannot ask for more.
SCALE_BOUNDS = (1 / 3, 3.0)


def estimate_brand_scales(errors: pd.DataFrame, drift: DriftEstimate, sensitivity: dict[str, float],
                          pooled: float) -> dict[str, float]:  # fmt: skip
    """Each brand's factor on the drift's scales: how much wider or narrower its bands should be than the pooled.

    The pooled drift gives every brand offsets of the same size in utils; but a util moves a brand's
    volumes by as much as the model answers (a brand held at its capacity hardly moves; one that is not
    moves by about ``1 / lambda``), and some brands' forecasts have been much closer than others'. A brand
    ``b``'s factor ``f`` multiplies its offsets: its figures' variance is ``v_i + f**2 * k_b**2 * a_i``, with
    ``v_i`` the forecast's own, ``a_i`` the variance (utils) the drift gives the figure
    (:func:`utils_variance`) and ``k_b**2`` the model's log-volume variance per util squared for the
    brand's figures (``sensitivity``, measured by probe forecasts), under the drift's error law (normal or
    Student-t of ``drift.level_df``). The brands' ``log f`` are partially pooled: normal with a spread
    chosen (over :data:`SCALE_SPREADS`) by the marginal likelihood of every brand's errors (empirical
    Bayes), and each brand's factor is its posterior mode, within :data:`SCALE_BOUNDS`.

    Args:
        errors: the forecast errors (columns of :func:`estimate_drift`, and ``brand``).
        drift: the pooled drift, in utils.
        sensitivity: ``k_b**2`` per brand (log units squared per util squared); a brand without one uses ``pooled``.
        pooled: ``k**2`` pooled over every figure.

    Returns:
        brand -> factor, for the brands with errors to learn from.
    """
    e = errors.dropna(subset=["log_error", "spread", "H", "L"])
    e = e[(e["H"] > 0) | (e["L"] > 0)]
    if e.empty or drift.zero:
        return {}
    asked = utils_variance(e, drift)
    grid = np.linspace(np.log(SCALE_BOUNDS[0]), np.log(SCALE_BOUNDS[1]), 221)  # log f
    loglik = {}
    for brand, idx in e.groupby("brand").indices.items():
        # A brand's sensitivity, kept within a factor of 2 of the pooled (a few probe runs measure it noisily).
        k2 = float(np.clip(sensitivity.get(str(brand), pooled), pooled / 4, pooled * 4))
        err, v, d = e["log_error"].to_numpy(float)[idx], e["spread"].to_numpy(float)[idx], k2 * asked[idx]
        loglik[str(brand)] = np.array([-_neg_log_likelihood(err, v + np.exp(2 * x) * d + 1e-8, drift.level_df)
                                       for x in grid])  # fmt: skip

    def log_prior(tau: float) -> np.ndarray:
        lp = -0.5 * (grid / tau) ** 2
        return lp - np.log(np.exp(lp).sum())  # normalised over the grid (the bounds truncate it)

    def marginal(tau: float) -> float:
        lp = log_prior(tau)
        return float(sum(np.logaddexp.reduce(ll + lp) for ll in loglik.values()))

    tau = max(SCALE_SPREADS, key=marginal)
    return {b: float(np.exp(grid[np.argmax(ll + log_prior(tau))])) for b, ll in loglik.items()}


def _neg_log_likelihood(err: np.ndarray, var: np.ndarray, df: float) -> float:
    """Negative log likelihood of errors of the given variances: normal (``df`` 0) or Student-t of ``df``."""
    if df == 0:
        return float(0.5 * np.sum(np.log(2 * np.pi * var) + err**2 / var))
    s2 = var * (df - 2.0) / df  # the Student-t's scale squared, for a variance var
    return float(-np.sum(gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * np.log(df * np.pi * s2)
                         - (df + 1) / 2 * np.log1p(err**2 / (df * s2))))  # fmt: skip
