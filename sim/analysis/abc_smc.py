"""ABC-SMC: the sampler of ``sim calibrate``, as pure functions of parameter sets and distances.

ABC with sequential Monte Carlo (Beaumont et al. 2009), recycling every run by
adaptive multiple importance sampling (Cornuet et al. 2012). Round 0 draws ``per_round``
parameter sets from the prior by a Latin hypercube in prior-quantile space. After each round
the tolerance is the distance of the ``k``-th best set run so far (``k = quantile x per_round``),
so it can only shrink; the population is every set within it, from any round, with importance
weight ``prior(z) / sum_r (n_r / N) q_r(z)`` (``q_r`` the density round ``r`` drew from). The
next round resamples the population by weight and perturbs in the unbounded coordinate
``z = logit((v - low) / (high - low))`` (``v`` the value, or its log for a log-uniform prior)
with a Gaussian kernel of ``kernel_scale`` x the population's weighted covariance, so that
proposals respect the bounds exactly. The last population is the ensemble. ``--budget N`` is
the total number of model runs: ``rounds x per_round x replications``.

No model runs and no files here: :mod:`sim.analysis.calibrate` runs the rounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from sim.analysis.calibration_file import FreeParameter

#: Ridge added to the kernel covariance (in z units squared) so that it stays positive definite.
KERNEL_RIDGE = 1e-4
#: Fewest sets a round may accept.
MIN_ACCEPTED = 3


@dataclass
class Population:
    """Accepted parameter sets: values (sets x parameters), normalised weights, distances, the tolerance."""

    values: np.ndarray
    weights: np.ndarray
    distances: np.ndarray
    tolerance: float
    index: np.ndarray  # position of each set among all sets run so far

    @property
    def ess(self) -> float:
        """Effective sample size of the weights."""
        return float(1.0 / np.sum(self.weights**2)) if self.weights.size else 0.0


@dataclass(frozen=True)
class Proposal:
    """How a round drew its sets: from the prior (``centres`` None) or from a Gaussian kernel
    mixture in z around the previous population (``centres`` its values, ``weights`` its weights)."""

    centres: np.ndarray | None = None
    weights: np.ndarray | None = None
    cov: np.ndarray | None = None

    def as_json(self) -> dict[str, Any] | None:
        return None if self.centres is None else {"centres": self.centres, "weights": self.weights, "cov": self.cov}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Proposal:
        if d is None:
            return cls()
        return cls(np.array(d["centres"], float), np.array(d["weights"], float), np.array(d["cov"], float))


def to_z(params: list[FreeParameter], values: np.ndarray) -> np.ndarray:
    return np.column_stack([p.to_z(values[:, j]) for j, p in enumerate(params)])


def from_z(params: list[FreeParameter], z: np.ndarray) -> np.ndarray:
    return np.column_stack([p.from_z(z[:, j]) for j, p in enumerate(params)])


def log_prior(params: list[FreeParameter], z: np.ndarray) -> np.ndarray:
    """Log prior density of sets in z (independent parameters)."""
    return np.asarray(np.sum([p.log_prior_z(z[:, j]) for j, p in enumerate(params)], axis=0), float)


def log_proposal(params: list[FreeParameter], proposal: Proposal, z: np.ndarray) -> np.ndarray:
    """Log density in z of the distribution a round drew its sets from."""
    if proposal.centres is None:
        return log_prior(params, z)
    assert proposal.weights is not None and proposal.cov is not None
    zc = to_z(params, proposal.centres)
    kern = stats.multivariate_normal(mean=np.zeros(len(params)), cov=proposal.cov, allow_singular=True)
    diffs = (z[:, None, :] - zc[None, :, :]).reshape(-1, len(params))
    log_k = np.asarray(kern.logpdf(diffs), float).reshape(z.shape[0], zc.shape[0])
    return np.asarray(logsumexp(log_k + np.log(np.maximum(proposal.weights, 1e-300))[None, :], axis=1), float)


def importance_weights(params: list[FreeParameter], values: np.ndarray, proposals: list[Proposal], counts: list[int]) -> np.ndarray:
    """Normalised weights of sets drawn by several rounds: ``prior(z) / sum_r (n_r / N) q_r(z)``.

    Every set is weighed against the mixture of all rounds' proposals (the deterministic
    mixture of adaptive multiple importance sampling, Cornuet et al. 2012), so sets of every
    round can join the ensemble and no weight exceeds ``N / n_0`` times the prior's share.
    """
    if values.shape[0] == 0:
        return np.zeros(0)
    z = to_z(params, values)
    total = float(sum(counts))
    log_mix = logsumexp([math.log(n / total) + log_proposal(params, q, z) for q, n in zip(proposals, counts, strict=True)], axis=0)
    log_w = log_prior(params, z) - log_mix
    w = np.exp(log_w - log_w.max())
    return np.asarray(w / w.sum(), float)


def kernel_covariance(params: list[FreeParameter], pop: Population, scale: float) -> np.ndarray:
    """Perturbation covariance in z: ``scale`` x the population's weighted covariance, diagonal
    when the population is too small (effective size below parameters + 2) to estimate the full one."""
    z = to_z(params, pop.values)
    d = len(params)
    if z.shape[0] < 2:
        return np.eye(d)
    cov = np.atleast_2d(np.cov(z, rowvar=False, aweights=pop.weights)) if pop.ess > 1 + 1e-9 else np.atleast_2d(np.cov(z, rowvar=False))
    if pop.ess < d + 2:
        cov = np.diag(np.diag(cov))
    return np.asarray(scale * cov + KERNEL_RIDGE * np.eye(d), float)


def first_proposals(params: list[FreeParameter], n: int, rng: np.random.Generator) -> np.ndarray:
    """Round 0: ``n`` sets from the prior, a Latin hypercube in prior-quantile space."""
    import inspect

    from scipy.stats import qmc

    # scipy >= 1.15 takes rng=; older versions seed=.
    key = "rng" if "rng" in inspect.signature(qmc.LatinHypercube).parameters else "seed"
    u = qmc.LatinHypercube(len(params), **{key: rng}).random(n)
    return np.column_stack([p.from_quantile(u[:, j]) for j, p in enumerate(params)])


def next_proposals(params: list[FreeParameter], proposal: Proposal, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sets: resample the proposal's centres by weight, perturb in z with its kernel."""
    assert proposal.centres is not None and proposal.weights is not None and proposal.cov is not None
    idx = rng.choice(proposal.centres.shape[0], size=n, p=proposal.weights)
    noise = rng.multivariate_normal(np.zeros(len(params)), proposal.cov, size=n, method="cholesky")
    return from_z(params, to_z(params, proposal.centres)[idx] + noise)


def select(dist: np.ndarray, keep: int) -> tuple[float, np.ndarray]:
    """The tolerance and the sets within it: the ``keep``-th smallest distance of all sets run so far
    (at least :data:`MIN_ACCEPTED`); it can only shrink as rounds add sets. Failed runs (infinite
    distance) are never accepted."""
    finite = np.sort(dist[np.isfinite(dist)])
    if finite.size == 0:
        raise RuntimeError("every run failed; see the runs tables of the rounds' folders")
    k = min(finite.size, max(MIN_ACCEPTED, keep))
    tol = float(finite[k - 1])
    return tol, np.isfinite(dist) & (dist <= tol)


def population(params: list[FreeParameter], values: np.ndarray, dist: np.ndarray, proposals: list[Proposal],
               counts: list[int], keep: int) -> Population:
    """The accepted sets of all rounds so far, with their importance weights."""
    tol, mask = select(dist, keep)
    idx = np.flatnonzero(mask)
    w = importance_weights(params, values[idx], proposals, counts)
    return Population(values[idx], w, dist[idx], tol, idx)

