"""Levenberg-Marquardt with one damping per block of parameters, for the appeal fit."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

#: The fit stops when the damping needed for a step that lowers the loss passes this (steps too short to matter).
MAX_DAMPING = 1e3

#: A brand whose damping passed MAX_DAMPING (its steps kept raising its own loss) is given steps
#: again while its loss is above this multiple of the lowest it has had: the other brands' moves
#: have changed its market.
REVIVE = 1.25
#: ... and by at least this much (a loss of 0.02 is a 14% miss on one annual figure of weight 1), so
#: that brands fitted to within the noise are left alone.
REVIVE_MIN = 0.02


def block_levenberg_marquardt(
    theta: np.ndarray,
    evaluate: Any,
    jacobian: Any,
    blocks: dict[str, tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    prior: np.ndarray,
    *,
    ridge: float,
    iterations: int,
    tolerance: float,
    lower: np.ndarray,
    max_step: float = 1.5,
    log: Any = sys.stderr,
) -> tuple[tuple[Any, ...], int, int]:
    """Levenberg-Marquardt with one damping per block of parameters (block Jacobi).

    ``evaluate(theta) -> (sim, r, got, loss)`` gives the residuals ``r`` and the weighted loss;
    ``jacobian(sim, r)`` the derivatives of ``r``; ``blocks[b] = (parameters, targets)`` of block
    ``b`` (a brand). The Jacobian is block-diagonal to first order (a brand's parameters move
    only its own targets; brands interact through competition, a second-order effect), so the
    damped Gauss-Newton step is solved block by block. A candidate is run once; each block whose
    own loss (its targets, plus its parameters' prior) fell keeps its part of the step and halves
    its damping, the others go back and quadruple theirs; that mixed point is run and is the
    next iterate. Judging each block by the whole loss let the noise of other brands' figures
    (Tesla's export-cycle months) reject its good steps and stall the fit.

    A block whose damping passes :data:`MAX_DAMPING` stops taking steps; it takes them again
    (damping back to ``ridge``) when its own loss is above :data:`REVIVE` times the lowest it has
    had (and :data:`REVIVE_MIN` above it), the other blocks' moves having shifted its market (a
    brand left behind while the others converge: its steps are judged at candidates where the
    others move too, and large moves of a competitor can make them look bad).
    Parameters are clipped below at ``lower`` and steps at ``max_step``.

    Returns:
        ``(best, steps, evaluations)``: the iterate with the lowest loss as ``(theta, sim, r,
        got, loss)`` (block Jacobi need not lower the whole loss at every step), the steps taken
        and the model evaluations.
    """
    damping = dict.fromkeys(blocks, ridge)

    def say(it: int, r: np.ndarray, loss: float) -> None:
        print(f"fit iteration {it}: max |log error| {np.max(np.abs(r)):.3f}, weighted RMS {np.sqrt(loss):.3f}", file=log)

    def block_loss(r: np.ndarray, theta: np.ndarray) -> dict[str, float]:
        return {b: float(np.sum(weights[ti] * r[ti] ** 2) + np.sum(prior[pi] * theta[pi] ** 2)) for b, (pi, ti) in blocks.items()}

    evaluations = 0

    def run(point: np.ndarray) -> tuple[Any, np.ndarray, Any, float]:
        nonlocal evaluations
        evaluations += 1
        return evaluate(point)  # type: ignore[no-any-return]

    owner = np.empty(len(theta), dtype=object)
    for b, (pi, _) in blocks.items():
        owner[pi] = b
    sim, r, got, loss = run(theta)
    say(0, r, loss)
    best = (theta, sim, r, got, loss)
    lowest = block_loss(r, theta)
    it = 0
    while it < iterations and np.max(np.abs(r)) >= tolerance and evaluations < 3 * iterations + 1:
        live = [b for b in blocks if damping[b] < MAX_DAMPING]
        if not live:
            break
        jac = jacobian(sim, r)
        step = np.zeros(len(theta))
        for b in live:
            pi, ti = blocks[b]
            jb = jac[np.ix_(ti, pi)]
            wj = jb * weights[ti, None]
            step[pi] = -np.linalg.solve(jb.T @ wj + np.diag(prior[pi] + damping[b]), wj.T @ r[ti] + prior[pi] * theta[pi])
        cand = np.maximum(theta + np.clip(step, -max_step, max_step), lower)
        c_sim, c_r, c_got, c_loss = run(cand)
        before, after = block_loss(r, theta), block_loss(c_r, cand)
        gained = [b for b in live if after[b] < before[b]]
        for b in live:
            damping[b] = max(damping[b] / 2.0, 1e-3) if b in gained else damping[b] * 4.0
        if not gained:
            print(f"  step rejected for every brand (weighted RMS {np.sqrt(c_loss):.3f}); damping raised", file=log)
            continue
        if len(gained) < len(live):
            cand = np.where(np.isin(owner, gained), cand, theta)
            c_sim, c_r, c_got, c_loss = run(cand)
        it += 1
        theta, sim, r, got, loss = cand, c_sim, c_r, c_got, c_loss
        say(it, r, loss)
        if loss < best[-1]:
            best = (theta, sim, r, got, loss)
        now = block_loss(r, theta)
        for b in blocks:
            if damping[b] >= MAX_DAMPING and now[b] > max(REVIVE * lowest[b], lowest[b] + REVIVE_MIN):
                print(f"  {b}: loss {now[b]:.3f}, against {lowest[b]:.3f} at best, without steps; steps again", file=log)
                damping[b] = ridge
            lowest[b] = min(lowest[b], now[b])
    return best, it, evaluations
