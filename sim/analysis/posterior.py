"""The appeal fit's approximate posterior: a Laplace approximation from its Jacobian.

The appeal fit (:mod:`sim.analysis.fit_appeals`) minimises a weighted sum of squared log errors
plus quadratic priors,

    L(theta) = sum_i w_i r_i(theta)**2 + sum_k kappa_k theta_k**2,

which is, up to a constant, the negative log posterior of ``theta`` when each residual is normal
with variance ``s2 / w_i`` and each parameter has a normal prior centred on zero with variance
``s2 / kappa_k``. Around the minimum, with ``J`` the Jacobian of the residuals, the posterior is
approximately normal with covariance

    Sigma = s2 * (J' W J + K)**-1,

and ``s2`` is estimated from the residuals by their weighted mean square over the degrees of
freedom the fit leaves, ``n - p_eff`` with ``p_eff = trace(J' W J (J' W J + K)**-1)`` the
effective number of parameters (a parameter the data cannot move, held by its prior alone, counts
for nothing). Parameters the data do not identify keep their prior's variance; without a prior
(``kappa = 0``) such a direction would be unbounded, so a small floor (:data:`FLOOR`) keeps the
matrix invertible and :data:`MAX_SD` caps what is drawn.

Draws from this normal are the fit's parameter uncertainty: ``sim fit-appeals`` writes them as the
members of the overlay's ``ensemble`` and every run draws one (its own seed decides which).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Added to the diagonal of ``J' W J + K`` so that directions with no data and no prior stay finite.
FLOOR = 1e-6
#: Largest standard deviation drawn for any parameter (utils, or utils a year): a direction the
#: data barely touch would otherwise be drawn from a near-flat posterior.
MAX_SD = 1.5


@dataclass(frozen=True)
class Laplace:
    """A normal approximation of the fit's posterior.

    Attributes:
        mean: the fitted parameters.
        cov: their covariance (same units squared).
        s2: residual variance per unit weight (log units squared).
        n: number of residuals (reported figures).
        p_eff: effective number of parameters.
    """

    mean: np.ndarray
    cov: np.ndarray
    s2: float
    n: int
    p_eff: float

    @property
    def sd(self) -> np.ndarray:
        """Posterior standard deviation of each parameter."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def draw(self, count: int, rng: np.random.Generator, lower: np.ndarray | None = None,
             upper: np.ndarray | None = None) -> np.ndarray:
        """``count`` parameter vectors from the normal, each kept within ``[lower, upper]`` (the values a
        scenario allows: a life-cycle rate is not negative, a trend within its bounds).

        Standard deviations above :data:`MAX_SD` are shrunk to it (the correlation kept).
        """
        sd = self.sd
        shrink = np.where(sd > MAX_SD, MAX_SD / np.maximum(sd, 1e-300), 1.0)
        cov = self.cov * np.outer(shrink, shrink)
        # An eigen-decomposition rather than Cholesky: the covariance may be singular to rounding.
        vals, vecs = np.linalg.eigh((cov + cov.T) / 2.0)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        z = rng.standard_normal((count, len(self.mean)))
        out = self.mean[None, :] + z @ root.T
        if lower is not None:
            out = np.maximum(out, lower[None, :])
        if upper is not None:
            out = np.minimum(out, upper[None, :])
        return out


def laplace(
    theta: np.ndarray, jacobian: np.ndarray, residuals: np.ndarray, weights: np.ndarray, prior: np.ndarray
) -> Laplace:
    """The Laplace approximation at a fit's minimum.

    Args:
        theta: fitted parameters (k).
        jacobian: derivatives of the residuals with respect to the parameters (n x k).
        residuals: log errors at the minimum (n).
        weights: weight of each residual (n), as in the fit's loss.
        prior: quadratic prior weight of each parameter (k), as in the fit's loss.

    Returns:
        The mean, covariance, residual variance and effective number of parameters.
    """
    w = np.asarray(weights, float)
    jac = np.asarray(jacobian, float)
    info = jac.T @ (jac * w[:, None])
    precision = info + np.diag(np.asarray(prior, float) + FLOOR)
    inv = np.linalg.pinv(precision, hermitian=True)
    p_eff = float(np.trace(info @ inv))
    n = len(residuals)
    dof = max(n - p_eff, 1.0)
    s2 = float(np.sum(w * np.asarray(residuals, float) ** 2) / dof)
    return Laplace(mean=np.asarray(theta, float), cov=s2 * inv, s2=s2, n=n, p_eff=p_eff)
