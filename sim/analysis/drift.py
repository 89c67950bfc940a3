"""How far brand and product appeal drift after the data: the scale of the random walk, from forecast errors.

A forecast made at an origin carries the model's own spread (its parameter draws and its agents'
sampling noise) but not the drift of what the model holds constant after the data end: a brand's
appeal moves month by month for reasons no input records (a viral launch, a scandal, a rival's
campaign). The model carries that drift as a random walk of each brand's (and each product's)
appeal from the first month after the data, with a monthly step of standard deviation
``sigma`` (utils) drawn per run (:mod:`sim.model`, the scenario's ``uncertainty`` section).

Its scale is estimated from past forecast errors, as a forecaster sets the width of the bands: a
figure ``i`` scored against a forecast made at an origin has log error ``e_i`` with variance

    v_i + (sigma_brand**2 + [i is a product's figure] * sigma_product**2) * H_i * k**2,

where ``v_i`` is the variance of the forecast's own replicates (log units), ``k`` converts utils
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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

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


@dataclass(frozen=True)
class DriftEstimate:
    """Monthly random-walk scales of appeal (utils) estimated from forecast errors.

    Attributes:
        brand: standard deviation of a brand's monthly appeal step.
        product: standard deviation of a product's own monthly appeal step (on top of its brand's).
        figures: number of forecast errors the estimate rests on.
        log_likelihood: at the estimate (normal errors).
    """

    brand: float
    product: float
    figures: int
    log_likelihood: float


def estimate_drift(errors: pd.DataFrame, *, utils_to_log: float = 1.0, prior: DriftEstimate | None = None) -> DriftEstimate:
    """Maximum likelihood scales of the brand and product random walks.

    Args:
        errors: one row per scored figure with ``log_error`` (log of forecast mean over reported
            value), ``spread`` (variance of the forecast's log replicates), ``H``
            (:func:`horizon_variance`) and ``level`` (``"brand"`` or ``"product"``).
        utils_to_log: log-volume change per util of appeal (``1 / nest_lambda``).
        prior: returned unchanged when there are no errors to learn from.

    Returns:
        The estimate; both scales 0 when ``errors`` is empty and no prior is given.
    """
    e = errors.dropna(subset=["log_error", "spread", "H"])
    e = e[e["H"] > 0]
    if e.empty:
        return prior if prior is not None else DriftEstimate(0.0, 0.0, 0, float("nan"))
    err = e["log_error"].to_numpy(float)
    v = e["spread"].to_numpy(float)
    h = e["H"].to_numpy(float) * utils_to_log**2
    is_product = (e["level"] == "product").to_numpy()
    has_products = bool(is_product.any())

    def nll(x: np.ndarray) -> float:
        sb, sp = np.exp(x[0]), (np.exp(x[1]) if has_products else 0.0)
        var = v + h * (sb**2 + is_product * sp**2) + 1e-8
        return float(0.5 * np.sum(np.log(2 * np.pi * var) + err**2 / var))

    best = None
    for start in (np.log(0.01), np.log(0.05), np.log(0.2)):
        res = minimize(nll, np.array([start, start]), method="L-BFGS-B",
                       bounds=[(np.log(1e-4), np.log(MAX_SIGMA))] * 2)
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    sb = float(np.exp(best.x[0]))
    sp = float(np.exp(best.x[1])) if has_products else 0.0
    return DriftEstimate(brand=sb, product=sp, figures=int(len(e)), log_likelihood=-float(best.fun))
